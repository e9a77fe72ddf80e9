#include "algorithms/linear_learner/linear_learner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <unistd.h>
#include <random>
#include <string>
#include <vector>

#include "algorithms/linear_learner/dense_kernels.h"
#include "algorithms/linear_learner/evaluation.h"
#include "algorithms/linear_learner/fit.h"
#include "algorithms/linear_learner/linear_model.h"
#include "algorithms/linear_learner/options.h"
#include "algorithms/linear_learner/trainer.h"

namespace hearth::algorithms::linear_learner {
namespace {

// ---------------------------------------------------------------------------------------
// Synthetic data

struct Dataset {
  std::vector<data::Batch> batches;  // training, mini-batches of `batch_rows`
  data::Batch test;                  // one batch
};

data::Batch DenseBatch(const std::vector<float>& x, const std::vector<float>& y,
                       std::size_t dim, std::size_t r0, std::size_t r1) {
  data::Batch b;
  b.rows = r1 - r0;
  b.cols = dim;
  b.dense.assign(x.begin() + r0 * dim, x.begin() + r1 * dim);
  if (!y.empty()) b.labels.assign(y.begin() + r0, y.begin() + r1);
  return b;
}

data::Batch ToSparse(const data::Batch& dense) {
  data::Batch b;
  b.rows = dense.rows;
  b.cols = dense.cols;
  b.sparse = true;
  b.row_offsets.push_back(0);
  for (std::size_t r = 0; r < dense.rows; ++r) {
    for (std::size_t d = 0; d < dense.cols; ++d) {
      const float v = dense.dense[r * dense.cols + d];
      if (v != 0) {
        b.indices.push_back(static_cast<std::uint32_t>(d));
        b.values.push_back(v);
      }
    }
    b.row_offsets.push_back(b.indices.size());
  }
  b.labels = dense.labels;
  return b;
}

// Rows x ~ N(0, 1) * feature_scale + feature_shift; `label_of` maps (x row, noise draw) to the
// label. Returns `rows` training rows in mini-batches and `test_rows` test rows.
template <typename LabelFn>
Dataset MakeDataset(std::size_t rows, std::size_t test_rows, std::size_t dim,
                    std::size_t batch_rows, LabelFn label_of, float feature_scale = 1.0f,
                    float feature_shift = 0.0f, std::uint64_t seed = 3) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  auto make = [&](std::size_t n, std::vector<float>* x, std::vector<float>* y) {
    x->resize(n * dim);
    y->resize(n);
    std::vector<float> raw(dim);
    for (std::size_t r = 0; r < n; ++r) {
      for (std::size_t d = 0; d < dim; ++d) {
        raw[d] = normal(rng);
        (*x)[r * dim + d] = raw[d] * feature_scale + feature_shift;
      }
      (*y)[r] = label_of(raw, normal(rng));
    }
  };
  std::vector<float> x, y, xt, yt;
  make(rows, &x, &y);
  make(test_rows, &xt, &yt);
  Dataset out;
  for (std::size_t r0 = 0; r0 < rows; r0 += batch_rows) {
    out.batches.push_back(DenseBatch(x, y, dim, r0, std::min(rows, r0 + batch_rows)));
  }
  out.test = DenseBatch(xt, yt, dim, 0, test_rows);
  return out;
}

std::vector<float> TrueWeights(std::size_t dim, std::uint64_t seed = 11) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> w(dim);
  for (float& v : w) v = normal(rng);
  return w;
}

float Dot(const std::vector<float>& a, const std::vector<float>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0f);
}

// The options a job with only predictor_type (and num_classes = 3) set would get, on
// mini-batches of 200 rows for 10 epochs.
Options BaseOptions(PredictorType type) {
  std::map<std::string, std::string> raw{{"predictor_type", std::string(PredictorTypeName(type))},
                                         {"mini_batch_size", "200"},
                                         {"epochs", "10"}};
  if (type == PredictorType::kMulticlassClassifier) raw["num_classes"] = "3";
  auto hps = Hyperparameters::Parse(HyperparameterSpecs(), raw);
  EXPECT_TRUE(hps.ok()) << hps.status().ToString();
  auto options = OptionsFromHyperparameters(*hps);
  EXPECT_TRUE(options.ok()) << options.status().ToString();
  return *options;
}

struct Trained {
  FitResult fit;
  FeatureStats stats;
  DataSummary summary;
};

Trained Train(const Options& options, const std::vector<data::Batch>& batches,
              const std::vector<data::Batch>* validation = nullptr) {
  DataScanner scanner(options);
  for (const data::Batch& b : batches) EXPECT_TRUE(scanner.Add(b).ok());
  auto summary = scanner.Summary();
  EXPECT_TRUE(summary.ok()) << summary.status().ToString();
  Trained out{.stats = scanner.Stats(), .summary = *summary};
  InMemorySource train(batches);
  std::unique_ptr<InMemorySource> valid;
  if (validation) valid = std::make_unique<InMemorySource>(*validation);
  auto fit = Fit(options, *summary, out.stats, train, valid.get());
  EXPECT_TRUE(fit.ok()) << fit.status().ToString();
  if (fit.ok()) out.fit = std::move(*fit);
  return out;
}

double Accuracy(const LinearModel& model, const data::Batch& test) {
  auto predictions = model.Predict(test);
  EXPECT_TRUE(predictions.ok());
  const auto& labels = predictions->columns.back().values;
  double correct = 0;
  for (std::size_t r = 0; r < test.rows; ++r) correct += labels[r] == test.labels[r];
  return correct / test.rows;
}

double Rmse(const LinearModel& model, const data::Batch& test) {
  auto predictions = model.Predict(test);
  EXPECT_TRUE(predictions.ok());
  double sum = 0;
  for (std::size_t r = 0; r < test.rows; ++r) {
    const double e = predictions->columns[0].values[r] - test.labels[r];
    sum += e * e;
  }
  return std::sqrt(sum / test.rows);
}

// ---------------------------------------------------------------------------------------
// Hyperparameters

Result<Options> OptionsFrom(std::map<std::string, std::string> raw) {
  ASSIGN_OR_RETURN(Hyperparameters hps, Hyperparameters::Parse(HyperparameterSpecs(), raw));
  return OptionsFromHyperparameters(hps);
}

