// Strategy: what a hyperparameter tuning job asks for its next training jobs, and how it learns
// from their results. One implementation per SageMaker strategy:
//
//   Random     independent uniform draws in the warped space (search_space.h).
//   Grid       the full product of categorical values in a fixed order; the space must be all
//              categorical and the job has NumCombinations() trials.
//   Bayesian   a Gaussian process (gp.h) on the encoded configurations, Matérn 5/2 ARD, MAP
//              hyperparameters, fitted to the plain or half-rank-warped objective values
//              (target_warping.h), maximising log expected improvement; see bayesian.h.
//   Hyperband  random configurations, each assigned a bracket; asynchronous successive halving
//              with eta = 3 on the epoch resource stops the ones that fall behind (hyperband.h).
//
// Trials. Suggest() creates trials with ids 0, 1, 2, ... in order; each starts pending and ends
// with exactly one of Complete (it has a final objective value, including a trial stopped early)
// or Fail (no objective). While it runs, ReportIntermediate passes each per-epoch value of the
// objective metric and answers whether the trial should go on: Hyperband's rungs decide for
// Hyperband; the median rule (early_stopping.h) does when TrainingJobEarlyStoppingType is Auto;
// otherwise the answer is always continue. Pending trials are known to the strategy, so parallel
// suggestions account for them (the Bayesian strategy's kriging believer).
//
// Determinism. A strategy holds no random state between calls and no hidden cache that could
// change an answer. Suggestion k is a function of (RandomSeed, options, k, and the trials and
// observations the strategy holds at that moment); stop decisions are a function of the
// intermediate values reported so far, in their order. A controller that records each trial's
// hyperparameters and each event therefore rebuilds an equivalent strategy after a restart:
//   CreateStrategy(options); AddPriorObservation(...) for the warm start;
//   for each recorded trial in id order: RestoreTrial(id, hyperparameters);
//   then replay Complete / Fail / ReportIntermediate in their recorded order
//   (the decisions returned during the replay are the ones already acted on).
// The next Suggest() then returns what the original would have returned. (Equality holds for the
// same build on the same CPU; floating point may differ across instruction sets.)
//
// Objective values are taken as given; Maximize objectives are negated internally.
//
// Thread safety: a Strategy is not thread safe; the owner serialises calls.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "tuning/early_stopping.h"
#include "tuning/search_space.h"
#include "tuning/trial.h"

namespace hearth::tuning {

enum class StrategyType { kBayesian, kRandom, kHyperband, kGrid };
std::string_view StrategyTypeName(StrategyType type);

// HyperbandStrategyConfig. SageMaker caps MaxResource at 20000.
inline constexpr std::int64_t kMaxHyperbandResource = 20000;
struct HyperbandConfig {
  std::int64_t min_resource = 1;
  std::int64_t max_resource = 1;
};

struct StrategyOptions {
  StrategyType type = StrategyType::kBayesian;
  ObjectiveType objective = ObjectiveType::kMinimize;
  SearchSpace space;
  // RandomSeed. SageMaker picks one when the request has none; so must the controller, and it
  // must record it: CreateStrategy refuses to run without one.
  std::optional<std::uint64_t> random_seed;
  HyperbandConfig hyperband;  // Hyperband only
  // TrainingJobEarlyStoppingType Auto: the median rule stops Random/Bayesian trials.
  bool early_stopping_auto = false;
  MedianStoppingRule::Options median_rule;  // `objective` is taken from above
  // Bayesian: how many configurations come from a space-filling random design before the model
  // is used, warm-start observations included. 0 means the default, max(3, d + 1) for d
  // tunable parameters.
  int initial_random = 0;
};

struct Suggestion {
  TrialId trial = 0;
  Configuration config;
  std::map<std::string, std::string> hyperparameters;  // the tunable ones, as strings
  int bracket = -1;  // Hyperband: the bracket the trial belongs to (hyperband.h)
};

enum class TrialState { kPending, kCompleted, kFailed };

class Strategy {
 public:
  virtual ~Strategy() = default;
  Strategy(const Strategy&) = delete;
  Strategy& operator=(const Strategy&) = delete;

  const StrategyOptions& options() const { return options_; }

