#include "control/tuning_jobs.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include <re2/re2.h>

#include "common/clock.h"
#include "common/strings.h"
#include "control/resource_records.h"
#include "spdlog/spdlog.h"
#include "tuning/strategy.h"
#include "tuning/validation.h"

namespace hearth::control {

using nlohmann::json;

namespace {

// The static hyperparameter SageMaker adds to every child: the objective's metric name.
constexpr char kObjectiveKey[] = "_tuning_objective_metric";
constexpr int kMaxHyperParameters = 100;  // static plus tunable, the objective key included
constexpr std::size_t kFailureReasonLimit = 1024;
// Children that fail with client errors, before any reports the objective, that fail the job.
constexpr int kFailFastMinimum = 3;
constexpr int kConvergenceMinimum = 5;

double ToEpochSeconds(std::int64_t millis) { return static_cast<double>(millis) / 1000.0; }

Status Validation(std::string message) {
  return InvalidArgument(std::move(message), "ValidationException");
}

Status JobNotFound(std::string_view name) {
  return Status(StatusCode::kNotFound,
                "Amazon SageMaker can't find a tuning job with name " + std::string(name),
                "ResourceNotFound");
}

bool IsTerminal(std::string_view status) {
  return status == "Completed" || status == "Failed" || status == "Stopped";
}

std::string ObjectiveTypeName(tuning::ObjectiveType type) {
  return type == tuning::ObjectiveType::kMaximize ? "Maximize" : "Minimize";
}

// `value` turned into one to minimise.
double Minimized(tuning::ObjectiveType type, double value) {
  return type == tuning::ObjectiveType::kMaximize ? -value : value;
}

// A child's FailureReason names Hearth's own fault this way (training_jobs.cc); everything else
// (ClientError, AlgorithmError, ...) is the request's or the algorithm's.
bool IsRetryableFailure(std::string_view reason) {
  return reason.rfind("InternalServerError", 0) == 0;
}

std::map<std::string, std::string> StringMap(const json& object) {
  std::map<std::string, std::string> out;
  if (!object.is_object()) return out;
  for (const auto& [k, v] : object.items()) {
    out[k] = v.is_string() ? v.get<std::string>() : v.dump();
  }
  return out;
}

// One training job definition, as children are made from it.
struct Definition {
  std::string name;  // DefinitionName; empty for a TrainingJobDefinition without one
  std::string path;  // its wire path, for messages
  json definition;   // as stored: StaticHyperParameters include kObjectiveKey
  std::string metric;
  tuning::ObjectiveType type = tuning::ObjectiveType::kMinimize;
  tuning::StrategyOptions options;  // random seed set
};

// Reads and checks the definitions of a CreateHyperParameterTuningJob request, or of a stored
// Describe document (the same members), and the strategy options of each. Adds kObjectiveKey to
// each definition's StaticHyperParameters. Everything here is a function of `doc`, so a restart
// rebuilds the same strategies.
Result<std::vector<Definition>> ReadDefinitions(const json& doc, int min_peers) {
  const json& config = doc.at("HyperParameterTuningJobConfig");
  const bool single = doc.contains("TrainingJobDefinition");
  const bool multi = doc.contains("TrainingJobDefinitions");
  if (single == multi) {
    return Validation(
        "Exactly one of TrainingJobDefinition and TrainingJobDefinitions must be provided.");
  }
  if (multi && config.contains("ParameterRanges")) {
    return Validation(
        "HyperParameterTuningJobConfig.ParameterRanges cannot be used with "
        "TrainingJobDefinitions: give each definition its HyperParameterRanges.");
  }
  std::vector<json> defs;
  if (single) {
    defs.push_back(doc["TrainingJobDefinition"]);
  } else {
    for (const json& d : doc["TrainingJobDefinitions"]) defs.push_back(d);
  }
  const std::uint64_t seed = config.value("RandomSeed", std::uint64_t{0});
  std::vector<Definition> out;
  std::set<std::string> names;
  for (std::size_t i = 0; i < defs.size(); ++i) {
    Definition d;
    d.definition = defs[i];
    d.path = single ? std::string("trainingJobDefinition")
                    : "trainingJobDefinitions." + std::to_string(i + 1) + ".member";
    d.name = d.definition.value("DefinitionName", "");
    if (multi) {
      if (d.name.empty()) {
        return Validation("1 validation error detected: Value null at '" + d.path +
                          ".definitionName' failed to satisfy constraint: Member must not be "
                          "null when TrainingJobDefinitions is used");
      }
      if (!names.insert(AsciiLower(d.name)).second) {
        return Validation("DefinitionName '" + d.name +
                          "' appears more than once in TrainingJobDefinitions.");
      }
    }
    // The objective: the definition's own, else the job's.
    json objective;
    if (d.definition.contains("TuningObjective")) {
      if (single && config.contains("HyperParameterTuningJobObjective")) {
        return Validation(
            "Give the objective either in HyperParameterTuningJobConfig."
            "HyperParameterTuningJobObjective or in TrainingJobDefinition.TuningObjective, "
            "not both.");
      }
      objective = d.definition["TuningObjective"];
    } else if (config.contains("HyperParameterTuningJobObjective")) {
      objective = config["HyperParameterTuningJobObjective"];
    } else {
      return Validation("1 validation error detected: Value null at '" +
                        (multi ? d.path + ".tuningObjective"
                               : std::string("hyperParameterTuningJobConfig."
                                             "hyperParameterTuningJobObjective")) +
                        "' failed to satisfy constraint: Member must not be null");
    }
    d.metric = objective.value("MetricName", "");
    // The ranges: the definition's own, else the job's.
    json ranges;
    std::string ranges_path;
    if (d.definition.contains("HyperParameterRanges")) {
      if (config.contains("ParameterRanges")) {
        return Validation(
            "Give the ranges either in HyperParameterTuningJobConfig.ParameterRanges or in "
            "TrainingJobDefinition.HyperParameterRanges, not both.");
      }
      ranges = d.definition["HyperParameterRanges"];
      ranges_path = d.path + ".hyperParameterRanges";
    } else if (config.contains("ParameterRanges")) {
      ranges = config["ParameterRanges"];
      ranges_path = "hyperParameterTuningJobConfig.parameterRanges";
    }
    std::map<std::string, std::string> statics =
        StringMap(d.definition.value("StaticHyperParameters", json::object()));
    json strategy_config = config;
    strategy_config.erase("ParameterRanges");
    strategy_config["HyperParameterTuningJobObjective"] = objective;
    ASSIGN_OR_RETURN(d.options, tuning::StrategyOptionsFromJson(strategy_config, statics));
    if (!ranges.is_null()) {
      auto space = tuning::SearchSpace::FromJson(ranges, ranges_path);
      if (!space.ok()) {
        // AutoParameters (Autotune) answer Unimplemented: for the client it is still a request
        // this server cannot run.
        return Validation(space.status().message());
      }
      d.options.space = std::move(space).value();
    }
    if (d.options.type == tuning::StrategyType::kGrid && !d.options.space.AllCategorical()) {
      tuning::Violations grid;
      grid.Add("{...}", ranges_path, "The Grid strategy supports only CategoricalParameterRanges");
      return grid.ToStatus();
    }
    d.type = d.options.objective;
    d.options.random_seed = seed + i;
    d.options.median_rule.min_peers = min_peers;
    for (const tuning::ParameterRange& p : d.options.space.parameters()) {
      if (statics.contains(p.name) && p.name != kObjectiveKey) {
        return Validation("Hyperparameter '" + p.name + "' of " + d.path +
                          " is both static (StaticHyperParameters) and tunable; give it once.");
      }
    }
    statics[kObjectiveKey] = d.metric;
    const int total = static_cast<int>(statics.size()) + d.options.space.num_parameters();
    if (total > kMaxHyperParameters) {
      return Validation("The static and tunable hyperparameters of " + d.path + " number " +
                        std::to_string(total) + " with " + kObjectiveKey + "; at most " +
                        std::to_string(kMaxHyperParameters) + " are allowed.");
    }
    d.definition["StaticHyperParameters"][kObjectiveKey] = d.metric;
    ASSIGN_OR_RETURN(std::unique_ptr<tuning::Strategy> check, tuning::CreateStrategy(d.options));
    out.push_back(std::move(d));
  }
  for (const Definition& d : out) {
    if (d.type != out.front().type) {
      return Validation(
          "Every training job definition must have the same objective Type (Maximize or "
          "Minimize): their best training jobs are compared with one another.");
    }
  }
  return out;
}

// The CreateTrainingJob request of one child.
json ChildRequest(const Definition& def, const std::string& child,
                  const std::map<std::string, std::string>& tuned) {
  const json& d = def.definition;
  json request = {{"TrainingJobName", child}};
  for (const char* key :
       {"RoleArn", "InputDataConfig", "VpcConfig", "OutputDataConfig", "ResourceConfig",
        "StoppingCondition", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
        "EnableManagedSpotTraining", "CheckpointConfig", "RetryStrategy", "Environment"}) {
    if (d.contains(key)) request[key] = d[key];
  }
  json spec = json::object();
  for (const char* key :
       {"TrainingImage", "TrainingInputMode", "AlgorithmName", "MetricDefinitions"}) {
    if (d["AlgorithmSpecification"].contains(key)) spec[key] = d["AlgorithmSpecification"][key];
  }
  request["AlgorithmSpecification"] = spec;
  if (!request.contains("ResourceConfig") && d.contains("HyperParameterTuningResourceConfig")) {
    // Instance flexibility: Hearth runs every child on the first (highest priority) choice.
    const json& flex = d["HyperParameterTuningResourceConfig"];
    const json& pick = flex.contains("InstanceConfigs") && !flex["InstanceConfigs"].empty()
                           ? flex["InstanceConfigs"][0]
                           : flex;
    json rc = json::object();
    for (const char* key : {"InstanceType", "InstanceCount", "VolumeSizeInGB", "VolumeKmsKeyId"}) {
      if (pick.contains(key)) rc[key] = pick[key];
    }
    request["ResourceConfig"] = rc;
  }
  if (request.contains("CheckpointConfig") && request["CheckpointConfig"].contains("S3Uri")) {
    std::string uri = request["CheckpointConfig"]["S3Uri"].get<std::string>();
    if (!uri.empty() && uri.back() == '/') uri.pop_back();
    request["CheckpointConfig"]["S3Uri"] = uri + "/" + child;
  }
  json hps = d.value("StaticHyperParameters", json::object());
  for (const auto& [k, v] : tuned) hps[k] = v;
  hps[kObjectiveKey] = def.metric;
  request["HyperParameters"] = hps;
  return request;
}

// `<job>-<NNN>-<8 hex>`, k from 1.
std::string ChildName(const std::string& job, std::int64_t k) {
  std::string number = std::to_string(k);
  if (number.size() < 3) number.insert(0, 3 - number.size(), '0');
  std::string hex = NewUuid();
  hex.erase(std::remove(hex.begin(), hex.end(), '-'), hex.end());
  return job + "-" + number + "-" + hex.substr(0, 8);
}

json ZeroCounters() {
  return {{"TrainingJobStatusCounters",
           {{"Completed", 0},
            {"InProgress", 0},
            {"RetryableError", 0},
            {"NonRetryableError", 0},
            {"Stopped", 0}}},
          {"ObjectiveStatusCounters", {{"Succeeded", 0}, {"Pending", 0}, {"Failed", 0}}}};
}

// The objective value of a summary (HyperParameterTrainingJobSummary).
std::optional<double> SummaryObjective(const json& summary) {
  const json* m =
      summary.is_object() && summary.contains("FinalHyperParameterTuningJobObjectiveMetric")
          ? &summary["FinalHyperParameterTuningJobObjectiveMetric"]
          : nullptr;
  if (m == nullptr || !m->contains("Value") || !(*m)["Value"].is_number()) return std::nullopt;
  return (*m)["Value"].get<double>();
}

}  // namespace

// ---------------------------------------------------------------------------------------------

// Drives one tuning job until it ends. Lives on the monitor thread; the only writer of the
// job's trials and events.
class HyperParameterTuningJobController::Runner {
 public:
  Runner(HyperParameterTuningJobController& c, std::string name, MonitorThreads::Run& run)
      : c_(c), name_(std::move(name)), run_(run) {}

