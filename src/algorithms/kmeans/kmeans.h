// SageMaker's k-means built-in (`kmeans`, ECR repository "kmeans"): hyperparameters, channels
// (train, optional test), metrics (test:msd, test:ssd, train:msd), the model_algo-1 artifact
// and the closest_cluster / distance_to_cluster response. README.md describes the algorithm
// and where it differs from SageMaker's.
//
// Thread safety: the Algorithm is an immutable singleton.
#pragma once

#include "algorithms/algorithm.h"

namespace hearth::algorithms {

const Algorithm& KMeansAlgorithm();

}  // namespace hearth::algorithms
