#include "tuning/bayesian.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "tuning/acquisition.h"
#include "tuning/gp.h"
#include "tuning/lbfgs.h"
#include "tuning/random.h"
#include "tuning/target_warping.h"

namespace hearth::tuning {
namespace {

constexpr std::int64_t kMaxEnumerated = 2048;
constexpr int kRandomCandidates = 500;
constexpr int kLocalCenters = 5;
constexpr int kPerCenter = 48;
constexpr double kLocalScales[] = {0.1, 0.03, 0.01, 0.003};
constexpr double kCategoryFlipProbability = 0.1;
constexpr int kRefinedStarts = 3;
constexpr int kRefineIterations = 20;
// Below this the posterior standard deviation is treated as this (EI's log stays finite).
constexpr double kMinSigma = 1e-12;

using Point = std::vector<double>;

class BayesianStrategy : public Strategy {
 public:
  explicit BayesianStrategy(StrategyOptions options)
      : Strategy(std::move(options)),
        initial_random_(this->options().initial_random > 0
                            ? this->options().initial_random
                            : DefaultInitialRandom(this->options().space.num_parameters())) {}

 protected:
  std::optional<Configuration> Propose(TrialId trial) override;

 private:
  Configuration InitialDesign(TrialId trial) const;
  Configuration UniformDraw(TrialId trial) const {
    Rng rng(seed(), RngStream::kRandomSearch, static_cast<std::uint64_t>(trial));
    return options().space.Sample(rng);
  }
  GpParams FittedParams(const Eigen::MatrixXd& x, const Eigen::VectorXd& y);