  // True when the job needs no more monitoring (it ended, or its record is gone).
  bool Execute();

 private:
  struct Trial {
    std::int64_t index = 0;  // over the whole job, from 0; the child's number is index + 1
    int def = 0;
    tuning::TrialId strategy_trial = 0;
    std::string name;
    std::map<std::string, std::string> hps;  // the tuned ones
    std::int64_t recorded_millis = 0;
    bool created = false;       // the child exists
    bool abandoned = false;     // never created: the job ended first; not a child
    std::int64_t reported = 0;  // objective values passed to the strategy as epochs
    std::string stop_reason;    // the strategy stopped it
    bool done = false;
    std::string status;  // the child's final TrainingJobStatus
    std::optional<double> objective;
    std::string failure_reason;
    json times = json::object();  // the child's CreationTime, TrainingStartTime, TrainingEndTime
    bool stop_sent = false;       // this run asked the training controller to stop it
  };

  static json TrialToJson(const Trial& t);
  static Trial TrialFromJson(const json& j);

  Status Load();
  Status Replay();
  bool Running(const Trial& t) const { return !t.done && !t.abandoned; }
  int RunningCount() const;
  bool UsesIntermediate(const Definition& d) const {
    return d.options.type == tuning::StrategyType::kHyperband || d.options.early_stopping_auto;
  }
  bool StopWanted() const { return run_.end_requested.load() || status_ == "Stopping"; }

  // Each returns whether it changed the trials or events (a Save is due).
  bool ReconcileUncreated();
  bool TryCreate(Trial& t);
  bool Observe(Trial& t);
  void EndTrial(Trial& t, const std::string& status, std::optional<double> objective,
                const std::string& failure);
  void OnObjective(const Trial& t, double value);
  void CheckFailFast();
  bool CheckRuntime();  // true when it ended the job
  void EndWith(const std::string& status, const std::string& reason);
  // Creates children up to the limits. False when recording failed (the runner must leave).
  bool Launch(bool* changed);
  bool MoreToLaunch();
  void SendStops();

  json Summary(const Trial& t, const json* child) const;
  std::optional<std::size_t> BestTrial() const;
  json DocUpdates() const;
  Status Save();
  void Finish();

