#include "algorithms/algorithm.h"
#include "algorithms/kmeans/kmeans.h"
#include "algorithms/linear_learner/linear_learner.h"
#include "algorithms/pca/pca.h"
#include "algorithms/xgboost/xgboost_algorithm.h"

namespace hearth::algorithms {

const std::vector<const Algorithm*>& Registry() {
  static const std::vector<const Algorithm*> kAll = {
      &KMeansAlgorithm(),
      &LinearLearnerAlgorithm(),
      &PcaAlgorithm(),
      &XGBoostAlgorithm(),
  };
  return kAll;
}

const Algorithm* FindAlgorithm(std::string_view name) {
  for (const Algorithm* a : Registry()) {
    if (a->name() == name) return a;
  }
  return nullptr;
}

}  // namespace hearth::algorithms
