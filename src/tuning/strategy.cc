#include "tuning/strategy.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "tuning/bayesian.h"
#include "tuning/hyperband.h"
#include "tuning/random.h"
#include "tuning/validation.h"

namespace hearth::tuning {
namespace {

class RandomStrategy : public Strategy {
 public:
  explicit RandomStrategy(StrategyOptions options) : Strategy(std::move(options)) {}

 protected:
  std::optional<Configuration> Propose(TrialId trial) override {
    Rng rng(seed(), RngStream::kRandomSearch, static_cast<std::uint64_t>(trial));
    return options().space.Sample(rng);
  }
};

class GridStrategy : public Strategy {
 public:
  explicit GridStrategy(StrategyOptions options)
      : Strategy(std::move(options)), size_(*this->options().space.NumCombinations()) {}

 protected:
  std::optional<Configuration> Propose(TrialId trial) override {
    if (trial >= size_) return std::nullopt;
    return options().space.GridPoint(trial);
  }

 private:
  std::int64_t size_;
};

class HyperbandStrategy : public Strategy {
 public:
  explicit HyperbandStrategy(StrategyOptions options)
      : Strategy(std::move(options)),
        schedule_(MakeHyperbandSchedule(this->options().hyperband.min_resource,
                                        this->options().hyperband.max_resource)),
        recorded_(schedule_.num_brackets(),
                  std::vector<std::vector<double>>(schedule_.rungs.size())) {}

 protected:
  std::optional<Configuration> Propose(TrialId trial) override {
    Rng rng(seed(), RngStream::kRandomSearch, static_cast<std::uint64_t>(trial));
    return options().space.Sample(rng);
  }

  int BracketOf(TrialId trial) const override {
    Rng rng(seed(), RngStream::kHyperbandBracket, static_cast<std::uint64_t>(trial));
    double u = rng.Uniform();
    for (int b = 0; b < schedule_.num_brackets() - 1; ++b) {
      if (u < schedule_.bracket_probability[b]) return b;
      u -= schedule_.bracket_probability[b];
    }
    return schedule_.num_brackets() - 1;
  }

  TrialDecision OnIntermediate(TrialId trial, std::int64_t epoch, double value) override {
    if (epoch >= schedule_.max_resource) {
      return {TrialAction::kStop,
              "Reached MaxResource (" + std::to_string(schedule_.max_resource) + " epochs)"};
    }
    const int bracket = BracketOf(trial);
    auto [it, inserted] = next_rung_.try_emplace(trial, bracket);
    int& rung = it->second;
    const double minimized = Minimized(value);
    const int num_rungs = static_cast<int>(schedule_.rungs.size());
    // A sparse report can pass several rungs at once: each judges the same value.
    while (rung < num_rungs && schedule_.rungs[rung] <= epoch) {
      std::vector<double>& recorded = recorded_[bracket][rung];
      const bool behind = !recorded.empty() && minimized > Quantile(recorded, 1.0 / kHyperbandEta);
      recorded.push_back(minimized);
      const std::int64_t rung_epoch = schedule_.rungs[rung];
      ++rung;
      if (behind) {
        return {TrialAction::kStop,
                "Objective " + FormatDouble(value) + " at epoch " + std::to_string(epoch) +
                    " is not in the best 1/" + std::to_string(kHyperbandEta) +
                    " of its Hyperband bracket at rung " + std::to_string(rung_epoch)};
      }
    }
    return {};
  }