TEST(LinearLearnerHyperparameters, DefaultsAreSageMakers) {
  auto o = OptionsFrom({{"predictor_type", "binary_classifier"}});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->epochs, 15);
  EXPECT_EQ(o->mini_batch_size, 1000u);
  EXPECT_EQ(o->loss, Loss::kLogistic);
  EXPECT_EQ(o->optimizer, Optimizer::kAdam);
  EXPECT_EQ(o->early_stopping_patience, 3);
  EXPECT_FLOAT_EQ(o->early_stopping_tolerance, 0.001f);
  EXPECT_EQ(o->selection, SelectionCriterion::kAccuracy);
  EXPECT_TRUE(o->use_bias);
  EXPECT_TRUE(o->normalize_data);
  EXPECT_FALSE(o->normalize_label);
  EXPECT_EQ(o->num_point_for_scaler, 10000u);
  EXPECT_FALSE(o->learning_rate.has_value());
  EXPECT_FALSE(o->num_models.has_value());
  EXPECT_FLOAT_EQ(o->positive_example_weight_mult, 1.0f);
  EXPECT_FLOAT_EQ(o->init_scale, 0.07f);

  auto r = OptionsFrom({{"predictor_type", "regressor"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->loss, Loss::kSquared);
  EXPECT_TRUE(r->normalize_label);
  EXPECT_EQ(r->num_classes, 1);
}

TEST(LinearLearnerHyperparameters, EveryDocumentedNameIsAccepted) {
  // The SageMaker SDK's LinearLearner estimator sends these (values as strings, bools as
  // "True"/"False").
  auto o = OptionsFrom({{"predictor_type", "multiclass_classifier"},
                        {"num_classes", "4"},
                        {"feature_dim", "10"},
                        {"mini_batch_size", "50"},
                        {"epochs", "3.0"},
                        {"learning_rate", "0.02"},
                        {"optimizer", "sgd"},
                        {"momentum", "0.5"},
                        {"loss", "softmax_loss"},
                        {"wd", "0.001"},
                        {"l1", "auto"},
                        {"use_bias", "True"},
                        {"normalize_data", "False"},
                        {"num_models", "3"},
                        {"accuracy_top_k", "2"},
                        {"balance_multiclass_weights", "true"},
                        {"beta_1", "auto"},
                        {"beta_2", "0.99"},
                        {"bias_lr_mult", "2"},
                        {"bias_wd_mult", "auto"},
                        {"early_stopping_patience", "5"},
                        {"early_stopping_tolerance", "0.01"},
                        {"f_beta", "2"},
                        {"huber_delta", "1"},
                        {"init_bias", "0.1"},
                        {"init_method", "normal"},
                        {"init_scale", "0.1"},
                        {"init_sigma", "0.02"},
                        {"loss_insensitivity", "0.1"},
                        {"lr_scheduler_factor", "0.9"},
                        {"lr_scheduler_minimum_lr", "0.0001"},
                        {"lr_scheduler_step", "10"},
                        {"margin", "1.5"},
                        {"normalize_label", "auto"},
                        {"num_calibration_samples", "500"},
                        {"num_point_for_scaler", "100"},
                        {"positive_example_weight_mult", "balanced"},
                        {"quantile", "0.3"},
                        {"target_precision", "0.9"},
                        {"target_recall", "0.7"},
                        {"unbias_data", "auto"},
                        {"unbias_label", "false"},
                        {"use_lr_scheduler", "true"},
                        {"binary_classifier_model_selection_criteria", "f1"},
                        {"_tuning_objective_metric", "validation:multiclass_accuracy"}});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->num_classes, 4);
  EXPECT_EQ(o->optimizer, Optimizer::kSgd);
  EXPECT_FLOAT_EQ(*o->momentum, 0.5f);
  EXPECT_EQ(o->epochs, 3);
  EXPECT_EQ(*o->feature_dim, 10u);
  EXPECT_EQ(*o->num_models, 3);
  EXPECT_FALSE(o->normalize_data);
  EXPECT_TRUE(o->init_normal);
  EXPECT_FLOAT_EQ(o->beta_2, 0.99f);
  EXPECT_EQ(o->selection, SelectionCriterion::kFBeta);
  EXPECT_FLOAT_EQ(o->f_beta, 1.0f);  // "f1"
  EXPECT_EQ(o->positive_weight, PositiveWeight::kBalanced);
  EXPECT_EQ(*o->lr_scheduler_step, 10);
}

TEST(LinearLearnerHyperparameters, BadValuesFailNamingTheHyperparameter) {
  auto missing = OptionsFrom({});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("predictor_type"), std::string::npos);

  auto no_classes = OptionsFrom({{"predictor_type", "multiclass_classifier"}});
  ASSERT_FALSE(no_classes.ok());
  EXPECT_NE(no_classes.status().message().find("num_classes"), std::string::npos);

  auto two_classes = OptionsFrom({{"predictor_type", "multiclass_classifier"}, {"num_classes", "2"}});
  ASSERT_FALSE(two_classes.ok());
  EXPECT_NE(two_classes.status().message().find("num_classes"), std::string::npos);

  auto wrong_loss = OptionsFrom({{"predictor_type", "binary_classifier"}, {"loss", "squared_loss"}});
  ASSERT_FALSE(wrong_loss.ok());
  EXPECT_NE(wrong_loss.status().message().find("'loss'"), std::string::npos);
  EXPECT_NE(wrong_loss.status().message().find("squared_loss"), std::string::npos);

  auto epochs = OptionsFrom({{"predictor_type", "regressor"}, {"epochs", "zero"}});
  ASSERT_FALSE(epochs.ok());
  EXPECT_NE(epochs.status().message().find("'epochs'"), std::string::npos);

  auto weight = OptionsFrom({{"predictor_type", "binary_classifier"},
                             {"positive_example_weight_mult", "heavy"}});
  ASSERT_FALSE(weight.ok());
  EXPECT_NE(weight.status().message().find("positive_example_weight_mult"), std::string::npos);

  auto beta = OptionsFrom({{"predictor_type", "binary_classifier"}, {"beta_1", "1"}});
  ASSERT_FALSE(beta.ok());
  EXPECT_NE(beta.status().message().find("beta_1"), std::string::npos);

  auto unknown = OptionsFrom({{"predictor_type", "binary_classifier"}, {"learningrate", "0.1"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("learningrate"), std::string::npos);
}

// ---------------------------------------------------------------------------------------
// Kernels and metrics

TEST(LinearLearnerKernels, DenseProductsMatchTheNaiveSums) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> uniform(-1, 1);
  for (std::size_t dim : {1u, 7u, 8u, 13u, 100u}) {
    for (int columns = 1; columns <= kMaxForwardColumns; ++columns) {
      const std::size_t n = 11;
      std::vector<float> x(n * dim), wt(columns * dim), g(n * columns);
      for (float& v : x) v = uniform(rng);
      for (float& v : wt) v = uniform(rng);
      for (float& v : g) v = uniform(rng);
      g[3] = 0;  // a row with a zero gradient in one column only
      std::vector<float> z(n * columns), pt(columns * dim, 42.0f);
      DenseForward(x.data(), n, dim, wt.data(), columns, z.data(), n);
      if (columns <= kMaxBackwardColumns) {
        DenseBackward(x.data(), n, dim, g.data(), n, columns, pt.data());
      }
      for (int j = 0; j < columns; ++j) {
        for (std::size_t r = 0; r < n; ++r) {
          double expected = 0;
          for (std::size_t d = 0; d < dim; ++d) expected += double(x[r * dim + d]) * wt[j * dim + d];
          EXPECT_NEAR(z[j * n + r], expected, 1e-4) << "dim " << dim << " columns " << columns;
        }
        for (std::size_t d = 0; d < dim && columns <= kMaxBackwardColumns; ++d) {
          double expected = 0;
          for (std::size_t r = 0; r < n; ++r) expected += double(g[j * n + r]) * x[r * dim + d];
          EXPECT_NEAR(pt[j * dim + d], expected, 1e-4) << "dim " << dim << " columns " << columns;
        }
      }
    }
  }
}

