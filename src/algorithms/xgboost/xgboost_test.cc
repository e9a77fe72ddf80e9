#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <xgboost/c_api.h>

#include "algorithms/training_context.h"
#include "algorithms/xgboost/boosting.h"
#include "algorithms/xgboost/eval_metrics.h"
#include "algorithms/xgboost/xgboost_algorithm.h"
#include "algorithms/xgboost/xgboost_api.h"
#include "algorithms/xgboost/xgboost_model.h"
#include "algorithms/xgboost/xgboost_params.h"
#include "fmt/format.h"

namespace hearth::algorithms::xgb {
namespace {

namespace fs = std::filesystem;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ---------------------------------------------------------------------------------------
// Synthetic data

enum class Task { kBinary, kRegression, kMulticlass, kCount };

// Rows of `cols` standard-normal features, `missing` of them NaN. Labels follow a fixed
// function of the first features plus noise, so a model can learn them.
data::Batch MakeData(Task task, std::size_t rows, std::size_t cols, unsigned seed,
                     double missing = 0.1) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<double> unit;
  data::Batch b;
  b.rows = rows;
  b.cols = cols;
  b.dense.resize(rows * cols);
  b.labels.resize(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    float* x = b.dense.data() + r * cols;
    for (std::size_t c = 0; c < cols; ++c) x[c] = normal(rng);
    double signal = 1.5 * x[0] - 2.0 * x[1] + x[2] * x[3] + 0.3 * normal(rng);
    switch (task) {
      case Task::kBinary: b.labels[r] = signal > 0 ? 1.0f : 0.0f; break;
      case Task::kRegression: b.labels[r] = static_cast<float>(signal); break;
      case Task::kMulticlass: b.labels[r] = signal < -1 ? 0.0f : signal < 1 ? 1.0f : 2.0f; break;
      case Task::kCount: b.labels[r] = std::floor(std::exp(0.5 * signal)); break;
    }
    // Missing values after the label, so that the default directions get exercised.
    for (std::size_t c = 0; c < cols; ++c) {
      if (unit(rng) < missing) x[c] = kNaN;
    }
  }
  return b;
}

// The same rows as CSR, NaN entries left out (a libsvm request).
data::Batch ToSparse(const data::Batch& dense) {
  data::Batch s;
  s.sparse = true;
  s.rows = dense.rows;
  s.cols = dense.cols;
  s.row_offsets.push_back(0);
  for (std::size_t r = 0; r < dense.rows; ++r) {
    for (std::size_t c = 0; c < dense.cols; ++c) {
      float v = dense.dense[r * dense.cols + c];
      if (!std::isnan(v)) {
        s.indices.push_back(static_cast<std::uint32_t>(c));
        s.values.push_back(v);
      }
    }
    s.row_offsets.push_back(s.indices.size());
  }
  return s;
}

data::Batch WithoutLabels(data::Batch b) {
  b.labels.clear();
  return b;
}

// ---------------------------------------------------------------------------------------
// Training through the same path as the algorithm: spec table, PlanTraining, RunBoosting.

Result<TrainingPlan> Plan(std::map<std::string, std::string> raw) {
  ASSIGN_OR_RETURN(Hyperparameters hps, Hyperparameters::Parse(HyperparameterSpecs(), raw));
  return PlanTraining(hps, raw, 2);
}

struct Trained {
  std::unique_ptr<DMatrix> train, validation;
  std::unique_ptr<Booster> booster;
  BoostingResult result;
  std::vector<std::string> lines;
};

Trained Train(std::map<std::string, std::string> raw, const data::Batch& train,
              const data::Batch* validation, bool native_metrics = true) {
  Trained t;
  auto plan = Plan(raw);
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  if (!plan.ok()) return t;
  auto train_m = DMatrix::FromBatch(train, 2);
  EXPECT_TRUE(train_m.ok()) << train_m.status().ToString();
  t.train = std::make_unique<DMatrix>(std::move(*train_m));
  std::vector<const DMatrix*> cache = {t.train.get()};
  std::vector<EvalSet> evals = {{"train", t.train.get()}};
  if (validation != nullptr) {
    auto v = DMatrix::FromBatch(*validation, 2);
    EXPECT_TRUE(v.ok());
    t.validation = std::make_unique<DMatrix>(std::move(*v));
    cache.push_back(t.validation.get());
    evals.push_back({"validation", t.validation.get()});
  }
  auto booster = Booster::Create(cache);
  EXPECT_TRUE(booster.ok());
  t.booster = std::make_unique<Booster>(std::move(*booster));
  for (const auto& [k, v] : plan->booster_params) {
    Status s = t.booster->SetParam(k, v);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  BoostingOptions options{.num_round = plan->num_round,
                          .early_stopping_rounds = plan->early_stopping_rounds,
                          .custom_metrics = plan->custom_metrics,
                          .num_parallel_tree = plan->num_parallel_tree,
                          .native_metrics = native_metrics};
  auto result = RunBoosting(*t.booster, *t.train, evals, options,
                            [&](std::string_view line) { t.lines.emplace_back(line); });
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  if (result.ok()) t.result = *result;
  return t;
}

// The value of `<set>-<metric>` on an evaluation line.
double MetricOn(const std::string& line, const std::string& set, const std::string& metric) {
  auto entries = ParseEvalLine(line);
  EXPECT_TRUE(entries.ok());
  for (const EvalEntry& e : *entries) {
    if (e.set == set && e.metric == metric) return e.value;
  }
  ADD_FAILURE() << set << "-" << metric << " not on line: " << line;
  return std::nan("");
}

double Auc(const std::vector<float>& scores, const std::vector<float>& labels) {
  double pairs = 0, wins = 0;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    for (std::size_t j = 0; j < scores.size(); ++j) {
      if (labels[i] == 1 && labels[j] == 0) {
        pairs += 1;
        wins += scores[i] > scores[j] ? 1 : scores[i] == scores[j] ? 0.5 : 0;
      }
    }
  }
  return wins / pairs;
}

std::unique_ptr<XGBoostModel> Serve(const Booster& booster) {
  // Through the artifact, as serving sees it.
  fs::path dir = fs::temp_directory_path() / fmt::format("xgb-test-{}", ::getpid());
  fs::create_directories(dir);
  Status saved = booster.Save(dir / kModelFileName);
  EXPECT_TRUE(saved.ok()) << saved.ToString();
  auto model = XGBoostModel::Load(dir);
  fs::remove_all(dir);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? std::move(*model) : nullptr;
}

// Largest difference between the fast path and XGBoost's predictor, relative above 1.
double MaxDifference(const PredictionMatrix& a, const PredictionMatrix& b) {
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.values.size(), b.values.size());
  double worst = 0;
  for (std::size_t i = 0; i < std::min(a.values.size(), b.values.size()); ++i) {
    double scale = std::max(1.0, std::fabs(static_cast<double>(b.values[i])));
    worst = std::max(worst, std::fabs(static_cast<double>(a.values[i]) - b.values[i]) / scale);
  }
  return worst;
}

// ---------------------------------------------------------------------------------------
// The training loop

TEST(XGBoostTraining, PrintsOneLinePerRoundInTheContainersFormat) {
  data::Batch train = MakeData(Task::kBinary, 2000, 8, 1);
  data::Batch valid = MakeData(Task::kBinary, 500, 8, 2);
  Trained t = Train({{"num_round", "20"}, {"objective", "binary:logistic"},
                     {"eval_metric", "auc"}, {"max_depth", "3"}},
                    train, &valid);
  ASSERT_EQ(t.lines.size(), 20u);
  std::regex line(R"(^\[(\d+)\]\ttrain-auc:(\d\.\d{5})\tvalidation-auc:(\d\.\d{5})$)");
  for (std::size_t i = 0; i < t.lines.size(); ++i) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(t.lines[i], m, line)) << t.lines[i];
    EXPECT_EQ(m[1].str(), std::to_string(i));
  }
  EXPECT_GT(MetricOn(t.lines.back(), "validation", "auc"), 0.93);
  EXPECT_GE(MetricOn(t.lines.back(), "train", "auc"), MetricOn(t.lines[0], "train", "auc"));

  // The value printed is XGBoost's AUC of its own predictions.
  auto predictions = t.booster->Predict(*t.validation);
  ASSERT_TRUE(predictions.ok());
  EXPECT_NEAR(Auc(predictions->values, valid.labels),
              MetricOn(t.lines.back(), "validation", "auc"), 1e-4);
}