  HyperParameterTuningJobController& c_;
  std::string name_;
  MonitorThreads::Run& run_;
  metadata::Resource record_;
  std::string status_;
  std::vector<Definition> defs_;
  std::vector<std::unique_ptr<tuning::Strategy>> strategies_;
  std::vector<bool> exhausted_;
  std::vector<Trial> trials_;
  json events_ = json::array();
  json ending_;  // {"status", "reason"} once the job must end; null before
  std::int64_t max_jobs_ = 0;
  int max_parallel_ = 1;
  // TuningJobCompletionCriteria bookkeeping, in the order objectives arrived.
  std::optional<double> best_minimized_;
  int not_improving_ = 0;
  std::optional<std::int64_t> convergence_millis_;
  int non_retryable_ = 0;
  bool any_objective_ = false;
  bool logged_capacity_wait_ = false;
};

json HyperParameterTuningJobController::Runner::TrialToJson(const Trial& t) {
  json j = {{"index", t.index},
            {"def", t.def},
            {"trial", t.strategy_trial},
            {"name", t.name},
            {"hps", t.hps},
            {"recorded", t.recorded_millis},
            {"created", t.created},
            {"abandoned", t.abandoned},
            {"reported", t.reported},
            {"done", t.done},
            {"times", t.times}};
  if (!t.stop_reason.empty()) j["stop_reason"] = t.stop_reason;
  if (!t.status.empty()) j["status"] = t.status;
  if (t.objective) j["objective"] = *t.objective;
  if (!t.failure_reason.empty()) j["failure"] = t.failure_reason;
  return j;
}

HyperParameterTuningJobController::Runner::Trial
HyperParameterTuningJobController::Runner::TrialFromJson(const json& j) {
  Trial t;
  t.index = j.value("index", std::int64_t{0});
  t.def = j.value("def", 0);
  t.strategy_trial = j.value("trial", std::int64_t{0});
  t.name = j.value("name", "");
  t.hps = j.value("hps", std::map<std::string, std::string>{});
  t.recorded_millis = j.value("recorded", std::int64_t{0});
  t.created = j.value("created", false);
  t.abandoned = j.value("abandoned", false);
  t.reported = j.value("reported", std::int64_t{0});
  t.stop_reason = j.value("stop_reason", "");
  t.done = j.value("done", false);
  t.status = j.value("status", "");
  if (j.contains("objective")) t.objective = j["objective"].get<double>();
  t.failure_reason = j.value("failure", "");
  t.times = j.value("times", json::object());
  return t;
}

Status HyperParameterTuningJobController::Runner::Load() {
  ASSIGN_OR_RETURN(record_, c_.store_.Get(kKind, name_));
  status_ = record_.status;
  const json& internal = record_.internal;
  ASSIGN_OR_RETURN(defs_, ReadDefinitions(record_.doc, internal.value("min_peers", 5)));
  max_jobs_ = internal.value("max_jobs", std::int64_t{1});
  max_parallel_ = record_.doc["HyperParameterTuningJobConfig"]["ResourceLimits"].value(
      "MaxParallelTrainingJobs", 1);
  for (const json& t : internal.value("trials", json::array())) trials_.push_back(TrialFromJson(t));
  events_ = internal.value("events", json::array());
  ending_ = internal.value("ending", json());
  if (auto t = TimestampMillis(record_.doc.value(
          json::json_pointer("/TuningJobCompletionDetails/ConvergenceDetectedTime"), json()))) {
    convergence_millis_ = *t;
  }
  return Replay();
}

// tuning/strategy.h's deterministic rebuild: priors, then every trial in id order, then every
// event in its recorded order. The decisions returned were acted on when first taken.
Status HyperParameterTuningJobController::Runner::Replay() {
  strategies_.clear();
  for (const Definition& d : defs_) {
    ASSIGN_OR_RETURN(std::unique_ptr<tuning::Strategy> s, tuning::CreateStrategy(d.options));
    for (const json& prior : record_.internal.value("priors", json::array())) {
      // A prior that does not fit this definition's space is skipped, as at create.
      s->AddPriorObservation(StringMap(prior.value("hps", json::object())),
                             prior.value("value", 0.0))
          .IgnoreError();
    }
    strategies_.push_back(std::move(s));
  }
  exhausted_.assign(defs_.size(), false);
  for (const Trial& t : trials_) {
    if (t.def < 0 || t.def >= static_cast<int>(defs_.size())) {
      return Internal("trial " + t.name + " names an unknown definition");
    }
    RETURN_IF_ERROR(strategies_[t.def]->RestoreTrial(t.strategy_trial, t.hps));
  }
  for (const json& e : events_) {
    tuning::Strategy& s = *strategies_.at(e.value("def", 0));
    const tuning::TrialId id = e.value("trial", std::int64_t{0});
    const std::string kind = e.value("kind", "");
    if (kind == "intermediate") {
      s.ReportIntermediate(id, e.value("epoch", std::int64_t{1}), e.value("value", 0.0))
          .status()
          .IgnoreError();
    } else if (kind == "complete") {
      s.Complete(id, e.value("value", 0.0)).IgnoreError();
      // The completion criteria see objectives in the order they arrived.
      const double m = Minimized(defs_.front().type, e.value("value", 0.0));
      const bool improved =
          !best_minimized_ ||
          (m < *best_minimized_ && *best_minimized_ - m >= 0.01 * std::fabs(*best_minimized_));
      not_improving_ = improved ? 0 : not_improving_ + 1;
      if (!best_minimized_ || m < *best_minimized_) best_minimized_ = m;
      any_objective_ = true;
    } else if (kind == "fail") {
      s.Fail(id).IgnoreError();
    }
  }
  for (const Trial& t : trials_) {
    if (t.done && !t.abandoned && t.status == "Failed" && !IsRetryableFailure(t.failure_reason)) {
      ++non_retryable_;
    }
  }
  return Status::Ok();
}

int HyperParameterTuningJobController::Runner::RunningCount() const {
  return static_cast<int>(
      std::count_if(trials_.begin(), trials_.end(), [this](const Trial& t) { return Running(t); }));
}

bool HyperParameterTuningJobController::Runner::TryCreate(Trial& t) {
  // A child recorded before a crash may already exist: it is this trial's, never made twice.
  if (c_.store_.Get(TrainingJobController::kKind, t.name).ok()) {
    t.created = true;
    return true;
  }
  auto created =
      c_.training_.CreateForTuningJob(ChildRequest(defs_[t.def], t.name, t.hps), record_.arn);
  if (created.ok() || created.status().code() == StatusCode::kAlreadyExists) {
    t.created = true;
    logged_capacity_wait_ = false;
    return true;
  }
  const Status& s = created.status();
  if (s.code() == StatusCode::kResourceExhausted || s.code() == StatusCode::kInternal ||
      s.code() == StatusCode::kUnavailable) {
    // Training instances are busy (or the store hiccuped): the child is created later.
    if (!logged_capacity_wait_) {
      spdlog::info("tuning job {}: training job {} waits: {}", name_, t.name, s.message());
      logged_capacity_wait_ = true;
    }
    return false;
  }
  // The definition itself is refused: every child would be.
  t.abandoned = true;
  t.done = true;
  strategies_[t.def]->Fail(t.strategy_trial).IgnoreError();
  events_.push_back({{"kind", "fail"}, {"def", t.def}, {"trial", t.strategy_trial}});
  EndWith("Failed", "ClientError: could not create training job " + t.name + ": " + s.message());
  return true;
}

bool HyperParameterTuningJobController::Runner::ReconcileUncreated() {
  bool changed = false;
  for (Trial& t : trials_) {
    if (t.created || t.done || t.abandoned) continue;
    if (StopWanted() || !ending_.is_null()) {
      if (c_.store_.Get(TrainingJobController::kKind, t.name).ok()) {
        t.created = true;
      } else {
        t.abandoned = true;
        t.done = true;
        strategies_[t.def]->Fail(t.strategy_trial).IgnoreError();
        events_.push_back({{"kind", "fail"}, {"def", t.def}, {"trial", t.strategy_trial}});
      }
      changed = true;
    } else {
      changed |= TryCreate(t);
    }
  }
  return changed;
}

bool HyperParameterTuningJobController::Runner::Observe(Trial& t) {
  auto child = c_.store_.Get(TrainingJobController::kKind, t.name);
  if (!child.ok()) {
    if (child.status().code() != StatusCode::kNotFound) return false;  // read again next time
    EndTrial(t, "Failed", std::nullopt,
             "InternalServerError: the record of training job " + t.name + " is gone.");
    return true;
  }
  bool changed = false;
  json times = json::object();
  for (const char* key : {"CreationTime", "TrainingStartTime", "TrainingEndTime"}) {
    if (child->doc.contains(key)) times[key] = child->doc[key];
  }
  if (times != t.times) {
    t.times = times;
    changed = true;
  }
  const Definition& def = defs_[t.def];
  if (UsesIntermediate(def)) {
    auto points = c_.logs_.Metrics(TrainingJobController::kKind, t.name);
    if (points.ok()) {
      std::int64_t epoch = 0;
      for (const metadata::MetricPoint& p : *points) {
        if (p.name != def.metric) continue;
        ++epoch;
        if (epoch <= t.reported) continue;
        t.reported = epoch;
        changed = true;
        if (!std::isfinite(p.value)) continue;
        auto decision = strategies_[t.def]->ReportIntermediate(t.strategy_trial, epoch, p.value);
        if (!decision.ok()) continue;
        events_.push_back({{"kind", "intermediate"},
                           {"def", t.def},
                           {"trial", t.strategy_trial},
                           {"epoch", epoch},
                           {"value", p.value}});
        if (decision->action == tuning::TrialAction::kStop && t.stop_reason.empty() &&
            !IsTerminal(child->status)) {
          t.stop_reason = decision->reason;
          spdlog::info("tuning job {}: stopping training job {}: {}", name_, t.name,
                       decision->reason);
        }
      }
    }
  }
  if (!IsTerminal(child->status)) return changed;
  std::optional<double> objective;
  for (const json& m : child->doc.value("FinalMetricDataList", json::array())) {
    if (m.value("MetricName", "") == def.metric && m.contains("Value") && m["Value"].is_number()) {
      const double v = m["Value"].get<double>();
      if (std::isfinite(v)) objective = v;
    }
  }
  EndTrial(t, child->status, objective, child->doc.value("FailureReason", ""));
  return true;
}

void HyperParameterTuningJobController::Runner::EndTrial(Trial& t, const std::string& status,
                                                         std::optional<double> objective,
                                                         const std::string& failure) {
  t.done = true;
  t.status = status;
  t.objective = objective;
  t.failure_reason = failure.substr(0, kFailureReasonLimit);
  tuning::Strategy& s = *strategies_[t.def];
  if (objective) {
    s.Complete(t.strategy_trial, *objective).IgnoreError();
    events_.push_back(
        {{"kind", "complete"}, {"def", t.def}, {"trial", t.strategy_trial}, {"value", *objective}});
    OnObjective(t, *objective);
  } else {
    s.Fail(t.strategy_trial).IgnoreError();
    events_.push_back({{"kind", "fail"}, {"def", t.def}, {"trial", t.strategy_trial}});
  }
  if (status == "Failed" && !IsRetryableFailure(t.failure_reason)) {
    ++non_retryable_;
    CheckFailFast();
  }
}

void HyperParameterTuningJobController::Runner::OnObjective(const Trial& t, double value) {
  const tuning::ObjectiveType type = defs_[t.def].type;
  const double m = Minimized(type, value);
  const bool improved =
      !best_minimized_ ||
      (m < *best_minimized_ && *best_minimized_ - m >= 0.01 * std::fabs(*best_minimized_));
  not_improving_ = improved ? 0 : not_improving_ + 1;
  if (!best_minimized_ || m < *best_minimized_) best_minimized_ = m;
  any_objective_ = true;

  const json& criteria = record_.doc["HyperParameterTuningJobConfig"].value(
      "TuningJobCompletionCriteria", json::object());
  if (criteria.contains("TargetObjectiveMetricValue")) {
    const double target = criteria["TargetObjectiveMetricValue"].get<double>();
    if (m <= Minimized(type, target)) {
      EndWith("Completed", "Training job " + t.name + " reached the TargetObjectiveMetricValue " +
                               tuning::FormatDouble(target) + " with " + defs_[t.def].metric +
                               " = " + tuning::FormatDouble(value) + ".");
    }
  }
  const int limit = criteria.value(
      json::json_pointer("/BestObjectiveNotImproving/MaxNumberOfTrainingJobsNotImproving"), 0);
  if (limit > 0 && not_improving_ >= limit) {
    EndWith("Completed", std::to_string(not_improving_) +
                             " training jobs in a row did not improve the best objective by 1% "
                             "or more (BestObjectiveNotImproving).");
  }
  const int convergence =
      std::max<int>(kConvergenceMinimum, static_cast<int>((max_jobs_ + 9) / 10));
  if (not_improving_ >= convergence && !convergence_millis_) {
    convergence_millis_ = NowMillis();
    if (criteria.value(json::json_pointer("/ConvergenceDetected/CompleteOnConvergence"),
                       std::string("Disabled")) == "Enabled") {
      EndWith("Completed", "Convergence detected: " + std::to_string(not_improving_) +
                               " training jobs in a row did not improve the best objective by "
                               "1% or more (ConvergenceDetected).");
    }
  }
}

void HyperParameterTuningJobController::Runner::CheckFailFast() {
  if (any_objective_) return;
  if (non_retryable_ >= std::max(kFailFastMinimum, max_parallel_)) {
    std::string last;
    for (const Trial& t : trials_) {
      if (t.done && t.status == "Failed") last = t.name + ": " + t.failure_reason;
    }
    EndWith("Failed", "The first " + std::to_string(non_retryable_) +
                          " training jobs failed with non-retryable errors and none reported the "
                          "objective metric. Last failure: " +
                          last);
  }
}

bool HyperParameterTuningJobController::Runner::CheckRuntime() {
  const int limit = record_.doc["HyperParameterTuningJobConfig"]["ResourceLimits"].value(
      "MaxRuntimeInSeconds", 0);
  if (!ending_.is_null() || limit <= 0 ||
      NowMillis() - record_.created_millis < std::int64_t{limit} * 1000) {
    return false;
  }
  EndWith("Completed",
          "The tuning job reached its MaxRuntimeInSeconds (" + std::to_string(limit) + " s).");
  return true;
}

void HyperParameterTuningJobController::Runner::EndWith(const std::string& status,
                                                        const std::string& reason) {
  if (!ending_.is_null()) return;  // the first reason stands
  spdlog::info("tuning job {}: ending {}: {}", name_, status, reason);
  ending_ = {{"status", status}, {"reason", reason.substr(0, kFailureReasonLimit)}};
}

bool HyperParameterTuningJobController::Runner::MoreToLaunch() {
  if (static_cast<std::int64_t>(trials_.size()) >= max_jobs_) return false;
  return std::find(exhausted_.begin(), exhausted_.end(), false) != exhausted_.end();
}

bool HyperParameterTuningJobController::Runner::Launch(bool* changed) {
  while (ending_.is_null() && !StopWanted() && !c_.monitors_.shutting_down() &&
         RunningCount() < max_parallel_ && MoreToLaunch()) {
    // The definition with the fewest children so far (the first on ties) goes next.
    std::vector<std::int64_t> counts(defs_.size(), 0);
    for (const Trial& t : trials_) ++counts[t.def];
    int pick = -1;
    for (int d = 0; d < static_cast<int>(defs_.size()); ++d) {
      if (!exhausted_[d] && (pick < 0 || counts[d] < counts[pick])) pick = d;
    }
    auto suggested = strategies_[pick]->Suggest(1);
    if (!suggested.ok() || suggested->empty()) {
      exhausted_[pick] = true;
      continue;
    }
    const tuning::Suggestion& s = suggested->front();
    Trial t;
    t.index = static_cast<std::int64_t>(trials_.size());
    t.def = pick;
    t.strategy_trial = s.trial;
    t.name = ChildName(name_, t.index + 1);
    t.hps = s.hyperparameters;
    t.recorded_millis = NowMillis();
    trials_.push_back(t);
    // Recorded before it is created: after a crash the child is found by this name.
    if (Status saved = Save(); !saved.ok()) {
      spdlog::error("tuning job {}: cannot record trial {}: {}", name_, t.name, saved.ToString());
      return false;
    }
    *changed = true;
    TryCreate(trials_.back());
  }
  return true;
}

void HyperParameterTuningJobController::Runner::SendStops() {
  const bool all = StopWanted() || !ending_.is_null();
  for (Trial& t : trials_) {
    if (!t.created || t.done || t.stop_sent) continue;
    if (!all && t.stop_reason.empty()) continue;
    // A child that already ended answers ValidationException: nothing is left to stop.
    c_.training_.Stop({{"TrainingJobName", t.name}}).status().IgnoreError();
    t.stop_sent = true;
  }
}

json HyperParameterTuningJobController::Runner::Summary(const Trial& t, const json* child) const {
  const Definition& def = defs_[t.def];
  json s = {{"TrainingJobName", t.name},
            {"TrainingJobArn", SageMakerArn(c_.options_.account, "training-job", t.name)},
            {"TuningJobName", name_},
            {"CreationTime", ToEpochSeconds(t.recorded_millis)},
            {"TrainingJobStatus", t.done ? t.status : std::string("InProgress")},
            {"TunedHyperParameters", t.hps}};
  if (!def.name.empty()) s["TrainingJobDefinitionName"] = def.name;
  const json& times = child != nullptr ? *child : t.times;
  for (const char* key : {"CreationTime", "TrainingStartTime", "TrainingEndTime"}) {
    if (times.contains(key)) s[key] = times[key];
  }
  if (child != nullptr) {
    s["TrainingJobStatus"] = child->value("TrainingJobStatus", "InProgress");
    if (child->contains("FailureReason")) s["FailureReason"] = (*child)["FailureReason"];
  } else if (!t.failure_reason.empty()) {
    s["FailureReason"] = t.failure_reason;
  }
  if (t.objective) {
    s["FinalHyperParameterTuningJobObjectiveMetric"] = {
        {"Type", ObjectiveTypeName(def.type)}, {"MetricName", def.metric}, {"Value", *t.objective}};
  }
  s["ObjectiveStatus"] = !t.done ? "Pending" : (t.objective ? "Succeeded" : "Failed");
  return s;
}

std::optional<std::size_t> HyperParameterTuningJobController::Runner::BestTrial() const {
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < trials_.size(); ++i) {
    const Trial& t = trials_[i];
    if (!t.done || !t.objective) continue;
    const tuning::ObjectiveType type = defs_[t.def].type;
    if (!best || Minimized(type, *t.objective) < Minimized(type, *trials_[*best].objective)) {
      best = i;
    }
  }
  return best;
}

