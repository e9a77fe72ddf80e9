// XGBoost's evaluation metrics, computed here from the booster's predictions.
//
// libxgboost 1.7's CPU metrics are slow next to the predictions they read: on 300k rows one
// XGBoosterEvalOneIter metric costs 25 ms (logloss) to 95 ms (auc), while the predictions of a
// matrix in the booster's cache come back in 3 ms. The training loop (boosting.h) evaluates
// round 0 through XGBoost, checks that these functions give the same values, and only then
// uses them for the later rounds.
//
// Each metric follows libxgboost 1.7.4's CPU code (src/metric/elementwise_metric.cu,
// multiclass_metric.cu, auc.cc): a row's loss in float, times its weight in float, summed in
// double per thread over OpenMP's static split of the rows, the threads' sums then added in
// order, and the ratio of the loss and weight sums. With XGBoost's thread count the sums are
// XGBoost's, usually to the last bit.
//
// Thread safety: the functions keep no state; EvalMetric uses `threads` OpenMP threads.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "algorithms/xgboost/xgboost_api.h"
#include "common/status.h"

namespace hearth::algorithms::xgb {

// What XGBoost's metrics read for an objective (the objective's EvalTransform).
enum class MetricInput {
  kPredictions,       // Booster::Predict's transformed predictions
  kSoftmaxOfMargins,  // multi:softmax predicts classes; its metrics read the probabilities
};
// nullopt: an objective whose metrics are not reproduced here (ranking, survival, any other).
std::optional<MetricInput> MetricInputFor(std::string_view objective);

// Each row of margins becomes class probabilities, as XGBoost's common::Softmax computes them.
void SoftmaxRows(PredictionMatrix& margins);

struct LearnerSettings {
  std::string objective;  // "binary:logistic", ...
  int threads = 1;        // the threads XGBoost's metrics run on
};
// Reads Booster::ConfigJson's document.
Result<LearnerSettings> ReadLearnerSettings(std::string_view config_json);

// The value XGBoost's metric `name` (as its evaluation line names it: "rmse", "error@0.7",
// ...) gives for `predictions` (what MetricInputFor says the metric reads) against `labels`,
// each row weighted by `weights` (empty: 1). Supported: rmse, rmsle, mae, logloss, error,
// error@<t>, poisson-nloglik, mlogloss, merror and binary auc; NaN where XGBoost gives NaN
// (auc without both classes). Unimplemented: any other metric, or one that does not apply to
// the shape of `predictions` (multi-class auc, logloss on class probabilities, ...).
// InvalidArgument: labels or weights are not one per row.
Result<double> EvalMetric(std::string_view name, const PredictionMatrix& predictions,
                          std::span<const float> labels, std::span<const float> weights,
                          int threads);

}  // namespace hearth::algorithms::xgb