TEST(LinearLearnerMetrics, RocAucCountsOrderedPairs) {
  EXPECT_DOUBLE_EQ(RocAuc(std::vector<float>{0.1f, 0.4f, 0.35f, 0.8f},
                          std::vector<float>{0, 0, 1, 1}),
                   0.75);
  EXPECT_DOUBLE_EQ(RocAuc(std::vector<float>{0.5f, 0.5f}, std::vector<float>{0, 1}), 0.5);
  EXPECT_DOUBLE_EQ(RocAuc(std::vector<float>{0.2f, 0.9f}, std::vector<float>{1, 1}), 0.5);
}

TEST(LinearLearnerMetrics, ThresholdSearchMaximisesTheCriterion) {
  // Positives score high except one; the best accuracy threshold lies between 0.3 and 0.6.
  const std::vector<float> scores{0.1f, 0.2f, 0.3f, 0.6f, 0.7f, 0.8f, 0.9f, 0.25f};
  const std::vector<float> labels{0, 0, 0, 1, 1, 1, 1, 1};
  ThresholdChoice accuracy = TuneThreshold(scores, labels, SelectionCriterion::kAccuracy, 1, 0.8f,
                                           0.8f, 0.5f);
  EXPECT_NEAR(accuracy.value, 7.0 / 8, 1e-12);
  EXPECT_GT(accuracy.threshold, 0.3f);
  EXPECT_LT(accuracy.threshold, 0.6f);

  // Recall 1 needs the threshold under 0.25, at precision 5/6.
  ThresholdChoice precision = TuneThreshold(scores, labels,
                                            SelectionCriterion::kPrecisionAtTargetRecall, 1,
                                            1.0f, 0.8f, 0.5f);
  EXPECT_NEAR(precision.value, 5.0 / 6, 1e-12);
  EXPECT_LT(precision.threshold, 0.25f);
  EXPECT_GE(precision.threshold, 0.2f);

  // Precision 1 holds down to 0.6: recall 4/5.
  ThresholdChoice recall = TuneThreshold(scores, labels,
                                         SelectionCriterion::kRecallAtTargetPrecision, 1, 0.8f,
                                         1.0f, 0.5f);
  EXPECT_NEAR(recall.value, 4.0 / 5, 1e-12);
  EXPECT_LT(recall.threshold, 0.6f);
  EXPECT_GE(recall.threshold, 0.3f);
}

TEST(LinearLearnerMetrics, ThresholdSearchMatchesBruteForceOnNoisyScores) {
  std::mt19937_64 rng(21);
  std::normal_distribution<float> normal;
  std::vector<float> scores(5000), labels(5000);
  for (std::size_t i = 0; i < scores.size(); ++i) {
    labels[i] = i % 3 == 0 ? 1.0f : 0.0f;
    scores[i] = 1 / (1 + std::exp(-(2 * labels[i] - 1.3f + normal(rng))));
  }
  auto accuracy_at = [&](float t) {
    double correct = 0;
    for (std::size_t i = 0; i < scores.size(); ++i) correct += (scores[i] > t) == (labels[i] > 0.5f);
    return correct / scores.size();
  };
  double exact = accuracy_at(2.0f);
  for (float t : scores) exact = std::max(exact, accuracy_at(t));
  ThresholdChoice choice =
      TuneThreshold(scores, labels, SelectionCriterion::kAccuracy, 1, 0.8f, 0.8f, 0.5f);
  EXPECT_NEAR(choice.value, exact, 2.0 / scores.size());
  EXPECT_NEAR(accuracy_at(choice.threshold), choice.value, 1.0 / scores.size());
}

TEST(LinearLearnerMetrics, RegressionAndMulticlassMetrics) {
  Options regression = BaseOptions(PredictorType::kRegressor);
  MetricAccumulator acc(regression, LossParamsFrom(regression));
  const std::vector<float> z{1, 2, 3.5f, 3.5f}, y{1, 2, 4, 3};
  acc.Add(z.data(), y.data(), 4);
  std::map<std::string, double> m;
  for (const auto& [k, v] : acc.Metrics(0.5f)) m[k] = v;
  EXPECT_DOUBLE_EQ(m["mse"], 0.5 / 4);
  EXPECT_DOUBLE_EQ(m["rmse"], std::sqrt(0.5 / 4));
  EXPECT_DOUBLE_EQ(m["absolute_loss"], 1.0 / 4);
  EXPECT_DOUBLE_EQ(m["objective_loss"], 0.5 / 4);
  EXPECT_NEAR(m["r2"], 1 - 0.5 / 5, 1e-12);  // sum of squares about the mean 2.5: 5

  Options multiclass = BaseOptions(PredictorType::kMulticlassClassifier);
  multiclass.num_classes = 3;
  multiclass.loss = Loss::kSoftmax;
  multiclass.accuracy_top_k = 2;
  LossParams params = LossParamsFrom(multiclass);
  MetricAccumulator mc(multiclass, params);
  // Rows: truth 0 ranked 1st, truth 1 ranked 2nd, truth 2 ranked 3rd.
  const std::vector<float> zm{3, 1, 0, /**/ 2, 1, 0, /**/ 0, 2, -1};
  const std::vector<float> ym{0, 1, 2};
  mc.Add(zm.data(), ym.data(), 3);
  m.clear();
  for (const auto& [k, v] : mc.Metrics(0.5f)) m[k] = v;
  EXPECT_DOUBLE_EQ(m["multiclass_accuracy"], 1.0 / 3);
  EXPECT_DOUBLE_EQ(m["multiclass_top_k_accuracy"], 2.0 / 3);
  EXPECT_NEAR(m["dcg"], (1 + 1 / std::log2(3.0) + 0.5) / 3, 1e-12);
  // Predicted 0, 0, 1: class 0 precision 1/2 recall 1; class 1 precision 0; class 2 recall 0.
  EXPECT_NEAR(m["macro_precision"], (0.5 + 0 + 0) / 3, 1e-12);
  EXPECT_NEAR(m["macro_recall"], (1 + 0 + 0) / 3.0, 1e-12);
  const double softmax_loss =
      (std::log(std::exp(3.0) + std::exp(1.0) + 1) - 3 + std::log(std::exp(2.0) + std::exp(1.0) + 1) - 1 +
       std::log(1 + std::exp(2.0) + std::exp(-1.0)) + 1) / 3;
  EXPECT_NEAR(m["objective_loss"], softmax_loss, 1e-6);
}

