#include "algorithms/xgboost/eval_metrics.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include "fmt/format.h"
#include "simdjson.h"

// The float expressions below are XGBoost's, term for term; this file is compiled with
// -ffp-contract=off (CMakeLists.txt) so that no multiply-add is fused where libxgboost's
// generic x86-64 build computes two roundings.

namespace hearth::algorithms::xgb {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One thread's sums, on its own cache line.
struct alignas(64) PartialSums {
  double loss = 0;
  double weight = 0;
};

// Σ w·loss(i) / Σ w as XGBoost's Reduce computes them: float terms, double per-thread sums
// over OpenMP's static split, then the threads' sums in order. `loss(i)` returns float.
template <typename Loss>
std::array<double, 2> Reduce(std::size_t rows, std::span<const float> weights, int threads,
                             const Loss& loss) {
  std::vector<PartialSums> partial(static_cast<std::size_t>(threads));
  const bool weighted = !weights.empty();
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(rows); ++i) {
    PartialSums& sums = partial[static_cast<std::size_t>(omp_get_thread_num())];
    float wt = weighted ? weights[static_cast<std::size_t>(i)] : 1.0f;
    float v = loss(static_cast<std::size_t>(i));
    v *= wt;
    sums.loss += v;
    sums.weight += wt;
  }
  std::array<double, 2> total{0.0, 0.0};
  for (const PartialSums& p : partial) total[0] += p.loss;
  for (const PartialSums& p : partial) total[1] += p.weight;
  return total;
}

// XGBoost's GetFinal for the mean metrics and for rmse / rmsle.
double Mean(std::array<double, 2> s) { return s[1] == 0 ? s[0] : s[0] / s[1]; }
double RootMean(std::array<double, 2> s) {
  return s[1] == 0 ? std::sqrt(s[0]) : std::sqrt(s[0] / s[1]);
}

float LogLoss(float y, float py) {
  const float eps = 1e-16f;
  const float pneg = 1.0f - py;
  if (py < eps) {
    return -y * std::log(eps) - (1.0f - y) * std::log(1.0f - eps);
  } else if (pneg < eps) {
    return -y * std::log(1.0f - eps) - (1.0f - y) * std::log(eps);
  }
  return -y * std::log(py) - (1.0f - y) * std::log(pneg);
}

float PoissonNegLogLik(float y, float py) {
  const float eps = 1e-16f;
  if (py < eps) py = eps;
  // XGBoost's common::LogGamma calls the double lgamma.
  float log_gamma = static_cast<float>(std::lgamma(static_cast<double>(y + 1.0f)));
  return log_gamma + py - std::log(py) * y;
}

// Row indices by descending score, ties in row order: the order of XGBoost's
// ArgSort(..., std::greater<>) (a stable sort). A stable LSD radix sort of (score bits, row)
// pairs on the score bits. nullopt when a score is NaN, which that comparison cannot order.
std::optional<std::vector<std::uint32_t>> DescendingOrder(std::span<const float> scores) {
  const std::size_t n = scores.size();
  std::vector<std::uint64_t> items(n), next(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isnan(scores[i])) return std::nullopt;
    float f = scores[i] == 0.0f ? 0.0f : scores[i];  // -0 ties with +0
    std::uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    // Ascending unsigned order of floats, flipped for descending.
    std::uint32_t ascending = (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
    items[i] = (static_cast<std::uint64_t>(~ascending) << 32) | i;
  }
  constexpr int kBits = 11;
  constexpr std::uint64_t kMask = (1u << kBits) - 1;
  std::vector<std::size_t> count(kMask + 1);
  for (int shift = 32; shift < 64; shift += kBits) {
    std::fill(count.begin(), count.end(), 0);
    for (std::uint64_t v : items) ++count[(v >> shift) & kMask];
    std::size_t start = 0;
    for (std::size_t& c : count) {
      std::size_t k = c;
      c = start;
      start += k;
    }
    for (std::uint64_t v : items) next[count[(v >> shift) & kMask]++] = v;
    items.swap(next);
  }
  std::vector<std::uint32_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(items[i]);
  return order;
}

double TrapezoidArea(double x0, double x1, double y0, double y1) {
  return std::abs(x0 - x1) * (y0 + y1) * 0.5f;
}