// The Describe members this runner keeps current.
json HyperParameterTuningJobController::Runner::DocUpdates() const {
  json counters = ZeroCounters();
  json& training = counters["TrainingJobStatusCounters"];
  json& objective = counters["ObjectiveStatusCounters"];
  for (const Trial& t : trials_) {
    if (t.abandoned) continue;
    if (!t.done) {
      training["InProgress"] = training["InProgress"].get<int>() + 1;
      objective["Pending"] = objective["Pending"].get<int>() + 1;
      continue;
    }
    const char* key = t.status == "Completed"                ? "Completed"
                      : t.status == "Stopped"                ? "Stopped"
                      : IsRetryableFailure(t.failure_reason) ? "RetryableError"
                                                             : "NonRetryableError";
    training[key] = training[key].get<int>() + 1;
    const char* okey = t.objective ? "Succeeded" : "Failed";
    objective[okey] = objective[okey].get<int>() + 1;
  }
  json details = {{"NumberOfTrainingJobsObjectiveNotImproving", not_improving_}};
  if (convergence_millis_)
    details["ConvergenceDetectedTime"] = ToEpochSeconds(*convergence_millis_);
  counters["TuningJobCompletionDetails"] = details;
  if (auto best = BestTrial()) counters["BestTrainingJob"] = Summary(trials_[*best], nullptr);
  return counters;
}

