// The linear learner's numeric core: one scan of the training data (label checks, counts,
// normalisation statistics), then several linear models trained together by mini-batch SGD /
// Adam / RMSProp, each mini-batch read once for all of them.
//
// Layout: the parameters of all models form one (M*K) x D matrix W (M models, K outputs
// each, one row per output) in the normalised feature space x~ = (x - mean) * scale.
// Normalisation is never materialised: a mini-batch costs two products on the raw rows,
//   Z = X (scale . W)^T + (b - W (mean . scale))          forward
//   dW = (G^T X - (1^T G)^T mean^T) . scale / rows        backward
// Two teams can run an epoch's batches: one thread with every model, or threads owning whole
// models (a contiguous block of W's rows) that walk the same batches without waiting on each
// other. Spread, the arithmetic divides but every thread reads every row; alone, one core
// reads once and computes everything. Which wins depends on the machine and on its load, so
// runs of 16 batches are timed and the faster team trains (the other gets one run an epoch,
// to notice a change). A model's arithmetic is the same whichever team runs it, so the result
// does not depend on the choice. Sparse mini-batches take CSR kernels and update only the features
// they touch (lazy updates, as MXNet's sparse optimizers do); sparse data are scaled, never
// shifted.
//
// Thread safety: DataScanner and MultiModelTrainer are not thread safe; a trainer uses its
// own OpenMP team inside TrainBatches and Outputs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "algorithms/linear_learner/evaluation.h"
#include "algorithms/linear_learner/linear_model.h"
#include "algorithms/linear_learner/options.h"
#include "common/status.h"
#include "data/batch.h"

namespace hearth::algorithms::linear_learner {

// x~ = (x - mean) * scale; y~ = (y - label_mean) * label_scale.
struct FeatureStats {
  std::vector<float> mean;
  std::vector<float> scale;
  float label_mean = 0.0f;
  float label_scale = 1.0f;
};

// What one pass over the training data learns.
struct DataSummary {
  std::size_t rows = 0;
  std::size_t dim = 0;
  std::uint64_t values = 0;  // stored feature values (rows * dim when dense)
  bool sparse = false;
  std::vector<double> class_counts;  // classifiers: rows per label value
};

// The first pass. Add() checks each batch (labels present and valid for the predictor type,
// finite values, a consistent width) and feeds the first `num_point_for_scaler` rows to the
// normalisation statistics. Errors say the row (counted from 1 over the whole pass) and the
// rule, without the channel name, which the caller adds.
class DataScanner {
 public:
  explicit DataScanner(const Options& options);
  Status Add(const data::Batch& batch);
  // InvalidArgument when no rows were seen or the width disagrees with feature_dim.
  Result<DataSummary> Summary() const;
  // The statistics the options ask for (identity where normalisation is off).
  FeatureStats Stats() const;

 private:
  Options options_;
  DataSummary summary_;
  std::size_t sample_rows_ = 0;
  std::size_t dense_cols_ = 0;  // width of the dense rows (0: none seen)
  std::vector<double> sum_, square_sum_;
  double label_sum_ = 0, label_square_sum_ = 0;
};

// The settings of one of the models trained together.
struct ModelSetting {
  float learning_rate = 0;
  float wd = 0;
  float l1 = 0;
  float positive_weight = 1;  // binary: weight of label-1 rows
};

// The "auto" values resolved against the data (see the README's table).
struct TrainingPlan {
  std::vector<ModelSetting> models;
  int lr_step = 100;              // updates between learning-rate decays
  float lr_factor = 0.8f;
  float min_lr_ratio = 1e-4f;     // floor, relative to each model's learning rate...
  float min_lr = 0.0f;            // ...unless lr_scheduler_minimum_lr gives one (> 0)
  float momentum = 0.0f;
  std::vector<float> class_weights;  // multiclass (empty = all 1)
};

TrainingPlan PlanTraining(const Options& options, const DataSummary& summary);

// Labels of `batch` valid for the predictor type: present, finite, 0/1 for a binary
// classifier, an integer in [0, num_classes) for a multiclass one. `first_row` numbers the
// batch's first row in messages.
Status CheckLabels(const Options& options, const data::Batch& batch, std::size_t first_row);

class MultiModelTrainer {
 public:
  MultiModelTrainer(const Options& options, const TrainingPlan& plan, const FeatureStats& stats,
                    std::size_t dim);
  ~MultiModelTrainer();

  int num_models() const { return static_cast<int>(plan_.models.size()); }
  int outputs() const { return outputs_; }
  std::size_t dim() const { return dim_; }
  const TrainingPlan& plan() const { return plan_; }

  // An epoch: BeginEpoch, TrainBatches (any number of times, batches in training order),
  // EndEpoch -> each model's mean loss over the epoch's rows, each measured just before the
  // model trained on it (progressive validation), in normalised label units.
  void BeginEpoch();
  void TrainBatches(std::span<const data::Batch* const> batches);
  std::vector<double> EndEpoch();
  std::int64_t updates() const { return step_; }

  // Every model's raw outputs on `batch`, in label units: rows x (M*K), model m's outputs in
  // columns [m*K, m*K + K), row-major. Dense widths and sparse indices must fit dim().
  void Outputs(const data::Batch& batch, std::vector<float>* z) const;

  // Keeps model m's current parameters as its best; RestoreBest puts every kept model back.
  void KeepBest(int m);
  void RestoreBest();

  // Model m with normalisation folded into its weights and bias.
  LinearModel Export(int m) const;

 private:
  struct ThreadScratch;
  struct TeamTiming {
    double seconds_per_row = -1;  // < 0: not timed yet
  };
  // Which team trains the next run of batches: 0 (one thread) or 1 (all threads), by their
  // timed runs so far.
  std::size_t ChooseTeam();
  void TrainRun(std::span<const data::Batch* const> batches, std::vector<ThreadScratch>& team);
  // `next` (may be null) is the batch after `b`, prefetched while `b` computes.
  void TrainBatch(const data::Batch& b, const data::Batch* next, ThreadScratch& s);
  void Forward(const data::Batch& b, const ThreadScratch& s, float* z) const;
  void LossGradient(const data::Batch& b, ThreadScratch& s) const;
  void Backward(const data::Batch& b, const data::Batch* next, ThreadScratch& s) const;
  void Update(const data::Batch& b, ThreadScratch& s);
  void UpdateCell(std::size_t j, std::size_t d, float grad, float step_size);
  float LearningRate(std::size_t column, std::int64_t step) const;
  void RefreshEffective();
  float ComputeOffset(std::size_t column) const;

  Options options_;
  TrainingPlan plan_;
  FeatureStats stats_;
  LossParams loss_params_;  // in normalised label units
  std::size_t dim_;
  int outputs_;
  std::size_t cols_;  // M * K
  bool shift_;        // any mean != 0

  // cols_ x D, row-major (one row per model output).
  std::vector<float> w_, w_effective_, moment1_, moment2_, best_w_;
  std::vector<float> bias_, bias_moment1_, bias_moment2_, offset_, best_bias_;
  // teams_[0]: one thread with every model; teams_[1] (with more than one thread): whole
  // models spread over the threads. Each thread's scratch owns its models' columns.
  std::vector<std::vector<ThreadScratch>> teams_;
  TeamTiming team_timing_[2];
  bool probed_this_epoch_ = false;  // the slower team has had its run this epoch
  std::vector<double> epoch_loss_;  // per model: weighted loss sum over the epoch so far
  std::int64_t step_ = 0;
  double epoch_rows_ = 0;
};

}  // namespace hearth::algorithms::linear_learner
