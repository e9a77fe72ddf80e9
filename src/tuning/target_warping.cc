#include "tuning/target_warping.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <optional>
#include <utility>

namespace hearth::tuning {
namespace {

double Median(std::vector<double> values) {
  const size_t n = values.size();
  std::sort(values.begin(), values.end());
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

struct Standardised {
  Eigen::VectorXd values;
  double log_scale;  // log of the divisor
};

// Zero mean, unit variance (a constant vector is only centred).
Standardised Standardise(const Eigen::VectorXd& y) {
  const double mean = y.mean();
  double sd = std::sqrt((y.array() - mean).square().mean());
  if (!(sd > 1e-12 * (1.0 + std::abs(mean)))) sd = 1.0;
  return {(y.array() - mean) / sd, std::log(sd)};
}

}  // namespace

double NormalQuantile(double p) {
  // Acklam's rational approximation (relative error below 1.2e-9), then two Halley steps on
  // Φ(x) - p, each of which cubes the error.
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double kLowTail = 0.02425;
  auto tail = [&](double q) {
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  };
  double x;
  if (p < kLowTail) {
    x = tail(std::sqrt(-2 * std::log(p)));
  } else if (p > 1 - kLowTail) {
    x = -tail(std::sqrt(-2 * std::log1p(-p)));
  } else {
    const double q = p - 0.5;
    const double r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  for (int step = 0; step < 2; ++step) {
    // In the upper half, Φ(x) - p is computed as (1 - p) - Φ(-x) to keep its digits.
    const double error = x <= 0 ? 0.5 * std::erfc(-x / std::numbers::sqrt2) - p
                                : (1 - p) - 0.5 * std::erfc(x / std::numbers::sqrt2);
    const double u = error * std::sqrt(2 * std::numbers::pi) * std::exp(0.5 * x * x);
    x -= u / (1 + 0.5 * x * u);
  }
  return x;
}

WarpedTargets HalfRankWarp(const Eigen::VectorXd& y) {
  const Eigen::Index n = y.size();
  WarpedTargets out{y, Eigen::VectorXd::Zero(n)};
  if (n == 0) return out;
  std::vector<double> distinct(y.data(), y.data() + n);
  const double median = Median(distinct);
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  const auto size = static_cast<Eigen::Index>(distinct.size());

  // Spread of the better half around the median.
  double sum = 0;
  int count = 0;
  for (double v : distinct) {
    if (v <= median) {
      sum += (v - median) * (v - median);
      ++count;
    }
  }
  double spread = std::sqrt(sum / std::max(count, 1));
  if (!(spread > 0)) {
    sum = 0;
    for (double v : distinct) sum += (v - median) * (v - median);
    spread = std::sqrt(sum / static_cast<double>(size));
  }
  if (!(spread > 0)) return out;  // all values equal

  // The image of every distinct value; `first_bad` is the first index above the median.
  const Eigen::Index first_bad =
      std::upper_bound(distinct.begin(), distinct.end(), median) - distinct.begin();
  const bool median_observed = first_bad > 0 && distinct[first_bad - 1] == median;
  const double bad = static_cast<double>(size - first_bad);
  std::vector<double> image(distinct);
  for (Eigen::Index j = first_bad; j < size; ++j) {
    const double rank_from_worst = static_cast<double>(size - j);
    const double q = (rank_from_worst - 0.5) / (2 * (bad + (median_observed ? 0.5 : 0.0)));
    image[j] = median - spread * NormalQuantile(q);
  }
  for (Eigen::Index i = 0; i < n; ++i) {
    if (y[i] <= median) continue;
    const Eigen::Index j =
        std::lower_bound(distinct.begin(), distinct.end(), y[i]) - distinct.begin();
    const Eigen::Index lo = std::max<Eigen::Index>(j - 1, 0);
    const Eigen::Index hi = std::min(j + 1, size - 1);
    out.values[i] = image[j];
    out.log_slope[i] = std::log((image[hi] - image[lo]) / (distinct[hi] - distinct[lo]));
  }
  return out;
}

Result<TargetModel> FitTargetModel(const Eigen::MatrixXd& x, const Eigen::VectorXd& y,
                                   const std::vector<int>& groups, const GpFitter& fit) {
  const auto n = static_cast<double>(y.size());
  std::optional<TargetModel> best;
  auto consider = [&](TargetWarping warping, const Eigen::VectorXd& values, double log_jacobian) {
    Standardised z = Standardise(values);
    Result<GaussianProcess> gp = GaussianProcess::Create(x, z.values, groups, fit(x, z.values));
    if (!gp.ok()) return;
    const double score = gp->LeaveOneOutLogDensity() + log_jacobian - n * z.log_scale;
    if (best && !(score > best->score)) return;
    best.emplace(TargetModel{warping, std::move(z.values), score, std::move(gp).value()});
  };
  consider(TargetWarping::kNone, y, 0.0);
  if (y.size() >= 3) {
    const WarpedTargets warped = HalfRankWarp(y);
    if (warped.values != y) {
      consider(TargetWarping::kHalfRank, warped.values, warped.log_slope.sum());
    }
  }
  if (!best) return Internal("GaussianProcess: kernel matrix is not positive definite");
  return std::move(*best);
}

}  // namespace hearth::tuning
