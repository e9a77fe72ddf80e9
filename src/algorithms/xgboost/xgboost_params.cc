#include "algorithms/xgboost/xgboost_params.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <set>
#include <string_view>

#include "fmt/format.h"

namespace hearth::algorithms::xgb {

namespace {

HyperparameterSpec Spec(std::string name, HpType type) {
  HyperparameterSpec spec;
  spec.name = std::move(name);
  spec.type = type;
  return spec;
}

HyperparameterSpec IntSpec(std::string name, std::optional<double> min,
                           std::optional<double> max = std::nullopt) {
  HyperparameterSpec spec = Spec(std::move(name), HpType::kInt);
  spec.min = min;
  spec.max = max;
  return spec;
}

HyperparameterSpec FloatSpec(std::string name, std::optional<double> min,
                             std::optional<double> max = std::nullopt,
                             bool min_exclusive = false) {
  HyperparameterSpec spec = Spec(std::move(name), HpType::kFloat);
  spec.min = min;
  spec.max = max;
  spec.min_exclusive = min_exclusive;
  return spec;
}

HyperparameterSpec Choice(std::string name, std::vector<std::string> choices,
                          std::optional<std::string> default_value = std::nullopt) {
  HyperparameterSpec spec = Spec(std::move(name), HpType::kCategorical);
  spec.choices = std::move(choices);
  spec.default_value = std::move(default_value);
  return spec;
}

HyperparameterSpec Text(std::string name) { return Spec(std::move(name), HpType::kString); }

const std::vector<std::string>& Objectives() {
  static const std::vector<std::string> kObjectives = {
      "binary:logistic",  "binary:logitraw",       "binary:hinge",        "count:poisson",
      "multi:softmax",    "multi:softprob",        "rank:pairwise",       "rank:ndcg",
      "rank:map",         "reg:linear",            "reg:squarederror",    "reg:logistic",
      "reg:gamma",        "reg:pseudohubererror",  "reg:squaredlogerror", "reg:absoluteerror",
      "reg:tweedie",      "survival:aft",          "survival:cox"};
  return kObjectives;
}

// XGBoost's own metric names (1.7) that SageMaker lets through.
const std::set<std::string, std::less<>>& XGBoostMetrics() {
  static const std::set<std::string, std::less<>> kMetrics = {
      "auc",          "aucpr",         "error",           "logloss",
      "mae",          "mape",          "map",             "merror",
      "mlogloss",     "mphe",          "ndcg",            "rmse",
      "rmsle",        "poisson-nloglik", "gamma-nloglik", "gamma-deviance",
      "tweedie-nloglik", "cox-nloglik", "aft-nloglik",    "interval-regression-accuracy"};
  return kMetrics;
}

// Names SageMaker's container handles itself; the rest go to XGBoost.
const std::set<std::string, std::less<>> kNotForXGBoost = {
    "num_round",   "csv_weights",           "early_stopping_rounds",   "eval_metric",
    "silent",      "save_model_on_termination", "use_dask_gpu_training", "prob_buffer_row"};

std::vector<std::string> SplitList(std::string_view text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = text.substr(start, end - start);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) {
      item.remove_prefix(1);
    }
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) {
      item.remove_suffix(1);
    }
    // SDKs that JSON-encode lists send ["auc", "error"]: drop brackets and quotes.
    while (!item.empty() && (item.front() == '[' || item.front() == '"' || item.front() == '\'')) {
      item.remove_prefix(1);
    }
    while (!item.empty() && (item.back() == ']' || item.back() == '"' || item.back() == '\'')) {
      item.remove_suffix(1);
    }
    if (!item.empty()) out.emplace_back(item);
    start = end + 1;
  }
  return out;
}

bool IsNumber(std::string_view s) {
  double v;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size();
}

