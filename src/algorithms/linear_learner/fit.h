// Fit: the linear learner's training loop over epoch-wise batch sources — epochs of the
// MultiModelTrainer, early stopping, keeping each model's best epoch, choosing one model and
// (binary) its decision threshold — plus Evaluate, which scores a model over a source.
//
// Early stopping watches the best model's loss after each epoch: on the validation data when
// there are any, else the training loss measured during the epoch. An epoch whose loss is
// not lower than the best so far by early_stopping_tolerance (relative) counts against
// early_stopping_patience; patience used up ends training. Each model keeps its parameters
// from the epoch where its own loss was lowest.
//
// Model selection: on up to num_calibration_samples rows (auto: 100000) of the validation
// data, or of the training data without a validation channel. Binary classifiers pick the
// model and threshold that maximise binary_classifier_model_selection_criteria; regressors
// and multiclass classifiers pick the lowest objective loss.
//
// Thread safety: none; a Fit call uses OpenMP threads internally.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <random>
#include <span>
#include <string_view>
#include <vector>

#include "algorithms/linear_learner/evaluation.h"
#include "algorithms/linear_learner/linear_model.h"
#include "algorithms/linear_learner/options.h"
#include "algorithms/linear_learner/trainer.h"
#include "common/status.h"
#include "data/batch.h"

namespace hearth::algorithms::linear_learner {

using BatchGroupFn = std::function<Status(std::span<const data::Batch* const>)>;

// Mini-batches, one pass at a time.
class EpochSource {
 public:
  virtual ~EpochSource() = default;
  // One pass, as consecutive groups of mini-batches, stopping after about `max_rows` rows
  // (whole batches). The first error from `fn` or from reading ends the pass.
  virtual Status ForEachGroup(std::size_t max_rows, const BatchGroupFn& fn) = 0;
};

// Batches held in memory. Passes after the first visit them in a fresh random order (the
// rows inside a batch keep theirs), and a pass capped by `max_rows` takes evenly spaced
// batches, so a calibration sample spans the data.
class InMemorySource final : public EpochSource {
 public:
  explicit InMemorySource(std::vector<data::Batch> batches, std::uint64_t seed = 7,
                          bool shuffle = true);
  Status ForEachGroup(std::size_t max_rows, const BatchGroupFn& fn) override;
  const std::vector<data::Batch>& batches() const { return batches_; }
  std::size_t rows() const { return rows_; }

 private:
  std::vector<data::Batch> batches_;
  std::vector<const data::Batch*> order_;
  std::size_t rows_ = 0;
  int passes_ = 0;
  bool shuffle_;
  std::mt19937_64 rng_;
};

struct FitCallbacks {
  std::function<void(std::string_view line)> log;
  std::function<void(std::string_view channel, std::string_view metric, double value,
                     std::optional<int> epoch)>
      metric;
};

struct FitResult {
  LinearModel model;
  int epochs_run = 0;
  int selected_model = 0;
  double selection_value = 0;  // the criterion of the selected model (higher is better)
  std::vector<std::vector<double>> train_loss;       // [epoch][model], label units
  std::vector<std::vector<double>> validation_loss;  // [epoch][model] (with validation)
};

// `status` with "channel '<channel>': " in front of its message (once: a message that
// already starts so is left alone). OK stays OK.
Status WithChannel(const Status& status, std::string_view channel);

// Trains on `train` (whose first pass `summary` and `stats` describe) and returns the
// chosen model. `validation` may be null. InvalidArgument (naming "validation") when the
// validation data do not fit the training data's width or labels.
Result<FitResult> Fit(const Options& options, const DataSummary& summary,
                      const FeatureStats& stats, EpochSource& train, EpochSource* validation,
                      const FitCallbacks& callbacks = {});

// SageMaker's metrics for `model` over one pass of `source` (labels required).
Result<MetricList> Evaluate(const Options& options, const LinearModel& model,
                            EpochSource& source);

}  // namespace hearth::algorithms::linear_learner