// ---------------------------------------------------------------------------------------
// Training

TEST(LinearLearnerTraining, BinaryClassifierApproachesTheBayesAccuracy) {
  const std::size_t dim = 10;
  const std::vector<float> w = TrueWeights(dim);
  Dataset data = MakeDataset(20000, 20000, dim, 200, [&](const std::vector<float>& x, float noise) {
    return Dot(x, w) + 0.5f * noise > 0 ? 1.0f : 0.0f;
  });
  double bayes = 0;  // the true direction's accuracy on the test rows
  for (std::size_t r = 0; r < data.test.rows; ++r) {
    std::vector<float> x(data.test.row(r), data.test.row(r) + dim);
    bayes += (Dot(x, w) > 0) == (data.test.labels[r] == 1.0f);
  }
  bayes /= data.test.rows;
  Trained t = Train(BaseOptions(PredictorType::kBinaryClassifier), data.batches);
  const double accuracy = Accuracy(t.fit.model, data.test);
  EXPECT_GT(accuracy, bayes - 0.006) << "bayes " << bayes;
  // The learnt direction is the true one.
  std::vector<float> learnt(t.fit.model.weights());
  EXPECT_GT(Dot(learnt, w) / std::sqrt(Dot(learnt, learnt) * Dot(w, w)), 0.995);
}

TEST(LinearLearnerTraining, NormalisationFoldsIntoRawFeatureWeights) {
  // Features with a large offset and scale: the model matches the one trained on the unscaled
  // rows, and its exported weights apply to the raw rows.
  const std::size_t dim = 5;
  const std::vector<float> w = TrueWeights(dim);
  auto label = [&](const std::vector<float>& x, float noise) {
    return Dot(x, w) + 0.3f * noise > 0 ? 1.0f : 0.0f;
  };
  Dataset shifted = MakeDataset(20000, 5000, dim, 200, label, 1000.0f, 5000.0f);
  Dataset plain = MakeDataset(20000, 5000, dim, 200, label);  // the same rows, unscaled
  Options options = BaseOptions(PredictorType::kBinaryClassifier);
  Trained t = Train(options, shifted.batches);
  EXPECT_NEAR(t.stats.mean[0], 5000.0f, 50.0f);
  EXPECT_NEAR(1.0f / t.stats.scale[0], 1000.0f, 50.0f);
  Trained reference = Train(options, plain.batches);
  const double accuracy = Accuracy(t.fit.model, shifted.test);
  EXPECT_NEAR(accuracy, Accuracy(reference.fit.model, plain.test), 0.005);
  std::vector<float> scaled(t.fit.model.weights()), ref(reference.fit.model.weights());
  EXPECT_GT(Dot(scaled, ref) / std::sqrt(Dot(scaled, scaled) * Dot(ref, ref)), 0.999);
  // x = 1000 u + 5000: w_raw = w_u / 1000 and the bias absorbs -5000 * sum(w_raw).
  const float sum_raw = std::accumulate(scaled.begin(), scaled.end(), 0.0f);
  EXPECT_NEAR(t.fit.model.bias()[0] + 5000 * sum_raw, reference.fit.model.bias()[0], 0.2);
}

TEST(LinearLearnerTraining, RegressorRecoversTheWeights) {
  const std::size_t dim = 8;
  const std::vector<float> w = TrueWeights(dim);
  // Labels far from zero and wide: label normalisation and unbiasing have work to do.
  Dataset data = MakeDataset(30000, 5000, dim, 100, [&](const std::vector<float>& x, float noise) {
    return 100.0f + 10.0f * Dot(x, w) + noise;
  });
  Options options = BaseOptions(PredictorType::kRegressor);
  Trained t = Train(options, data.batches);
  EXPECT_NEAR(t.stats.label_mean, 100.0f, 2.0f);
  for (std::size_t d = 0; d < dim; ++d) EXPECT_NEAR(t.fit.model.weights()[d], 10 * w[d], 0.1) << d;
  EXPECT_NEAR(t.fit.model.bias()[0], 100.0f, 0.1);
  EXPECT_LT(Rmse(t.fit.model, data.test), 1.03);  // the noise is N(0, 1)

  auto predictions = t.fit.model.Predict(data.test);
  ASSERT_TRUE(predictions.ok());
  ASSERT_EQ(predictions->columns.size(), 1u);
  EXPECT_EQ(predictions->columns[0].name, "score");
}

TEST(LinearLearnerTraining, RobustRegressionLosses) {
  const std::size_t dim = 4;
  const std::vector<float> w = TrueWeights(dim);
  Dataset data = MakeDataset(20000, 5000, dim, 100, [&](const std::vector<float>& x, float noise) {
    return Dot(x, w) + noise;
  });
  for (Loss loss : {Loss::kAbsolute, Loss::kHuber, Loss::kEpsInsensitiveAbsolute,
                    Loss::kEpsInsensitiveSquared}) {
    Options options = BaseOptions(PredictorType::kRegressor);
    options.loss = loss;
    Trained t = Train(options, data.batches);
    EXPECT_LT(Rmse(t.fit.model, data.test), 1.05) << LossName(loss);
  }
  // quantile_loss at q = 0.9: about 90 % of the labels lie below the prediction.
  Options options = BaseOptions(PredictorType::kRegressor);
  options.loss = Loss::kQuantile;
  options.quantile = 0.9f;
  Trained t = Train(options, data.batches);
  auto predictions = t.fit.model.Predict(data.test);
  double below = 0;
  for (std::size_t r = 0; r < data.test.rows; ++r) {
    below += data.test.labels[r] < predictions->columns[0].values[r];
  }
  EXPECT_NEAR(below / data.test.rows, 0.9, 0.02);
}