TEST(XGBoostTraining, MetricDefinitionsMatchTheLogLineAsThePlatformShowsIt) {
  data::Batch train = MakeData(Task::kBinary, 500, 4, 3);
  data::Batch valid = MakeData(Task::kBinary, 200, 4, 4);
  Trained t = Train({{"num_round", "3"}, {"objective", "binary:logistic"},
                     {"eval_metric", "error,logloss,accuracy"}},
                    train, &valid);
  ASSERT_EQ(t.lines.size(), 3u);
  // The log shows a tab as "#011" (CloudWatch, and Hearth's job log).
  std::string shown = std::regex_replace(t.lines.back(), std::regex("\t"), "#011");
  std::map<std::string, double> found;
  for (const MetricDefinition& d : XGBoostAlgorithm().metric_definitions()) {
    std::smatch m;
    if (std::regex_match(shown, m, std::regex(d.regex))) found[d.name] = std::stod(m[1].str());
  }
  for (const char* name : {"train:error", "train:logloss", "train:accuracy", "validation:error",
                           "validation:logloss", "validation:accuracy"}) {
    ASSERT_TRUE(found.contains(name)) << name << " not matched in " << shown;
  }
  EXPECT_FALSE(found.contains("validation:merror"));
  EXPECT_FALSE(found.contains("validation:auc"));
  EXPECT_DOUBLE_EQ(found["validation:error"], MetricOn(t.lines.back(), "validation", "error"));
  // accuracy is computed here from the same predictions XGBoost's error uses.
  EXPECT_NEAR(found["validation:accuracy"], 1.0 - found["validation:error"], 1e-5);
}

TEST(XGBoostTraining, ContainerMetricsFollowXGBoostsOwnPerSet) {
  data::Batch train = MakeData(Task::kRegression, 400, 4, 5);
  data::Batch valid = MakeData(Task::kRegression, 200, 4, 6);
  Trained t = Train({{"num_round", "4"}, {"eval_metric", "mse,rmse"}}, train, &valid);
  ASSERT_EQ(t.lines.size(), 4u);
  auto entries = ParseEvalLine(t.lines.back());
  ASSERT_TRUE(entries.ok());
  std::vector<std::string> order;
  for (const EvalEntry& e : *entries) order.push_back(e.set + "-" + e.metric);
  EXPECT_EQ(order, (std::vector<std::string>{"train-rmse", "train-mse", "validation-rmse",
                                             "validation-mse"}));
  double rmse = MetricOn(t.lines.back(), "validation", "rmse");
  EXPECT_NEAR(MetricOn(t.lines.back(), "validation", "mse"), rmse * rmse, 1e-4);
}

TEST(XGBoostTraining, LearnsARegression) {
  data::Batch train = MakeData(Task::kRegression, 3000, 6, 7, 0.0);
  data::Batch valid = MakeData(Task::kRegression, 1000, 6, 8, 0.0);
  Trained t = Train({{"num_round", "60"}, {"objective", "reg:squarederror"}, {"eta", "0.2"}},
                    train, &valid);
  ASSERT_EQ(t.lines.size(), 60u);
  double first = MetricOn(t.lines.front(), "validation", "rmse");
  double last = MetricOn(t.lines.back(), "validation", "rmse");
  EXPECT_LT(last, 0.6 * first);
  EXPECT_LT(last, 0.8);  // labels have a standard deviation near 2.7
}

TEST(XGBoostTraining, LearnsMulticlassProbabilities) {
  data::Batch train = MakeData(Task::kMulticlass, 2000, 6, 9);
  data::Batch valid = MakeData(Task::kMulticlass, 600, 6, 10);
  Trained t = Train({{"num_round", "20"}, {"objective", "multi:softprob"}, {"num_class", "3"},
                     {"eval_metric", "mlogloss,merror,accuracy"}},
                    train, &valid);
  ASSERT_EQ(t.lines.size(), 20u);
  double accuracy = MetricOn(t.lines.back(), "validation", "accuracy");
  EXPECT_GT(accuracy, 0.7);
  EXPECT_NEAR(accuracy, 1 - MetricOn(t.lines.back(), "validation", "merror"), 1e-5);
  auto model = Serve(*t.booster);
  ASSERT_NE(model, nullptr);
  auto p = model->Predict(WithoutLabels(valid));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->columns.size(), 1u);
  const data::PredictionColumn& score = p->columns[0];
  EXPECT_EQ(score.name, "score");
  EXPECT_EQ(score.width, 3u);
  EXPECT_TRUE(score.always_vector);
  EXPECT_TRUE(p->csv_one_line);
  EXPECT_EQ(p->envelope, "predictions");
  for (std::size_t r = 0; r < p->rows; ++r) {
    double sum = score.values[3 * r] + score.values[3 * r + 1] + score.values[3 * r + 2];
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
}

TEST(XGBoostTraining, EarlyStoppingStopsAfterThatManyRoundsWithoutImprovement) {
  // Validation labels unrelated to the features: its logloss gets worse almost at once.
  data::Batch train = MakeData(Task::kBinary, 1000, 6, 11);
  data::Batch valid = MakeData(Task::kBinary, 400, 6, 12);
  std::mt19937 rng(13);
  for (float& y : valid.labels) y = static_cast<float>(rng() % 2);
  Trained t = Train({{"num_round", "200"}, {"objective", "binary:logistic"},
                     {"early_stopping_rounds", "5"}, {"eta", "0.5"}},
                    train, &valid);
  ASSERT_TRUE(t.result.best_score.has_value());
  EXPECT_LT(t.result.rounds, 200);
  EXPECT_EQ(t.result.rounds, t.result.best_iteration + 1 + 5);
  // Evaluation lines for every round trained, then the stopping notice.
  ASSERT_EQ(t.lines.size(), static_cast<std::size_t>(t.result.rounds) + 1);
  double best = std::numeric_limits<double>::infinity();
  int best_round = -1;
  for (int i = 0; i < t.result.rounds; ++i) {
    double v = MetricOn(t.lines[i], "validation", "logloss");
    if (v < best) best = v, best_round = i;
  }
  EXPECT_EQ(best_round, t.result.best_iteration);
  EXPECT_NEAR(*t.result.best_score, best, 1e-5);

  // The booster carries xgb.train's attributes, and keeps every tree trained.
  auto attr = t.booster->GetAttr("best_iteration");
  ASSERT_TRUE(attr.ok() && attr->has_value());
  EXPECT_EQ(**attr, std::to_string(t.result.best_iteration));
  attr = t.booster->GetAttr("best_ntree_limit");
  ASSERT_TRUE(attr.ok() && attr->has_value());
  EXPECT_EQ(**attr, std::to_string(t.result.best_iteration + 1));
  EXPECT_EQ(*t.booster->BoostedRounds(), t.result.rounds);
}

TEST(XGBoostTraining, EarlyStoppingMaximisesAucAndAccuracy) {
  EXPECT_TRUE(MetricMaximized("auc"));
  EXPECT_TRUE(MetricMaximized("aucpr"));
  EXPECT_TRUE(MetricMaximized("ndcg@5"));
  EXPECT_TRUE(MetricMaximized("map"));
  EXPECT_TRUE(MetricMaximized("accuracy"));
  EXPECT_TRUE(MetricMaximized("f1"));
  EXPECT_FALSE(MetricMaximized("mape"));
  EXPECT_FALSE(MetricMaximized("logloss"));
  EXPECT_FALSE(MetricMaximized("error"));
  EXPECT_FALSE(MetricMaximized("mse"));
}