Status HyperParameterTuningJobController::Runner::Save() {
  json trials = json::array();
  for (const Trial& t : trials_) trials.push_back(TrialToJson(t));
  const json updates = DocUpdates();
  auto updated = MutateResource(
      c_.store_, kKind, name_,
      [&](metadata::Resource& r) -> Result<std::optional<metadata::Transition>> {
        const std::int64_t now = NowMillis();
        r.internal["trials"] = trials;
        r.internal["events"] = events_;
        r.internal["ending"] = ending_;
        for (const auto& [k, v] : updates.items()) r.doc[k] = v;
        if (updates.contains("BestTrainingJob") && r.internal.contains("parent_best")) {
          // IdenticalDataAndAlgorithm: the best over this job and its parents.
          const json& own = updates["BestTrainingJob"];
          const json& parent = r.internal["parent_best"];
          const tuning::ObjectiveType type = defs_.front().type;
          auto own_value = SummaryObjective(own);
          auto parent_value = SummaryObjective(parent);
          r.doc["OverallBestTrainingJob"] =
              parent_value &&
                      (!own_value || Minimized(type, *parent_value) < Minimized(type, *own_value))
                  ? parent
                  : own;
        }
        r.doc["ConsumedResources"] = {
            {"RuntimeInSeconds", static_cast<int>((now - r.created_millis) / 1000)}};
        r.doc["LastModifiedTime"] = ToEpochSeconds(now);
        r.modified_millis = now;
        return std::optional<metadata::Transition>();
      });
  if (!updated.ok()) return updated.status();
  record_ = std::move(updated).value();
  status_ = record_.status;
  return Status::Ok();
}