TEST(LinearLearnerTraining, MulticlassSoftmaxSeparatesClasses) {
  const std::size_t dim = 6;
  // Class k lives around the centre 3 e_k.
  Dataset data = MakeDataset(15000, 3000, dim, 100, [](const std::vector<float>& x, float noise) {
    float best = -1e9f;
    int label = 0;
    for (int k = 0; k < 3; ++k) {
      const float score = x[k] + 0.3f * noise * (k == 1);
      if (score > best) best = score, label = k;
    }
    return static_cast<float>(label);
  });
  Options options = BaseOptions(PredictorType::kMulticlassClassifier);
  options.num_classes = 3;
  options.loss = Loss::kSoftmax;
  Trained t = Train(options, data.batches);
  EXPECT_GT(Accuracy(t.fit.model, data.test), 0.93);

  auto predictions = t.fit.model.Predict(data.test);
  ASSERT_TRUE(predictions.ok());
  const data::PredictionColumn& score = predictions->columns[0];
  EXPECT_EQ(score.width, 3u);
  EXPECT_TRUE(score.always_vector);
  EXPECT_NEAR(score.values[0] + score.values[1] + score.values[2], 1.0f, 1e-5);
  EXPECT_TRUE(predictions->columns[1].integral);

  // One-vs-all logistic trains the same problem.
  options.loss = Loss::kLogistic;
  Trained ova = Train(options, data.batches);
  EXPECT_GT(Accuracy(ova.fit.model, data.test), 0.9);
}

TEST(LinearLearnerTraining, SparseBatchesTrainLikeDenseOnes) {
  const std::size_t dim = 30;
  const std::vector<float> w = TrueWeights(dim);
  std::mt19937_64 rng(9);
  std::bernoulli_distribution keep(0.2);
  Dataset data = MakeDataset(20000, 5000, dim, 200, [&](const std::vector<float>& x, float noise) {
    return Dot(x, w) + 0.3f * noise > 0 ? 1.0f : 0.0f;
  });
  // Make the rows sparse (80 % zeros) and relabel consistently.
  auto sparsify = [&](data::Batch& b) {
    for (std::size_t r = 0; r < b.rows; ++r) {
      float* x = b.dense.data() + r * dim;
      for (std::size_t d = 0; d < dim; ++d) x[d] = keep(rng) ? x[d] : 0.0f;
      b.labels[r] = Dot(std::vector<float>(x, x + dim), w) > 0 ? 1.0f : 0.0f;
    }
  };
  for (auto& b : data.batches) sparsify(b);
  sparsify(data.test);
  std::vector<data::Batch> sparse;
  for (const auto& b : data.batches) sparse.push_back(ToSparse(b));

  Options options = BaseOptions(PredictorType::kBinaryClassifier);
  Trained dense_model = Train(options, data.batches);
  Trained sparse_model = Train(options, sparse);
  EXPECT_TRUE(sparse_model.summary.sparse);
  EXPECT_EQ(sparse_model.stats.mean[0], 0.0f);  // sparse data are never shifted
  const double dense_accuracy = Accuracy(dense_model.fit.model, data.test);
  const double sparse_accuracy = Accuracy(sparse_model.fit.model, ToSparse(data.test));
  EXPECT_GT(sparse_accuracy, 0.95);
  EXPECT_NEAR(sparse_accuracy, dense_accuracy, 0.01);
}

TEST(LinearLearnerTraining, HingeLossClassifies) {
  const std::size_t dim = 5;
  const std::vector<float> w = TrueWeights(dim);
  Dataset data = MakeDataset(10000, 5000, dim, 100, [&](const std::vector<float>& x, float noise) {
    return Dot(x, w) + 0.2f * noise > 0 ? 1.0f : 0.0f;
  });
  Options options = BaseOptions(PredictorType::kBinaryClassifier);
  options.loss = Loss::kHinge;
  Trained t = Train(options, data.batches);
  EXPECT_GT(Accuracy(t.fit.model, data.test), 0.95);
}

TEST(LinearLearnerTraining, EveryOptimizerTrains) {
  const std::size_t dim = 8;
  const std::vector<float> w = TrueWeights(dim);
  Dataset data = MakeDataset(10000, 5000, dim, 100, [&](const std::vector<float>& x, float noise) {
    return Dot(x, w) + 0.3f * noise > 0 ? 1.0f : 0.0f;
  });
  for (Optimizer optimizer : {Optimizer::kSgd, Optimizer::kAdam, Optimizer::kRmsprop}) {
    Options options = BaseOptions(PredictorType::kBinaryClassifier);
    options.optimizer = optimizer;
    Trained t = Train(options, data.batches);
    EXPECT_GT(Accuracy(t.fit.model, data.test), 0.95) << static_cast<int>(optimizer);
  }
}

TEST(LinearLearnerTraining, EarlyStoppingEndsAfterPatienceEpochsWithoutImprovement) {
  const std::size_t dim = 5;
  const std::vector<float> w = TrueWeights(dim);
  Dataset data = MakeDataset(5000, 100, dim, 100, [&](const std::vector<float>& x, float noise) {
    return Dot(x, w) + noise > 0 ? 1.0f : 0.0f;
  });
  Options options = BaseOptions(PredictorType::kBinaryClassifier);
  options.epochs = 30;
  options.early_stopping_patience = 2;
  options.early_stopping_tolerance = 0.5f;  // only a halving of the loss counts
  Trained t = Train(options, data.batches);
  // Epoch 0 sets the best; epochs 1 and 2 cannot halve it.
  EXPECT_EQ(t.fit.epochs_run, 3);

  options.early_stopping_patience = 31;  // more than epochs: early stopping is off
  options.epochs = 6;
  Trained all = Train(options, data.batches);
  EXPECT_EQ(all.fit.epochs_run, 6);
  ASSERT_EQ(all.fit.train_loss.size(), 6u);
  EXPECT_LT(all.fit.train_loss.back()[0], all.fit.train_loss.front()[0]);
}

TEST(LinearLearnerTraining, ValidationLossDrivesEarlyStoppingAndSelection) {
  const std::size_t dim = 10;
  const std::vector<float> w = TrueWeights(dim);
  auto label = [&](const std::vector<float>& x, float noise) {
    return Dot(x, w) + 2.0f * noise > 0 ? 1.0f : 0.0f;
  };
  Dataset data = MakeDataset(4000, 4000, dim, 100, label);
  Dataset validation = MakeDataset(4000, 1, dim, 500, label, 1.0f, 0.0f, /*seed=*/77);
  Options options = BaseOptions(PredictorType::kBinaryClassifier);
  options.num_models = 4;
  options.selection = SelectionCriterion::kLossFunction;
  Trained t = Train(options, data.batches, &validation.batches);
  ASSERT_EQ(t.fit.validation_loss.size(), static_cast<std::size_t>(t.fit.epochs_run));
  // The selected model has the lowest validation loss of any model at its best epoch.
  std::vector<double> best(4, 1e9);
  for (const auto& epoch : t.fit.validation_loss) {
    for (int m = 0; m < 4; ++m) best[m] = std::min(best[m], epoch[m]);
  }
  const int selected = t.fit.selected_model;
  for (int m = 0; m < 4; ++m) EXPECT_LE(best[selected], best[m] + 1e-9) << m;
  EXPECT_NEAR(-t.fit.selection_value, best[selected], 1e-6);
}