TEST(XGBoostTraining, ContainerMetricsAreComputedAsSageMakerDefinesThem) {
  PredictionMatrix binary{.rows = 5, .width = 1, .values = {0.2f, 0.7f, 0.5f, 0.9f, 0.6f}};
  // Rounded half to even: 0, 1, 0, 1, 1.
  std::vector<float> labels = {0, 1, 1, 0, 1};
  EXPECT_DOUBLE_EQ(*ContainerMetric("accuracy", binary, labels), 3.0 / 5);
  // Class 0: tp 1, fp 1, fn 1 -> 1/2. Class 1: tp 2, fp 1, fn 1 -> 4/6.
  EXPECT_DOUBLE_EQ(*ContainerMetric("f1", binary, labels), (0.5 + 4.0 / 6) / 2);
  EXPECT_NEAR(*ContainerMetric("mse", binary, labels),
              (0.04 + 0.09 + 0.25 + 0.81 + 0.16) / 5, 1e-7);

  PredictionMatrix multi{.rows = 3, .width = 3, .values = {0.1f, 0.7f, 0.2f,  //
                                                           0.6f, 0.3f, 0.1f,  //
                                                           0.2f, 0.2f, 0.6f}};
  std::vector<float> classes = {1, 2, 2};
  EXPECT_DOUBLE_EQ(*ContainerMetric("accuracy", multi, classes), 2.0 / 3);
  // Class 0: fp 1 -> 0. Class 1: tp 1 -> 1. Class 2: tp 1, fn 1 -> 2/3.
  EXPECT_DOUBLE_EQ(*ContainerMetric("f1", multi, classes), (0 + 1 + 2.0 / 3) / 3);
  EXPECT_FALSE(ContainerMetric("mse", multi, classes).ok());
  EXPECT_FALSE(ContainerMetric("accuracy", multi, {1, 2}).ok());
}

TEST(XGBoostTraining, ParsesXGBoostsEvaluationLine) {
  auto entries = ParseEvalLine("[7]\ttrain-ndcg@3-:0.123456789\tvalidation-poisson-nloglik:1e-3");
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].set, "train");
  EXPECT_EQ((*entries)[0].metric, "ndcg@3-");
  EXPECT_DOUBLE_EQ((*entries)[0].value, 0.123456789);
  EXPECT_EQ((*entries)[1].metric, "poisson-nloglik");
  EXPECT_DOUBLE_EQ((*entries)[1].value, 0.001);
  EXPECT_EQ(FormatEvalLine(7, *entries), "[7]\ttrain-ndcg@3-:0.12346\tvalidation-poisson-nloglik:0.00100");
}

TEST(XGBoostTraining, LabelOutsideTheObjectivesRangeFailsWithXGBoostsReason) {
  data::Batch train = MakeData(Task::kRegression, 100, 3, 14);
  auto plan = Plan({{"num_round", "2"}, {"objective", "binary:logistic"}});
  ASSERT_TRUE(plan.ok());
  auto m = DMatrix::FromBatch(train, 2);
  ASSERT_TRUE(m.ok());
  const DMatrix* cache[] = {&*m};
  auto booster = Booster::Create(cache);
  ASSERT_TRUE(booster.ok());
  for (const auto& [k, v] : plan->booster_params) ASSERT_TRUE(booster->SetParam(k, v).ok());
  Status s = booster->UpdateOneIter(0, *m);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("label must be in [0,1]"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find(".cc:"), std::string::npos) << "source location kept: " << s.message();
}

// ---------------------------------------------------------------------------------------
// XGBoost's metrics computed here

data::Batch WithWeights(data::Batch b, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> weight(0.2f, 3.0f);
  b.weights.resize(b.rows);
  for (float& w : b.weights) w = weight(rng);
  return b;
}

// Features rounded to whole numbers: few distinct rows, so many rows share a score.
data::Batch Coarse(data::Batch b) {
  for (float& x : b.dense) {
    if (!std::isnan(x)) x = std::round(x);
  }
  return b;
}

bool Close(double native, double xgboost) {
  if (std::isnan(native) || std::isnan(xgboost)) return std::isnan(native) && std::isnan(xgboost);
  return std::fabs(native - xgboost) <= std::max(1e-9, 1e-6 * std::fabs(xgboost));
}

struct MetricCase {
  std::string name;
  Task task;
  std::string objective;
  std::vector<std::string> metrics;
  bool weighted = false;
  bool coarse = false;
  std::vector<std::pair<std::string, std::string>> params = {};
};

class NativeMetricMatchesXGBoost : public ::testing::TestWithParam<MetricCase> {};

// Every round, every metric of XGBoost's evaluation line against EvalMetric on the
// predictions, on the training set and a validation set.
TEST_P(NativeMetricMatchesXGBoost, EveryRoundOnTrainAndValidation) {
  const MetricCase& c = GetParam();
  data::Batch train = MakeData(c.task, 3000, 6, 41);
  data::Batch valid = MakeData(c.task, 1000, 6, 42);
  if (c.coarse) {
    train = Coarse(std::move(train));
    valid = Coarse(std::move(valid));
  }
  if (c.weighted) {
    train = WithWeights(std::move(train), 43);
    valid = WithWeights(std::move(valid), 44);
  }
  auto train_m = DMatrix::FromBatch(train, 2);
  auto valid_m = DMatrix::FromBatch(valid, 2);
  ASSERT_TRUE(train_m.ok() && valid_m.ok());
  EXPECT_EQ(train_m->weights().size(), c.weighted ? train.rows : 0u);
  const DMatrix* sets[] = {&*train_m, &*valid_m};
  const std::string names[] = {"train", "validation"};
  auto booster = Booster::Create(sets);
  ASSERT_TRUE(booster.ok());
  ASSERT_TRUE(booster->SetParam("objective", c.objective).ok());
  ASSERT_TRUE(booster->SetParam("nthread", "2").ok());
  ASSERT_TRUE(booster->SetParam("max_depth", "3").ok());
  for (const auto& [k, v] : c.params) ASSERT_TRUE(booster->SetParam(k, v).ok()) << k;
  for (const std::string& m : c.metrics) ASSERT_TRUE(booster->SetParam("eval_metric", m).ok());

  std::size_t compared = 0;
  for (int round = 0; round < 6; ++round) {
    ASSERT_TRUE(booster->UpdateOneIter(round, *train_m).ok());
    auto line = booster->EvalOneIter(round, sets, names);
    ASSERT_TRUE(line.ok()) << line.status().ToString();
    auto entries = ParseEvalLine(*line);
    ASSERT_TRUE(entries.ok());
    ASSERT_EQ(entries->size(), 2 * c.metrics.size()) << *line;
    auto settings = ReadLearnerSettings(*booster->ConfigJson());
    ASSERT_TRUE(settings.ok()) << settings.status().ToString();
    EXPECT_EQ(settings->objective, c.objective);
    EXPECT_EQ(settings->threads, 2);
    auto input = MetricInputFor(c.objective);
    ASSERT_TRUE(input.has_value());
    for (const EvalEntry& e : *entries) {
      const DMatrix& m = e.set == "train" ? *train_m : *valid_m;
      auto p = booster->Predict(m, 0, *input == MetricInput::kSoftmaxOfMargins);
      ASSERT_TRUE(p.ok());
      if (*input == MetricInput::kSoftmaxOfMargins) SoftmaxRows(*p);
      auto native = EvalMetric(e.metric, *p, m.labels(), m.weights(), settings->threads);
      ASSERT_TRUE(native.ok()) << e.metric << ": " << native.status().ToString();
      EXPECT_TRUE(Close(*native, e.value))
          << "round " << round << " " << e.set << "-" << e.metric << ": " << *native
          << " here, " << e.value << " by XGBoost";
      ++compared;
    }
    if (c.coarse && round == 0) {
      // Scores do tie: far fewer distinct scores than rows.
      auto p = booster->Predict(*train_m);
      std::set<float> distinct(p->values.begin(), p->values.end());
      EXPECT_LT(distinct.size(), train.rows / 10);
    }
  }
  EXPECT_EQ(compared, 6 * 2 * c.metrics.size());
}