void HyperParameterTuningJobController::Runner::Finish() {
  std::string last_failure;
  for (const Trial& t : trials_) {
    if (t.done && !t.abandoned && !t.objective) {
      last_failure = t.name + ": " +
                     (t.failure_reason.empty()
                          ? "it did not report the objective metric " + defs_[t.def].metric
                          : t.failure_reason);
    }
  }
  std::string status;
  std::string reason;
  if (!ending_.is_null()) {
    status = ending_.value("status", "Completed");
    reason = ending_.value("reason", "");
  } else if (any_objective_) {
    status = "Completed";
    reason = "Every training job of the tuning job has ended.";
  } else {
    status = "Failed";
    reason = "No training job reported the objective metric. Last failure: " + last_failure;
  }
  const json updates = DocUpdates();
  json trials = json::array();
  for (const Trial& t : trials_) trials.push_back(TrialToJson(t));
  MutateResource(c_.store_, kKind, name_,
                 [&](metadata::Resource& r) -> Result<std::optional<metadata::Transition>> {
                   const std::int64_t now = NowMillis();
                   // A stop recorded meanwhile wins: Stopping only ever leads to Stopped.
                   const std::string final_status = r.status == "Stopping" ? "Stopped" : status;
                   const std::string message =
                       final_status == "Stopped" ? "Stopped: every training job has ended" : reason;
                   r.status = final_status;
                   r.modified_millis = now;
                   r.internal["trials"] = trials;
                   r.internal["events"] = events_;
                   r.internal["ending"] = ending_;
                   for (const auto& [k, v] : updates.items()) r.doc[k] = v;
                   r.doc["HyperParameterTuningJobStatus"] = final_status;
                   r.doc["HyperParameterTuningEndTime"] = ToEpochSeconds(now);
                   r.doc["LastModifiedTime"] = ToEpochSeconds(now);
                   r.doc["ConsumedResources"] = {
                       {"RuntimeInSeconds", static_cast<int>((now - r.created_millis) / 1000)}};
                   if (final_status == "Failed")
                     r.doc["FailureReason"] = reason.substr(0, kFailureReasonLimit);
                   return std::optional<metadata::Transition>(
                       metadata::Transition{final_status, "", now, message.substr(0, 1024)});
                 })
      .status()
      .IgnoreError();
}

bool HyperParameterTuningJobController::Runner::Execute() {
  Status loaded = Load();
  if (!loaded.ok()) {
    if (loaded.code() == StatusCode::kNotFound) return true;
    spdlog::error("tuning job {}: cannot resume: {}", name_, loaded.ToString());
    return false;
  }
  if (IsTerminal(status_)) return true;
  while (!c_.monitors_.shutting_down()) {
    bool changed = ReconcileUncreated();
    for (Trial& t : trials_) {
      if (t.created && !t.done) changed |= Observe(t);
    }
    changed |= CheckRuntime();
    if (changed) {
      // Decisions are recorded before they are acted on (SendStops, Launch).
      if (Status saved = Save(); !saved.ok()) {
        spdlog::error("tuning job {}: cannot record progress: {}", name_, saved.ToString());
        return false;
      }
      changed = false;
    }
    SendStops();
    if (!Launch(&changed)) return false;
    if (RunningCount() == 0 && (StopWanted() || !ending_.is_null() || !MoreToLaunch())) {
      Finish();
      return true;
    }
    if (changed && !Save().ok()) return false;
    std::this_thread::sleep_for(c_.options_.poll_interval);
    if (auto fresh = c_.store_.Get(kKind, name_); fresh.ok()) status_ = fresh->status;
  }
  // Shutting down: the job stays as recorded for the next Recover().
  return false;
}

// ---------------------------------------------------------------------------------------------

HyperParameterTuningJobController::HyperParameterTuningJobController(
    TuningJobOptions options, metadata::MetadataStore& store, metadata::LogStore& logs,
    const ImageRegistry& images, TrainingJobController& training)
    : options_(std::move(options)),
      store_(store),
      logs_(logs),
      images_(images),
      training_(training) {}

HyperParameterTuningJobController::~HyperParameterTuningJobController() { monitors_.Shutdown(); }

void HyperParameterTuningJobController::StartRunner(const std::string& name) {
  monitors_.Start(name, [this, name](MonitorThreads::Run& run) {
    Runner runner(*this, name, run);
    return runner.Execute();
  });
}

Result<metadata::Resource> HyperParameterTuningJobController::Find(const json& request) {
  const std::string name = request.value("HyperParameterTuningJobName", "");
  return FindResourceIgnoringCase(store_, kKind, name, JobNotFound(name));
}

