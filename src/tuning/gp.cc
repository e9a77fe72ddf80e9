#include "tuning/gp.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <numeric>
#include <optional>
#include <utility>

#include "tuning/lbfgs.h"
#include "tuning/random.h"

namespace hearth::tuning {
namespace {

const double kSqrt5 = std::sqrt(5.0);

// Bounds of the packed log-parameters.
constexpr double kMinLengthscale = 0.005;
constexpr double kMaxLengthscale = 50.0;
constexpr double kMinSignalVariance = 0.01;
constexpr double kMaxSignalVariance = 100.0;
constexpr double kMinNoiseVariance = 1e-9;
constexpr double kMaxNoiseVariance = 1.0;

// Gamma(shape, rate) priors as densities of the log-value (Jacobian included), so their modes
// in log space sit at shape / rate.
constexpr double kLengthscaleShape = 2.0;
constexpr double kLengthscaleRate = 2.0;
constexpr double kSignalShape = 2.0;
constexpr double kSignalRate = 0.15;

// The rows of x scaled by the inverse lengthscales, one point per column (contiguous, which is
// what the pairwise loops read).
Eigen::MatrixXd ScaledPoints(const Eigen::MatrixXd& x, const Eigen::VectorXd& inverse_lengthscale) {
  return inverse_lengthscale.asDiagonal() * x.transpose();
}

Eigen::VectorXd InverseLengthscales(const GpParams& params, const std::vector<int>& groups) {
  Eigen::VectorXd inv(static_cast<Eigen::Index>(groups.size()));
  for (size_t d = 0; d < groups.size(); ++d) {
    inv[static_cast<Eigen::Index>(d)] = std::exp(-params.log_lengthscales[groups[d]]);
  }
  return inv;
}

// K(a, b) over scaled points (columns), without noise.
Eigen::MatrixXd KernelMatrix(const Eigen::MatrixXd& points, double signal_variance) {
  const Eigen::Index n = points.cols();
  Eigen::MatrixXd k(n, n);
  for (Eigen::Index a = 0; a < n; ++a) {
    k(a, a) = signal_variance;
    for (Eigen::Index b = 0; b < a; ++b) {
      const double r = (points.col(a) - points.col(b)).norm();
      k(a, b) = k(b, a) = signal_variance * Matern52(r);
    }
  }
  return k;
}

// Factorises k + noise·I, adding jitter when it is numerically singular. Returns the total
// added to the diagonal, or a negative number on failure.
double FactorWithJitter(const Eigen::MatrixXd& k, double noise, double signal_variance,
                        Eigen::LLT<Eigen::MatrixXd>* llt) {
  for (double jitter : {0.0, 1e-8, 1e-6}) {
    const double diagonal = noise + jitter * signal_variance;
    Eigen::MatrixXd m = k;
    m.diagonal().array() += diagonal;
    llt->compute(m);
    if (llt->info() == Eigen::Success) return diagonal;
  }
  return -1.0;
}

// Inverts a lower-triangular matrix in place (its upper part is ignored). Recursive on
// [A 0; B C]⁻¹ = [A⁻¹ 0; -C⁻¹ B A⁻¹ C⁻¹] so that the work is matrix products that skip the
// known zeros: n³/6 multiply-adds, against n³/2 for a triangular solve with the identity.
void InvertLowerInPlace(Eigen::Ref<Eigen::MatrixXd> m) {
  const Eigen::Index n = m.rows();
  if (n <= 24) {
    // Column by column: column j of the inverse needs L's columns > j (not yet overwritten)
    // and the inverse's entries above row i in column j (already computed).
    for (Eigen::Index j = 0; j < n; ++j) {
      m(j, j) = 1.0 / m(j, j);
      for (Eigen::Index i = j + 1; i < n; ++i) {
        double sum = 0;
        for (Eigen::Index k = j; k < i; ++k) sum += m(i, k) * m(k, j);
        m(i, j) = -sum / m(i, i);
      }
    }
    return;
  }
  const Eigen::Index h = n / 2;
  InvertLowerInPlace(m.topLeftCorner(h, h));
  InvertLowerInPlace(m.bottomRightCorner(n - h, n - h));
  const Eigen::MatrixXd b_a =
      m.bottomLeftCorner(n - h, h) * m.topLeftCorner(h, h).triangularView<Eigen::Lower>();
  m.bottomLeftCorner(n - h, h).noalias() =
      -(m.bottomRightCorner(n - h, n - h).triangularView<Eigen::Lower>() * b_a);
}

// Replaces a lower-triangular M (upper part ignored) by the lower triangle of MᵀM, recursively
// on [A 0; D C]: MᵀM = [AᵀA + DᵀD, ·; CᵀD, CᵀC] (n³/6 multiply-adds).
void LowerGramInPlace(Eigen::Ref<Eigen::MatrixXd> m) {
  const Eigen::Index n = m.rows();
  if (n <= 24) {
    // Row a of the result needs M's rows >= a only, so rows are overwritten in order.
    for (Eigen::Index a = 0; a < n; ++a) {
      for (Eigen::Index b = 0; b <= a; ++b) {
        double sum = 0;
        for (Eigen::Index k = a; k < n; ++k) sum += m(k, a) * m(k, b);
        m(a, b) = sum;
      }
    }
    return;
  }
  const Eigen::Index h = n / 2;
  const Eigen::MatrixXd c_d =
      m.bottomRightCorner(n - h, n - h).triangularView<Eigen::Lower>().transpose() *
      m.bottomLeftCorner(n - h, h);
  LowerGramInPlace(m.topLeftCorner(h, h));
  m.topLeftCorner(h, h).selfadjointView<Eigen::Lower>().rankUpdate(
      m.bottomLeftCorner(n - h, h).transpose());
  LowerGramInPlace(m.bottomRightCorner(n - h, n - h));
  m.bottomLeftCorner(n - h, h) = c_d;
}

// The lower triangle of K⁻¹ = L⁻ᵀ L⁻¹ from the factorisation of K.
Eigen::MatrixXd InverseLowerFromCholesky(const Eigen::LLT<Eigen::MatrixXd>& llt) {
  Eigen::MatrixXd m = llt.matrixLLT();
  InvertLowerInPlace(m);
  LowerGramInPlace(m);
  return m;
}

struct Bounds {
  Eigen::VectorXd low;
  Eigen::VectorXd high;
};

Bounds PackedBounds(int num_groups) {
  Bounds b{Eigen::VectorXd(num_groups + 2), Eigen::VectorXd(num_groups + 2)};
  b.low.head(num_groups).setConstant(std::log(kMinLengthscale));
  b.high.head(num_groups).setConstant(std::log(kMaxLengthscale));
  b.low[num_groups] = std::log(kMinSignalVariance);
  b.high[num_groups] = std::log(kMaxSignalVariance);
  b.low[num_groups + 1] = std::log(kMinNoiseVariance);
  b.high[num_groups + 1] = std::log(kMaxNoiseVariance);
  return b;
}

double LogPrior(const Eigen::VectorXd& theta, int num_groups, Eigen::VectorXd* gradient) {
  double value = 0;
  for (int g = 0; g < num_groups; ++g) {
    value += kLengthscaleShape * theta[g] - kLengthscaleRate * std::exp(theta[g]);
    if (gradient) (*gradient)[g] += kLengthscaleShape - kLengthscaleRate * std::exp(theta[g]);
  }
  const double s = theta[num_groups];
  value += kSignalShape * s - kSignalRate * std::exp(s);
  if (gradient) (*gradient)[num_groups] += kSignalShape - kSignalRate * std::exp(s);
  return value;
}

}  // namespace

double Matern52(double r) {
  const double sr = kSqrt5 * r;
  return (1.0 + sr + sr * sr / 3.0) * std::exp(-sr);
}

Eigen::VectorXd GpParams::Pack() const {
  Eigen::VectorXd packed(num_groups() + 2);
  packed.head(num_groups()) = log_lengthscales;
  packed[num_groups()] = log_signal_variance;
  packed[num_groups() + 1] = log_noise_variance;
  return packed;
}

GpParams GpParams::Unpack(const Eigen::VectorXd& packed, int num_groups) {
  GpParams params;
  params.log_lengthscales = packed.head(num_groups);
  params.log_signal_variance = packed[num_groups];
  params.log_noise_variance = packed[num_groups + 1];
  return params;
}

Result<GaussianProcess> GaussianProcess::Create(Eigen::MatrixXd x, Eigen::VectorXd y,
                                                std::vector<int> groups, GpParams params) {
  if (x.rows() != y.size() || x.cols() != static_cast<Eigen::Index>(groups.size())) {
    return InvalidArgument("GaussianProcess: inputs, targets and groups disagree in size");
  }
  for (int g : groups) {
    if (g < 0 || g >= params.num_groups()) {
      return InvalidArgument("GaussianProcess: lengthscale group out of range");
    }
  }
  GaussianProcess gp;
  gp.x_ = std::move(x);
  gp.y_ = std::move(y);
  gp.groups_ = std::move(groups);
  gp.params_ = std::move(params);
  gp.inverse_lengthscale_ = InverseLengthscales(gp.params_, gp.groups_);
  gp.signal_variance_ = std::exp(gp.params_.log_signal_variance);
  gp.points_ = ScaledPoints(gp.x_, gp.inverse_lengthscale_);
  const Eigen::MatrixXd k = KernelMatrix(gp.points_, gp.signal_variance_);
  gp.noise_plus_jitter_ =
      FactorWithJitter(k, std::exp(gp.params_.log_noise_variance), gp.signal_variance_, &gp.llt_);
  if (gp.noise_plus_jitter_ < 0) {
    return Internal("GaussianProcess: kernel matrix is not positive definite");
  }
  gp.alpha_ = gp.llt_.solve(gp.y_);
  const Eigen::Index n = gp.x_.rows();
  const Eigen::MatrixXd& l = gp.llt_.matrixLLT();
  gp.log_marginal_likelihood_ = -0.5 * gp.y_.dot(gp.alpha_) - l.diagonal().array().log().sum() -
                                0.5 * static_cast<double>(n) * std::log(2 * std::numbers::pi);
  return gp;
}

double GaussianProcess::Kernel(const Eigen::Ref<const Eigen::VectorXd>& a,
                               const Eigen::Ref<const Eigen::VectorXd>& b) const {
  const double r = ((a - b).array() * inverse_lengthscale_.array()).matrix().norm();
  return signal_variance_ * Matern52(r);
}

void GaussianProcess::Predict(const Eigen::MatrixXd& xs, Eigen::VectorXd* mean,
                              Eigen::VectorXd* variance) const {
  // Blocks of candidates keep the n × block temporaries small (no page-faulting allocations)
  // and in cache.
  constexpr Eigen::Index kBlock = 64;
  const Eigen::Index m = xs.rows();
  mean->resize(m);
  variance->resize(m);
  const Eigen::VectorXd point_norms = points_.colwise().squaredNorm().transpose();
  Eigen::MatrixXd q;
  Eigen::MatrixXd r2;
  Eigen::ArrayXXd r;
  Eigen::MatrixXd k_star;
  Eigen::MatrixXd v;
  for (Eigen::Index start = 0; start < m; start += kBlock) {
    const Eigen::Index count = std::min(kBlock, m - start);
    q.noalias() = inverse_lengthscale_.asDiagonal() * xs.middleRows(start, count).transpose();
    // Squared distances by |p|² + |q|² - 2 p·q: one matrix product instead of scalar loops.
    r2.noalias() = -2.0 * (points_.transpose() * q);
    r2.colwise() += point_norms;
    r2.rowwise() += q.colwise().squaredNorm();
    r = r2.array().max(0.0).sqrt();
    // Column j of k_star holds k(x_i, xs_j) for every training point i.
    k_star =
        (signal_variance_ * (1.0 + kSqrt5 * r + (5.0 / 3.0) * r.square()) * (-kSqrt5 * r).exp())
            .matrix();
    mean->segment(start, count).noalias() = k_star.transpose() * alpha_;
    v = k_star;
    llt_.matrixL().solveInPlace(v);
    variance->segment(start, count) =
        (signal_variance_ - v.colwise().squaredNorm().transpose().array()).max(0.0).matrix();
  }
}

void GaussianProcess::PredictWithGradient(const Eigen::VectorXd& point, double* mean,
                                          double* variance, Eigen::VectorXd* mean_gradient,
                                          Eigen::VectorXd* variance_gradient) const {
  // Column i of `delta`: (point - x_i) in scaled units.
  const Eigen::MatrixXd delta = (-points_).colwise() + point.cwiseProduct(inverse_lengthscale_);
  const Eigen::ArrayXd r = delta.colwise().norm().transpose().array();
  const Eigen::ArrayXd e = (-kSqrt5 * r).exp();
  const Eigen::VectorXd k_star =
      (signal_variance_ * (1.0 + kSqrt5 * r + (5.0 / 3.0) * r.square()) * e).matrix();
  // dk(x_i, point)/dpoint = factor_i · delta_i / l (per coordinate).
  const Eigen::ArrayXd factor = -5.0 / 3.0 * signal_variance_ * (1.0 + kSqrt5 * r) * e;
  *mean = k_star.dot(alpha_);
  const Eigen::VectorXd v = llt_.solve(k_star);
  *variance = std::max(0.0, signal_variance_ - k_star.dot(v));
  *mean_gradient = (delta * (factor * alpha_.array()).matrix()).cwiseProduct(inverse_lengthscale_);
  *variance_gradient =
      -2.0 * (delta * (factor * v.array()).matrix()).cwiseProduct(inverse_lengthscale_);
}

double GaussianProcess::LeaveOneOutLogDensity() const {
  // diag(K⁻¹) = diag(L⁻ᵀ L⁻¹): the squared norms of the columns of L⁻¹.
  Eigen::MatrixXd inverse_lower = llt_.matrixLLT();
  InvertLowerInPlace(inverse_lower);
  const Eigen::VectorXd precision =
      inverse_lower.triangularView<Eigen::Lower>().toDenseMatrix().colwise().squaredNorm();
  double total = 0;
  for (Eigen::Index i = 0; i < y_.size(); ++i) {
    const double residual = alpha_[i] / precision[i];  // y_i minus the held-out mean
    total += 0.5 * std::log(precision[i] / (2 * std::numbers::pi)) -
             0.5 * residual * residual * precision[i];
  }
  return total;
}

Eigen::VectorXd GaussianProcess::FittedMean() const { return y_ - noise_plus_jitter_ * alpha_; }

Result<GaussianProcess> GaussianProcess::WithExtraData(const Eigen::MatrixXd& x,
                                                       const Eigen::VectorXd& y) const {
  Eigen::MatrixXd all_x(x_.rows() + x.rows(), x_.cols());
  all_x << x_, x;
  Eigen::VectorXd all_y(y_.size() + y.size());
  all_y << y_, y;
  return Create(std::move(all_x), std::move(all_y), groups_, params_);
}

namespace {

// The log marginal likelihood as a function of the hyperparameters, for fixed data. The squared
// coordinate differences of every pair of points, summed per lengthscale group, do not depend on
// the hyperparameters, so they are computed once; an evaluation is then a few vector operations
// over the n(n-1)/2 pairs, a Cholesky factorisation and, for the gradient, K⁻¹.
class MarginalLikelihood {
 public:
  MarginalLikelihood(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                     const std::vector<int>& groups, int num_groups)
      : y_(y), n_(x.rows()), num_groups_(num_groups) {
    const Eigen::Index pairs = n_ * (n_ - 1) / 2;
    pair_sq_.setZero(pairs, num_groups);
    Eigen::Index p = 0;
    for (Eigen::Index a = 0; a < n_; ++a) {
      for (Eigen::Index b = 0; b < a; ++b, ++p) {
        for (Eigen::Index d = 0; d < x.cols(); ++d) {
          const double delta = x(a, d) - x(b, d);
          pair_sq_(p, groups[d]) += delta * delta;
        }
      }
    }
  }