INSTANTIATE_TEST_SUITE_P(
    Metrics, NativeMetricMatchesXGBoost,
    ::testing::Values(
        MetricCase{"Binary", Task::kBinary, "binary:logistic",
                   {"logloss", "error", "error@0.7", "auc", "rmse", "mae", "rmsle"}},
        MetricCase{"BinaryWeighted", Task::kBinary, "binary:logistic",
                   {"logloss", "error", "error@0.25", "auc", "rmse", "mae"}, true},
        MetricCase{"BinaryTiedScores", Task::kBinary, "binary:logistic",
                   {"auc", "logloss", "error"}, false, true, {{"max_depth", "2"}}},
        MetricCase{"BinaryTiedScoresWeighted", Task::kBinary, "binary:logistic",
                   {"auc", "logloss"}, true, true, {{"max_depth", "2"}}},
        MetricCase{"Logitraw", Task::kBinary, "binary:logitraw", {"auc", "error@0"}},
        MetricCase{"Hinge", Task::kBinary, "binary:hinge", {"error", "auc"}, true},
        MetricCase{"Softprob", Task::kMulticlass, "multi:softprob", {"mlogloss", "merror"},
                   false, false, {{"num_class", "3"}}},
        MetricCase{"SoftprobWeighted", Task::kMulticlass, "multi:softprob",
                   {"merror", "mlogloss"}, true, false, {{"num_class", "3"}}},
        MetricCase{"Softmax", Task::kMulticlass, "multi:softmax", {"mlogloss", "merror"},
                   true, false, {{"num_class", "3"}}},
        MetricCase{"Regression", Task::kRegression, "reg:squarederror", {"rmse", "mae"}},
        MetricCase{"RegressionWeighted", Task::kRegression, "reg:squarederror",
                   {"rmse", "mae"}, true},
        MetricCase{"Poisson", Task::kCount, "count:poisson",
                   {"poisson-nloglik", "rmse", "rmsle", "mae"}},
        MetricCase{"PoissonWeighted", Task::kCount, "count:poisson",
                   {"poisson-nloglik", "rmsle"}, true}),
    [](const ::testing::TestParamInfo<MetricCase>& info) { return info.param.name; });

TEST(XGBoostNativeMetrics, AucGivesTiedScoresHalfAPairAndNanWithOneClass) {
  PredictionMatrix p{.rows = 4, .width = 1, .values = {0.9f, 0.5f, 0.5f, 0.1f}};
  std::vector<float> labels = {1, 1, 0, 0};
  // Pairs (positive, negative): 0.9 beats both, 0.5 ties 0.5 and beats 0.1: 3.5 of 4.
  EXPECT_DOUBLE_EQ(*EvalMetric("auc", p, labels, {}, 1), 0.875);
  EXPECT_DOUBLE_EQ(*EvalMetric("auc", p, labels, {}, 1), Auc(p.values, labels));
  // Weighted: a pair counts w_pos * w_neg. Pairs: (0.9,0.5) 2*3 win, (0.9,0.1) 2*1 win,
  // (0.5,0.5) 1*3 tie, (0.5,0.1) 1*1 win: (6 + 2 + 1.5 + 1) / (3 * 4).
  std::vector<float> weights = {2, 1, 3, 1};
  EXPECT_DOUBLE_EQ(*EvalMetric("auc", p, labels, weights, 1), 10.5 / 12);
  EXPECT_TRUE(std::isnan(*EvalMetric("auc", p, std::vector<float>{0, 0, 0, 0}, {}, 1)));
  EXPECT_TRUE(std::isnan(*EvalMetric("auc", p, std::vector<float>{1, 1, 1, 1}, {}, 1)));
  // Negative scores (binary:logitraw margins) and -0 order as numbers.
  PredictionMatrix margins{.rows = 5, .width = 1, .values = {-2.0f, 0.0f, -0.0f, 3.0f, -7.5f}};
  std::vector<float> y = {0, 1, 0, 1, 0};
  EXPECT_DOUBLE_EQ(*EvalMetric("auc", margins, y, {}, 1), Auc(margins.values, y));
}

