// Limited-memory BFGS for the small smooth problems of tuning/: the model's hyperparameters
// (up to 32 of them) and the acquisition function over the unit cube. Bounds are handled by the
// callers through smooth reparameterisations, so this minimiser is unconstrained.
//
// Thread safety: a free function without shared state.
#pragma once

#include <functional>

#include <Eigen/Core>

namespace hearth::tuning {

struct LbfgsOptions {
  int max_iterations = 50;
  int memory = 8;
  // Stop when the largest gradient component falls below this.
  double gradient_tolerance = 1e-6;
  // Stop when an iteration improves the value by less than this, relative to |value| + 1.
  double relative_improvement = 1e-10;
};

// Returns f(x) and writes the gradient into *gradient (sized like x). A non-finite value reads
// as "outside the domain": the line search backs off from it.
using Objective = std::function<double(const Eigen::VectorXd& x, Eigen::VectorXd* gradient)>;

// Minimises `f` from *x, leaving the best point found in *x; returns its value. Every evaluation
// counts towards nothing but time: the result depends only on f and the starting point.
double MinimizeLbfgs(const Objective& f, Eigen::VectorXd* x, const LbfgsOptions& options = {});

}  // namespace hearth::tuning