  // Warm start: an observation from a parent tuning job (its training job's tunable
  // hyperparameters and final objective). Only before the first Suggest or RestoreTrial
  // (FailedPrecondition after). Parents of a TransferLearning warm start may have had other
  // ranges: values outside this job's ranges are kept where the warping allows. InvalidArgument
  // when the hyperparameters do not fit this space (missing parameter, unknown category, ...):
  // such an observation is skipped. Only the Bayesian strategy learns from them.
  Status AddPriorObservation(const std::map<std::string, std::string>& hyperparameters,
                             double objective);

  // Up to `count` new pending trials (ids next_trial_id() onwards). Fewer, possibly none, when
  // the space is exhausted (Grid). InvalidArgument if count < 0.
  Result<std::vector<Suggestion>> Suggest(int count);

  // Re-enters trial `trial` as recorded before a restart. It must be next_trial_id()
  // (InvalidArgument otherwise) and the hyperparameters must belong to the space.
  Status RestoreTrial(TrialId trial, const std::map<std::string, std::string>& hyperparameters);

  // The final objective value of a pending trial. NotFound for an unknown trial,
  // FailedPrecondition when it already ended, InvalidArgument for a non-finite value.
  Status Complete(TrialId trial, double objective);
  // A pending trial ended without an objective value. Same errors as Complete.
  Status Fail(TrialId trial);

  // The objective metric of a pending trial after `epoch` (1-based, non-decreasing per trial).
  // Same errors as Complete, plus InvalidArgument for an epoch < 1 or below an earlier report.
  Result<TrialDecision> ReportIntermediate(TrialId trial, std::int64_t epoch, double value);

  TrialId next_trial_id() const { return static_cast<TrialId>(trials_.size()); }
  int num_pending() const;
  // 0 <= trial < next_trial_id().
  TrialState state(TrialId trial) const { return trials_[static_cast<size_t>(trial)].state; }
  // The completed trial with the best objective (lowest id on ties); nullopt if none.
  std::optional<TrialId> BestTrial() const;

 protected:
  struct Trial {
    Configuration config;
    TrialState state = TrialState::kPending;
    double objective = 0;  // as reported; valid when completed
    std::int64_t last_epoch = 0;
  };
  struct Observation {
    Configuration config;
    double objective;  // as reported
  };

  explicit Strategy(StrategyOptions options);

  // The configuration of trial `trial` (== next_trial_id()), given the trials and priors so
  // far; nullopt when there is nothing left to try.
  virtual std::optional<Configuration> Propose(TrialId trial) = 0;
  virtual int BracketOf(TrialId trial) const { return -1; }
  // Called for each intermediate value after the bookkeeping; Hyperband overrides.
  virtual TrialDecision OnIntermediate(TrialId trial, std::int64_t epoch, double value);

  // `objective` turned into a value to minimise.
  double Minimized(double objective) const {
    return options_.objective == ObjectiveType::kMaximize ? -objective : objective;
  }

  const std::vector<Trial>& trials() const { return trials_; }
  const std::vector<Observation>& priors() const { return priors_; }
  std::uint64_t seed() const { return *options_.random_seed; }

 private:
  Result<Trial*> PendingTrial(TrialId trial);

  StrategyOptions options_;
  std::vector<Trial> trials_;
  std::vector<Observation> priors_;
  MedianStoppingRule median_rule_;
};

// The strategy `options.type` names. InvalidArgument when the options do not fit it: no random
// seed, a Grid space with a non-categorical range, Hyperband resources outside
// 1 <= MinResource <= MaxResource <= 20000, early stopping Auto with Hyperband.
Result<std::unique_ptr<Strategy>> CreateStrategy(StrategyOptions options);

// Reads the strategy's part of a HyperParameterTuningJobConfig (Strategy, StrategyConfig,
// HyperParameterTuningJobObjective.Type, ParameterRanges, RandomSeed,
// TrainingJobEarlyStoppingType) at wire path `path`, checking what the service model cannot:
// StrategyConfig only with Hyperband; Hyperband needs TrainingJobEarlyStoppingType Off;
// MaxResource, when absent, is inferred from the static hyperparameters epochs, numepochs,
// n-epochs, n_epochs or num_epochs (a validation error if none is an integer); MinResource
// defaults to 1; Grid needs categorical ranges only. Errors are InvalidArgument in the
// SageMaker validation format. `random_seed` is left empty when the request has none.
Result<StrategyOptions> StrategyOptionsFromJson(
    const nlohmann::json& tuning_job_config,
    const std::map<std::string, std::string>& static_hyperparameters = {},
    std::string_view path = "hyperParameterTuningJobConfig");

}  // namespace hearth::tuning