// XGBoost's BinaryROCAUC, then the ratio to the area fp * tp (NaN without both classes).
Result<double> BinaryAuc(std::span<const float> scores, std::span<const float> labels,
                 std::span<const float> weights) {
  if (scores.empty()) return kNaN;
  if (scores.size() > std::numeric_limits<std::uint32_t>::max()) {
    return Unimplemented("auc of more than 2^32 rows");
  }
  std::optional<std::vector<std::uint32_t>> order = DescendingOrder(scores);
  if (!order.has_value()) return Unimplemented("auc of NaN scores");
  const std::vector<std::uint32_t>& sorted = *order;
  auto weight = [&](std::size_t i) { return weights.empty() ? 1.0f : weights[i]; };
  double auc = 0;
  float label = labels[sorted[0]];
  float w = weight(sorted[0]);
  double fp = (1.0 - label) * w, tp = label * w;
  double tp_prev = 0, fp_prev = 0;
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    if (scores[sorted[i]] != scores[sorted[i - 1]]) {
      auc += TrapezoidArea(fp_prev, fp, tp_prev, tp);
      tp_prev = tp;
      fp_prev = fp;
    }
    label = labels[sorted[i]];
    w = weight(sorted[i]);
    fp += (1.0f - label) * w;
    tp += label * w;
  }
  auc += TrapezoidArea(fp_prev, fp, tp_prev, tp);
  if (fp <= 0.0f || tp <= 0.0f) return kNaN;
  double area = fp * tp;
  return area <= 0 ? kNaN : auc / area;
}

// The first largest element, as XGBoost's common::FindMaxIndex.
std::size_t FirstMax(const float* row, std::size_t width) {
  std::size_t best = 0;
  for (std::size_t k = 1; k < width; ++k) {
    if (row[k] > row[best]) best = k;
  }
  return best;
}

// XGBoost's multi-class reduction: rows whose label is not a class index make it fail.
template <typename RowLoss>
Result<double> MultiClassMean(std::string_view name, const PredictionMatrix& p,
                              std::span<const float> labels, std::span<const float> weights,
                              int threads, const RowLoss& row_loss) {
  const std::size_t width = p.width;
  for (float l : labels) {
    int label = static_cast<int>(l);
    if (label < 0 || label >= static_cast<int>(width)) {
      return InvalidArgument(fmt::format("{}: label {} is not a class index", name, l));
    }
  }
  return Mean(Reduce(p.rows, weights, threads, [&](std::size_t i) {
    return row_loss(p.values.data() + i * width, static_cast<std::size_t>(labels[i]), width);
  }));
}

}  // namespace

std::optional<MetricInput> MetricInputFor(std::string_view objective) {
  if (objective == "multi:softmax") return MetricInput::kSoftmaxOfMargins;
  // Objectives whose EvalTransform is their prediction transform. Left out: rank:* (AUC
  // works per query group), survival:aft (its metrics read margins), survival:cox.
  static constexpr std::string_view kSame[] = {
      "reg:squarederror", "reg:squaredlogerror", "reg:logistic",     "reg:pseudohubererror",
      "reg:absoluteerror", "binary:logistic",    "binary:logitraw",  "binary:hinge",
      "count:poisson",     "reg:gamma",          "reg:tweedie",      "multi:softprob"};
  for (std::string_view o : kSame) {
    if (objective == o) return MetricInput::kPredictions;
  }
  return std::nullopt;
}

void SoftmaxRows(PredictionMatrix& margins) {
  const std::size_t width = margins.width;
  if (width == 0) return;
  for (std::size_t r = 0; r < margins.rows; ++r) {
    float* row = margins.values.data() + r * width;
    float wmax = row[0];
    for (std::size_t k = 1; k < width; ++k) wmax = std::fmax(row[k], wmax);
    double wsum = 0.0f;
    for (std::size_t k = 0; k < width; ++k) {
      row[k] = std::exp(row[k] - wmax);
      wsum += row[k];
    }
    for (std::size_t k = 0; k < width; ++k) row[k] /= static_cast<float>(wsum);
  }
}