 private:
  HyperbandSchedule schedule_;
  // [bracket][rung]: minimised values recorded there, in arrival order.
  std::vector<std::vector<std::vector<double>>> recorded_;
  std::map<TrialId, int> next_rung_;  // first rung a trial has not passed yet
};

std::optional<ObjectiveType> ParseObjectiveType(std::string_view text) {
  if (text == "Minimize") return ObjectiveType::kMinimize;
  if (text == "Maximize") return ObjectiveType::kMaximize;
  return std::nullopt;
}

std::optional<StrategyType> ParseStrategyType(std::string_view text) {
  if (text == "Bayesian") return StrategyType::kBayesian;
  if (text == "Random") return StrategyType::kRandom;
  if (text == "Hyperband") return StrategyType::kHyperband;
  if (text == "Grid") return StrategyType::kGrid;
  return std::nullopt;
}

// The static hyperparameters SageMaker reads MaxResource from, in its documented order.
constexpr const char* kEpochKeys[] = {"epochs", "numepochs", "n-epochs", "n_epochs", "num_epochs"};

}  // namespace

std::string_view StrategyTypeName(StrategyType type) {
  switch (type) {
    case StrategyType::kBayesian:
      return "Bayesian";
    case StrategyType::kRandom:
      return "Random";
    case StrategyType::kHyperband:
      return "Hyperband";
    case StrategyType::kGrid:
      return "Grid";
  }
  return "";
}

Strategy::Strategy(StrategyOptions options)
    : options_(std::move(options)),
      median_rule_(
          MedianStoppingRule::Options{options_.objective, options_.median_rule.min_peers}) {}

Status Strategy::AddPriorObservation(const std::map<std::string, std::string>& hyperparameters,
                                     double objective) {
  if (!trials_.empty()) {
    return FailedPrecondition("Warm-start observations must be added before the first trial");
  }
  if (!std::isfinite(objective)) {
    return InvalidArgument("Warm-start objective value must be finite");
  }
  ASSIGN_OR_RETURN(Configuration config,
                   options_.space.FromHyperParameters(hyperparameters,
                                                      /*allow_out_of_range=*/true));
  priors_.push_back({std::move(config), objective});
  return Status::Ok();
}

Result<std::vector<Suggestion>> Strategy::Suggest(int count) {
  if (count < 0) return InvalidArgument("Suggest: count must be >= 0");
  std::vector<Suggestion> out;
  for (int i = 0; i < count; ++i) {
    const TrialId id = next_trial_id();
    std::optional<Configuration> config = Propose(id);
    if (!config) break;
    trials_.push_back(Trial{*config});
    out.push_back({id, *config, options_.space.ToHyperParameters(*config), BracketOf(id)});
  }
  return out;
}

Status Strategy::RestoreTrial(TrialId trial,
                              const std::map<std::string, std::string>& hyperparameters) {
  if (trial != next_trial_id()) {
    return InvalidArgument("RestoreTrial: expected trial " + std::to_string(next_trial_id()) +
                           ", got " + std::to_string(trial));
  }
  ASSIGN_OR_RETURN(Configuration config, options_.space.FromHyperParameters(hyperparameters));
  trials_.push_back(Trial{std::move(config)});
  return Status::Ok();
}

Result<Strategy::Trial*> Strategy::PendingTrial(TrialId trial) {
  if (trial < 0 || trial >= next_trial_id()) {
    return NotFound("No trial " + std::to_string(trial));
  }
  Trial& t = trials_[static_cast<size_t>(trial)];
  if (t.state != TrialState::kPending) {
    return FailedPrecondition("Trial " + std::to_string(trial) + " has already ended");
  }
  return &t;
}

Status Strategy::Complete(TrialId trial, double objective) {
  ASSIGN_OR_RETURN(Trial * t, PendingTrial(trial));
  if (!std::isfinite(objective)) return InvalidArgument("Objective value must be finite");
  t->state = TrialState::kCompleted;
  t->objective = objective;
  return Status::Ok();
}

Status Strategy::Fail(TrialId trial) {
  ASSIGN_OR_RETURN(Trial * t, PendingTrial(trial));
  t->state = TrialState::kFailed;
  return Status::Ok();
}

Result<TrialDecision> Strategy::ReportIntermediate(TrialId trial, std::int64_t epoch,
                                                   double value) {
  ASSIGN_OR_RETURN(Trial * t, PendingTrial(trial));
  if (epoch < 1 || epoch < t->last_epoch) {
    return InvalidArgument("Epoch " + std::to_string(epoch) + " of trial " + std::to_string(trial) +
                           " must be >= 1 and >= its previous report");
  }
  if (!std::isfinite(value)) return InvalidArgument("Objective value must be finite");
  t->last_epoch = epoch;
  return OnIntermediate(trial, epoch, value);
}

TrialDecision Strategy::OnIntermediate(TrialId trial, std::int64_t epoch, double value) {
  if (!options_.early_stopping_auto) return {};
  return median_rule_.Report(trial, epoch, value);
}

int Strategy::num_pending() const {
  return static_cast<int>(std::count_if(trials_.begin(), trials_.end(), [](const Trial& t) {
    return t.state == TrialState::kPending;
  }));
}

std::optional<TrialId> Strategy::BestTrial() const {
  std::optional<TrialId> best;
  for (TrialId id = 0; id < next_trial_id(); ++id) {
    const Trial& t = trials_[static_cast<size_t>(id)];
    if (t.state != TrialState::kCompleted) continue;
    if (!best ||
        Minimized(t.objective) < Minimized(trials_[static_cast<size_t>(*best)].objective)) {
      best = id;
    }
  }
  return best;
}

HyperbandSchedule MakeHyperbandSchedule(std::int64_t min_resource, std::int64_t max_resource,
                                        int eta) {
  HyperbandSchedule schedule;
  schedule.max_resource = max_resource;
  for (std::int64_t r = min_resource; r < max_resource; r *= eta) schedule.rungs.push_back(r);
  const int s_max = static_cast<int>(schedule.rungs.size());
  double total = 0;
  for (int b = 0; b <= s_max; ++b) {
    const int s = s_max - b;  // rungs a trial of bracket b passes
    const double n = static_cast<double>(s_max + 1) / (s + 1) * std::pow(eta, s);
    schedule.bracket_probability.push_back(n);
    total += n;
  }
  for (double& p : schedule.bracket_probability) p /= total;
  return schedule;
}

double Quantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const size_t lower = static_cast<size_t>(std::floor(position));
  const size_t upper = std::min(lower + 1, values.size() - 1);
  const double fraction = position - static_cast<double>(lower);
  return values[lower] + fraction * (values[upper] - values[lower]);
}

