#include "tuning/acquisition.h"

#include <cmath>
#include <numbers>

namespace hearth::tuning {
namespace {

const double kLogSqrt2Pi = 0.5 * std::log(2 * std::numbers::pi);
const double kSqrtHalfPi = std::sqrt(std::numbers::pi / 2);
const double kInvSqrt2 = 1.0 / std::numbers::sqrt2;

// log(1 - exp(a)) for a < 0, accurate on both sides of -log 2.
double Log1mExp(double a) {
  return a > -std::numbers::ln2 ? std::log(-std::expm1(a)) : std::log1p(-std::exp(a));
}

double LogPhi(double z) { return -0.5 * z * z - kLogSqrt2Pi; }

// log Φ(z).
double LogCdf(double z) {
  if (z < -1.0) return std::log(0.5 * Erfcx(-z * kInvSqrt2)) - 0.5 * z * z;
  return std::log(0.5 * std::erfc(-z * kInvSqrt2));
}

}  // namespace

double Erfcx(double x) {
  if (x < 26.0) {
    // exp(x²) with x² split into its rounded value and the rounding error, which would
    // otherwise cost x² · eps of relative accuracy.
    const double square = x * x;
    const double error = std::fma(x, x, -square);
    return std::exp(square) * (1.0 + error) * std::erfc(x);
  }
  // Asymptotic series 1/(x√π) Σ (-1)^k (2k-1)!! / (2x²)^k; from x = 26 on, eight terms are exact
  // to rounding (and erfc itself would underflow soon after).
  const double inv2x2 = 1.0 / (2.0 * x * x);
  double term = 1.0;
  double sum = 1.0;
  for (int k = 1; k <= 8; ++k) {
    term *= -(2.0 * k - 1.0) * inv2x2;
    sum += term;
  }
  return sum / (x * std::sqrt(std::numbers::pi));
}

double LogH(double z) {
  if (z > -1.0) {
    const double phi = std::exp(LogPhi(z));
    const double cdf = 0.5 * std::erfc(-z * kInvSqrt2);
    return std::log(phi + z * cdf);
  }
  // The bracket 1 - |z|Φ/φ below loses about z² · eps of relative accuracy to cancellation;
  // past |z| = 100 the asymptotic series h = φ/z² (1 - 3/z² + 15/z⁴ - 105/z⁶ ...) is exact to
  // rounding instead.
  if (z < -100.0) {
    const double inv_z2 = 1.0 / (z * z);
    return LogPhi(z) + std::log(inv_z2) +
           std::log1p(inv_z2 * (-3.0 + inv_z2 * (15.0 - 105.0 * inv_z2)));
  }
  return LogPhi(z) + Log1mExp(std::log(-z) + std::log(kSqrtHalfPi * Erfcx(-z * kInvSqrt2)));
}

LogEi LogExpectedImprovement(double mean, double sigma, double best) {
  const double z = (best - mean) / sigma;
  const double log_h = LogH(z);
  // dEI/dmean = -Φ(z), dEI/dsigma = φ(z); divide by EI = sigma h(z) in log space.
  const double cdf_over_h = std::exp(LogCdf(z) - log_h);
  const double pdf_over_h = std::exp(LogPhi(z) - log_h);
  return {std::log(sigma) + log_h, -cdf_over_h / sigma, pdf_over_h / sigma};
}

}  // namespace hearth::tuning