TEST(XGBoostNativeMetrics, LeavesTheRestToXGBoost) {
  PredictionMatrix binary{.rows = 2, .width = 1, .values = {0.2f, 0.8f}};
  std::vector<float> labels = {0, 1};
  for (const char* name : {"aucpr", "ndcg", "ndcg@3", "map", "cox-nloglik", "gamma-deviance",
                           "gamma-nloglik", "tweedie-nloglik@1.5", "mape", "mphe", "error@x"}) {
    auto v = EvalMetric(name, binary, labels, {}, 1);
    ASSERT_FALSE(v.ok()) << name;
    EXPECT_EQ(v.status().code(), StatusCode::kUnimplemented) << name;
  }
  PredictionMatrix multi{.rows = 2, .width = 2, .values = {0.2f, 0.8f, 0.6f, 0.4f}};
  EXPECT_EQ(EvalMetric("auc", multi, labels, {}, 1).status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(EvalMetric("logloss", multi, labels, {}, 1).status().code(),
            StatusCode::kUnimplemented);
  EXPECT_EQ(EvalMetric("merror", binary, labels, {}, 1).status().code(),
            StatusCode::kUnimplemented);
  EXPECT_EQ(EvalMetric("rmse", binary, std::vector<float>{0, 1, 1}, {}, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(EvalMetric("rmse", binary, labels, std::vector<float>{1}, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(EvalMetric("mlogloss", multi, std::vector<float>{0, 2}, {}, 1).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(MetricInputFor("rank:pairwise").has_value());
  EXPECT_FALSE(MetricInputFor("survival:aft").has_value());
  EXPECT_EQ(MetricInputFor("multi:softmax"), MetricInput::kSoftmaxOfMargins);
  EXPECT_EQ(MetricInputFor("binary:logistic"), MetricInput::kPredictions);
}

TEST(XGBoostNativeMetrics, WeightedMeansAndTheErrorThreshold) {
  PredictionMatrix p{.rows = 3, .width = 1, .values = {0.6f, 0.8f, 0.3f}};
  std::vector<float> labels = {0, 1, 1};
  std::vector<float> weights = {1, 2, 3};
  // Wrong at 0.5: rows 0 and 2 -> (1 + 3) / 6. At 0.2: row 0. At 0.7 (unweighted): row 2.
  EXPECT_DOUBLE_EQ(*EvalMetric("error", p, labels, weights, 1), 4.0 / 6);
  EXPECT_DOUBLE_EQ(*EvalMetric("error@0.2", p, labels, weights, 1), 1.0 / 6);
  EXPECT_DOUBLE_EQ(*EvalMetric("error@0.7", p, labels, {}, 2), 1.0 / 3);
  double mae = (1 * 0.6 + 2 * 0.2 + 3 * 0.7) / 6;
  EXPECT_NEAR(*EvalMetric("mae", p, labels, weights, 3), mae, 1e-7);
  double mse = (1 * 0.36 + 2 * 0.04 + 3 * 0.49) / 6;
  EXPECT_NEAR(*EvalMetric("rmse", p, labels, weights, 1), std::sqrt(mse), 1e-7);
  double logloss = -(std::log(0.4) + 2 * std::log(0.8) + 3 * std::log(0.3)) / 6;
  EXPECT_NEAR(*EvalMetric("logloss", p, labels, weights, 2), logloss, 1e-6);
}

// The training loop: the same lines whether XGBoost's metrics are computed here or by
// XGBoost, and XGBoost keeps the metrics not reproduced here.
struct LoopCase {
  std::string name;
  Task task;
  std::map<std::string, std::string> hps;
  bool weighted = false;
  bool native_expected = true;
};

class NativeEvaluationLoop : public ::testing::TestWithParam<LoopCase> {};

TEST_P(NativeEvaluationLoop, PrintsTheSameLinesAsXGBoostsEvaluation) {
  const LoopCase& c = GetParam();
  data::Batch train = MakeData(c.task, 2000, 6, 51);
  data::Batch valid = MakeData(c.task, 700, 6, 52);
  if (c.weighted) {
    train = WithWeights(std::move(train), 53);
    valid = WithWeights(std::move(valid), 54);
  }
  Trained native = Train(c.hps, train, &valid, true);
  Trained xgboost = Train(c.hps, train, &valid, false);
  EXPECT_EQ(native.result.native_evaluation, c.native_expected);
  EXPECT_FALSE(xgboost.result.native_evaluation);
  ASSERT_FALSE(native.lines.empty());
  EXPECT_EQ(native.lines, xgboost.lines);
  EXPECT_EQ(native.result.rounds, xgboost.result.rounds);
  EXPECT_EQ(native.result.best_iteration, xgboost.result.best_iteration);
  ASSERT_EQ(native.result.best_score.has_value(), xgboost.result.best_score.has_value());
  if (native.result.best_score.has_value()) {
    EXPECT_TRUE(Close(*native.result.best_score, *xgboost.result.best_score));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Loops, NativeEvaluationLoop,
    ::testing::Values(
        LoopCase{"BinaryWithContainerMetrics", Task::kBinary,
                 {{"num_round", "12"}, {"objective", "binary:logistic"},
                  {"eval_metric", "logloss,auc,error@0.6,accuracy,f1"}}},
        LoopCase{"BinaryWeightedEarlyStopping", Task::kBinary,
                 {{"num_round", "60"}, {"objective", "binary:logistic"}, {"eta", "0.8"},
                  {"eval_metric", "error,logloss"}, {"early_stopping_rounds", "3"}},
                 true},
        LoopCase{"SoftmaxWithContainerMetrics", Task::kMulticlass,
                 {{"num_round", "8"}, {"objective", "multi:softmax"}, {"num_class", "3"},
                  {"eval_metric", "mlogloss,merror,accuracy,mse"}}},
        LoopCase{"RegressionWithContainerMse", Task::kRegression,
                 {{"num_round", "10"}, {"objective", "reg:squarederror"},
                  {"eval_metric", "mae,mse"}},
                 true},
        LoopCase{"UnsupportedMetricKeepsXGBoost", Task::kBinary,
                 {{"num_round", "6"}, {"objective", "binary:logistic"},
                  {"eval_metric", "logloss,aucpr"}},
                 false, false},
        LoopCase{"RankingKeepsXGBoost", Task::kBinary,
                 {{"num_round", "4"}, {"objective", "rank:pairwise"}, {"eval_metric", "ndcg"}},
                 false, false}),
    [](const ::testing::TestParamInfo<LoopCase>& info) { return info.param.name; });

TEST(XGBoostNativeMetrics, AucOfOneClassPrintsNanBothWays) {
  data::Batch train = MakeData(Task::kBinary, 500, 4, 61);
  data::Batch valid = MakeData(Task::kBinary, 200, 4, 62);
  std::fill(valid.labels.begin(), valid.labels.end(), 0.0f);
  std::map<std::string, std::string> hps = {
      {"num_round", "3"}, {"objective", "binary:logistic"}, {"eval_metric", "auc"}};
  Trained native = Train(hps, train, &valid, true);
  Trained xgboost = Train(hps, train, &valid, false);
  EXPECT_TRUE(native.result.native_evaluation);
  ASSERT_EQ(native.lines.size(), 3u);
  EXPECT_EQ(native.lines, xgboost.lines);
  EXPECT_NE(native.lines.back().find("validation-auc:nan"), std::string::npos)
      << native.lines.back();
}

// ---------------------------------------------------------------------------------------
// The flattened predictor

struct ObjectiveCase {
  std::string objective;
  Task task;
  std::map<std::string, std::string> extra;
};

class FlatForestMatchesXGBoost : public testing::TestWithParam<ObjectiveCase> {};

TEST_P(FlatForestMatchesXGBoost, OnDenseAndSparseRowsWithMissingValues) {
  const ObjectiveCase& c = GetParam();
  data::Batch train = MakeData(c.task, 1000, 10, 21, 0.2);
  if (c.objective == "reg:gamma") {
    for (float& y : train.labels) y += 1;  // gamma needs positive labels
  }
  data::Batch test = WithoutLabels(MakeData(c.task, 500, 10, 22, 0.3));
  std::map<std::string, std::string> hps = {
      {"num_round", "25"}, {"objective", c.objective}, {"max_depth", "5"}};
  hps.insert(c.extra.begin(), c.extra.end());
  Trained t = Train(hps, train, nullptr);
  ASSERT_NE(t.booster, nullptr);
  auto model = Serve(*t.booster);
  ASSERT_NE(model, nullptr);
  ASSERT_TRUE(model->uses_flat_forest()) << c.objective;

  auto fast = model->Scores(test);
  auto reference = model->PredictWithXGBoost(test);
  ASSERT_TRUE(fast.ok() && reference.ok());
  EXPECT_LE(MaxDifference(*fast, *reference), 1e-6) << c.objective;

  data::Batch sparse = ToSparse(test);
  auto fast_sparse = model->Scores(sparse);
  auto reference_sparse = model->PredictWithXGBoost(sparse);
  ASSERT_TRUE(fast_sparse.ok() && reference_sparse.ok());
  EXPECT_LE(MaxDifference(*fast_sparse, *reference_sparse), 1e-6) << c.objective;
  EXPECT_LE(MaxDifference(*fast_sparse, *fast), 0.0) << "sparse and dense rows differ";

  // One row at a time, as most realtime requests come.
  for (std::size_t r = 0; r < 50; ++r) {
    data::Batch one;
    one.rows = 1;
    one.cols = test.cols;
    one.dense.assign(test.dense.begin() + r * test.cols, test.dense.begin() + (r + 1) * test.cols);
    auto a = model->Scores(one);
    auto b = model->PredictWithXGBoost(one);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_LE(MaxDifference(*a, *b), 1e-6) << "row " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Objectives, FlatForestMatchesXGBoost,
    testing::Values(
        ObjectiveCase{"binary:logistic", Task::kBinary, {}},
        ObjectiveCase{"binary:logistic", Task::kBinary, {{"base_score", "0.3"}, {"eta", "0.1"}}},
        ObjectiveCase{"reg:logistic", Task::kBinary, {}},
        ObjectiveCase{"binary:logitraw", Task::kBinary, {{"base_score", "0.7"}}},
        ObjectiveCase{"binary:hinge", Task::kBinary, {}},
        ObjectiveCase{"reg:squarederror", Task::kRegression, {{"base_score", "1.5"}}},
        ObjectiveCase{"reg:pseudohubererror", Task::kRegression, {}},
        ObjectiveCase{"reg:absoluteerror", Task::kRegression, {}},
        ObjectiveCase{"count:poisson", Task::kCount, {{"base_score", "2"}}},
        ObjectiveCase{"reg:tweedie", Task::kCount, {{"tweedie_variance_power", "1.3"}}},
        ObjectiveCase{"reg:gamma", Task::kCount, {{"base_score", "1"}}},
        ObjectiveCase{"multi:softprob", Task::kMulticlass, {{"num_class", "3"}}},
        ObjectiveCase{"multi:softmax", Task::kMulticlass, {{"num_class", "3"}}},
        ObjectiveCase{"rank:pairwise", Task::kBinary, {}},
        ObjectiveCase{"binary:logistic", Task::kBinary,
                      {{"num_parallel_tree", "3"}, {"subsample", "0.7"}}},
        ObjectiveCase{"binary:logistic", Task::kBinary,
                      {{"tree_method", "hist"}, {"grow_policy", "lossguide"}, {"max_leaves", "9"}}}),
    [](const testing::TestParamInfo<ObjectiveCase>& info) {
      std::string name = info.param.objective + "_" + std::to_string(info.index);
      for (char& ch : name) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      }
      return name;
    });

TEST(XGBoostServing, FallsBackToXGBoostForDartAndGblinear) {
  data::Batch train = MakeData(Task::kBinary, 800, 5, 31, 0.0);
  data::Batch test = WithoutLabels(MakeData(Task::kBinary, 100, 5, 32, 0.0));
  for (const char* booster : {"dart", "gblinear"}) {
    std::map<std::string, std::string> hps = {
        {"num_round", "10"}, {"objective", "binary:logistic"}, {"booster", booster}};
    if (std::string(booster) == "dart") hps["rate_drop"] = "0.2";
    Trained t = Train(hps, train, nullptr);
    auto model = Serve(*t.booster);
    ASSERT_NE(model, nullptr);
    EXPECT_FALSE(model->uses_flat_forest()) << booster;
    auto p = model->Predict(test);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    ASSERT_EQ(p->columns[0].values.size(), test.rows);
    double auc = Auc(p->columns[0].values, MakeData(Task::kBinary, 100, 5, 32, 0.0).labels);
    EXPECT_GT(auc, 0.8) << booster;
  }
}

TEST(XGBoostServing, PredictsWithTheRoundsUpToTheBestOneAsSageMakerDoes) {
  data::Batch train = MakeData(Task::kBinary, 1000, 6, 41);
  data::Batch valid = MakeData(Task::kBinary, 400, 6, 42);
  std::mt19937 rng(43);
  for (float& y : valid.labels) y = static_cast<float>(rng() % 2);
  Trained t = Train({{"num_round", "100"}, {"objective", "binary:logistic"},
                     {"early_stopping_rounds", "4"}, {"eta", "0.5"}},
                    train, &valid);
  ASSERT_LT(t.result.best_iteration + 1, t.result.rounds);
  auto model = Serve(*t.booster);
  ASSERT_NE(model, nullptr);
  ASSERT_TRUE(model->uses_flat_forest());
  data::Batch test = WithoutLabels(MakeData(Task::kBinary, 200, 6, 44));
  auto served = model->Scores(test);
  auto test_m = DMatrix::FromBatch(test, 2);
  auto best = t.booster->Predict(*test_m, t.result.best_iteration + 1);
  auto all = t.booster->Predict(*test_m, 0);
  ASSERT_TRUE(served.ok() && best.ok() && all.ok());
  EXPECT_LE(MaxDifference(*served, *best), 1e-6);
  EXPECT_GT(MaxDifference(*served, *all), 1e-3);
  // And the XGBoost fallback path applies the same limit.
  auto fallback = model->PredictWithXGBoost(test);
  ASSERT_TRUE(fallback.ok());
  EXPECT_LE(MaxDifference(*fallback, *best), 1e-6);
}

TEST(XGBoostServing, ArtifactRoundTripGivesTheTrainedBoostersPredictions) {
  data::Batch train = MakeData(Task::kRegression, 1000, 7, 51);
  Trained t = Train({{"num_round", "15"}}, train, nullptr);
  data::Batch test = WithoutLabels(MakeData(Task::kRegression, 300, 7, 52));
  auto model = Serve(*t.booster);
  ASSERT_NE(model, nullptr);
  auto test_m = DMatrix::FromBatch(test, 2);
  auto original = t.booster->Predict(*test_m);
  auto loaded = model->Scores(test);
  ASSERT_TRUE(original.ok() && loaded.ok());
  EXPECT_LE(MaxDifference(*loaded, *original), 1e-6);
  EXPECT_EQ(model->num_features(), 7u);
}

TEST(XGBoostServing, RowsNarrowerThanTheModelAreMissingTheRest) {
  data::Batch train = MakeData(Task::kBinary, 800, 6, 61);
  Trained t = Train({{"num_round", "10"}, {"objective", "binary:logistic"}}, train, nullptr);
  auto model = Serve(*t.booster);
  ASSERT_NE(model, nullptr);
  data::Batch narrow = WithoutLabels(MakeData(Task::kBinary, 300, 4, 62));
  auto fast = model->Scores(narrow);
  auto reference = model->PredictWithXGBoost(narrow);
  ASSERT_TRUE(fast.ok() && reference.ok());
  EXPECT_LE(MaxDifference(*fast, *reference), 1e-6);

  data::Batch wide = WithoutLabels(MakeData(Task::kBinary, 3, 7, 63));
  auto rejected = model->Predict(wide);
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(rejected.status().message().find("(7)"), std::string::npos);
}

TEST(XGBoostServing, LoadFailsClearlyWithoutAModel) {
  fs::path dir = fs::temp_directory_path() / fmt::format("xgb-empty-{}", ::getpid());
  fs::create_directories(dir);
  auto model = XGBoostModel::Load(dir);
  EXPECT_FALSE(model.ok());
  std::ofstream(dir / kModelFileName) << "not a model";
  model = XGBoostModel::Load(dir);
  EXPECT_FALSE(model.ok());
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------------------
// Hyperparameters

std::string PlanError(std::map<std::string, std::string> raw) {
  auto plan = Plan(std::move(raw));
  return plan.ok() ? "" : plan.status().message();
}

TEST(XGBoostHyperparameters, RejectWhatSageMakersContainerRejects) {
  EXPECT_NE(PlanError({{"objective", "binary:logistic"}}).find("'num_round'"), std::string::npos);
  EXPECT_NE(PlanError({{"num_round", "0"}}).find("'num_round'"), std::string::npos);
  EXPECT_NE(PlanError({{"num_round", "10"}, {"objective", "binary:logit"}}).find("'objective'"),
            std::string::npos);
  EXPECT_NE(PlanError({{"num_round", "10"}, {"objective", "multi:softprob"}}).find("'num_class'"),
            std::string::npos);
  EXPECT_NE(PlanError({{"num_round", "10"}, {"num_class", "3"}}).find("'num_class'"),
            std::string::npos);
  EXPECT_NE(PlanError({{"num_round", "10"}, {"eta", "1.5"}}).find("'eta'"), std::string::npos);
  EXPECT_NE(PlanError({{"num_round", "10"}, {"subsample", "0"}}).find("'subsample'"),
            std::string::npos);
  EXPECT_NE(PlanError({{"num_round", "10"}, {"sketch_eps", "1"}}).find("'sketch_eps'"),
            std::string::npos);
  EXPECT_NE(PlanError({{"num_round", "10"}, {"tweedie_variance_power", "2"}})
                .find("'tweedie_variance_power'"),
            std::string::npos);
  EXPECT_NE(PlanError({{"num_round", "10"}, {"eval_metric", "auc"}}).find("'auc'"),
            std::string::npos);
  EXPECT_NE(PlanError({{"num_round", "10"}, {"eval_metric", "rmse,bogus"}}).find("'bogus'"),
            std::string::npos);
  EXPECT_NE(PlanError({{"num_round", "10"}, {"eval_metric", "rmse@2"}}).find("'rmse@2'"),
            std::string::npos);
  EXPECT_NE(PlanError({{"num_round", "10"}, {"monotone_constraints", "(1,2)"},
                       {"tree_method", "hist"}})
                .find("'monotone_constraints'"),
            std::string::npos);
  EXPECT_NE(PlanError({{"num_round", "10"}, {"monotone_constraints", "(1,-1)"}})
                .find("tree_method"),
            std::string::npos);
  EXPECT_NE(PlanError({{"num_round", "10"}, {"interaction_constraints", "[[0,1],[2,"},
                       {"tree_method", "hist"}})
                .find("'interaction_constraints'"),
            std::string::npos);
  EXPECT_NE(PlanError({{"num_round", "10"}, {"updater", "grow_colmaker,grow_histmaker"}})
                .find("one tree grow plugin"),
            std::string::npos);
  EXPECT_NE(PlanError({{"num_round", "10"}, {"booster", "gblinear"}, {"updater", "prune"}})
                .find("'updater'"),
            std::string::npos);
  EXPECT_NE(PlanError({{"num_round", "10"}, {"max_depht", "3"}}).find("'max_depht'"),
            std::string::npos);
}

TEST(XGBoostHyperparameters, AcceptSageMakersSpellings) {
  auto plan = Plan({{"num_round", "10.0"},
                    {"objective", "multi:softprob"},
                    {"num_class", "4"},
                    {"learning_rate", "0.1"},
                    {"reg_lambda", "2"},
                    {"eval_metric", "[\"mlogloss\", \"merror\", \"accuracy\"]"},
                    {"monotone_constraints", "[1, 0,-1]"},
                    {"interaction_constraints", "[[0, 1], [2, 3, 4]]"},
                    {"tree_method", "hist"},
                    {"updater", "grow_quantile_histmaker,prune"},
                    {"_tuning_objective_metric", "validation:f1"},
                    {"sagemaker_region", "\"us-east-1\""}});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->num_round, 10);
  EXPECT_EQ(plan->num_class, 4);
  // The tuning metric joins eval_metric, sorted as SageMaker merges them.
  EXPECT_EQ(plan->custom_metrics, (std::vector<std::string>{"accuracy", "f1"}));
  std::vector<std::string> metrics;
  std::map<std::string, std::string> params;
  for (const auto& [k, v] : plan->booster_params) {
    if (k == "eval_metric") metrics.push_back(v);
    params[k] = v;
  }
  EXPECT_EQ(metrics, (std::vector<std::string>{"merror", "mlogloss"}));
  EXPECT_EQ(params["monotone_constraints"], "(1,0,-1)");
  EXPECT_EQ(params["updater"], "grow_quantile_histmaker,prune");
  EXPECT_EQ(params["nthread"], "2");
  EXPECT_EQ(params["learning_rate"], "0.1");
  EXPECT_FALSE(params.contains("num_round"));
  EXPECT_FALSE(params.contains("_tuning_objective_metric"));
}

// ---------------------------------------------------------------------------------------
// The algorithm, through the training contract

class XGBoostJob : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           fmt::format("xgb-job-{}-{}", ::getpid(),
                       testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "input" / "config");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const fs::path& relative, const std::string& text) {
    fs::create_directories((dir_ / relative).parent_path());
    std::ofstream(dir_ / relative) << text;
  }

  // `channels`: name -> ContentType ("" for none).
  void Configure(const std::string& hyperparameters,
                 const std::map<std::string, std::string>& channels) {
    Write("input/config/hyperparameters.json", hyperparameters);
    std::string config = "{";
    for (const auto& [name, type] : channels) {
      if (config.size() > 1) config += ",";
      config += fmt::format(R"("{}":{{"TrainingInputMode":"File"{}}})", name,
                            type.empty() ? "" : fmt::format(R"(,"ContentType":"{}")", type));
    }
    Write("input/config/inputdataconfig.json", config + "}");
  }

  static std::string Csv(const data::Batch& b, bool with_weights = false) {
    std::string out;
    for (std::size_t r = 0; r < b.rows; ++r) {
      out += fmt::format("{}", b.labels[r]);
      if (with_weights) out += r % 2 ? ",2" : ",0.5";
      for (std::size_t c = 0; c < b.cols; ++c) {
        float v = b.dense[r * b.cols + c];
        out += std::isnan(v) ? std::string(",") : fmt::format(",{}", v);
      }
      out += "\n";
    }
    return out;
  }

  static std::string Libsvm(const data::Batch& b) {
    std::string out;
    for (std::size_t r = 0; r < b.rows; ++r) {
      out += fmt::format("{}", b.labels[r]);
      for (std::size_t c = 0; c < b.cols; ++c) {
        float v = b.dense[r * b.cols + c];
        if (!std::isnan(v)) out += fmt::format(" {}:{}", c, v);
      }
      out += "\n";
    }
    return out;
  }

  // Runs Train as `hearth algo xgboost train` would; returns its status and stdout.
  Status RunTrain(std::string* output = nullptr) {
    auto ctx = TrainingContext::LoadFrom(dir_, XGBoostAlgorithm().default_content_type());
    if (!ctx.ok()) return ctx.status();
    auto hps = Hyperparameters::Parse(XGBoostAlgorithm().hyperparameter_specs(),
                                      (*ctx)->raw_hyperparameters());
    if (!hps.ok()) return hps.status();
    testing::internal::CaptureStdout();
    Status s = XGBoostAlgorithm().Train(**ctx, *hps);
    std::string out = testing::internal::GetCapturedStdout();
    if (output) *output = out;
    return s;
  }

  fs::path dir_;
};

TEST_F(XGBoostJob, TrainsFromCsvAndServesTheArtifact) {
  data::Batch train = MakeData(Task::kBinary, 1500, 5, 71);
  data::Batch valid = MakeData(Task::kBinary, 400, 5, 72);
  Configure(R"({"num_round": "12", "objective": "binary:logistic", "eval_metric": "auc"})",
            {{"train", "text/csv"}, {"validation", "text/csv"}});
  Write("input/data/train/part-0.csv", Csv(train));
  Write("input/data/validation/part-0.csv", Csv(valid));
  std::string out;
  Status s = RunTrain(&out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_NE(out.find("Train matrix has 1500 rows and 5 columns"), std::string::npos) << out;
  EXPECT_NE(out.find("[11]\ttrain-auc:"), std::string::npos) << out;
  EXPECT_NE(out.find("\tvalidation-auc:"), std::string::npos) << out;
  ASSERT_TRUE(fs::exists(dir_ / "model" / kModelFileName));

  auto model = XGBoostAlgorithm().LoadModel(dir_ / "model");
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto p = (*model)->Predict(WithoutLabels(valid));
  ASSERT_TRUE(p.ok());
  EXPECT_GT(Auc(p->columns[0].values, valid.labels), 0.9);
}

TEST_F(XGBoostJob, LibsvmIsTheDefaultContentType) {
  data::Batch train = MakeData(Task::kRegression, 800, 6, 73);
  Configure(R"({"num_round": "5"})", {{"train", ""}});
  Write("input/data/train/data.libsvm", Libsvm(train));
  std::string out;
  Status s = RunTrain(&out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_NE(out.find("[4]\ttrain-rmse:"), std::string::npos) << out;

  // The CSV of the same rows trains the same model: libsvm's absent entries and CSV's empty
  // cells are both missing.
  auto libsvm_model = XGBoostAlgorithm().LoadModel(dir_ / "model");
  ASSERT_TRUE(libsvm_model.ok());
  fs::remove_all(dir_ / "input" / "data");
  fs::remove_all(dir_ / "model");
  Configure(R"({"num_round": "5"})", {{"train", "text/csv"}});
  Write("input/data/train/data.csv", Csv(train));
  ASSERT_TRUE(RunTrain().ok());
  auto csv_model = XGBoostAlgorithm().LoadModel(dir_ / "model");
  ASSERT_TRUE(csv_model.ok());
  data::Batch test = WithoutLabels(MakeData(Task::kRegression, 100, 6, 74));
  auto a = (*libsvm_model)->Predict(test);
  auto b = (*csv_model)->Predict(test);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->columns[0].values, b->columns[0].values);
}

TEST_F(XGBoostJob, CsvWeightsTakeTheColumnAfterTheLabel) {
  data::Batch train = MakeData(Task::kBinary, 600, 4, 75);
  Configure(R"({"num_round": "5", "objective": "binary:logistic", "csv_weights": "1"})",
            {{"train", "text/csv"}});
  Write("input/data/train/data.csv", Csv(train, /*with_weights=*/true));
  std::string out;
  Status s = RunTrain(&out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_NE(out.find("Train matrix has 600 rows and 4 columns"), std::string::npos) << out;

  // Same model as training on the unweighted rows with those weights given directly.
  data::Batch weighted = train;
  for (std::size_t r = 0; r < train.rows; ++r) weighted.weights.push_back(r % 2 ? 2.0f : 0.5f);
  Trained t = Train({{"num_round", "5"}, {"objective", "binary:logistic"}}, weighted, nullptr);
  auto model = XGBoostAlgorithm().LoadModel(dir_ / "model");
  ASSERT_TRUE(model.ok());
  data::Batch test = WithoutLabels(MakeData(Task::kBinary, 50, 4, 76));
  auto test_m = DMatrix::FromBatch(test, 2);
  auto expected = t.booster->Predict(*test_m);
  auto got = (*model)->Predict(test);
  ASSERT_TRUE(expected.ok() && got.ok());
  for (std::size_t i = 0; i < test.rows; ++i) {
    EXPECT_NEAR(got->columns[0].values[i], expected->values[i], 1e-6);
  }
}

TEST_F(XGBoostJob, ADataErrorNamesTheChannel) {
  Configure(R"({"num_round": "5"})", {{"train", "text/csv"}, {"validation", "text/csv"}});
  Write("input/data/train/data.csv", "1,2,3\n0,4,5\n");
  Write("input/data/validation/data.csv", "1,2,3\n0,x,5\n");
  Status s = RunTrain();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'validation'"), std::string::npos) << s.message();
}

TEST_F(XGBoostJob, EmptyTrainChannelAndUnknownChannelFail) {
  Configure(R"({"num_round": "5"})", {{"train", "text/csv"}});
  fs::create_directories(dir_ / "input" / "data" / "train");
  Status s = RunTrain();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("No data in the 'train' channel"), std::string::npos) << s.message();

  Configure(R"({"num_round": "5"})", {{"train", "text/csv"}, {"test", "text/csv"}});
  Write("input/data/train/data.csv", "1,2,3\n");
  s = RunTrain();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'test'"), std::string::npos) << s.message();

  Configure(R"({"num_round": "5"})", {{"validation", "text/csv"}});
  s = RunTrain();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'train'"), std::string::npos) << s.message();
}

TEST(XGBoostAlgorithmTest, AnswersToSageMakersNamesAndDefaults) {
  const Algorithm& a = XGBoostAlgorithm();
  EXPECT_EQ(a.name(), "xgboost");
  EXPECT_EQ(a.repositories(), (std::vector<std::string>{"sagemaker-xgboost", "xgboost"}));
  EXPECT_EQ(a.default_content_type(), "text/libsvm");
  EXPECT_EQ(a.default_accept(), data::ResponseFormat::kCsv);
  std::set<std::string> names;
  for (const auto& d : a.metric_definitions()) names.insert(d.name);
  for (const char* m : {"accuracy", "auc", "error", "f1", "logloss", "mae", "map", "merror",
                        "mlogloss", "mse", "ndcg", "rmse"}) {
    EXPECT_TRUE(names.contains(std::string("validation:") + m)) << m;
    EXPECT_TRUE(names.contains(std::string("train:") + m)) << m;
  }
}

// ---------------------------------------------------------------------------------------
// Timings (run with --gtest_also_run_disabled_tests)

TEST(XGBoostBenchmark, DISABLED_SingleRowLatency) {
  data::Batch train = MakeData(Task::kBinary, 20000, 28, 81, 0.0);
  Trained t = Train({{"num_round", "100"}, {"objective", "binary:logistic"}, {"max_depth", "6"},
                     {"tree_method", "hist"}},
                    train, nullptr);
  auto model = Serve(*t.booster);
  ASSERT_NE(model, nullptr);
  data::Batch test = WithoutLabels(MakeData(Task::kBinary, 2000, 28, 82, 0.0));
  // Thread CPU time, not wall time: the numbers stay meaningful on a busy machine.
  auto cpu_now = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
  };
  std::vector<data::Batch> rows(test.rows);
  for (std::size_t r = 0; r < test.rows; ++r) {
    rows[r].rows = 1;
    rows[r].cols = test.cols;
    rows[r].dense.assign(test.dense.begin() + r * test.cols,
                         test.dense.begin() + (r + 1) * test.cols);
  }
  auto time_per_row = [&](auto&& predict) {
    for (std::size_t r = 0; r < 200; ++r) predict(rows[r]);  // warm up
    double start = cpu_now();
    for (const auto& row : rows) predict(row);
    return (cpu_now() - start) / static_cast<double>(rows.size());
  };
  double flat = time_per_row([&](const data::Batch& b) { ASSERT_TRUE(model->Predict(b).ok()); });
  double xgboost = time_per_row(
      [&](const data::Batch& b) { ASSERT_TRUE(model->PredictWithXGBoost(b).ok()); });
  // XGBoost on one thread, as SageMaker's container serves (nthread=1): a DMatrix and
  // XGBoosterPredictFromDMatrix (what Booster.predict does), and in-place prediction.
  ASSERT_TRUE(t.booster->SetParam("nthread", "1").ok());
  BoosterHandle handle = t.booster->handle();
  const char* config =
      R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0, )"
      R"("strict_shape": false, "missing": NaN, "cache_id": 0})";
  double xgboost_dmatrix = time_per_row([&](const data::Batch& b) {
    DMatrixHandle m;
    ASSERT_EQ(XGDMatrixCreateFromMat(b.dense.data(), 1, b.cols, kNaN, &m), 0);
    const bst_ulong* shape;
    bst_ulong dims;
    const float* out;
    ASSERT_EQ(XGBoosterPredictFromDMatrix(handle, m, config, &shape, &dims, &out), 0);
    XGDMatrixFree(m);
  });
  double xgboost_inplace = time_per_row([&](const data::Batch& b) {
    std::string array = fmt::format(
        R"({{"data": [{}, true], "shape": [1, {}], "typestr": "<f4", "version": 3}})",
        reinterpret_cast<std::uintptr_t>(b.dense.data()), b.cols);
    const bst_ulong* shape;
    bst_ulong dims;
    const float* out;
    ASSERT_EQ(XGBoosterPredictFromDense(handle, array.c_str(), config, nullptr, &shape, &dims,
                                        &out),
              0)
        << XGBGetLastError();
  });
  std::printf("XGBoost, nthread=1: DMatrix + predict %.2f us (%.1fx flat), in-place predict "
              "%.2f us (%.1fx flat)\n",
              xgboost_dmatrix, xgboost_dmatrix / flat, xgboost_inplace, xgboost_inplace / flat);
  auto start = std::chrono::steady_clock::now();
  auto batch = model->Predict(test);
  double batch_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() -
                                                              start)
                        .count();
  ASSERT_TRUE(batch.ok());
  std::printf("single row (thread CPU time): flat %.2f us, XGBoost (DMatrix + predict) %.2f us "
              "(%.1fx); 2000-row batch: %.0f us wall (%.2f us/row)\n",
              flat, xgboost, xgboost / flat, batch_us, batch_us / 2000);
}

// Trains the job laid out under $HEARTH_XGB_BENCH_ML (an /opt/ml tree) and prints the phases
// times, for comparison with xgb.train on the same rows.
TEST(XGBoostBenchmark, DISABLED_TrainJobUnderBenchDir) {
  const char* ml = std::getenv("HEARTH_XGB_BENCH_ML");
  if (ml == nullptr) GTEST_SKIP() << "set HEARTH_XGB_BENCH_ML";
  auto ctx = TrainingContext::LoadFrom(ml, XGBoostAlgorithm().default_content_type());
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  auto hps = Hyperparameters::Parse(XGBoostAlgorithm().hyperparameter_specs(),
                                    (*ctx)->raw_hyperparameters());
  ASSERT_TRUE(hps.ok()) << hps.status().ToString();
  auto start = std::chrono::steady_clock::now();
  Status s = XGBoostAlgorithm().Train(**ctx, *hps);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::printf("whole job: %.2f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace
}  // namespace hearth::algorithms::xgb