Result<json> HyperParameterTuningJobController::Create(const json& request) {
  const std::string name = request.value("HyperParameterTuningJobName", "");
  if (request.contains("Autotune")) {
    return Validation(
        "Autotune is not supported by Hearth: give the ranges to search in ParameterRanges.");
  }
  json doc = request;
  doc.erase("Tags");
  json& config = doc["HyperParameterTuningJobConfig"];
  if (!config.contains("RandomSeed")) {
    // Chosen here and shown in Describe, so the job can be repeated.
    std::random_device device;
    config["RandomSeed"] = static_cast<std::int64_t>(device() & 0x7fffffff);
  }
  if (!config.contains("TrainingJobEarlyStoppingType"))
    config["TrainingJobEarlyStoppingType"] = "Off";
  const int min_peers = options_.early_stopping_min_peers;
  ASSIGN_OR_RETURN(std::vector<Definition> defs, ReadDefinitions(doc, min_peers));
  if (doc.contains("TrainingJobDefinition")) {
    doc["TrainingJobDefinition"] = defs.front().definition;
  } else {
    for (std::size_t i = 0; i < defs.size(); ++i) {
      doc["TrainingJobDefinitions"][i] = defs[i].definition;
    }
  }

  // What the children need that the service model cannot check.
  for (const Definition& d : defs) {
    const json& spec = d.definition["AlgorithmSpecification"];
    if (!spec.contains("TrainingImage")) {
      return Validation(spec.contains("AlgorithmName")
                            ? "AlgorithmName is not supported by Hearth: name the image in " +
                                  d.path + ".AlgorithmSpecification.TrainingImage."
                            : d.path + ".AlgorithmSpecification.TrainingImage must be provided.");
    }
    ASSIGN_OR_RETURN(ResolvedImage image,
                     images_.Resolve(spec["TrainingImage"].get<std::string>(),
                                     d.path + ".algorithmSpecification.trainingImage"));
    std::vector<std::string> metrics;
    if (spec.contains("MetricDefinitions")) {
      for (const json& m : spec["MetricDefinitions"]) {
        RE2 re(m.value("Regex", ""));
        if (!re.ok() || re.NumberOfCapturingGroups() < 1) {
          return Validation("MetricDefinitions regex for metric '" + m.value("Name", "") +
                            "' must be a valid regular expression with one capture group: " +
                            (re.ok() ? "it has no capture group" : re.error()));
        }
        metrics.push_back(m.value("Name", ""));
      }
    } else if (image.builtin) {
      for (const MetricDefinition& m : image.metric_definitions) metrics.push_back(m.name);
    }
    if (std::find(metrics.begin(), metrics.end(), d.metric) == metrics.end()) {
      std::string known;
      for (const std::string& m : metrics) known += (known.empty() ? "" : ", ") + m;
      return Validation(
          "The objective metric '" + d.metric + "' is not one of the metrics of " + d.path +
          (image.builtin && !spec.contains("MetricDefinitions")
               ? " (the algorithm's: " + known + ")."
           : known.empty() ? ": AlgorithmSpecification.MetricDefinitions defines none."
                           : " (AlgorithmSpecification.MetricDefinitions: " + known + ")."));
    }
    if (!d.definition.contains("ResourceConfig") &&
        !d.definition.contains("HyperParameterTuningResourceConfig")) {
      return Validation("1 validation error detected: Value null at '" + d.path +
                        ".resourceConfig' failed to satisfy constraint: Member must not be null "
                        "(or give HyperParameterTuningResourceConfig)");
    }
  }

  // Limits.
  const json& limits = config["ResourceLimits"];
  const int parallel = limits.value("MaxParallelTrainingJobs", 1);
  if (parallel > options_.max_parallel_training_jobs) {
    return ResourceExhausted(
        "The account-level service limit 'Number of parallel training jobs per tuning job' is " +
            std::to_string(options_.max_parallel_training_jobs) +
            " Jobs, with current utilization of 0 Jobs and a request delta of " +
            std::to_string(parallel) + " Jobs.",
        "ResourceLimitExceeded");
  }
  const bool random = defs.front().options.type == tuning::StrategyType::kRandom;
  const int job_limit = random ? options_.max_training_jobs_random : options_.max_training_jobs;
  std::int64_t max_jobs = limits.value("MaxNumberOfTrainingJobs", std::int64_t{job_limit});
  if (max_jobs > job_limit) {
    return ResourceExhausted(
        "The account-level service limit 'Number of training jobs per tuning job' is " +
            std::to_string(job_limit) +
            " Jobs, with current utilization of 0 Jobs and a request delta of " +
            std::to_string(max_jobs) + " Jobs.",
        "ResourceLimitExceeded");
  }
  if (defs.front().options.type == tuning::StrategyType::kGrid) {
    std::int64_t combinations = 0;
    for (const Definition& d : defs) combinations += d.options.space.NumCombinations().value_or(0);
    max_jobs = limits.contains("MaxNumberOfTrainingJobs") ? std::min(max_jobs, combinations)
                                                          : combinations;
  }

  // Warm start.
  json priors = json::array();
  json parent_best;
  if (doc.contains("WarmStartConfig")) {
    const json& warm = doc["WarmStartConfig"];
    const bool identical = warm.value("WarmStartType", "") == "IdenticalDataAndAlgorithm";
    const Definition& mine = defs.front();
    const int my_count = static_cast<int>(mine.definition["StaticHyperParameters"].size()) +
                         mine.options.space.num_parameters();
    std::set<std::string> seen;
    for (const json& p : warm["ParentHyperParameterTuningJobs"]) {
      const std::string parent_name = p.value("HyperParameterTuningJobName", "");
      if (!seen.insert(AsciiLower(parent_name)).second) continue;
      auto parent = FindResourceIgnoringCase(store_, kKind, parent_name);
      if (!parent.ok()) {
        return Validation("The parent hyperparameter tuning job " + parent_name +
                          " of WarmStartConfig does not exist.");
      }
      if (!IsTerminal(parent->status)) {
        return Validation("The parent hyperparameter tuning job " + parent_name + " is in status " +
                          parent->status + "; a warm start needs parents that have ended.");
      }
      auto parent_defs = ReadDefinitions(parent->doc, parent->internal.value("min_peers", 5));
      if (!parent_defs.ok()) return Internal("cannot read parent " + parent_name);
      const Definition& theirs = parent_defs->front();
      if (theirs.metric != mine.metric || theirs.type != mine.type) {
        return Validation(
            "The objective of a warm start must be the same as its parents': " + parent_name +
            " has " + ObjectiveTypeName(theirs.type) + " " + theirs.metric + ", this job " +
            ObjectiveTypeName(mine.type) + " " + mine.metric + ".");
      }
      const int their_count = static_cast<int>(theirs.definition["StaticHyperParameters"].size()) +
                              theirs.options.space.num_parameters();
      if (their_count != my_count) {
        return Validation(
            "A warm start must keep the number of static plus tunable "
            "hyperparameters of its parents: " +
            parent_name + " has " + std::to_string(their_count) + ", this job " +
            std::to_string(my_count) + " (" + kObjectiveKey + " included).");
      }
      if (identical) {
        const json& a = mine.definition;
        const json& b = theirs.definition;
        if (a["AlgorithmSpecification"].value("TrainingImage", "") !=
                b["AlgorithmSpecification"].value("TrainingImage", "") ||
            a.value("InputDataConfig", json::array()) !=
                b.value("InputDataConfig", json::array())) {
          return Validation(
              "WarmStartType IdenticalDataAndAlgorithm needs the training image "
              "and input data of the parent " +
              parent_name + "; use TransferLearning when they differ.");
        }
      }
      // The parent's children that reported the objective: their full hyperparameters (a
      // hyperparameter static there may be tunable here) and objective.
      const json& statics = theirs.definition.value("StaticHyperParameters", json::object());
      for (const json& t : parent->internal.value("trials", json::array())) {
        if (!t.value("done", false) || !t.contains("objective")) continue;
        const std::vector<Definition>& pd = *parent_defs;
        const int def = t.value("def", 0);
        json hps = def < static_cast<int>(pd.size())
                       ? pd[def].definition.value("StaticHyperParameters", json::object())
                       : statics;
        const json tuned = t.value("hps", json::object());
        for (const auto& [k, v] : tuned.items()) hps[k] = v;
        priors.push_back({{"hps", hps}, {"value", t["objective"]}});
      }
      if (identical) {
        const json& best = parent->doc.contains("OverallBestTrainingJob")
                               ? parent->doc["OverallBestTrainingJob"]
                               : parent->doc.value("BestTrainingJob", json());
        auto value = SummaryObjective(best);
        auto current = SummaryObjective(parent_best);
        if (value && (!current || Minimized(mine.type, *value) < Minimized(mine.type, *current))) {
          parent_best = best;
        }
      }
    }
  }

  const std::int64_t now = NowMillis();
  metadata::Resource r;
  r.kind = std::string(kKind);
  r.name = name;
  r.arn = SageMakerArn(options_.account, "hyper-parameter-tuning-job", name);
  r.status = "InProgress";
  r.created_millis = r.modified_millis = now;
  doc["HyperParameterTuningJobArn"] = r.arn;
  doc["HyperParameterTuningJobStatus"] = "InProgress";
  doc["CreationTime"] = ToEpochSeconds(now);
  doc["LastModifiedTime"] = ToEpochSeconds(now);
  const json zero = ZeroCounters();  // named: items() does not keep a temporary alive
  for (const auto& [k, v] : zero.items()) doc[k] = v;
  doc["TuningJobCompletionDetails"] = {{"NumberOfTrainingJobsObjectiveNotImproving", 0}};
  doc["ConsumedResources"] = {{"RuntimeInSeconds", 0}};
  if (!parent_best.is_null()) doc["OverallBestTrainingJob"] = parent_best;
  r.doc = std::move(doc);
  r.internal = {{"max_jobs", max_jobs},    {"min_peers", min_peers},  {"priors", std::move(priors)},
                {"trials", json::array()}, {"events", json::array()}, {"ending", nullptr}};
  if (!parent_best.is_null()) r.internal["parent_best"] = parent_best;

  std::lock_guard<std::mutex> admit(create_mu_);
  ASSIGN_OR_RETURN(std::vector<metadata::Resource> all, store_.List(kKind));
  const int running = static_cast<int>(std::count_if(all.begin(), all.end(), [](const auto& j) {
    return j.status == "InProgress" || j.status == "Stopping";
  }));
  if (running >= options_.max_running_tuning_jobs) {
    return ResourceExhausted(
        "The account-level service limit 'Number of concurrent hyperparameter tuning jobs' is " +
            std::to_string(options_.max_running_tuning_jobs) +
            " Jobs, with current utilization of " + std::to_string(running) +
            " Jobs and a request delta of 1 Jobs.",
        "ResourceLimitExceeded");
  }
  RETURN_IF_ERROR(CreateIfAbsentIgnoringCase(
      store_, r, {"InProgress", "", now, "Created"},
      Status(StatusCode::kAlreadyExists,
             "Hyperparameter tuning job names must be unique within an AWS account and region, "
             "and a hyperparameter tuning job with this name already exists (" +
                 r.arn + ")",
             "ResourceInUse")));
  StartRunner(name);
  return json{{"HyperParameterTuningJobArn", r.arn}};
}

