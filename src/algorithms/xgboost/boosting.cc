#include "algorithms/xgboost/boosting.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <utility>

#include "algorithms/xgboost/eval_metrics.h"
#include "fmt/format.h"

namespace hearth::algorithms::xgb {

namespace {

// Python's str(float): the shortest text that reads back as the same double.
std::string ShortestText(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : fmt::format("{}", v);
}

// xgb.train appends a feval metric to XGBoost's line as "%f" and reads it back, so the
// value early stopping sees has 6 decimals. Doing the same keeps the same stopping round.
double AsPrintedByFeval(double v) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "%f", v);
  return std::strtod(buf, nullptr);
}

std::vector<int> PredictedClasses(const PredictionMatrix& p) {
  std::vector<int> out(p.rows);
  for (std::size_t r = 0; r < p.rows; ++r) {
    const float* row = p.values.data() + r * p.width;
    if (p.width > 1) {
      out[r] = static_cast<int>(std::max_element(row, row + p.width) - row);
    } else {
      out[r] = static_cast<int>(std::nearbyint(row[0]));  // Python's round(): half to even
    }
  }
  return out;
}

// One round's predictions per evaluation set, each asked of XGBoost once and shared by
// XGBoost's metrics computed here and the container's.
class RoundPredictions {
 public:
  RoundPredictions(const Booster& booster, std::span<const EvalSet> evals)
      : booster_(booster), evals_(evals), transformed_(evals.size()), softmax_(evals.size()) {}

  // Booster::Predict of set `i`.
  Result<const PredictionMatrix*> Transformed(std::size_t i) {
    if (!transformed_[i].has_value()) {
      ASSIGN_OR_RETURN(transformed_[i], booster_.Predict(*evals_[i].matrix));
    }
    return &*transformed_[i];
  }

  // What XGBoost's metrics read of set `i`.
  Result<const PredictionMatrix*> ForMetrics(std::size_t i, MetricInput input) {
    if (input == MetricInput::kPredictions) return Transformed(i);
    if (!softmax_[i].has_value()) {
      ASSIGN_OR_RETURN(PredictionMatrix margins,
                       booster_.Predict(*evals_[i].matrix, 0, /*output_margin=*/true));
      SoftmaxRows(margins);
      softmax_[i] = std::move(margins);
    }
    return &*softmax_[i];
  }

 private:
  const Booster& booster_;
  std::span<const EvalSet> evals_;
  std::vector<std::optional<PredictionMatrix>> transformed_, softmax_;
};

// XGBoost's metrics of the evaluation line, computed here (eval_metrics.h).
struct NativeEvaluation {
  MetricInput input = MetricInput::kPredictions;
  int threads = 1;
  // The line's (set index, metric), in XGBoost's order.
  std::vector<std::pair<std::size_t, std::string>> metrics;
};

bool Agree(double native, double xgboost) {
  if (std::isnan(native) || std::isnan(xgboost)) return std::isnan(native) && std::isnan(xgboost);
  double diff = std::fabs(native - xgboost);
  return diff <= 1e-9 || diff <= 1e-6 * std::fabs(xgboost);
}

Result<double> EvalNative(const NativeEvaluation& native, RoundPredictions& predictions,
                          std::span<const EvalSet> evals, std::size_t set,
                          const std::string& metric) {
  ASSIGN_OR_RETURN(const PredictionMatrix* p, predictions.ForMetrics(set, native.input));
  const DMatrix& m = *evals[set].matrix;
  return EvalMetric(metric, *p, m.labels(), m.weights(), native.threads);
}

// The evaluation computed here, when every metric of XGBoost's line `builtin` is one
// eval_metrics.h reproduces and agrees with XGBoost's value; nullopt otherwise.
std::optional<NativeEvaluation> PlanNativeEvaluation(const Booster& booster,
                                                     std::span<const EvalSet> evals,
                                                     std::span<const EvalEntry> builtin,
                                                     RoundPredictions& predictions) {
  auto config = booster.ConfigJson();
  if (!config.ok()) return std::nullopt;
  auto settings = ReadLearnerSettings(*config);
  if (!settings.ok()) return std::nullopt;
  std::optional<MetricInput> input = MetricInputFor(settings->objective);
  if (!input.has_value()) return std::nullopt;
  NativeEvaluation native{.input = *input, .threads = settings->threads, .metrics = {}};
  for (const EvalEntry& b : builtin) {
    std::optional<std::size_t> set;
    for (std::size_t i = 0; i < evals.size(); ++i) {
      if (evals[i].name != b.set) continue;
      if (set.has_value()) return std::nullopt;  // two sets of one name: ambiguous
      set = i;
    }
    if (!set.has_value()) return std::nullopt;
    auto value = EvalNative(native, predictions, evals, *set, b.metric);
    if (!value.ok() || !Agree(*value, b.value)) return std::nullopt;
    native.metrics.emplace_back(*set, b.metric);
  }
  return native;
}

}  // namespace

