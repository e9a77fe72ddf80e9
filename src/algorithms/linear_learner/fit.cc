#include "algorithms/linear_learner/fit.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

namespace hearth::algorithms::linear_learner {
namespace {

constexpr std::size_t kAutoCalibrationRows = 100000;
constexpr std::size_t kAllRows = std::numeric_limits<std::size_t>::max();

// Training losses are measured on normalised labels; this turns them into label units.
double LossUnitFactor(Loss loss, float label_scale) {
  switch (loss) {
    case Loss::kSquared:
    case Loss::kEpsInsensitiveSquared:
    case Loss::kHuber:
      return 1.0 / (double(label_scale) * label_scale);
    case Loss::kAbsolute:
    case Loss::kEpsInsensitiveAbsolute:
    case Loss::kQuantile:
      return 1.0 / label_scale;
    default:
      return 1.0;
  }
}

std::string Format(double value) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", value);
  return buf;
}

// Labels and width of a batch from a channel other than the training one.
Status CheckEvaluationBatch(const Options& options, const data::Batch& b, std::size_t dim,
                            std::size_t first_row) {
  RETURN_IF_ERROR(CheckLabels(options, b, first_row));
  return CheckFeatureWidth(b, dim);
}

// Each model's metrics over one pass of `source`.
Result<std::vector<MetricAccumulator>> EvaluateAll(const Options& options,
                                                   const MultiModelTrainer& trainer,
                                                   EpochSource& source, std::size_t max_rows) {
  LossParams params = LossParamsFrom(options);
  params.outputs = trainer.outputs();
  std::vector<MetricAccumulator> accumulators(trainer.num_models(),
                                              MetricAccumulator(options, params));
  std::vector<float> z, model_z;
  std::size_t rows = 0;
  const std::size_t k_out = trainer.outputs(), cols = k_out * trainer.num_models();
  RETURN_IF_ERROR(source.ForEachGroup(max_rows, [&](std::span<const data::Batch* const> group) {
    for (const data::Batch* b : group) {
      RETURN_IF_ERROR(CheckEvaluationBatch(options, *b, trainer.dim(), rows + 1));
      rows += b->rows;
      trainer.Outputs(*b, &z);
      model_z.resize(b->rows * k_out);
      for (int m = 0; m < trainer.num_models(); ++m) {
        for (std::size_t r = 0; r < b->rows; ++r) {
          std::copy_n(z.data() + r * cols + m * k_out, k_out, model_z.data() + r * k_out);
        }
        accumulators[m].Add(model_z.data(), b->labels.data(), b->rows);
      }
    }
    return Status::Ok();
  }));
  return accumulators;
}

}  // namespace

Status WithChannel(const Status& status, std::string_view channel) {
  if (status.ok()) return status;
  const std::string prefix = "channel '" + std::string(channel) + "': ";
  if (status.message().starts_with(prefix)) return status;
  return Status(status.code(), prefix + status.message(), status.reason());
}

InMemorySource::InMemorySource(std::vector<data::Batch> batches, std::uint64_t seed,
                               bool shuffle)
    : batches_(std::move(batches)), shuffle_(shuffle), rng_(seed) {
  for (const data::Batch& b : batches_) {
    rows_ += b.rows;
    order_.push_back(&b);
  }
}

Status InMemorySource::ForEachGroup(std::size_t max_rows, const BatchGroupFn& fn) {
  if (max_rows < rows_) {
    // Evenly spaced batches, in file order.
    const double stride = double(rows_) / double(std::max<std::size_t>(max_rows, 1));
    std::vector<const data::Batch*> sample;
    std::size_t taken = 0, seen = 0;
    double next = 0;
    for (const data::Batch& b : batches_) {
      if (taken >= max_rows) break;
      if (double(seen) >= next) {
        sample.push_back(&b);
        taken += b.rows;
        next += stride * double(b.rows);
      }
      seen += b.rows;
    }
    return fn(sample);
  }
  if (shuffle_ && passes_ > 0) std::shuffle(order_.begin(), order_.end(), rng_);
  ++passes_;
  return fn(order_);
}