// XGBoost's names, SageMaker's container metrics, and "error@0.7", "ndcg@5", "map@3-", "ndcg-".
Status CheckMetricName(const std::string& metric) {
  std::string_view m = metric;
  if (XGBoostMetrics().contains(m) || IsContainerMetric(m) || m == "ndcg-" || m == "map-") {
    return Status::Ok();
  }
  auto at = m.find('@');
  if (at == std::string_view::npos) {
    std::string known;
    for (const auto& name : XGBoostMetrics()) known += name + ", ";
    return InvalidArgument(fmt::format(
        "Hyperparameter 'eval_metric': metric '{}' is not supported. Supported: {}accuracy, "
        "f1, mse, and error@t, ndcg@n, map@n.",
        metric, known));
  }
  std::string_view base = m.substr(0, at), threshold = m.substr(at + 1);
  if (base != "error" && base != "ndcg" && base != "map") {
    return InvalidArgument(fmt::format(
        "Hyperparameter 'eval_metric': metric '{}' is not supported. A metric with a custom "
        "threshold must be one of error, ndcg, map (as 'error@t').",
        metric));
  }
  if (base != "error" && threshold.ends_with('-')) threshold.remove_suffix(1);
  if (!IsNumber(threshold)) {
    return InvalidArgument(fmt::format(
        "Hyperparameter 'eval_metric': the threshold in '{}' must be a number.", metric));
  }
  return Status::Ok();
}

// "(1,-1,0)": one of -1, 0, 1 per feature. Returns XGBoost's spelling.
Result<std::string> CheckMonotone(std::string_view text) {
  std::string_view body = text;
  if (body.size() >= 2 && ((body.front() == '(' && body.back() == ')') ||
                           (body.front() == '[' && body.back() == ']'))) {
    body = body.substr(1, body.size() - 2);
  }
  std::vector<std::string> items = SplitList(body);
  if (items.empty()) {
    return InvalidArgument(fmt::format(
        "Hyperparameter 'monotone_constraints' must be a tuple of -1, 0 or 1 such as '(1,0,-1)', "
        "got '{}'.",
        text));
  }
  std::string canonical = "(";
  for (const std::string& item : items) {
    if (item != "-1" && item != "0" && item != "1") {
      return InvalidArgument(fmt::format(
          "Hyperparameter 'monotone_constraints' must be a tuple of -1, 0 or 1 such as "
          "'(1,0,-1)', got '{}'.",
          text));
    }
    if (canonical.size() > 1) canonical += ',';
    canonical += item;
  }
  return canonical + ")";
}