  double Evaluate(const Eigen::VectorXd& packed, Eigen::VectorXd* gradient) {
    const int g_count = num_groups_;
    const Eigen::ArrayXd inv_l2 = (-2.0 * packed.head(g_count).array()).exp();
    const double s2 = std::exp(packed[g_count]);
    const double noise = std::exp(packed[g_count + 1]);
    const Eigen::ArrayXd r = (pair_sq_ * inv_l2.matrix()).array().sqrt();
    const Eigen::ArrayXd e = (-kSqrt5 * r).exp();
    const Eigen::ArrayXd k_pair = s2 * (1.0 + kSqrt5 * r + (5.0 / 3.0) * r.square()) * e;

    // Only the lower triangle is read by LLT<Lower>.
    Eigen::MatrixXd k = Eigen::MatrixXd::Zero(n_, n_);
    Eigen::Index p = 0;
    for (Eigen::Index a = 0; a < n_; ++a) {
      for (Eigen::Index b = 0; b < a; ++b) k(a, b) = k_pair[p++];
    }
    double diagonal = -1;
    for (double jitter : {0.0, 1e-8, 1e-6}) {
      diagonal = s2 + noise + jitter * s2;
      k.diagonal().setConstant(diagonal);
      llt_.compute(k);
      if (llt_.info() == Eigen::Success) break;
      diagonal = -1;
    }
    if (diagonal < 0) return -std::numeric_limits<double>::infinity();
    const Eigen::VectorXd alpha = llt_.solve(y_);
    const double value = -0.5 * y_.dot(alpha) - llt_.matrixLLT().diagonal().array().log().sum() -
                         0.5 * static_cast<double>(n_) * std::log(2 * std::numbers::pi);
    if (!gradient) return value;

    // d lml / d theta = 0.5 tr(W dK/dtheta), W = alpha alpha^T - K^-1. Every dK/dtheta is
    // symmetric, so the pairs below the diagonal count twice.
    const Eigen::MatrixXd k_inverse = InverseLowerFromCholesky(llt_);  // lower triangle
    Eigen::ArrayXd w_pair(pair_sq_.rows());
    p = 0;
    for (Eigen::Index a = 0; a < n_; ++a) {
      for (Eigen::Index b = 0; b < a; ++b) w_pair[p++] = alpha[a] * alpha[b] - k_inverse(a, b);
    }
    const double w_trace = alpha.squaredNorm() - k_inverse.diagonal().sum();
    gradient->resize(g_count + 2);
    (*gradient)[g_count] = 0.5 * w_trace * s2 + (w_pair * k_pair).sum();
    (*gradient)[g_count + 1] = 0.5 * noise * w_trace;
    // dk/dlog l_g = 5/3 s² (1 + √5 r) exp(-√5 r) Σ_{d in g} Δ_d² / l_g².
    const Eigen::VectorXd h = (w_pair * (5.0 / 3.0) * s2 * (1.0 + kSqrt5 * r) * e).matrix();
    gradient->head(g_count) = (pair_sq_.transpose() * h).array() * inv_l2;
    return value;
  }