  const int initial_random_;
  // Memo of the last fits (one per target warping, target_warping.h). A fit is a pure function
  // of (x, y, seed), all in the key, so reusing it never changes an answer; it only saves
  // refitting between suggestions that see the same observations.
  struct Fit {
    std::vector<double> key;
    GpParams params;
  };
  std::vector<Fit> fits_;
};

Configuration BayesianStrategy::InitialDesign(TrialId trial) const {
  const SearchSpace& space = options().space;
  if (trial >= initial_random_) return UniformDraw(trial);
  // Latin hypercube over the parameters (one coordinate each, categoricals included): each
  // parameter's range is cut into initial_random_ strata, each used once.
  const int n = initial_random_;
  const int p = space.num_parameters();
  Rng rng(seed(), RngStream::kInitialDesign, 0);
  std::vector<double> row(p);
  for (int j = 0; j < p; ++j) {
    std::vector<int> strata(n);
    std::iota(strata.begin(), strata.end(), 0);
    for (int i = n - 1; i > 0; --i) {
      std::swap(strata[i], strata[rng.Below(static_cast<std::uint64_t>(i) + 1)]);
    }
    for (int i = 0; i < n; ++i) {
      const double u = (strata[i] + rng.Uniform()) / n;
      if (i == trial) row[j] = u;
    }
  }
  return space.FromUniform(row);
}

GpParams BayesianStrategy::FittedParams(const Eigen::MatrixXd& x, const Eigen::VectorXd& y) {
  constexpr size_t kRemembered = 2;  // the plain and the warped targets of the last observations
  std::vector<double> key(x.data(), x.data() + x.size());
  key.insert(key.end(), y.data(), y.data() + y.size());
  for (const Fit& fit : fits_) {
    if (fit.key == key) return fit.params;
  }
  Rng rng(seed(), RngStream::kModelFit, static_cast<std::uint64_t>(y.size()));
  GpParams params =
      FitGpParams(x, y, options().space.encoded_owner(), options().space.num_parameters(), rng);
  if (fits_.size() == kRemembered) fits_.erase(fits_.begin());
  fits_.push_back({std::move(key), params});
  return params;
}

std::optional<Configuration> BayesianStrategy::Propose(TrialId trial) {
  const SearchSpace& space = options().space;
  const int dim = space.encoded_dim();
  if (dim == 0) return Configuration{};

  std::vector<Point> observed;
  std::vector<double> targets;
  for (const Observation& prior : priors()) {
    observed.push_back(space.Encode(prior.config));
    targets.push_back(Minimized(prior.objective));
  }
  std::vector<Point> pending;
  for (const Trial& t : trials()) {
    if (t.state == TrialState::kCompleted) {
      observed.push_back(space.Encode(t.config));
      targets.push_back(Minimized(t.objective));
    } else if (t.state == TrialState::kPending) {
      pending.push_back(space.Encode(t.config));
    }
  }
  const int n = static_cast<int>(observed.size());
  if (trial + static_cast<TrialId>(priors().size()) < initial_random_ || n < 2) {
    return InitialDesign(trial);
  }

  Eigen::MatrixXd x(n, dim);
  Eigen::VectorXd raw(n);
  for (int i = 0; i < n; ++i) {
    x.row(i) = Eigen::Map<const Eigen::RowVectorXd>(observed[i].data(), dim);
    raw[i] = targets[i];
  }
  // The model: plain or half-rank-warped targets, standardised, whichever predicts better.
  Result<TargetModel> fitted = FitTargetModel(
      x, raw, space.encoded_owner(), [this](const Eigen::MatrixXd& xx, const Eigen::VectorXd& yy) {
        return FittedParams(xx, yy);
      });
  if (!fitted.ok()) return UniformDraw(trial);
  const Eigen::VectorXd y = fitted->standardised;
  double best = fitted->gp.FittedMean().minCoeff();
  GaussianProcess model = std::move(fitted->gp);
  if (!pending.empty()) {
    Eigen::MatrixXd xp(static_cast<Eigen::Index>(pending.size()), dim);
    for (size_t i = 0; i < pending.size(); ++i) {
      xp.row(static_cast<Eigen::Index>(i)) =
          Eigen::Map<const Eigen::RowVectorXd>(pending[i].data(), dim);
    }
    Eigen::VectorXd believed;
    Eigen::VectorXd unused;
    model.Predict(xp, &believed, &unused);
    best = std::min(best, believed.minCoeff());
    Result<GaussianProcess> with_pending = model.WithExtraData(xp, believed);
    if (!with_pending.ok()) return UniformDraw(trial);
    model = std::move(with_pending).value();
  }

  std::set<Point> taken(observed.begin(), observed.end());
  taken.insert(pending.begin(), pending.end());

  // Candidates.
  Rng rng(seed(), RngStream::kCandidates, static_cast<std::uint64_t>(trial));
  std::vector<Point> candidates;
  const std::optional<std::int64_t> combinations = space.NumCombinations();
  const bool enumerate = combinations && *combinations <= kMaxEnumerated;
  if (enumerate) {
    for (std::int64_t i = 0; i < *combinations; ++i) {
      candidates.push_back(space.Encode(space.GridPoint(i)));
    }
  } else {
    for (int i = 0; i < kRandomCandidates; ++i)
      candidates.push_back(space.Encode(space.Sample(rng)));
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return y[a] < y[b]; });
    const std::vector<int>& owner = space.encoded_owner();
    for (int c = 0; c < std::min(n, kLocalCenters); ++c) {
      const Point& center = observed[order[c]];
      for (int j = 0; j < kPerCenter; ++j) {
        const double scale = kLocalScales[j % std::size(kLocalScales)];
        Point point = center;
        for (int d = 0; d < dim; ++d) {
          if (space.IsNumericCoordinate(d)) {
            point[d] = std::clamp(point[d] + scale * rng.Normal(), 0.0, 1.0);
          } else if (d == 0 || owner[d - 1] != owner[d]) {
            // First coordinate of a categorical block: sometimes jump to another category.
            if (rng.Uniform() < kCategoryFlipProbability) {
              const int width = static_cast<int>(space.parameters()[owner[d]].values.size());
              const int pick = static_cast<int>(rng.Below(static_cast<std::uint64_t>(width)));
              for (int w = 0; w < width; ++w) point[d + w] = w == pick ? 1.0 : 0.0;
            }
          }
        }
        candidates.push_back(space.Snap(point));
      }
    }
  }

  const int m = static_cast<int>(candidates.size());
  Eigen::MatrixXd xc(m, dim);
  for (int i = 0; i < m; ++i) {
    xc.row(i) = Eigen::Map<const Eigen::RowVectorXd>(candidates[i].data(), dim);
  }
  Eigen::VectorXd mu;
  Eigen::VectorXd var;
  model.Predict(xc, &mu, &var);
  std::vector<double> score(m);
  for (int i = 0; i < m; ++i) {
    score[i] = LogExpectedImprovement(mu[i], std::max(std::sqrt(var[i]), kMinSigma), best).value;
  }
  std::vector<int> ranked(m);
  std::iota(ranked.begin(), ranked.end(), 0);
  std::stable_sort(ranked.begin(), ranked.end(), [&](int a, int b) { return score[a] > score[b]; });