Result<std::unique_ptr<Strategy>> CreateStrategy(StrategyOptions options) {
  if (!options.random_seed) {
    return InvalidArgument("A tuning strategy needs a RandomSeed; choose one and record it");
  }
  std::unique_ptr<Strategy> strategy;
  switch (options.type) {
    case StrategyType::kRandom:
      strategy = std::make_unique<RandomStrategy>(std::move(options));
      break;
    case StrategyType::kGrid:
      if (!options.space.AllCategorical() || !options.space.NumCombinations()) {
        return InvalidArgument("The Grid strategy requires every parameter range to be categorical",
                               "ValidationException");
      }
      strategy = std::make_unique<GridStrategy>(std::move(options));
      break;
    case StrategyType::kHyperband: {
      const HyperbandConfig& hb = options.hyperband;
      if (hb.min_resource < 1 || hb.min_resource > hb.max_resource ||
          hb.max_resource > kMaxHyperbandResource) {
        return InvalidArgument("Hyperband needs 1 <= MinResource <= MaxResource <= 20000, got " +
                                   std::to_string(hb.min_resource) + " and " +
                                   std::to_string(hb.max_resource),
                               "ValidationException");
      }
      if (options.early_stopping_auto) {
        return InvalidArgument("The Hyperband strategy requires TrainingJobEarlyStoppingType Off",
                               "ValidationException");
      }
      strategy = std::make_unique<HyperbandStrategy>(std::move(options));
      break;
    }
    case StrategyType::kBayesian:
      strategy = MakeBayesianStrategy(std::move(options));
      break;
  }
  return strategy;
}