TEST(LinearLearnerTraining, ThresholdMeetsTargetRecall) {
  const std::size_t dim = 6;
  const std::vector<float> w = TrueWeights(dim);
  Dataset data = MakeDataset(10000, 10000, dim, 100, [&](const std::vector<float>& x, float noise) {
    return Dot(x, w) + 2.0f * noise > 1.5f ? 1.0f : 0.0f;  // noisy, 1 in ~3 positive
  });
  Options options = BaseOptions(PredictorType::kBinaryClassifier);
  options.selection = SelectionCriterion::kPrecisionAtTargetRecall;
  options.target_recall = 0.9f;
  Trained t = Train(options, data.batches);
  auto predictions = t.fit.model.Predict(data.test);
  double tp = 0, positives = 0;
  for (std::size_t r = 0; r < data.test.rows; ++r) {
    positives += data.test.labels[r];
    tp += data.test.labels[r] * predictions->columns[1].values[r];
  }
  EXPECT_GT(tp / positives, 0.87);
  EXPECT_LT(t.fit.model.threshold(), 0.5f);  // recall 0.9 of a noisy problem needs a low bar
}

TEST(LinearLearnerTraining, BalancedPositiveWeightRaisesMinorityRecall) {
  const std::size_t dim = 6;
  const std::vector<float> w = TrueWeights(dim);
  Dataset data = MakeDataset(10000, 10000, dim, 100, [&](const std::vector<float>& x, float noise) {
    return Dot(x, w) + 2.0f * noise > 4.0f ? 1.0f : 0.0f;  // rare positives
  });
  Options options = BaseOptions(PredictorType::kBinaryClassifier);
  options.selection = SelectionCriterion::kLossFunction;  // keep the 0.5 threshold
  auto recall = [&](const LinearModel& model) {
    auto predictions = model.Predict(data.test);
    double tp = 0, positives = 0;
    for (std::size_t r = 0; r < data.test.rows; ++r) {
      positives += data.test.labels[r];
      tp += data.test.labels[r] * predictions->columns[1].values[r];
    }
    return tp / positives;
  };
  Trained plain = Train(options, data.batches);
  options.positive_weight = PositiveWeight::kBalanced;
  Trained balanced = Train(options, data.batches);
  EXPECT_GT(balanced.fit.model.training_info().at("positive_example_weight_mult"), 2.0);
  EXPECT_GT(recall(balanced.fit.model), recall(plain.fit.model) + 0.2);
}

TEST(LinearLearnerTraining, L1ZeroesIrrelevantFeatures) {
  const std::size_t dim = 20;
  Dataset data = MakeDataset(20000, 10, dim, 100, [](const std::vector<float>& x, float noise) {
    return 2 * x[0] - x[1] + 0.1f * noise;  // only features 0 and 1 matter
  });
  Options options = BaseOptions(PredictorType::kRegressor);
  options.l1 = 0.01f;
  options.wd = 0.0f;
  Trained t = Train(options, data.batches);
  int zeros = 0;
  for (std::size_t d = 2; d < dim; ++d) zeros += t.fit.model.weights()[d] == 0.0f;
  EXPECT_GE(zeros, 15);
  EXPECT_NEAR(t.fit.model.weights()[0], 2.0f, 0.1f);
}

TEST(LinearLearnerTraining, ResultDoesNotDependOnTheThreadCount) {
  const std::size_t dim = 15;  // 8 + 4 + a scalar tail of 3 in the kernels
  const std::vector<float> w = TrueWeights(dim);
  // 100 batches an epoch: runs of both teams (one thread, all threads) within each epoch.
  Dataset data = MakeDataset(5000, 10, dim, 50, [&](const std::vector<float>& x, float noise) {
    return Dot(x, w) + noise > 0 ? 1.0f : 0.0f;
  });
  Options options = BaseOptions(PredictorType::kBinaryClassifier);
  options.num_models = 3;  // 1 + 2 models per thread: kernels of different widths
  options.epochs = 3;
  options.threads = 1;
  Trained one = Train(options, data.batches);
  options.threads = 2;
  Trained two = Train(options, data.batches);
  EXPECT_EQ(one.fit.model.weights(), two.fit.model.weights());
  EXPECT_EQ(one.fit.train_loss, two.fit.train_loss);
}

// ---------------------------------------------------------------------------------------
// Data checks

TEST(LinearLearnerData, BinaryLabelsMustBeZeroOrOne) {
  DataScanner scanner(BaseOptions(PredictorType::kBinaryClassifier));
  data::Batch b = DenseBatch({1, 2, 3, 4, 5, 6}, {0, 1, 2}, 2, 0, 3);
  Status s = scanner.Add(b);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("row 3"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("0 or 1"), std::string::npos) << s.message();
}

TEST(LinearLearnerData, MulticlassLabelsMustBeBelowNumClasses) {
  Options options = BaseOptions(PredictorType::kMulticlassClassifier);
  options.num_classes = 3;
  options.loss = Loss::kSoftmax;
  DataScanner scanner(options);
  EXPECT_TRUE(scanner.Add(DenseBatch({1, 2}, {2}, 2, 0, 1)).ok());
  Status s = scanner.Add(DenseBatch({1, 2}, {3}, 2, 0, 1));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("row 2"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("num_classes"), std::string::npos) << s.message();
  EXPECT_FALSE(scanner.Add(DenseBatch({1, 2}, {0.5f}, 2, 0, 1)).ok());
}

TEST(LinearLearnerData, UnlabelledRowsNonFiniteValuesAndWidthChangesFail) {
  DataScanner scanner(BaseOptions(PredictorType::kRegressor));
  EXPECT_FALSE(scanner.Add(DenseBatch({1, 2}, {}, 2, 0, 1)).ok());
  EXPECT_FALSE(scanner.Add(DenseBatch({1, NAN}, {1}, 2, 0, 1)).ok());
  EXPECT_TRUE(scanner.Add(DenseBatch({1, 2}, {1}, 2, 0, 1)).ok());
  Status width = scanner.Add(DenseBatch({1, 2, 3}, {1}, 3, 0, 1));
  ASSERT_FALSE(width.ok());
  EXPECT_NE(width.message().find("3 features"), std::string::npos) << width.message();

  Options options = BaseOptions(PredictorType::kRegressor);
  options.feature_dim = 4;
  DataScanner declared(options);
  EXPECT_TRUE(declared.Add(DenseBatch({1, 2}, {1}, 2, 0, 1)).ok());
  auto summary = declared.Summary();
  ASSERT_FALSE(summary.ok());
  EXPECT_NE(summary.status().message().find("feature_dim"), std::string::npos);
  EXPECT_FALSE(DataScanner(options).Summary().ok());  // no rows at all
}