Result<LearnerSettings> ReadLearnerSettings(std::string_view config_json) {
  LearnerSettings out;
  long nthread = 0;
  try {
    simdjson::dom::parser parser;
    simdjson::dom::element doc = parser.parse(config_json.data(), config_json.size());
    simdjson::dom::object learner = doc["learner"];
    out.objective = std::string(std::string_view(learner["objective"]["name"]));
    std::string_view n = learner["generic_param"]["nthread"];
    nthread = std::strtol(std::string(n).c_str(), nullptr, 10);
  } catch (const simdjson::simdjson_error& e) {
    return InvalidArgument(fmt::format("cannot read the booster configuration: {}", e.what()));
  }
  // XGBoost's OmpGetNumThreads.
  int threads = static_cast<int>(nthread);
  if (threads <= 0) threads = std::min(omp_get_num_procs(), omp_get_max_threads());
  threads = std::min(threads, omp_get_thread_limit());
  out.threads = std::max(threads, 1);
  return out;
}

Result<double> EvalMetric(std::string_view name, const PredictionMatrix& predictions,
                          std::span<const float> labels, std::span<const float> weights,
                          int threads) {
  const PredictionMatrix& p = predictions;
  if (labels.size() != p.rows || p.values.size() != p.rows * p.width) {
    return InvalidArgument(fmt::format("{}: {} labels for {} rows", name, labels.size(), p.rows));
  }
  if (!weights.empty() && weights.size() != p.rows) {
    return InvalidArgument(fmt::format("{}: {} weights for {} rows", name, weights.size(), p.rows));
  }
  threads = std::max(threads, 1);
  const float* pred = p.values.data();
  const float* label = labels.data();

  if (name == "mlogloss" || name == "merror") {
    if (p.width < 2) return Unimplemented(fmt::format("{} on one score per row", name));
    if (name == "mlogloss") {
      return MultiClassMean(name, p, labels, weights, threads,
                            [](const float* row, std::size_t k, std::size_t) {
                              const float eps = 1e-16f;
                              return row[k] > eps ? -std::log(row[k]) : -std::log(eps);
                            });
    }
    return MultiClassMean(name, p, labels, weights, threads,
                          [](const float* row, std::size_t k, std::size_t width) {
                            return FirstMax(row, width) != k ? 1.0f : 0.0f;
                          });
  }

  // The rest read one score per row.
  if (p.width != 1) return Unimplemented(fmt::format("{} on {} scores per row", name, p.width));
  const std::size_t n = p.rows;
  if (name == "rmse") {
    return RootMean(Reduce(n, weights, threads, [&](std::size_t i) {
      float diff = label[i] - pred[i];
      return diff * diff;
    }));
  }
  if (name == "rmsle") {
    return RootMean(Reduce(n, weights, threads, [&](std::size_t i) {
      float diff = std::log1p(label[i]) - std::log1p(pred[i]);
      return diff * diff;
    }));
  }
  if (name == "mae") {
    return Mean(Reduce(n, weights, threads,
                       [&](std::size_t i) { return std::abs(label[i] - pred[i]); }));
  }
  if (name == "logloss") {
    return Mean(
        Reduce(n, weights, threads, [&](std::size_t i) { return LogLoss(label[i], pred[i]); }));
  }
  if (name == "poisson-nloglik") {
    return Mean(Reduce(n, weights, threads,
                       [&](std::size_t i) { return PoissonNegLogLik(label[i], pred[i]); }));
  }
  if (name == "error" || name.starts_with("error@")) {
    float threshold = 0.5f;
    if (name.size() > 6) {
      // XGBoost prints the threshold with 6 significant digits; that text reads back as the
      // threshold it was given with (up to 6 digits, which is what eval_metric takes).
      std::string text(name.substr(6));
      char* end = nullptr;
      threshold = std::strtof(text.c_str(), &end);
      if (end == text.c_str() || *end != '\0') {
        return Unimplemented(fmt::format("metric '{}'", name));
      }
    }
    return Mean(Reduce(n, weights, threads, [&](std::size_t i) {
      return pred[i] > threshold ? 1.0f - label[i] : label[i];
    }));
  }
  if (name == "auc") return BinaryAuc(p.values, labels, weights);
  return Unimplemented(fmt::format("metric '{}' is evaluated by XGBoost", name));
}

}  // namespace hearth::algorithms::xgb
