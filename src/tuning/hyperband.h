// The Hyperband schedule (Li et al., "Hyperband: A Novel Bandit-Based Approach to
// Hyperparameter Optimization", JMLR 2018) on SageMaker's epoch resource, run asynchronously
// and by stopping, as a tuning job must: a training job cannot be paused and resumed, so
// "promoting" a trial at a rung means letting it train on, and not promoting it means stopping
// it.
//
// Rungs are the epochs r_k = MinResource · eta^k below MaxResource (eta = 3). There is one
// bracket per rung plus one without any: a trial in bracket b is first judged at rung b and then
// at every later rung; the last bracket trains every trial to MaxResource. Brackets are drawn
// with Hyperband's proportions, n_s ∝ (s_max + 1) / (s + 1) · eta^s for a bracket with s rungs
// (s_max = number of rungs), so most trials get the short, aggressive brackets.
//
// At a rung, a trial continues when its objective is in the best 1/eta of those that trials of
// the same bracket recorded there before it (asynchronous successive halving, Li et al.,
// "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020); the first trial to
// reach a rung always continues. A trial is never stopped before MinResource epochs, and is
// stopped once it reaches MaxResource, as SageMaker documents for HyperbandStrategyConfig.
//
// Thread safety: a HyperbandSchedule is an immutable value.
#pragma once

#include <cstdint>
#include <vector>

namespace hearth::tuning {

inline constexpr int kHyperbandEta = 3;

struct HyperbandSchedule {
  std::int64_t max_resource = 1;
  std::vector<std::int64_t> rungs;          // ascending, all < max_resource
  std::vector<double> bracket_probability;  // rungs.size() + 1 entries, summing to 1

  int num_brackets() const { return static_cast<int>(bracket_probability.size()); }
  // The epochs at which a trial of `bracket` is judged.
  std::vector<std::int64_t> RungsOf(int bracket) const {
    return {rungs.begin() + bracket, rungs.end()};
  }
};

// 1 <= min_resource <= max_resource.
HyperbandSchedule MakeHyperbandSchedule(std::int64_t min_resource, std::int64_t max_resource,
                                        int eta = kHyperbandEta);

// The q-quantile of `values` (non-empty) with linear interpolation between order statistics
// (numpy's default).
double Quantile(std::vector<double> values, double q);

}  // namespace hearth::tuning