TEST(LinearLearnerData, ValidationRowsOfAnotherWidthFailNamingTheChannel) {
  Options options = BaseOptions(PredictorType::kBinaryClassifier);
  options.epochs = 1;
  std::vector<data::Batch> train{DenseBatch({1, 2, 3, 4}, {0, 1}, 2, 0, 2)};
  std::vector<data::Batch> validation{DenseBatch({1, 2, 3}, {0}, 3, 0, 1)};
  DataScanner scanner(options);
  ASSERT_TRUE(scanner.Add(train[0]).ok());
  InMemorySource t(train), v(validation);
  auto fit = Fit(options, *scanner.Summary(), scanner.Stats(), t, &v);
  ASSERT_FALSE(fit.ok());
  EXPECT_NE(fit.status().message().find("validation"), std::string::npos) << fit.status().message();
  EXPECT_NE(fit.status().message().find("expected 2"), std::string::npos) << fit.status().message();
}

// ---------------------------------------------------------------------------------------
// The model

LinearModel SmallBinaryModel() {
  LinearModel model(PredictorType::kBinaryClassifier, Loss::kLogistic, 3, 1);
  model.weights() = {1.0f, -2.0f, 0.5f};
  model.bias() = {0.25f};
  model.set_threshold(0.6f);
  model.training_info()["learning_rate"] = 0.01;
  return model;
}

TEST(LinearLearnerModel, PredictGivesSageMakersShapes) {
  LinearModel model = SmallBinaryModel();
  data::Batch rows = DenseBatch({1, 1, 1, 2, 0, 0}, {}, 3, 0, 2);
  auto p = model.Predict(rows);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->columns.size(), 2u);
  EXPECT_EQ(p->columns[0].name, "score");
  EXPECT_EQ(p->columns[1].name, "predicted_label");
  EXPECT_TRUE(p->columns[1].integral);
  EXPECT_FALSE(p->columns[0].always_vector);
  const float z0 = 1 - 2 + 0.5f + 0.25f, z1 = 2 + 0.25f;
  EXPECT_NEAR(p->columns[0].values[0], 1 / (1 + std::exp(-z0)), 1e-6);
  EXPECT_NEAR(p->columns[0].values[1], 1 / (1 + std::exp(-z1)), 1e-6);
  EXPECT_EQ(p->columns[1].values[0], 0.0f);  // 0.44 < threshold 0.6
  EXPECT_EQ(p->columns[1].values[1], 1.0f);

  // The same rows as CSR.
  auto sparse = model.Predict(ToSparse(rows));
  ASSERT_TRUE(sparse.ok());
  EXPECT_EQ(sparse->columns[0].values, p->columns[0].values);
}

TEST(LinearLearnerModel, WrongFeatureCountIsInvalidArgumentNamingBoth) {
  LinearModel model = SmallBinaryModel();
  auto p = model.Predict(DenseBatch({1, 2}, {}, 2, 0, 1));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("expected 3"), std::string::npos) << p.status().message();
  EXPECT_NE(p.status().message().find("got 2"), std::string::npos) << p.status().message();

  data::Batch sparse = ToSparse(DenseBatch({0, 0, 0, 1}, {}, 4, 0, 1));
  auto q = model.Predict(sparse);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(q.status().message().find("expected 3"), std::string::npos) << q.status().message();
}

TEST(LinearLearnerModel, SerializationRoundTripsExactly) {
  LinearModel model = SmallBinaryModel();
  model.weights()[1] = 0.1f + 1e-7f;  // needs every digit
  auto back = LinearModel::FromJson(model.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->weights(), model.weights());
  EXPECT_EQ(back->bias(), model.bias());
  EXPECT_EQ(back->threshold(), model.threshold());
  EXPECT_EQ(back->predictor_type(), model.predictor_type());
  EXPECT_EQ(back->loss(), model.loss());
  EXPECT_EQ(back->training_info(), model.training_info());

  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("ll-model-" + std::to_string(getpid()));
  ASSERT_TRUE(model.Save(dir).ok());
  auto loaded = LinearLearnerAlgorithm().LoadModel(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->feature_dim(), 3u);
  data::Batch rows = DenseBatch({1, 1, 1}, {}, 3, 0, 1);
  EXPECT_EQ((*loaded)->Predict(rows)->columns[0].values, model.Predict(rows)->columns[0].values);
  std::filesystem::remove_all(dir);

  EXPECT_FALSE(LinearModel::FromJson("{").ok());
  EXPECT_FALSE(LinearModel::FromJson(R"({"format":"other","version":1})").ok());
  auto short_weights = LinearModel::FromJson(
      R"({"format":"hearth-linear-learner","version":1,"predictor_type":"regressor",)"
      R"("loss":"squared_loss","feature_dim":3,"num_outputs":1,"weights":[1,2],"bias":[0]})");
  ASSERT_FALSE(short_weights.ok());
  EXPECT_NE(short_weights.status().message().find("weights"), std::string::npos);
  EXPECT_FALSE(LinearLearnerAlgorithm().LoadModel("/nonexistent-ll-dir").ok());
}

// ---------------------------------------------------------------------------------------
// Through the training contract (TrainingContext over an /opt/ml-like directory)

class LinearLearnerJob : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("ll-job-" + std::to_string(getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ / "input" / "config");
    std::filesystem::create_directories(root_ / "model");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  void WriteFile(const std::filesystem::path& path, const std::string& text) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }

  // Channels as CSV (label first); hyperparameters as strings. Pipe mode: the channel's
  // passes are the files <channel>_0, <channel>_1, ... (plain files stand in for the FIFOs).
  Status RunJob(const std::map<std::string, std::string>& hps,
                const std::map<std::string, std::string>& channels, bool pipe = false) {
    std::string hp_json = "{", config = "{";
    for (const auto& [k, v] : hps) hp_json += (hp_json.size() > 1 ? "," : "") + ("\"" + k + "\":\"" + v + "\"");
    for (const auto& [name, csv] : channels) {
      config += (config.size() > 1 ? "," : "") +
                ("\"" + name + "\":{\"ContentType\":\"text/csv\",\"TrainingInputMode\":\"" +
                 (pipe ? "Pipe" : "File") + "\"}");
      if (!pipe) {
        WriteFile(root_ / "input" / "data" / name / "part-0.csv", csv);
        continue;
      }
      for (int pass = 0; pass < 30; ++pass) {
        WriteFile(root_ / "input" / "data" / (name + "_" + std::to_string(pass)), csv);
      }
    }
    WriteFile(root_ / "input" / "config" / "hyperparameters.json", hp_json + "}");
    WriteFile(root_ / "input" / "config" / "inputdataconfig.json", config + "}");
    ASSIGN_OR_RETURN(auto ctx, TrainingContext::LoadFrom(root_, "text/csv"));
    const Algorithm& algorithm = LinearLearnerAlgorithm();
    ASSIGN_OR_RETURN(Hyperparameters parsed,
                     Hyperparameters::Parse(algorithm.hyperparameter_specs(),
                                            ctx->raw_hyperparameters()));
    return algorithm.Train(*ctx, parsed);
  }

  std::filesystem::path root_;
};

