#include "tuning/lbfgs.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <vector>

namespace hearth::tuning {

double MinimizeLbfgs(const Objective& f, Eigen::VectorXd* x, const LbfgsOptions& options) {
  const Eigen::Index n = x->size();
  Eigen::VectorXd gradient(n);
  double value = f(*x, &gradient);
  if (!std::isfinite(value) || n == 0) return value;

  std::deque<Eigen::VectorXd> s_history;
  std::deque<Eigen::VectorXd> y_history;
  std::deque<double> rho_history;
  Eigen::VectorXd next(n);
  Eigen::VectorXd next_gradient(n);

  for (int iteration = 0; iteration < options.max_iterations; ++iteration) {
    if (gradient.lpNorm<Eigen::Infinity>() < options.gradient_tolerance) break;

    // Two-loop recursion: direction = -H * gradient.
    Eigen::VectorXd q = gradient;
    const int m = static_cast<int>(s_history.size());
    std::vector<double> alpha(m);
    for (int i = m - 1; i >= 0; --i) {
      alpha[i] = rho_history[i] * s_history[i].dot(q);
      q -= alpha[i] * y_history[i];
    }
    if (m > 0) {
      q *= s_history.back().dot(y_history.back()) / y_history.back().squaredNorm();
    } else {
      // First step: a unit-length move, whatever the gradient's scale.
      q /= std::max(gradient.norm(), 1e-12);
    }
    for (int i = 0; i < m; ++i) {
      const double beta = rho_history[i] * y_history[i].dot(q);
      q += s_history[i] * (alpha[i] - beta);
    }
    Eigen::VectorXd direction = -q;
    double slope = gradient.dot(direction);
    if (!(slope < 0)) {
      // Not a descent direction (curvature information went stale): restart from steepest.
      s_history.clear();
      y_history.clear();
      rho_history.clear();
      direction = -gradient / std::max(gradient.norm(), 1e-12);
      slope = gradient.dot(direction);
    }

    // Backtracking (Armijo) line search.
    double step = 1.0;
    double next_value = 0;
    bool accepted = false;
    for (int tries = 0; tries < 30; ++tries) {
      next = *x + step * direction;
      next_value = f(next, &next_gradient);
      if (std::isfinite(next_value) && next_value <= value + 1e-4 * step * slope) {
        accepted = true;
        break;
      }
      step *= 0.5;
    }
    if (!accepted) break;

    const Eigen::VectorXd s = next - *x;
    const Eigen::VectorXd y = next_gradient - gradient;
    const double sy = s.dot(y);
    const double improvement = value - next_value;
    *x = next;
    gradient = next_gradient;
    value = next_value;
    if (sy > 1e-12 * s.norm() * y.norm()) {
      s_history.push_back(s);
      y_history.push_back(y);
      rho_history.push_back(1.0 / sy);
      if (static_cast<int>(s_history.size()) > options.memory) {
        s_history.pop_front();
        y_history.pop_front();
        rho_history.pop_front();
      }
    }
    if (improvement < options.relative_improvement * (std::abs(value) + 1.0)) break;
  }
  return value;
}

}  // namespace hearth::tuning