 private:
  Eigen::VectorXd y_;
  Eigen::Index n_;
  int num_groups_;
  Eigen::MatrixXd pair_sq_;  // [pair][group]
  Eigen::LLT<Eigen::MatrixXd> llt_;
};

}  // namespace

double GpLogMarginalLikelihood(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                               const std::vector<int>& groups, const Eigen::VectorXd& packed,
                               Eigen::VectorXd* gradient) {
  MarginalLikelihood likelihood(x, y, groups, static_cast<int>(packed.size()) - 2);
  return likelihood.Evaluate(packed, gradient);
}

GpParams FitGpParams(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                     const std::vector<int>& groups, int num_groups, Rng& rng,
                     const GpFitOptions& options) {
  const Eigen::Index n = x.rows();
  std::optional<Eigen::VectorXd> prefit;
  if (options.subsample_above > 0 && n > options.subsample_above) {
    // Fit a subsample first (cheap: the cost grows as n³), then polish on all the data from
    // there. Half the subsample is the best observations, where the model must be precise for
    // the search to converge; the other half is spread evenly over the rest, in order.
    const Eigen::Index m = options.subsample_size;
    std::vector<Eigen::Index> by_value(n);
    std::iota(by_value.begin(), by_value.end(), Eigen::Index{0});
    std::stable_sort(by_value.begin(), by_value.end(),
                     [&](Eigen::Index a, Eigen::Index b) { return y[a] < y[b]; });
    std::vector<Eigen::Index> rows(by_value.begin(), by_value.begin() + m / 2);
    std::vector<bool> taken(n, false);
    for (Eigen::Index row : rows) taken[row] = true;
    std::vector<Eigen::Index> rest;
    for (Eigen::Index row = 0; row < n; ++row) {
      if (!taken[row]) rest.push_back(row);
    }
    const Eigen::Index spread = m - m / 2;
    for (Eigen::Index i = 0; i < spread; ++i) {
      rows.push_back(rest[static_cast<size_t>(std::llround(
          static_cast<double>(i) * static_cast<double>(rest.size() - 1) / (spread - 1)))]);
    }
    std::sort(rows.begin(), rows.end());
    Eigen::MatrixXd xs(m, x.cols());
    Eigen::VectorXd ys(m);
    for (Eigen::Index i = 0; i < m; ++i) {
      xs.row(i) = x.row(rows[i]);
      ys[i] = y[rows[i]];
    }
    GpFitOptions sub = options;
    sub.subsample_above = 0;
    prefit = FitGpParams(xs, ys, groups, num_groups, rng, sub).Pack();
  }

  const Bounds bounds = PackedBounds(num_groups);
  const Eigen::VectorXd half_width = 0.5 * (bounds.high - bounds.low);
  // theta = low + half_width (1 + sin z): smooth, bounded, and every bound reachable.
  auto to_theta = [&](const Eigen::VectorXd& z) -> Eigen::VectorXd {
    return bounds.low +
           half_width.cwiseProduct((Eigen::VectorXd::Ones(z.size()) + z.array().sin().matrix()));
  };
  auto to_z = [&](const Eigen::VectorXd& theta) -> Eigen::VectorXd {
    Eigen::VectorXd z(theta.size());
    for (Eigen::Index i = 0; i < theta.size(); ++i) {
      const double t = std::clamp((theta[i] - bounds.low[i]) / half_width[i] - 1.0, -1.0, 1.0);
      z[i] = std::asin(t);
    }
    return z;
  };
  MarginalLikelihood likelihood(x, y, groups, num_groups);
  // Negative log posterior, in z.
  const Objective objective = [&](const Eigen::VectorXd& z, Eigen::VectorXd* grad_z) {
    const Eigen::VectorXd theta = to_theta(z);
    Eigen::VectorXd grad_theta;
    const double lml = likelihood.Evaluate(theta, grad_z ? &grad_theta : nullptr);
    if (!std::isfinite(lml)) return std::numeric_limits<double>::infinity();
    const double value = lml + LogPrior(theta, num_groups, grad_z ? &grad_theta : nullptr);
    if (grad_z) {
      *grad_z = -grad_theta.cwiseProduct(half_width).cwiseProduct(z.array().cos().matrix());
    }
    return -value;
  };

  GpParams start;
  start.log_lengthscales = Eigen::VectorXd::Constant(num_groups, std::log(0.3));
  start.log_signal_variance = 0.0;
  start.log_noise_variance = std::log(1e-3);

  // Score the default and the random starts (or the subsample's fit) by value alone; refine
  // the best.
  std::vector<std::pair<double, Eigen::VectorXd>> starts;
  if (prefit) {
    const Eigen::VectorXd z = to_z(*prefit);
    starts.emplace_back(objective(z, nullptr), z);
  }
  for (int i = 0; i < (prefit ? 0 : options.random_starts); ++i) {
    GpParams p;
    p.log_lengthscales.resize(num_groups);
    for (int g = 0; g < num_groups; ++g) {
      p.log_lengthscales[g] = std::log(0.05) + rng.Uniform() * (std::log(2.0) - std::log(0.05));
    }
    p.log_signal_variance = std::log(0.3) + rng.Uniform() * (std::log(3.0) - std::log(0.3));
    p.log_noise_variance = std::log(1e-7) + rng.Uniform() * (std::log(1e-1) - std::log(1e-7));
    const Eigen::VectorXd z = to_z(p.Pack());
    starts.emplace_back(objective(z, nullptr), z);
  }

  const Eigen::VectorXd default_z = to_z(start.Pack());
  starts.emplace_back(objective(default_z, nullptr), default_z);
  std::stable_sort(starts.begin(), starts.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Eigen::VectorXd> refine;
  for (int i = 0; i < options.refined_starts && i < static_cast<int>(starts.size()); ++i) {
    if (std::isfinite(starts[i].first)) refine.push_back(starts[i].second);
  }
  if (refine.empty()) refine.push_back(default_z);
  LbfgsOptions lbfgs;
  lbfgs.max_iterations = prefit ? options.polish_iterations : options.max_iterations;
  lbfgs.gradient_tolerance = 1e-4;
  lbfgs.relative_improvement = options.relative_improvement;
  double best_value = std::numeric_limits<double>::infinity();
  Eigen::VectorXd best = refine.front();
  for (Eigen::VectorXd z : refine) {
    const double value = MinimizeLbfgs(objective, &z, lbfgs);
    if (value < best_value) {
      best_value = value;
      best = z;
    }
  }
  return GpParams::Unpack(to_theta(best), num_groups);
}

}  // namespace hearth::tuning