  Point chosen;
  double chosen_score = -std::numeric_limits<double>::infinity();
  for (int i : ranked) {
    if (!taken.count(candidates[i])) {
      chosen = candidates[i];
      chosen_score = score[i];
      break;
    }
  }
  if (chosen.empty()) chosen = candidates[ranked.front()];  // every configuration was tried

  // Local refinement of the best candidates over the numeric coordinates.
  std::vector<int> numeric;
  for (int d = 0; d < dim; ++d) {
    if (space.IsNumericCoordinate(d)) numeric.push_back(d);
  }
  if (!enumerate && !numeric.empty()) {
    auto log_ei_at = [&](const Eigen::VectorXd& point, Eigen::VectorXd* gradient) {
      double mean_value = 0;
      double variance = 0;
      Eigen::VectorXd mean_gradient;
      Eigen::VectorXd variance_gradient;
      model.PredictWithGradient(point, &mean_value, &variance, &mean_gradient, &variance_gradient);
      const double sigma = std::max(std::sqrt(variance), kMinSigma);
      const LogEi ei = LogExpectedImprovement(mean_value, sigma, best);
      if (gradient) {
        *gradient = ei.d_mean * mean_gradient + ei.d_sigma / (2.0 * sigma) * variance_gradient;
      }
      return ei.value;
    };
    std::set<Point> started;
    LbfgsOptions lbfgs;
    lbfgs.max_iterations = kRefineIterations;
    lbfgs.gradient_tolerance = 1e-9;
    for (int i : ranked) {
      if (static_cast<int>(started.size()) >= kRefinedStarts) break;
      if (!started.insert(candidates[i]).second) continue;
      Eigen::VectorXd base = Eigen::Map<const Eigen::VectorXd>(candidates[i].data(), dim);
      Eigen::VectorXd z(static_cast<Eigen::Index>(numeric.size()));
      for (size_t k = 0; k < numeric.size(); ++k) {
        z[static_cast<Eigen::Index>(k)] =
            std::asin(std::clamp(2.0 * base[numeric[k]] - 1.0, -1.0, 1.0));
      }
      const Objective negative_log_ei = [&](const Eigen::VectorXd& zz, Eigen::VectorXd* grad_z) {
        Eigen::VectorXd point = base;
        for (size_t k = 0; k < numeric.size(); ++k) {
          point[numeric[k]] = 0.5 * (1.0 + std::sin(zz[static_cast<Eigen::Index>(k)]));
        }
        Eigen::VectorXd grad_x;
        const double value = log_ei_at(point, grad_z ? &grad_x : nullptr);
        if (grad_z) {
          grad_z->resize(zz.size());
          for (size_t k = 0; k < numeric.size(); ++k) {
            const auto kk = static_cast<Eigen::Index>(k);
            (*grad_z)[kk] = -grad_x[numeric[k]] * 0.5 * std::cos(zz[kk]);
          }
        }
        return -value;
      };
      MinimizeLbfgs(negative_log_ei, &z, lbfgs);
      for (size_t k = 0; k < numeric.size(); ++k) {
        base[numeric[k]] = 0.5 * (1.0 + std::sin(z[static_cast<Eigen::Index>(k)]));
      }
      const Point snapped = space.Snap(std::span<const double>(base.data(), dim));
      if (taken.count(snapped)) continue;
      const double value =
          log_ei_at(Eigen::Map<const Eigen::VectorXd>(snapped.data(), dim), nullptr);
      if (value > chosen_score) {
        chosen_score = value;
        chosen = snapped;
      }
    }
  }
  return space.Decode(chosen);
}

}  // namespace

int DefaultInitialRandom(int num_parameters) { return std::max(3, num_parameters + 1); }

std::unique_ptr<Strategy> MakeBayesianStrategy(StrategyOptions options) {
  return std::make_unique<BayesianStrategy>(std::move(options));
}

}  // namespace hearth::tuning