// "[[0, 1], [2, 3, 4]]": lists of feature indices.
Status CheckInteraction(std::string_view text) {
  auto bad = [&] {
    return InvalidArgument(fmt::format(
        "Hyperparameter 'interaction_constraints' must be a nested list of feature indices "
        "such as '[[0, 1], [2, 3, 4]]', got '{}'.",
        text));
  };
  std::size_t i = 0;
  auto skip = [&] {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  skip();
  if (i >= text.size() || text[i++] != '[') return bad();
  int groups = 0;
  while (true) {
    skip();
    if (i < text.size() && text[i] == ']' && groups == 0) return bad();
    if (i >= text.size() || text[i++] != '[') return bad();
    int members = 0;
    while (true) {
      skip();
      std::size_t start = i;
      while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
      if (i == start) return bad();
      ++members;
      skip();
      if (i < text.size() && text[i] == ',') {
        ++i;
        continue;
      }
      if (i < text.size() && text[i] == ']') {
        ++i;
        break;
      }
      return bad();
    }
    if (members == 0) return bad();
    ++groups;
    skip();
    if (i < text.size() && text[i] == ',') {
      ++i;
      continue;
    }
    if (i < text.size() && text[i] == ']') {
      ++i;
      break;
    }
    return bad();
  }
  skip();
  return i == text.size() ? Status::Ok() : bad();
}

Status CheckUpdater(const std::vector<std::string>& plugins, std::string_view booster,
                    std::string_view process_type) {
  static const std::set<std::string, std::less<>> kTree = {
      "grow_colmaker", "distcol", "grow_histmaker", "grow_local_histmaker", "grow_skmaker",
      "sync", "refresh", "prune", "grow_quantile_histmaker"};
  static const std::set<std::string, std::less<>> kTreeGrowers = {
      "grow_colmaker", "distcol", "grow_histmaker", "grow_local_histmaker",
      "grow_quantile_histmaker"};
  static const std::set<std::string, std::less<>> kLinear = {"shotgun", "coord_descent"};
  if (plugins.empty()) {
    return InvalidArgument("Hyperparameter 'updater' must name at least one plugin.");
  }
  if (booster == "gblinear") {
    if (plugins.size() != 1 || !kLinear.contains(plugins[0])) {
      return InvalidArgument(
          "Hyperparameter 'updater': a linear updater must be one of 'shotgun', "
          "'coord_descent'.");
    }
    return Status::Ok();
  }
  if (process_type == "update") {
    for (const auto& p : plugins) {
      if (p != "refresh" && p != "prune") {
        return InvalidArgument(
            "Hyperparameter 'updater': process_type 'update' can only be used with updater "
            "'refresh' and 'prune'.");
      }
    }
    return Status::Ok();
  }
  int growers = 0;
  for (const auto& p : plugins) {
    if (!kTree.contains(p)) {
      return InvalidArgument(fmt::format(
          "Hyperparameter 'updater': '{}' is not a tree updater. Choose from grow_colmaker, "
          "distcol, grow_histmaker, grow_local_histmaker, grow_skmaker, "
          "grow_quantile_histmaker, sync, refresh, prune.",
          p));
    }
    growers += kTreeGrowers.contains(p) ? 1 : 0;
  }
  if (growers > 1) {
    return InvalidArgument(
        "Hyperparameter 'updater': only one tree grow plugin can be selected (grow_colmaker, "
        "distcol, grow_histmaker, grow_local_histmaker, grow_quantile_histmaker).");
  }
  return Status::Ok();
}

std::string_view Get(const Hyperparameters& hps, std::string_view name) {
  return hps.Has(name) ? std::string_view(hps.String(name)) : std::string_view();
}

}  // namespace

bool IsContainerMetric(std::string_view metric) {
  return metric == "accuracy" || metric == "f1" || metric == "mse";
}

