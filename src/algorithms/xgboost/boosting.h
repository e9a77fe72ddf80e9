// Boosting: the training loop of SageMaker's XGBoost container on libxgboost's C API.
//
// Each round is one XGBoosterUpdateOneIter, then every evaluation set is scored and one line
// is printed, exactly as the container's EvaluationMonitor prints it:
//
//   [<round>]\ttrain-<metric>:<value>\tvalidation-<metric>:<value>
//
// (values with 5 decimals; the platform's log shows each tab as "#011", which is what the
// metric regexes match). Per set, XGBoost's own metrics come first, then the container's
// (accuracy, f1, mse, computed here from the predictions).
//
// XGBoost's metrics come from XGBoosterEvalOneIter in round 0. When every one of them is one
// eval_metrics.h reproduces, for an objective it covers, and the values computed here from
// the predictions agree with XGBoost's (1e-6 relative, or 1e-9 absolute), the later rounds
// compute them here, from one Predict per set that the container's metrics share: libxgboost's
// CPU metrics cost more than the round's predictions. Otherwise every round asks XGBoost.
// Should a later round's predictions be ones not evaluated here (a NaN score for auc), XGBoost
// evaluates from that round on. The lines are the same either way.
//
// With early_stopping_rounds, the last metric of the last set decides, maximised for auc,
// aucpr, map, ndcg, accuracy and f1: training stops once it has not improved for that many
// rounds. The booster keeps every tree, and gets xgb.train's attributes best_iteration,
// best_score (early stopping only) and best_ntree_limit, which the serving side honours as
// SageMaker's does.
//
// Thread safety: RunBoosting uses the booster from the calling thread only.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "algorithms/xgboost/xgboost_api.h"
#include "common/status.h"

namespace hearth::algorithms::xgb {

struct EvalSet {
  std::string name;  // "train", "validation"
  const DMatrix* matrix = nullptr;
};

struct EvalEntry {
  std::string set;
  std::string metric;
  double value = 0;
};

// "[3]\ttrain-rmse:0.1\tvalidation-rmse:0.2" -> {train, rmse, 0.1}, {validation, rmse, 0.2}.
Result<std::vector<EvalEntry>> ParseEvalLine(std::string_view line);
// The line the container prints for round `iteration`.
std::string FormatEvalLine(int iteration, std::span<const EvalEntry> entries);

// accuracy / f1 (macro) / mse of `predictions` against `labels`, as the container's
// custom metrics define them: a class is the argmax of a row's scores, or the score rounded
// half to even when a row has one.
Result<double> ContainerMetric(std::string_view metric, const PredictionMatrix& predictions,
                               const std::vector<float>& labels);

// Whether a larger value of `metric` is better (for early stopping).
bool MetricMaximized(std::string_view metric);

struct BoostingOptions {
  int num_round = 1;
  int early_stopping_rounds = 0;  // 0: off
  std::vector<std::string> custom_metrics;
  int num_parallel_tree = 1;
  // Compute XGBoost's metrics here after round 0 when they agree (above); false: always
  // XGBoosterEvalOneIter.
  bool native_metrics = true;
};

struct BoostingResult {
  int rounds = 0;            // rounds trained
  int best_iteration = 0;    // 0-based
  std::optional<double> best_score;  // set with early stopping
  // Whether XGBoost's metrics were computed here after round 0 (see above).
  bool native_evaluation = false;
};

// Trains `booster` (created with the evaluation sets' matrices as its cache, parameters
// set) for up to options.num_round rounds, printing one evaluation line per round to `log`.
// `evals` must be non-empty when early stopping is on.
Result<BoostingResult> RunBoosting(Booster& booster, const DMatrix& train,
                                   std::span<const EvalSet> evals, const BoostingOptions& options,
                                   const std::function<void(std::string_view)>& log);

}  // namespace hearth::algorithms::xgb
