// The Bayesian strategy's construction (the contract is Strategy's, strategy.h).
//
// How suggestion k is chosen:
//   1. While k + (warm-start observations) < initial_random (default max(3, d + 1) for d tunable
//      parameters), or fewer than two observations exist, it is row k of a Latin hypercube of
//      that size drawn from (RandomSeed, "initial design"); past the hypercube, a uniform draw.
//   2. Otherwise a GP (gp.h) is fitted to every observation (warm-start ones and completed
//      trials; Maximize objectives negated) on the encoded configurations, twice: to the
//      standardised targets, and (from three observations on) to the standardised half-rank warp
//      of the targets (the better half as observed, the worse half replaced by Gaussian
//      quantiles of its ranks), each with hyperparameters by MAP from starts drawn from
//      (RandomSeed, "model fit", number of observations). The model whose leave-one-out
//      predictive density of the observed values (Jacobian of the warp included) is higher is
//      used; the plain one on ties. See target_warping.h.
//   3. Pending trials enter as "kriging believer" points: observed at the model's mean, which
//      leaves the mean alone and shrinks the variance there, so parallel suggestions spread out.
//   4. Log expected improvement over the best fitted mean (believer values included) is scored
//      on candidates drawn from (RandomSeed, "candidates", k): every configuration when the
//      space has at most 2048, else 500 uniform draws plus 48 Gaussian perturbations of each
//      of the five best observations, at scales 0.1 to 0.003 of the unit cube (a categorical
//      switches value with probability 0.1). The three best candidates are refined by L-BFGS
//      (20 iterations) over the numeric coordinates (analytic gradient; bounds through
//      x = (1 + sin z) / 2), then snapped back to a feasible configuration.
//   5. The best candidate that is not an existing trial or observation wins (a repeat only when
//      nothing else is left).
// If neither model can be built (a singular kernel even with jitter), the suggestion is a uniform
// draw instead. The fits are memoised per set of observations (both warpings), so the
// suggestions of one Suggest(n) call, which see the same observations, fit once.
#pragma once

#include <memory>

#include "tuning/strategy.h"

namespace hearth::tuning {

int DefaultInitialRandom(int num_parameters);

std::unique_ptr<Strategy> MakeBayesianStrategy(StrategyOptions options);

}  // namespace hearth::tuning