const std::vector<HyperparameterSpec>& HyperparameterSpecs() {
  static const std::vector<HyperparameterSpec> kSpecs = [] {
    std::vector<HyperparameterSpec> s;
    HyperparameterSpec num_round = IntSpec("num_round", 1);
    num_round.required = true;
    s.push_back(num_round);
    s.push_back(IntSpec("num_class", 2));
    HyperparameterSpec csv_weights = IntSpec("csv_weights", 0, 1);
    csv_weights.default_value = std::string("0");
    s.push_back(csv_weights);
    s.push_back(IntSpec("early_stopping_rounds", 1));
    s.push_back(Choice("booster", {"gbtree", "gblinear", "dart"}, "gbtree"));
    s.push_back(IntSpec("silent", 0, 1));
    s.push_back(IntSpec("verbosity", 0, 3));
    s.push_back(IntSpec("nthread", 1));
    for (const char* name : {"eta", "learning_rate"}) s.push_back(FloatSpec(name, 0, 1));
    for (const char* name : {"gamma", "min_split_loss"}) s.push_back(FloatSpec(name, 0));
    s.push_back(IntSpec("max_depth", 0));
    s.push_back(FloatSpec("min_child_weight", 0));
    s.push_back(FloatSpec("max_delta_step", 0));
    for (const char* name : {"subsample", "colsample_bytree", "colsample_bylevel",
                             "colsample_bynode"}) {
      s.push_back(FloatSpec(name, 0, 1, /*min_exclusive=*/true));
    }
    for (const char* name : {"lambda", "reg_lambda", "alpha", "reg_alpha"}) {
      s.push_back(FloatSpec(name, 0));
    }
    s.push_back(Choice("tree_method", {"auto", "exact", "approx", "hist", "gpu_hist"}));
    s.push_back(FloatSpec("sketch_eps", 0, 1, true));  // (0, 1): the upper end in PlanTraining
    s.push_back(FloatSpec("scale_pos_weight", 0, std::nullopt, true));
    s.push_back(Text("updater"));
    s.push_back(Choice("dsplit", {"row", "col"}));
    s.push_back(IntSpec("refresh_leaf", 0, 1));
    s.push_back(Choice("process_type", {"default", "update"}));
    s.push_back(Choice("grow_policy", {"depthwise", "lossguide"}));
    s.push_back(IntSpec("max_leaves", 0));
    s.push_back(IntSpec("max_bin", 2));
    s.push_back(Choice("predictor", {"auto", "cpu_predictor", "gpu_predictor"}));
    s.push_back(Text("monotone_constraints"));
    s.push_back(Text("interaction_constraints"));
    s.push_back(Choice("sample_type", {"uniform", "weighted"}));
    s.push_back(Choice("normalize_type", {"tree", "forest"}));
    s.push_back(FloatSpec("rate_drop", 0, 1));
    s.push_back(IntSpec("one_drop", 0, 1));
    s.push_back(FloatSpec("skip_drop", 0, 1));
    s.push_back(FloatSpec("lambda_bias", 0, 1));
    s.push_back(FloatSpec("tweedie_variance_power", 1, 2, true));  // (1, 2)
    s.push_back(Choice("objective", Objectives(), "reg:squarederror"));
    s.push_back(FloatSpec("base_score", 0));
    s.push_back(Text("eval_metric"));
    // XGBoost's seed is a 32-bit int; SageMaker takes the open interval.
    s.push_back(IntSpec("seed", -2147483647.0, 2147483646.0));
    s.push_back(IntSpec("num_parallel_tree", 1));
    s.push_back(Choice("save_model_on_termination", {"true", "false"}));
    s.push_back(Choice("aft_loss_distribution", {"normal", "logistic", "extreme"}));
    s.push_back(FloatSpec("aft_loss_distribution_scale", 0));
    s.push_back(Choice("single_precision_histogram", {"true", "false"}));
    s.push_back(Choice("deterministic_histogram", {"true", "false"}));
    s.push_back(Choice("sampling_method", {"uniform", "gradient_based"}));
    s.push_back(IntSpec("prob_buffer_row", 1, std::nullopt));
    s.back().min_exclusive = true;
    s.push_back(Choice("use_dask_gpu_training", {"true", "false"}));
    return s;
  }();
  return kSpecs;
}