Result<json> HyperParameterTuningJobController::Describe(const json& request) {
  ASSIGN_OR_RETURN(metadata::Resource r, Find(request));
  json doc = std::move(r.doc);
  if (!IsTerminal(r.status)) {
    doc["ConsumedResources"] = {
        {"RuntimeInSeconds", static_cast<int>((NowMillis() - r.created_millis) / 1000)}};
  }
  return doc;
}

Result<json> HyperParameterTuningJobController::List(const json& request) {
  ASSIGN_OR_RETURN(std::vector<metadata::Resource> all, store_.List(kKind));
  ASSIGN_OR_RETURN(
      ListPage page,
      FilterSortPage(all, request, {.default_sort_by = "Name", .default_sort_order = "Ascending"}));
  json summaries = json::array();
  for (const metadata::Resource* r : page.rows) {
    const json& d = r->doc;
    json s = {{"HyperParameterTuningJobName", r->name},
              {"HyperParameterTuningJobArn", r->arn},
              {"HyperParameterTuningJobStatus", r->status},
              {"Strategy", d["HyperParameterTuningJobConfig"].value("Strategy", "")},
              {"CreationTime", d["CreationTime"]},
              {"TrainingJobStatusCounters", d["TrainingJobStatusCounters"]},
              {"ObjectiveStatusCounters", d["ObjectiveStatusCounters"]},
              {"ResourceLimits", d["HyperParameterTuningJobConfig"]["ResourceLimits"]}};
    for (const char* k : {"HyperParameterTuningEndTime", "LastModifiedTime"}) {
      if (d.contains(k)) s[k] = d[k];
    }
    summaries.push_back(std::move(s));
  }
  json result = {{"HyperParameterTuningJobSummaries", std::move(summaries)}};
  if (page.next_token) result["NextToken"] = *page.next_token;
  return result;
}

Result<json> HyperParameterTuningJobController::ListTrainingJobs(const json& request) {
  ASSIGN_OR_RETURN(metadata::Resource job, Find(request));
  ASSIGN_OR_RETURN(std::vector<Definition> defs,
                   ReadDefinitions(job.doc, job.internal.value("min_peers", 5)));
  struct Row {
    std::string name;
    std::string status;
    double created = 0;
    std::optional<double> objective;
    json summary;
  };
  const std::string status_filter = request.value("StatusEquals", "");
  const std::string sort_by = request.value("SortBy", "Name");
  std::vector<Row> rows;
  for (const json& t : job.internal.value("trials", json::array())) {
    if (!t.value("created", false) || t.value("abandoned", false)) continue;
    const std::string child = t.value("name", "");
    auto record = store_.Get(TrainingJobController::kKind, child);
    if (!record.ok()) continue;
    const int def = std::clamp(t.value("def", 0), 0, static_cast<int>(defs.size()) - 1);
    json s = {{"TrainingJobName", child},
              {"TrainingJobArn", record->arn},
              {"TuningJobName", job.name},
              {"CreationTime", record->doc.value("CreationTime", 0.0)},
              {"TrainingJobStatus", record->status},
              {"TunedHyperParameters", t.value("hps", json::object())}};
    if (!defs[def].name.empty()) s["TrainingJobDefinitionName"] = defs[def].name;
    for (const char* key : {"TrainingStartTime", "TrainingEndTime", "FailureReason"}) {
      if (record->doc.contains(key)) s[key] = record->doc[key];
    }
    std::optional<double> objective;
    if (t.contains("objective")) {
      objective = t["objective"].get<double>();
      s["FinalHyperParameterTuningJobObjectiveMetric"] = {
          {"Type", ObjectiveTypeName(defs[def].type)},
          {"MetricName", defs[def].metric},
          {"Value", *objective}};
    }
    s["ObjectiveStatus"] =
        !t.value("done", false) ? "Pending" : (objective ? "Succeeded" : "Failed");
    if (!status_filter.empty() && record->status != status_filter) continue;
    if (sort_by == "FinalObjectiveMetricValue" && !objective) continue;
    rows.push_back({child, record->status, s["CreationTime"].get<double>(), objective, s});
  }
  const bool descending = request.value("SortOrder", "Ascending") == "Descending";
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    if (sort_by == "CreationTime" && a.created != b.created) return a.created < b.created;
    if (sort_by == "Status" && a.status != b.status) return a.status < b.status;
    if (sort_by == "FinalObjectiveMetricValue" && *a.objective != *b.objective) {
      return *a.objective < *b.objective;
    }
    return a.name < b.name;
  });
  if (descending) std::reverse(rows.begin(), rows.end());
  std::vector<std::string> names;
  for (const Row& r : rows) names.push_back(r.name);
  ASSIGN_OR_RETURN(Page page, Paginate(request, names));
  json summaries = json::array();
  for (std::size_t i = page.begin; i < page.end; ++i) summaries.push_back(rows[i].summary);
  json result = {{"TrainingJobSummaries", std::move(summaries)}};
  if (page.next_token) result["NextToken"] = *page.next_token;
  return result;
}

Result<json> HyperParameterTuningJobController::Stop(const json& request) {
  ASSIGN_OR_RETURN(metadata::Resource found, Find(request));
  auto updated =
      MutateResource(store_, kKind, found.name,
                     [&](metadata::Resource& r) -> Result<std::optional<metadata::Transition>> {
                       if (r.status == "Stopping") return std::optional<metadata::Transition>();
                       if (r.status != "InProgress") {
                         return Validation(
                             "The request was rejected because the hyperparameter tuning job is "
                             "in status " +
                             r.status + ".");
                       }
                       const std::int64_t now = NowMillis();
                       r.status = "Stopping";
                       r.modified_millis = now;
                       r.doc["HyperParameterTuningJobStatus"] = "Stopping";
                       r.doc["LastModifiedTime"] = ToEpochSeconds(now);
                       return std::optional<metadata::Transition>(metadata::Transition{
                           "Stopping", "", now, "StopHyperParameterTuningJob"});
                     });
  if (!updated.ok()) {
    if (updated.status().code() == StatusCode::kNotFound) return JobNotFound(found.name);
    return updated.status();
  }
  if (!monitors_.RequestEnd(found.name)) StartRunner(found.name);
  return json::object();
}

std::size_t HyperParameterTuningJobController::MonitoredJobs() { return monitors_.size(); }

Status HyperParameterTuningJobController::Recover() {
  ASSIGN_OR_RETURN(std::vector<metadata::Resource> all, store_.List(kKind));
  for (const auto& r : all) {
    if (r.status != "InProgress" && r.status != "Stopping") continue;
    spdlog::info("resuming tuning job {} ({}, {} trials)", r.name, r.status,
                 r.internal.value("trials", json::array()).size());
    StartRunner(r.name);
  }
  return Status::Ok();
}

}  // namespace hearth::control
