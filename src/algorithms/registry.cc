#include "algorithms/algorithm.h"

namespace hearth::algorithms {

const std::vector<const Algorithm*>& Registry() {
  static const std::vector<const Algorithm*> kAll = {};
  return kAll;
}

const Algorithm* FindAlgorithm(std::string_view name) {
  for (const Algorithm* a : Registry()) {
    if (a->name() == name) return a;
  }
  return nullptr;
}

}  // namespace hearth::algorithms