Result<TrainingPlan> PlanTraining(const Hyperparameters& hps,
                                  const std::map<std::string, std::string>& raw, int num_cpus) {
  TrainingPlan plan;
  plan.num_round = static_cast<int>(hps.Int("num_round"));
  plan.early_stopping_rounds =
      hps.Has("early_stopping_rounds") ? static_cast<int>(hps.Int("early_stopping_rounds")) : 0;
  plan.csv_weights = hps.Int("csv_weights") == 1;
  plan.objective = hps.String("objective");
  plan.num_class = hps.Has("num_class") ? static_cast<int>(hps.Int("num_class")) : 0;
  plan.num_parallel_tree =
      hps.Has("num_parallel_tree") ? static_cast<int>(hps.Int("num_parallel_tree")) : 1;

  bool multi = plan.objective.starts_with("multi:");
  if (multi && plan.num_class == 0) {
    return InvalidArgument(fmt::format(
        "Hyperparameter 'num_class' is required when objective is '{}'.", plan.objective));
  }
  if (!multi && plan.num_class != 0) {
    return InvalidArgument(fmt::format(
        "Hyperparameter 'num_class' applies only to multi:softmax and multi:softprob, not to "
        "objective '{}'.",
        plan.objective));
  }
  if (hps.Has("sketch_eps") && hps.Float("sketch_eps") >= 1) {
    return InvalidArgument(fmt::format(
        "Hyperparameter 'sketch_eps' must be a number in (0, 1), got '{}'.",
        hps.String("sketch_eps")));
  }
  if (hps.Has("tweedie_variance_power") && hps.Float("tweedie_variance_power") >= 2) {
    return InvalidArgument(fmt::format(
        "Hyperparameter 'tweedie_variance_power' must be a number in (1, 2), got '{}'.",
        hps.String("tweedie_variance_power")));
  }
  std::string_view tree_method = Get(hps, "tree_method");
  std::string monotone;
  if (hps.Has("monotone_constraints")) {
    ASSIGN_OR_RETURN(monotone, CheckMonotone(hps.String("monotone_constraints")));
    if (tree_method != "exact" && tree_method != "hist") {
      return InvalidArgument(
          "Hyperparameter 'monotone_constraints' can be used only when tree_method is 'exact' "
          "or 'hist'.");
    }
  }
  if (hps.Has("interaction_constraints")) {
    RETURN_IF_ERROR(CheckInteraction(hps.String("interaction_constraints")));
    if (tree_method != "exact" && tree_method != "hist" && tree_method != "approx") {
      return InvalidArgument(
          "Hyperparameter 'interaction_constraints' can be used only when tree_method is "
          "'exact', 'hist' or 'approx'.");
    }
  }
  std::string updater;
  if (hps.Has("updater")) {
    std::vector<std::string> plugins = SplitList(hps.String("updater"));
    RETURN_IF_ERROR(CheckUpdater(plugins, hps.String("booster"), Get(hps, "process_type")));
    for (const auto& p : plugins) {
      if (!updater.empty()) updater += ',';
      updater += p;
    }
  }

  // eval_metric plus the tuning job's objective metric; SageMaker sorts the union when both
  // are given.
  std::vector<std::string> metrics;
  if (hps.Has("eval_metric")) metrics = SplitList(hps.String("eval_metric"));
  if (auto it = raw.find("_tuning_objective_metric"); it != raw.end()) {
    std::string_view tuned = it->second;
    if (auto colon = tuned.find(':'); colon != std::string_view::npos) {
      tuned.remove_prefix(colon + 1);
    }
    if (!tuned.empty()) {
      bool had_list = !metrics.empty();
      if (std::find(metrics.begin(), metrics.end(), tuned) == metrics.end()) {
        metrics.emplace_back(tuned);
      }
      if (had_list) std::sort(metrics.begin(), metrics.end());
    }
  }
  std::vector<std::string> xgboost_metrics;
  for (const std::string& m : metrics) {
    RETURN_IF_ERROR(CheckMetricName(m));
    if (m == "auc" && !plan.objective.starts_with("binary:") &&
        !plan.objective.starts_with("rank:")) {
      return InvalidArgument(
          "Hyperparameter 'eval_metric': metric 'auc' can only be applied to classification "
          "(binary:*) and ranking (rank:*) objectives.");
    }
    if (m == "aft-nloglik" && plan.objective != "survival:aft") {
      return InvalidArgument(
          "Hyperparameter 'eval_metric': metric 'aft-nloglik' can only be applied to objective "
          "'survival:aft'.");
    }
    auto& target = IsContainerMetric(m) ? plan.custom_metrics : xgboost_metrics;
    if (std::find(target.begin(), target.end(), m) == target.end()) target.push_back(m);
  }

  // As xgb.train's Booster does: warn about parameters the booster does not use.
  plan.booster_params.emplace_back("validate_parameters", "1");
  bool nthread_given = false;
  for (const auto& [name, value] : hps.values()) {
    if (kNotForXGBoost.contains(name)) continue;
    nthread_given = nthread_given || name == "nthread";
    if (name == "monotone_constraints") {
      plan.booster_params.emplace_back(name, monotone);
    } else if (name == "updater") {
      plan.booster_params.emplace_back(name, updater);
    } else {
      plan.booster_params.emplace_back(name, value);
    }
  }
  if (!nthread_given) plan.booster_params.emplace_back("nthread", std::to_string(num_cpus));
  for (const std::string& m : xgboost_metrics) plan.booster_params.emplace_back("eval_metric", m);
  return plan;
}

}  // namespace hearth::algorithms::xgb