Result<std::vector<EvalEntry>> ParseEvalLine(std::string_view line) {
  std::vector<EvalEntry> out;
  std::size_t pos = line.find('\t');
  while (pos != std::string_view::npos) {
    std::size_t next = line.find('\t', pos + 1);
    std::string_view item = line.substr(pos + 1, next == std::string_view::npos
                                                     ? std::string_view::npos
                                                     : next - pos - 1);
    pos = next;
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) {
      item.remove_suffix(1);
    }
    if (item.empty()) continue;
    std::size_t dash = item.find('-');
    std::size_t colon = item.rfind(':');
    if (dash == std::string_view::npos || colon == std::string_view::npos || colon < dash) {
      return Internal(fmt::format("cannot read XGBoost's evaluation '{}'", item));
    }
    EvalEntry entry;
    entry.set = std::string(item.substr(0, dash));
    entry.metric = std::string(item.substr(dash + 1, colon - dash - 1));
    std::string value(item.substr(colon + 1));
    char* end = nullptr;
    entry.value = std::strtod(value.c_str(), &end);
    if (end == value.c_str()) {
      return Internal(fmt::format("cannot read XGBoost's evaluation '{}'", item));
    }
    out.push_back(std::move(entry));
  }
  return out;
}

std::string FormatEvalLine(int iteration, std::span<const EvalEntry> entries) {
  std::string line = fmt::format("[{}]", iteration);
  for (const EvalEntry& e : entries) {
    line += fmt::format("\t{}-{}:{:.5f}", e.set, e.metric, e.value);
  }
  return line;
}

Result<double> ContainerMetric(std::string_view metric, const PredictionMatrix& predictions,
                               const std::vector<float>& labels) {
  if (labels.size() != predictions.rows) {
    return InvalidArgument(fmt::format("metric '{}' needs one label per row", metric));
  }
  if (predictions.rows == 0) return InvalidArgument(fmt::format("metric '{}' on no rows", metric));
  const double n = static_cast<double>(predictions.rows);
  if (metric == "mse") {
    if (predictions.width != 1) {
      return InvalidArgument("Metric 'mse' needs one prediction per row; the objective gives " +
                             std::to_string(predictions.width));
    }
    double sum = 0;
    for (std::size_t r = 0; r < predictions.rows; ++r) {
      double d = static_cast<double>(labels[r]) - predictions.values[r];
      sum += d * d;
    }
    return sum / n;
  }
  std::vector<int> predicted = PredictedClasses(predictions);
  if (metric == "accuracy") {
    std::size_t hits = 0;
    for (std::size_t r = 0; r < predicted.size(); ++r) {
      hits += static_cast<double>(predicted[r]) == static_cast<double>(labels[r]) ? 1 : 0;
    }
    return static_cast<double>(hits) / n;
  }
  if (metric == "f1") {
    // Macro F1 over every class seen in the labels or the predictions (sklearn's
    // f1_score(average='macro')).
    struct Counts {
      std::size_t tp = 0, fp = 0, fn = 0;
    };
    std::map<double, Counts> classes;
    for (std::size_t r = 0; r < predicted.size(); ++r) {
      double truth = labels[r], guess = predicted[r];
      if (truth == guess) {
        ++classes[truth].tp;
      } else {
        ++classes[guess].fp;
        ++classes[truth].fn;
      }
    }
    double sum = 0;
    for (const auto& [cls, c] : classes) {
      double denominator = 2.0 * c.tp + c.fp + c.fn;
      sum += denominator > 0 ? 2.0 * c.tp / denominator : 0.0;
    }
    return sum / static_cast<double>(classes.size());
  }
  return InvalidArgument(fmt::format("unknown container metric '{}'", metric));
}

bool MetricMaximized(std::string_view metric) {
  if (metric == "accuracy" || metric == "f1") return true;
  if (metric == "mape") return false;
  for (std::string_view prefix : {"auc", "aucpr", "map", "ndcg"}) {
    if (metric.starts_with(prefix)) return true;
  }
  return false;
}