Result<StrategyOptions> StrategyOptionsFromJson(
    const nlohmann::json& config, const std::map<std::string, std::string>& static_hps,
    std::string_view path) {
  const std::string base(path);
  if (!config.is_object()) {
    return InvalidArgument("HyperParameterTuningJobConfig must be an object",
                           "ValidationException");
  }
  Violations errors;
  StrategyOptions options;
  auto member_of = [&](const nlohmann::json& object, const char* key) -> const nlohmann::json* {
    auto it = object.find(key);
    return it == object.end() || it->is_null() ? nullptr : &*it;
  };

  if (const nlohmann::json* s = member_of(config, "Strategy"); !s) {
    errors.AddNull(base + ".strategy");
  } else if (auto type = s->is_string() ? ParseStrategyType(s->get<std::string>()) : std::nullopt) {
    options.type = *type;
  } else {
    errors.AddQuoted(s->is_string() ? s->get<std::string>() : s->dump(), base + ".strategy",
                     "Member must satisfy enum value set: [Bayesian, Random, Hyperband, Grid]");
  }

  if (const nlohmann::json* objective = member_of(config, "HyperParameterTuningJobObjective");
      objective && objective->is_object()) {
    if (const nlohmann::json* t = member_of(*objective, "Type")) {
      if (auto type = t->is_string() ? ParseObjectiveType(t->get<std::string>()) : std::nullopt) {
        options.objective = *type;
      } else {
        errors.AddQuoted(t->is_string() ? t->get<std::string>() : t->dump(),
                         base + ".hyperParameterTuningJobObjective.type",
                         "Member must satisfy enum value set: [Maximize, Minimize]");
      }
    }
  }

  if (const nlohmann::json* seed = member_of(config, "RandomSeed")) {
    if (seed->is_number_integer() && seed->get<std::int64_t>() >= 0) {
      options.random_seed = seed->get<std::uint64_t>();
    } else {
      errors.AddQuoted(seed->dump(), base + ".randomSeed",
                       "Member must have value greater than or equal to 0");
    }
  }

  if (const nlohmann::json* es = member_of(config, "TrainingJobEarlyStoppingType")) {
    const std::string text = es->is_string() ? es->get<std::string>() : es->dump();
    if (text == "Auto") {
      options.early_stopping_auto = true;
    } else if (text != "Off") {
      errors.AddQuoted(text, base + ".trainingJobEarlyStoppingType",
                       "Member must satisfy enum value set: [Off, Auto]");
    }
  }

  const nlohmann::json* hyperband = nullptr;
  if (const nlohmann::json* sc = member_of(config, "StrategyConfig"); sc && sc->is_object()) {
    hyperband = member_of(*sc, "HyperbandStrategyConfig");
  }
  const std::string hb_path = base + ".strategyConfig.hyperbandStrategyConfig";
  if (hyperband && options.type != StrategyType::kHyperband) {
    errors.Add("{...}", hb_path,
               "HyperbandStrategyConfig is supported only when Strategy is Hyperband");
  }
  if (options.type == StrategyType::kHyperband) {
    if (options.early_stopping_auto) {
      errors.AddQuoted("Auto", base + ".trainingJobEarlyStoppingType",
                       "Member must be Off when Strategy is Hyperband");
    }
    std::optional<std::int64_t> min_resource;
    std::optional<std::int64_t> max_resource;
    for (auto [key, out, field] : {std::tuple{"MinResource", &min_resource, ".minResource"},
                                   std::tuple{"MaxResource", &max_resource, ".maxResource"}}) {
      const nlohmann::json* v = hyperband ? member_of(*hyperband, key) : nullptr;
      if (!v) continue;
      if (v->is_number_integer() && v->get<std::int64_t>() >= 1) {
        *out = v->get<std::int64_t>();
      } else {
        errors.AddQuoted(v->dump(), hb_path + field,
                         "Member must have value greater than or equal to 1");
      }
    }
    if (!max_resource) {
      for (const char* key : kEpochKeys) {
        auto it = static_hps.find(key);
        if (it == static_hps.end()) continue;
        char* end = nullptr;
        const long long v = std::strtoll(it->second.c_str(), &end, 10);
        if (end != it->second.c_str() && *end == '\0' && v >= 1) max_resource = v;
        break;
      }
      if (!max_resource) {
        errors.Add("null", hb_path + ".maxResource",
                   "MaxResource must be given, or inferable from one of the static "
                   "hyperparameters epochs, numepochs, n-epochs, n_epochs, num_epochs");
      }
    }
    options.hyperband.min_resource = min_resource.value_or(1);
    options.hyperband.max_resource = max_resource.value_or(1);
    if (max_resource && *max_resource > kMaxHyperbandResource) {
      errors.AddQuoted(std::to_string(*max_resource), hb_path + ".maxResource",
                       "Member must have value less than or equal to 20000");
    }
    if (min_resource && max_resource && *min_resource > *max_resource) {
      errors.AddQuoted(std::to_string(*min_resource), hb_path + ".minResource",
                       "Member must be less than or equal to MaxResource (" +
                           std::to_string(*max_resource) + ")");
    }
  }
  if (!errors.empty()) return errors.ToStatus();

  if (const nlohmann::json* ranges = member_of(config, "ParameterRanges")) {
    ASSIGN_OR_RETURN(options.space, SearchSpace::FromJson(*ranges, base + ".parameterRanges"));
  }
  if (options.type == StrategyType::kGrid && !options.space.AllCategorical()) {
    Violations grid;
    grid.Add("{...}", base + ".parameterRanges",
             "The Grid strategy supports only CategoricalParameterRanges");
    return grid.ToStatus();
  }
  return options;
}

}  // namespace hearth::tuning
