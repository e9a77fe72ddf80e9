// Expected improvement for minimisation, in log space. With z = (best - mean) / sigma,
//
//   EI = sigma · h(z),   h(z) = φ(z) + z Φ(z),
//
// and log h is evaluated without underflow far into the tail (z = -40 gives EI ~ 1e-350, which
// a double cannot hold but its logarithm can), following Ament et al., "Unexpected Improvements
// to Expected Improvement for Bayesian Optimization" (NeurIPS 2023): for z < -1,
// h(z) = φ(z) (1 - |z| Φ(z) / φ(z)) with Φ/φ written through the scaled complementary error
// function erfcx, and log(1 - ·) taken by log1mexp; past z = -100, by the asymptotic series
// h(z) = φ(z) / z² (1 - 3/z² + 15/z⁴ - ...).
//
// Thread safety: free functions without shared state.
#pragma once

namespace hearth::tuning {

// exp(x²) erfc(x), accurate for all finite x (no overflow for large x).
double Erfcx(double x);

// log h(z).
double LogH(double z);

struct LogEi {
  double value;    // log EI
  double d_mean;   // d log EI / d mean
  double d_sigma;  // d log EI / d sigma
};

// sigma must be > 0.
LogEi LogExpectedImprovement(double mean, double sigma, double best);

}  // namespace hearth::tuning