std::string BinaryCsv(std::size_t rows, std::uint64_t seed, float flip_label_to = -1) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::string out;
  for (std::size_t r = 0; r < rows; ++r) {
    const float a = normal(rng), b = normal(rng);
    float label = a - b + 0.3f * normal(rng) > 0 ? 1.0f : 0.0f;
    if (r == rows / 2 && flip_label_to >= 0) label = flip_label_to;
    out += std::to_string(label) + "," + std::to_string(a) + "," + std::to_string(b) + "\n";
  }
  return out;
}

TEST_F(LinearLearnerJob, TrainsFromCsvChannelsAndWritesTheModel) {
  testing::internal::CaptureStdout();
  Status s = RunJob({{"predictor_type", "binary_classifier"}, {"mini_batch_size", "100"}},
                    {{"train", BinaryCsv(3000, 1)},
                     {"validation", BinaryCsv(1000, 2)},
                     {"test", BinaryCsv(1000, 3)}});
  const std::string log = testing::internal::GetCapturedStdout();
  ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << log;
  EXPECT_TRUE(std::filesystem::exists(root_ / "model" / std::string(kModelFileName)));
  for (const char* line : {"epoch=0, train objective_loss", "epoch=0, validation objective_loss",
                           "validation binary_classification_accuracy",
                           "test binary_classification_accuracy", "test roc_auc_score",
                           "#phase: fit seconds=", "passes over the training data"}) {
    EXPECT_NE(log.find(line), std::string::npos) << line << "\n" << log;
  }
  auto model = LinearLearnerAlgorithm().LoadModel(root_ / "model");
  ASSERT_TRUE(model.ok());
  EXPECT_EQ((*model)->feature_dim(), 2u);
  // Every metric line the job printed is one its MetricDefinitions match.
  const auto definitions = LinearLearnerAlgorithm().metric_definitions();
  std::size_t pos = 0;
  while ((pos = log.find("#quality_metric: host=algo-1, ", pos)) != std::string::npos) {
    std::size_t end = log.find('\n', pos);
    std::string line = log.substr(pos, end - pos);
    std::string rest = line.substr(line.find(", ") + 2);
    if (rest.starts_with("epoch=")) rest = rest.substr(rest.find(", ") + 2);
    const std::string name = rest.substr(0, rest.find(' ')) + ":" +
                             rest.substr(rest.find(' ') + 1, rest.find(" <score>") - rest.find(' ') - 1);
    bool defined = false;
    for (const auto& d : definitions) defined = defined || d.name == name;
    EXPECT_TRUE(defined) << name;
    pos = end;
  }
}

TEST_F(LinearLearnerJob, StreamsEveryPassWhenTheDataExceedTheMemoryBudget) {
  setenv("HEARTH_LINEAR_LEARNER_CACHE_BYTES", "1000", 1);
  testing::internal::CaptureStdout();
  Status s = RunJob({{"predictor_type", "binary_classifier"},
                     {"mini_batch_size", "100"},
                     {"epochs", "4"},
                     {"early_stopping_patience", "10"}},
                    {{"train", BinaryCsv(2000, 1)}, {"test", BinaryCsv(1000, 3)}},
                    /*pipe=*/true);
  const std::string log = testing::internal::GetCapturedStdout();
  unsetenv("HEARTH_LINEAR_LEARNER_CACHE_BYTES");
  ASSERT_TRUE(s.ok()) << s.ToString() << "\n" << log;
  EXPECT_NE(log.find("re-read every epoch"), std::string::npos) << log;
  EXPECT_NE(log.find("epoch=3, train objective_loss"), std::string::npos) << log;
  // a - b > 0 is easy: the streamed model learns it.
  const std::size_t at = log.find("test binary_classification_accuracy <score>=");
  ASSERT_NE(at, std::string::npos) << log;
  EXPECT_GT(std::stod(log.substr(at + 44)), 0.9) << log;
}

TEST_F(LinearLearnerJob, BadLabelFailsNamingTheChannelAndTheRule) {
  Status s = RunJob({{"predictor_type", "binary_classifier"}},
                    {{"train", BinaryCsv(100, 1, /*flip_label_to=*/3)}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("channel 'train'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("0 or 1"), std::string::npos) << s.message();
}

TEST_F(LinearLearnerJob, UnparsableRowsFailNamingTheChannel) {
  Status s = RunJob({{"predictor_type", "regressor"}},
                    {{"train", BinaryCsv(10, 1)}, {"validation", "1,2,3\n0,abc,1\n"}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("channel 'validation'"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("channel 'validation': channel"), std::string::npos) << s.message();
}

TEST_F(LinearLearnerJob, MissingTrainChannelFails) {
  Status s = RunJob({{"predictor_type", "regressor"}}, {{"validation", BinaryCsv(10, 1)}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'train' channel"), std::string::npos) << s.message();
}

TEST(LinearLearnerAlgorithm, DescribesItselfAsSageMakersLinearLearner) {
  const Algorithm& a = LinearLearnerAlgorithm();
  EXPECT_EQ(a.name(), "linear-learner");
  EXPECT_EQ(a.repositories(), std::vector<std::string>{"linear-learner"});
  std::vector<std::string> names;
  for (const auto& d : a.metric_definitions()) names.push_back(d.name);
  for (const char* expected :
       {"validation:objective_loss", "validation:binary_classification_accuracy",
        "validation:rmse", "test:mse", "test:absolute_loss", "test:binary_f_beta",
        "test:precision", "test:recall", "test:roc_auc_score", "test:multiclass_accuracy",
        "test:multiclass_top_k_accuracy", "test:macro_f_beta", "test:macro_precision",
        "test:macro_recall", "test:dcg", "train:objective_loss"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end()) << expected;
  }
}

}  // namespace
}  // namespace hearth::algorithms::linear_learner
