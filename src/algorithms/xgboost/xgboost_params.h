// XGBoost's hyperparameters as SageMaker's XGBoost container (1.x) accepts them: the spec
// table (names, types, ranges, SageMaker's aliases), the checks that span several values
// (num_class with multi:*, eval_metric against the objective, updater plugins, constraint
// syntax), and the split between what goes to XGBoosterSetParam and what the training loop
// handles itself (num_round, early_stopping_rounds, csv_weights, the metrics XGBoost lacks).
//
// Thread safety: pure functions over values.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "algorithms/hyperparameters.h"
#include "common/status.h"

namespace hearth::algorithms::xgb {

const std::vector<HyperparameterSpec>& HyperparameterSpecs();

// Metrics SageMaker's container computes itself because XGBoost 1.7 has none of that name.
bool IsContainerMetric(std::string_view metric);

struct TrainingPlan {
  int num_round = 0;
  int early_stopping_rounds = 0;  // 0: no early stopping
  bool csv_weights = false;       // CSV: the column after the label is the instance weight
  std::string objective;
  int num_class = 0;
  int num_parallel_tree = 1;
  // In order, for XGBoosterSetParam; "eval_metric" may repeat (one entry per metric).
  std::vector<std::pair<std::string, std::string>> booster_params;
  // Container metrics (accuracy, f1, mse) to print after XGBoost's own, in this order.
  std::vector<std::string> custom_metrics;
};

// `hps` has passed Hyperparameters::Parse with HyperparameterSpecs(). `raw` is the job's
// hyperparameters.json, read for `_tuning_objective_metric` ("validation:auc"), whose metric
// is evaluated too, as SageMaker does. `num_cpus` is XGBoost's nthread unless the job set it.
// InvalidArgument naming the hyperparameter for combinations XGBoost or SageMaker reject.
Result<TrainingPlan> PlanTraining(const Hyperparameters& hps,
                                  const std::map<std::string, std::string>& raw, int num_cpus);

}  // namespace hearth::algorithms::xgb
