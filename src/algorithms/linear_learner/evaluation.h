// Evaluation: the linear learner's losses and SageMaker's quality metrics for it, and the
// decision-threshold search SageMaker runs for binary classifiers.
//
// Losses are those of the `loss` hyperparameter, per example, in label units:
//   logistic        log(1 + e^z) - y z  (binary; multiclass: summed over one-vs-all outputs)
//   softmax_loss    -log softmax(z)_y
//   hinge_loss      max(0, margin - t z), t = 2y - 1 (multiclass: one-vs-all, summed)
//   squared_loss    (z - y)^2
//   absolute_loss   |z - y|
//   eps_insensitive_squared_loss   max(0, |z - y| - eps)^2
//   eps_insensitive_absolute_loss  max(0, |z - y| - eps)
//   quantile_loss   q (y - z) if y >= z else (1 - q)(z - y)
//   huber_loss      (z - y)^2 / 2 if |z - y| <= delta else delta (|z - y| - delta / 2)
//
// Thread safety: MetricAccumulator is not thread safe; the free functions are pure.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/linear_learner/options.h"

namespace hearth::algorithms::linear_learner {

struct LossParams {
  Loss loss = Loss::kLogistic;
  int outputs = 1;
  float margin = 1.0f;
  float quantile = 0.5f;
  float insensitivity = 0.01f;
  float huber_delta = 1.0f;
};

LossParams LossParamsFrom(const Options& options);

// The loss of one example: `z` holds params.outputs raw outputs, `y` the label.
double ExampleLoss(const LossParams& params, const float* z, float y);

// Metric name -> value, in the order they are reported.
using MetricList = std::vector<std::pair<std::string, double>>;

// Accumulates raw model outputs (before the link) and labels over one pass of a channel.
class MetricAccumulator {
 public:
  MetricAccumulator(const Options& options, LossParams params);

  // `z`: rows * outputs raw outputs; `labels`: rows labels.
  void Add(const float* z, const float* labels, std::size_t rows);

  std::size_t rows() const { return rows_; }
  double mean_loss() const { return rows_ ? loss_sum_ / rows_ : 0.0; }

  // SageMaker's metrics for the predictor type. `threshold` is the binary decision threshold
  // in score space (probability for logistic, raw output for hinge).
  MetricList Metrics(float threshold) const;

  // Binary only: the kept scores (after the link) and labels.
  const std::vector<float>& binary_scores() const { return binary_scores_; }
  const std::vector<float>& binary_labels() const { return binary_labels_; }

 private:
  Options options_;
  LossParams params_;
  std::size_t rows_ = 0;
  double loss_sum_ = 0;
  // Regression.
  double squared_error_sum_ = 0, absolute_error_sum_ = 0, label_sum_ = 0, label_square_sum_ = 0;
  // Binary.
  std::vector<float> binary_scores_, binary_labels_;
  // Multiclass.
  std::vector<double> true_positives_, predicted_, actual_;
  double top1_hits_ = 0, top_k_hits_ = 0, dcg_sum_ = 0;
};

struct ThresholdChoice {
  float threshold = 0.5f;
  double value = 0;  // the criterion at that threshold (higher is better)
};

// The threshold on `scores` that maximises `criterion` over the labelled sample (for
// kLossFunction: `default_threshold`, valued by accuracy). Ties prefer the middle of the
// best run of thresholds, so a plateau does not pin the threshold to one example's score.
ThresholdChoice TuneThreshold(std::span<const float> scores, std::span<const float> labels,
                              SelectionCriterion criterion, float beta, float target_recall,
                              float target_precision, float default_threshold);

// Area under the ROC curve (ties count one half). 0.5 when one class is absent.
double RocAuc(std::span<const float> scores, std::span<const float> labels);

}  // namespace hearth::algorithms::linear_learner
