// linear-learner: SageMaker's Linear Learner built-in (binary and multiclass classifiers,
// regressors), trained by mini-batch SGD/Adam on several models at once and served as
// {"score", "predicted_label"} predictions. README.md in this folder describes the
// hyperparameters, the data it reads, the metrics it reports and the model file it writes.
//
// Thread safety: the Algorithm is an immutable singleton (algorithm.h).
#pragma once

#include "algorithms/algorithm.h"

namespace hearth::algorithms {

const Algorithm& LinearLearnerAlgorithm();

}  // namespace hearth::algorithms
