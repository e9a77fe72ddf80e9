// GaussianProcess: the surrogate model of the Bayesian strategy. A zero-mean GP with a Matérn 5/2
// ARD kernel,
//
//   k(a, b) = s² (1 + √5 r + 5/3 r²) exp(-√5 r),   r² = Σ_d ((a_d - b_d) / l_{g(d)})²,
//
// plus Gaussian observation noise σ². Coordinates are grouped so that a categorical parameter's
// one-hot block shares one lengthscale: g(d) is the group of coordinate d. The caller
// standardises the targets (zero mean, unit variance), which is what the priors below assume.
//
// Hyperparameters are fitted by maximising the log marginal likelihood plus log priors (MAP)
// over bounded log-values:
//   lengthscale l ~ Gamma(2, 2) (mean 1, the width of the unit cube), l in [0.005, 50];
//   signal variance s² ~ Gamma(2, 0.15), s² in [0.01, 100];
//   noise variance σ² in [1e-9, 1], flat in log σ² (deterministic objectives need ~0 noise,
//   noisy ones get what the data say).
// L-BFGS runs from the best of a default start and a few random ones. Above 48 points the
// start comes instead from the fit to a subsample of 32 (the 16 best observations and 16
// spread over the others), polished on all points for five iterations: each step costs O(n³),
// and the subsample's optimum is close.
// The starts are drawn from an Rng the caller keys, so a fit is a pure function of its inputs.
//
// The linear algebra is Eigen's LLT. When K is numerically singular (near-duplicate points),
// jitter of 1e-8 s², then 1e-6 s², is added to the diagonal.
//
// Thread safety: a GaussianProcess is immutable after construction; const methods may be called
// concurrently.
#pragma once

#include <vector>

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "common/status.h"

namespace hearth::tuning {

class Rng;

// Matérn 5/2 correlation at scaled distance r >= 0.
double Matern52(double r);

// Kernel hyperparameters as log-values. Packed order: lengthscales (one per group), signal
// variance, noise variance.
struct GpParams {
  Eigen::VectorXd log_lengthscales;
  double log_signal_variance = 0.0;
  double log_noise_variance = -9.0;

  int num_groups() const { return static_cast<int>(log_lengthscales.size()); }
  Eigen::VectorXd Pack() const;
  static GpParams Unpack(const Eigen::VectorXd& packed, int num_groups);
};

class GaussianProcess {
 public:
  // `x` holds one point per row; `groups[d]` is the lengthscale group of column d (0-based,
  // < params.num_groups()). InvalidArgument on mismatched sizes, Internal if K cannot be
  // factorised even with jitter.
  static Result<GaussianProcess> Create(Eigen::MatrixXd x, Eigen::VectorXd y,
                                        std::vector<int> groups, GpParams params);

  int num_points() const { return static_cast<int>(x_.rows()); }
  const GpParams& params() const { return params_; }
  const Eigen::MatrixXd& x() const { return x_; }

  double Kernel(const Eigen::Ref<const Eigen::VectorXd>& a,
                const Eigen::Ref<const Eigen::VectorXd>& b) const;

  // Posterior mean and variance of the latent function (noise excluded) at each row of `xs`.
  void Predict(const Eigen::MatrixXd& xs, Eigen::VectorXd* mean, Eigen::VectorXd* variance) const;

  // The same at one point, with the gradients of mean and variance with respect to the point.
  void PredictWithGradient(const Eigen::VectorXd& point, double* mean, double* variance,
                           Eigen::VectorXd* mean_gradient,
                           Eigen::VectorXd* variance_gradient) const;

  // Posterior mean at the training points (what the model believes was observed).
  Eigen::VectorXd FittedMean() const;

  double LogMarginalLikelihood() const { return log_marginal_likelihood_; }

  // Σ_i log p(y_i | the other points): the leave-one-out log predictive density of the targets
  // (noise included), with these hyperparameters. Closed form from K⁻¹ (Rasmussen & Williams,
  // eq. 5.12): the held-out mean is y_i - [K⁻¹y]_i / [K⁻¹]_ii, the variance 1 / [K⁻¹]_ii.
  double LeaveOneOutLogDensity() const;

  // This model's hyperparameters, conditioned on extra points too. Used for pending
  // evaluations: conditioning on the current posterior mean there ("kriging believer") leaves
  // the mean unchanged and shrinks the variance around them.
  Result<GaussianProcess> WithExtraData(const Eigen::MatrixXd& x, const Eigen::VectorXd& y) const;

 private:
  GaussianProcess() = default;

  Eigen::MatrixXd x_;
  Eigen::MatrixXd points_;  // x_ scaled by the inverse lengthscales, one point per column
  Eigen::VectorXd y_;
  std::vector<int> groups_;
  GpParams params_;
  Eigen::VectorXd inverse_lengthscale_;  // per column
  double signal_variance_ = 1.0;
  Eigen::LLT<Eigen::MatrixXd> llt_;
  Eigen::VectorXd alpha_;  // K⁻¹ y
  double noise_plus_jitter_ = 0.0;
  double log_marginal_likelihood_ = 0.0;
};

// log p(y | x, params) for the model above; with `gradient`, also its gradient with respect to
// the packed log-parameters. Returns -infinity if K cannot be factorised.
double GpLogMarginalLikelihood(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                               const std::vector<int>& groups, const Eigen::VectorXd& packed,
                               Eigen::VectorXd* gradient);

struct GpFitOptions {
  int random_starts = 8;    // random starts, scored (with the default start) by value alone
  int refined_starts = 1;   // L-BFGS runs, from the best-scored starts
  int max_iterations = 20;  // per L-BFGS run
  // An L-BFGS run stops when an iteration gains less than this times (|log posterior| + 1):
  // differences that small do not change the model's suggestions.
  double relative_improvement = 1e-6;
  // Above this many points, the start comes from a fit to `subsample_size` of them (the best
  // half by target, the rest evenly spaced over the others), polished on all of them for at
  // most `polish_iterations`. 0 disables.
  int subsample_above = 48;
  int subsample_size = 32;
  int polish_iterations = 5;
};

// MAP hyperparameters for (x, y) as described above. `rng` supplies the random starts.
GpParams FitGpParams(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                     const std::vector<int>& groups, int num_groups, Rng& rng,
                     const GpFitOptions& options = {});

}  // namespace hearth::tuning
