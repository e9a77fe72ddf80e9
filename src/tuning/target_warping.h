// Output warping of the Bayesian strategy: which transform of the observed objective values the
// Gaussian process is fitted to.
//
// A GP assumes its targets vary smoothly and with Gaussian spread. Many tuning objectives do not:
// a validation AUC sits on a plateau near 0.99 for most configurations and falls off a cliff
// (to 0.5, say) for a few, and standardising such values leaves the good region flat and the
// model's length scales set by the cliff. The half-rank warp (Google Vizier's output warper,
// Song et al., "Open Source Vizier: Distributed Infrastructure and API for Reliable and Flexible
// Black-box Optimization", 2022) keeps the better half of the values as they are and replaces the
// worse half by Gaussian quantiles of their ranks, so a cliff weighs no more than any other bad
// value. Smooth objectives (Branin, Hartmann6) are modelled better without it: the size of a bad
// value says where the optimum is. So both are fitted and the one that predicts the observed
// values better is used (FitTargetModel below). A warped model also sees the worse half as only
// somewhat worse, so once the best region is pinned down it spends more trials elsewhere.
//
// Targets here are minimised values (the strategy negates Maximize objectives first).
//
// Thread safety: free functions without shared state.
#pragma once

#include <functional>
#include <vector>

#include <Eigen/Core>

#include "common/status.h"
#include "tuning/gp.h"

namespace hearth::tuning {

// The standard normal quantile Φ⁻¹(p) for 0 < p < 1, to about 1e-15 relative accuracy.
double NormalQuantile(double p);

// The half-rank warp g of minimised targets y. With m the median of y and s the root mean square
// distance from m of the distinct values <= m (of all distinct values if that is 0):
//   y <= m: g(y) = y;
//   y > m:  the distinct values above m, ranked k = 1 for the worst to B for the best, go to
//           g = m - s Φ⁻¹(q_k), q_k = (k - 1/2) / (2 (B + c)), with c = 1/2 when m is itself
//           one of the values and 0 otherwise.
// g is strictly increasing and continuous at m (the median, as rank B + 1, would map to m), and
// the worst value lands about two s above m whatever its size. `log_slope` holds log g'(y_i):
// 0 for y_i <= m; above m, the slope of the piecewise-linear g through the distinct values,
// between the two neighbours of y_i (one-sided at the worst value). All values equal: g is the
// identity.
struct WarpedTargets {
  Eigen::VectorXd values;
  Eigen::VectorXd log_slope;
};
WarpedTargets HalfRankWarp(const Eigen::VectorXd& y);

enum class TargetWarping { kNone, kHalfRank };

// The model the strategy searches with: a GP fitted to the standardised (zero mean, unit
// variance) transform of the targets.
struct TargetModel {
  TargetWarping warping = TargetWarping::kNone;
  Eigen::VectorXd standardised;  // what the GP was fitted to
  // How well the model predicts the original targets: Σ_i log p(y_i | the others), the GP's
  // leave-one-out log predictive density plus the log Jacobian of y -> standardised value.
  double score = 0;
  GaussianProcess gp;
};

// Hyperparameters for (x, standardised targets); the strategy passes its memoised MAP fit.
using GpFitter = std::function<GpParams(const Eigen::MatrixXd&, const Eigen::VectorXd&)>;

// Fits a GP to the plain and (from three points on) the half-rank-warped targets, each with
// `fit`'s hyperparameters, and returns the one with the higher score: the plain one on ties, the
// other one when only it can be built, Internal when neither can. The score is leave-one-out
// rather than the marginal likelihood (with the same Jacobian): the warp is itself fitted to the
// data, and the marginal likelihood preferred it on Branin for much of a run, which then needed
// about a fifth more evaluations (bench/tuning_strategies.py); leave-one-out keeps Branin and
// Hartmann6 on plain targets and still picks the warp for XGBoost's validation AUC.
Result<TargetModel> FitTargetModel(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                                   const std::vector<int>& groups, const GpFitter& fit);

}  // namespace hearth::tuning
