// RunTraining: `hearth algo <name> train`, the entry point a training host runs for a built-in
// algorithm, under SageMaker's failure contract (reference/sagemaker-api.md §3):
//
//   reads the /opt/ml config (TrainingContext), checks the hyperparameters against the
//   algorithm's table, logs them, trains. Exit 0 on success. On failure writes the reason to
//   /opt/ml/output/failure (-> DescribeTrainingJob's FailureReason), prefixed as SageMaker's
//   built-ins do: "ClientError: " for bad input (hyperparameters, data, configuration),
//   "AlgorithmError: " otherwise, and exits non-zero.
#pragma once

#include "algorithms/algorithm.h"

namespace hearth::algorithms {

int RunTraining(const Algorithm& algorithm);

}  // namespace hearth::algorithms