Result<BoostingResult> RunBoosting(Booster& booster, const DMatrix& train,
                                   std::span<const EvalSet> evals, const BoostingOptions& options,
                                   const std::function<void(std::string_view)>& log) {
  if (options.early_stopping_rounds > 0 && evals.empty()) {
    return InvalidArgument("early stopping needs at least one evaluation set");
  }
  std::vector<const DMatrix*> matrices;
  std::vector<std::string> names;
  for (const EvalSet& e : evals) {
    matrices.push_back(e.matrix);
    names.push_back(e.name);
  }

  BoostingResult result;
  std::optional<double> best;
  int rounds_without_improvement = 0;
  std::optional<NativeEvaluation> native;  // decided in round 0
  for (int round = 0; round < options.num_round; ++round) {
    RETURN_IF_ERROR(booster.UpdateOneIter(round, train));
    result.rounds = round + 1;
    if (evals.empty()) continue;

    RoundPredictions predictions(booster, evals);
    std::vector<EvalEntry> builtin;
    if (native.has_value()) {
      for (const auto& [set, metric] : native->metrics) {
        auto value = EvalNative(*native, predictions, evals, set, metric);
        if (!value.ok()) {
          // Predictions this file does not evaluate (a NaN score for auc): XGBoost from now on.
          native.reset();
          builtin.clear();
          break;
        }
        builtin.push_back({evals[set].name, metric, *value});
      }
    }
    if (!native.has_value()) {
      ASSIGN_OR_RETURN(std::string raw, booster.EvalOneIter(round, matrices, names));
      ASSIGN_OR_RETURN(builtin, ParseEvalLine(raw));
      if (round == 0 && options.native_metrics) {
        native = PlanNativeEvaluation(booster, evals, builtin, predictions);
        result.native_evaluation = native.has_value();
      }
    }
    // Per set: XGBoost's metrics, then the container's.
    std::vector<EvalEntry> entries;
    for (std::size_t i = 0; i < evals.size(); ++i) {
      const EvalSet& e = evals[i];
      for (const EvalEntry& b : builtin) {
        if (b.set == e.name) entries.push_back(b);
      }
      if (options.custom_metrics.empty()) continue;
      ASSIGN_OR_RETURN(const PredictionMatrix* predicted, predictions.Transformed(i));
      for (const std::string& m : options.custom_metrics) {
        auto value = ContainerMetric(m, *predicted, e.matrix->labels());
        if (!value.ok()) {
          return InvalidArgument(fmt::format("{} channel: {}", e.name, value.status().message()));
        }
        entries.push_back({e.name, m, AsPrintedByFeval(*value)});
      }
    }
    log(FormatEvalLine(round, entries));

    if (options.early_stopping_rounds == 0) continue;
    // The last metric of the last set, as xgb.train's EarlyStopping picks it.
    const EvalEntry* decisive = nullptr;
    for (const EvalEntry& e : entries) {
      if (e.set == evals.back().name) decisive = &e;
    }
    if (decisive == nullptr) continue;
    bool maximize = MetricMaximized(decisive->metric);
    bool improved = !best.has_value() ||
                    (maximize ? decisive->value > *best : decisive->value < *best);
    if (improved) {
      best = decisive->value;
      result.best_iteration = round;
      rounds_without_improvement = 0;
      RETURN_IF_ERROR(booster.SetAttr("best_score", ShortestText(decisive->value)));
      RETURN_IF_ERROR(booster.SetAttr("best_iteration", std::to_string(round)));
    } else if (++rounds_without_improvement >= options.early_stopping_rounds) {
      log(fmt::format("Stopping early: {}-{} has not improved in {} rounds; best round {} "
                      "({:.5f}).",
                      decisive->set, decisive->metric, options.early_stopping_rounds,
                      result.best_iteration, *best));
      break;
    }
  }

  if (best.has_value()) {
    result.best_score = best;
  } else {
    result.best_iteration = result.rounds - 1;
    RETURN_IF_ERROR(booster.SetAttr("best_iteration", std::to_string(result.best_iteration)));
  }
  RETURN_IF_ERROR(booster.SetAttr(
      "best_ntree_limit",
      std::to_string((result.best_iteration + 1) * options.num_parallel_tree)));
  return result;
}

}  // namespace hearth::algorithms::xgb