Result<FitResult> Fit(const Options& options, const DataSummary& summary,
                      const FeatureStats& stats, EpochSource& train, EpochSource* validation,
                      const FitCallbacks& callbacks) {
  auto log = [&](const std::string& line) {
    if (callbacks.log) callbacks.log(line);
  };
  auto emit = [&](std::string_view channel, std::string_view metric, double value,
                  std::optional<int> epoch) {
    if (callbacks.metric) callbacks.metric(channel, metric, value, epoch);
  };

  const TrainingPlan plan = PlanTraining(options, summary);
  MultiModelTrainer trainer(options, plan, stats, summary.dim);
  const int models = trainer.num_models();
  log("training " + std::to_string(models) + " models on " + std::to_string(summary.rows) +
      " rows x " + std::to_string(summary.dim) + " features (" +
      (summary.sparse ? "sparse" : "dense") + "), mini_batch_size " +
      std::to_string(options.mini_batch_size) + ", learning-rate step " +
      std::to_string(plan.lr_step));

  FitResult result;
  const double unit = LossUnitFactor(options.loss, stats.label_scale);
  std::vector<double> best_loss(models, std::numeric_limits<double>::infinity());
  double best_overall = std::numeric_limits<double>::infinity();
  int epochs_without_improvement = 0;

  for (int epoch = 0; epoch < options.epochs; ++epoch) {
    trainer.BeginEpoch();
    RETURN_IF_ERROR(WithChannel(train.ForEachGroup(kAllRows,
                                                   [&](std::span<const data::Batch* const> g) {
                                                     trainer.TrainBatches(g);
                                                     return Status::Ok();
                                                   }),
                                "train"));
    std::vector<double> train_loss = trainer.EndEpoch();
    for (double& l : train_loss) l *= unit;
    result.train_loss.push_back(train_loss);

    std::vector<double> watched = train_loss;
    if (validation) {
      auto accumulators = EvaluateAll(options, trainer, *validation, kAllRows);
      if (!accumulators.ok()) return WithChannel(accumulators.status(), "validation");
      for (int m = 0; m < models; ++m) watched[m] = (*accumulators)[m].mean_loss();
      result.validation_loss.push_back(watched);
    }
    // NaN (a diverged model) never counts as best.
    int epoch_best = -1;
    for (int m = 0; m < models; ++m) {
      if (watched[m] < best_loss[m]) {
        best_loss[m] = watched[m];
        trainer.KeepBest(m);
      }
      if (std::isfinite(watched[m]) && (epoch_best < 0 || watched[m] < watched[epoch_best])) {
        epoch_best = m;
      }
    }
    const int reported = epoch_best < 0 ? 0 : epoch_best;
    emit("train", "objective_loss", train_loss[reported], epoch);
    std::string line = "epoch " + std::to_string(epoch) + ": train objective_loss " +
                       Format(train_loss[reported]);
    if (validation) {
      emit("validation", "objective_loss", watched[reported], epoch);
      line += ", validation objective_loss " + Format(watched[reported]);
    }
    log(line + " (best of " + std::to_string(models) + " models: model " +
        std::to_string(reported) + ")");
    result.epochs_run = epoch + 1;

    const double current = epoch_best < 0 ? std::numeric_limits<double>::infinity()
                                          : watched[epoch_best];
    const bool improved =
        !std::isfinite(best_overall)
            ? std::isfinite(current)
            : current < best_overall - options.early_stopping_tolerance * std::abs(best_overall);
    best_overall = std::min(best_overall, current);
    epochs_without_improvement = improved ? 0 : epochs_without_improvement + 1;
    if (epochs_without_improvement >= options.early_stopping_patience) {
      log("early stopping: no relative improvement above " +
          Format(options.early_stopping_tolerance) + " for " +
          std::to_string(epochs_without_improvement) + " epochs");
      break;
    }
  }
  trainer.RestoreBest();

  // Model selection (and the binary threshold) on a calibration sample.
  const auto selection_start = std::chrono::steady_clock::now();
  const std::size_t calibration_rows = options.num_calibration_samples.value_or(kAutoCalibrationRows);
  EpochSource& calibration_source = validation ? *validation : train;
  auto accumulators = EvaluateAll(options, trainer, calibration_source, calibration_rows);
  if (!accumulators.ok()) {
    return WithChannel(accumulators.status(), validation ? "validation" : "train");
  }
  const bool binary = options.predictor_type == PredictorType::kBinaryClassifier;
  const float default_threshold = options.loss == Loss::kHinge ? 0.0f : 0.5f;
  int selected = -1;
  double selected_value = -std::numeric_limits<double>::infinity();
  float selected_threshold = default_threshold;
  for (int m = 0; m < models; ++m) {
    const MetricAccumulator& acc = (*accumulators)[m];
    if (!std::isfinite(acc.mean_loss())) continue;
    double value = -acc.mean_loss();
    float threshold = default_threshold;
    if (binary && options.selection != SelectionCriterion::kLossFunction) {
      const ThresholdChoice choice =
          TuneThreshold(acc.binary_scores(), acc.binary_labels(), options.selection,
                        options.f_beta, options.target_recall, options.target_precision,
                        default_threshold);
      value = choice.value;
      threshold = choice.threshold;
    }
    // Ties go to the lower loss.
    if (selected < 0 || value > selected_value ||
        (value == selected_value && acc.mean_loss() < (*accumulators)[selected].mean_loss())) {
      selected = m;
      selected_value = value;
      selected_threshold = threshold;
    }
  }
  if (selected < 0) {
    return InvalidArgument(
        "training diverged: every model's loss is not a finite number; lower learning_rate or "
        "turn on normalize_data");
  }
  result.model = trainer.Export(selected);
  if (binary) result.model.set_threshold(selected_threshold);
  result.model.training_info()["epochs"] = result.epochs_run;
  result.model.training_info()["selected_model"] = selected;
  result.selected_model = selected;
  result.selection_value = selected_value;
  log("selected model " + std::to_string(selected) + " (learning_rate " +
      Format(plan.models[selected].learning_rate) + ", wd " + Format(plan.models[selected].wd) +
      ", l1 " + Format(plan.models[selected].l1) + ")" +
      (binary ? ", threshold " + Format(selected_threshold) : std::string()) + " in " +
      Format(std::chrono::duration<double>(std::chrono::steady_clock::now() - selection_start)
                 .count()) +
      " s");
  return result;
}

Result<MetricList> Evaluate(const Options& options, const LinearModel& model,
                            EpochSource& source) {
  LossParams params = LossParamsFrom(options);
  params.outputs = model.num_outputs();
  MetricAccumulator accumulator(options, params);
  std::vector<float> z;
  std::size_t rows = 0;
  RETURN_IF_ERROR(source.ForEachGroup(kAllRows, [&](std::span<const data::Batch* const> group) {
    for (const data::Batch* b : group) {
      RETURN_IF_ERROR(CheckEvaluationBatch(options, *b, model.feature_dim(), rows + 1));
      rows += b->rows;
      RETURN_IF_ERROR(model.Outputs(*b, &z));
      accumulator.Add(z.data(), b->labels.data(), b->rows);
    }
    return Status::Ok();
  }));
  return accumulator.Metrics(model.threshold());
}

}  // namespace hearth::algorithms::linear_learner
