#include "control/endpoints.h"

#include <algorithm>
#include <cctype>
#include <deque>
#include <set>

#include <signal.h>

#include "common/clock.h"
#include "common/strings.h"
#include "common/wait.h"
#include "control/host_output.h"
#include "control/model_host.h"
#include "control/resource_records.h"
#include "http/http_client.h"
#include "runtime/log_reader.h"
#include "spdlog/spdlog.h"

namespace hearth::control {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kFailureReasonLimit = 1024;
constexpr std::size_t kTailLines = 8;
constexpr std::string_view kConfigKind = "EndpointConfig";
constexpr std::string_view kModelKind = "Model";

// Health of a live instance. One missed /ping (a long GC pause, a burst of slow requests) does
// not cost an instance; kLivePingFailures in a row, kLivePingInterval apart, each allowed
// EndpointOptions::ping_timeout, do: it is killed and replaced.
constexpr int kLivePingFailures = 3;
constexpr std::chrono::milliseconds kLivePingInterval{1000};
// A replacement that does not turn healthy is retried after a delay that doubles from
// kRepairBackoffInitial up to kRepairBackoffMax, so a model that cannot start does not relaunch
// in a tight loop (the endpoint stays InService with the instances it has).
constexpr std::chrono::milliseconds kRepairBackoffInitial{1000};
constexpr std::chrono::milliseconds kRepairBackoffMax{60000};
// After SIGKILL the supervisors record the exit at once; the bound is only a guard.
constexpr std::chrono::seconds kKillBound{10};

double ToEpochSeconds(std::int64_t millis) { return static_cast<double>(millis) / 1000.0; }

Status Validation(std::string message) {
  return InvalidArgument(std::move(message), "ValidationException");
}

json VariantStatus(const std::string& status, std::int64_t now) {
  return json::array({{{"Status", status}, {"StartTime", ToEpochSeconds(now)}}});
}

}  // namespace

// Drives one endpoint from its recorded state. Lives on the monitor thread.
class EndpointController::Runner {
 public:
  Runner(EndpointController& c, std::string name, MonitorThreads::Run& run)
      : c_(c), name_(std::move(name)), run_(run), group_(std::string(kLogGroupPrefix) + name_) {}

  void Execute();
  // True once the endpoint's record is gone.
  bool torn_down() const { return torn_down_; }

 private:
  struct Instance {
    std::string variant;
    // Which deployment the instance belongs to: 0 for CreateEndpoint's, then one more for each
    // UpdateEndpoint. Instances of an older one are draining; of a newer one, coming up.
    int generation = 0;
    std::string id;
    std::uint16_t port = 0;
    fs::path dir;  // holds ml/ and state/
    std::uint64_t log_offset = 0;
    bool exited = false;
    bool healthy = false;  // answered GET /ping once: takes traffic
    std::chrono::steady_clock::time_point launched_at;  // starts the startup health deadline
    int ping_failures = 0;  // consecutive failed checks while healthy
    std::unique_ptr<http::ConnectionPool> pool;
    // Draining (an older generation after an update): SIGTERM is sent once no request is in
    // flight on it, or once the drain deadline passed.
    std::optional<std::chrono::steady_clock::time_point> drain_deadline;
    std::optional<std::chrono::steady_clock::time_point> terminated_at;

    fs::path ml_dir() const { return dir / "ml"; }
    fs::path state_dir() const { return dir / "state"; }
    std::string stream() const { return variant + "/" + id; }
    json ToJson() const {
      return {{"variant", variant},
              {"generation", generation},
              {"id", id},
              {"port", port},
              {"dir", dir.string()}};
    }
  };

  enum class Outcome { kServing, kFailed, kDeleting, kShuttingDown };

  // Per variant: when a replacement may be launched next, and how long to wait after the next
  // failed one.
  struct Repair {
    std::chrono::steady_clock::time_point next_attempt;
    std::chrono::milliseconds backoff = kRepairBackoffInitial;
  };

  bool DeleteRequested() const { return run_.end_requested.load(); }
  bool ShuttingDown() const { return c_.monitors_.shutting_down(); }
  fs::path EndpointDir() const {
    return c_.options_.endpoints_dir /
           (AsciiLower(name_) + "-" + std::to_string(record_.created_millis));
  }
  // Where a generation's models and instances live: the endpoint's directory for the first,
  // "gen.<n>" under it for updates (a variant name cannot hold a '.').
  fs::path GenerationDir(int generation) const {
    return generation == 0 ? EndpointDir() : EndpointDir() / ("gen." + std::to_string(generation));
  }
  int LiveGeneration() const { return record_.internal.value("generation", 0); }
  // The update being deployed (UpdateEndpoint recorded it), or nullptr.
  const json* Pending() const {
    auto it = record_.internal.find("pending");
    return it == record_.internal.end() ? nullptr : &*it;
  }
  int PendingGeneration() const {
    const json* p = Pending();
    return p == nullptr ? -1 : p->value("generation", -1);
  }

  // Records `status` (with `extra` applied) unless the endpoint is Deleting, which is sticky:
  // FailedPrecondition then, and the caller tears down instead.
  Status Transition(const std::string& status, const std::string& message,
                    const std::function<void(metadata::Resource&)>& extra);
  Status SaveInstances();
  Outcome Deploy(std::string* failure);
  // Unpacks the models of `variants` into `generation`'s directory, unless an earlier run
  // (before a restart) did.
  Status PrepareModels(const json& variants, int generation);
  // A new instance of `variant` of `generation` (new id, port and directory), added to
  // instances_; not yet recorded nor launched.
  Result<Instance*> AddInstance(const std::string& variant, int generation);
  Status LaunchInstance(Instance& inst, const json& variant);
  // One startup health check of an instance that has not answered GET /ping yet: true once it
  // answers 200, false while it may still; FailedPrecondition with a FailureReason once it
  // stopped or missed its variant's startup deadline counted from `since`.
  Result<bool> StartupCheck(Instance& inst, std::chrono::steady_clock::time_point since);
  // Publishes the healthy instances.
  void PublishFleet();
  // While InService (or Updating): replaces instances that stop or stop answering /ping,
  // deploys updates and drains the instances they replace.
  void Serve();
  // The health of one instance (startup or live): "" when fine, else why it must go.
  std::string CheckInstance(Instance& inst, bool ping_now, bool* became_healthy);
  // UpdateEndpoint, blue/green: launches the pending generation's instances next to the live
  // ones. The fleet switches (SwitchToPending) once every one of them answers /ping; the live
  // fleet serves meanwhile. Any failure rolls back (RollBack).
  void StartUpdate();
  void SwitchToPending();
  void RollBack(const std::string& reason);
  // One step of draining an instance of an older generation: true once it has ended.
  bool DrainStep(Instance& inst);
  // Kills instances_[index] and forgets it (recorded), without a replacement; `log_line`, if
  // any, ends its log stream.
  void Forget(std::size_t index, const std::string& log_line = "");
  // Kills instances_[index] (whatever its state), forgets it and records that, logging `why`.
  void Retire(std::size_t index, const std::string& why);
  // Launches a replacement for every variant with fewer instances than it asks for, unless
  // its backoff has not passed.
  void LaunchReplacements();
  // Records each variant's healthy instances as its CurrentInstanceCount (while InService).
  void RecordInstanceCounts();
  // Appends a line of Hearth's own to the instance's log stream.
  void LogToInstance(const Instance& inst, const std::string& message);
  void Fail(const std::string& reason);
  void Teardown();
  // Sends SIGTERM to every live instance, SIGKILL after `grace`, and waits (bounded) for them
  // to end.
  void StopInstances(std::chrono::milliseconds grace);
  void IngestOutput(Instance& inst);
  void DrainOutput(Instance& inst);
  std::string OutputTail(const Instance& inst) const;
  // The variant an instance runs: from the live deployment, or the pending one.
  const json* VariantSpec(const Instance& inst) const;

  EndpointController& c_;
  std::string name_;
  MonitorThreads::Run& run_;
  std::string group_;
  metadata::Resource record_;
  std::vector<std::unique_ptr<Instance>> instances_;
  std::set<std::uint16_t> ports_;
  std::map<std::string, Repair> repairs_;  // by variant name
  bool updating_ = false;  // the pending generation's instances are launched
  bool torn_down_ = false;
};

Status EndpointController::Runner::Transition(
    const std::string& status, const std::string& message,
    const std::function<void(metadata::Resource&)>& extra) {
  auto updated = MutateResource(
      c_.store_, kKind, name_,
      [&](metadata::Resource& r) -> Result<std::optional<metadata::Transition>> {
        if (r.status == "Deleting") {
          return FailedPrecondition("the endpoint is being deleted");
        }
        std::int64_t now = NowMillis();
        const bool changed = r.status != status;
        r.status = status;
        r.modified_millis = now;
        r.doc["EndpointStatus"] = status;
        r.doc["LastModifiedTime"] = ToEpochSeconds(now);
        if (extra) extra(r);
        if (!changed) return std::optional<metadata::Transition>();
        return std::optional<metadata::Transition>(metadata::Transition{status, "", now, message});
      });
  if (!updated.ok()) return updated.status();
  record_ = std::move(updated).value();
  return Status::Ok();
}

Status EndpointController::Runner::SaveInstances() {
  json list = json::array();
  for (const auto& inst : instances_) list.push_back(inst->ToJson());
  // Recorded whatever the status, Deleting included: teardown must know every instance.
  auto updated = MutateResource(
      c_.store_, kKind, name_,
      [&](metadata::Resource& r) -> Result<std::optional<metadata::Transition>> {
        r.internal["instances"] = list;
        return std::optional<metadata::Transition>();
      });
  if (!updated.ok()) return updated.status();
  record_ = std::move(updated).value();
  return Status::Ok();
}

const json* EndpointController::Runner::VariantSpec(const Instance& inst) const {
  const json* variants = nullptr;
  if (inst.generation == LiveGeneration()) {
    variants = &record_.internal["variants"];
  } else if (inst.generation == PendingGeneration()) {
    variants = &(*Pending())["variants"];
  } else {
    return nullptr;
  }
  for (const json& v : *variants) {
    if (v.value("VariantName", "") == inst.variant) return &v;
  }
  return nullptr;
}

void EndpointController::Runner::IngestOutput(Instance& inst) {
  // On a store error the same lines are read again next time.
  (void)IngestHostOutput(c_.logs_, inst.state_dir() / "output.log", &inst.log_offset, group_,
                         inst.stream());
}

void EndpointController::Runner::DrainOutput(Instance& inst) {
  // Each read is bounded: read until nothing is left.
  for (std::uint64_t before = ~0ULL; before != inst.log_offset;) {
    before = inst.log_offset;
    IngestOutput(inst);
  }
}

std::string EndpointController::Runner::OutputTail(const Instance& inst) const {
  std::deque<std::string> tail;
  std::uint64_t offset = 0;
  for (;;) {
    auto lines = runtime::ReadOutputLines(inst.state_dir() / "output.log", &offset);
    if (!lines.ok() || lines->empty()) break;
    for (auto& line : *lines) {
      tail.push_back(std::move(line.text));
      if (tail.size() > kTailLines) tail.pop_front();
    }
  }
  std::string out;
  for (const auto& line : tail) out += (out.empty() ? "" : "\n") + line;
  return out;
}

Status EndpointController::Runner::LaunchInstance(Instance& inst, const json& variant) {
  ModelServerSpec spec;
  spec.container = variant["Container"];
  spec.model_dir = GenerationDir(inst.generation) / inst.variant / "model";
  spec.dir = inst.dir;
  spec.port = inst.port;
  spec.env = {{"SAGEMAKER_ENDPOINT_NAME", name_}, {"SAGEMAKER_VARIANT_NAME", inst.variant}};
  RETURN_IF_ERROR(
      LaunchModelServer(c_.runtime_, c_.images_, c_.options_.hearth_binary, spec));
  c_.logs_.EnsureStream(group_, inst.stream()).IgnoreError();
  return Status::Ok();
}

Result<EndpointController::Runner::Instance*> EndpointController::Runner::AddInstance(
    const std::string& variant, int generation) {
  auto inst = std::make_unique<Instance>();
  inst->variant = variant;
  inst->generation = generation;
  inst->id = NewInstanceId();
  ASSIGN_OR_RETURN(inst->port, FreeLoopbackPort(ports_));
  inst->dir = GenerationDir(generation) / variant / inst->id;
  instances_.push_back(std::move(inst));
  return instances_.back().get();
}

Result<bool> EndpointController::Runner::StartupCheck(
    Instance& inst, std::chrono::steady_clock::time_point since) {
  const json* variant = VariantSpec(inst);
  auto st = c_.runtime_.Poll(inst.state_dir());
  if (!st.ok() || st->state != runtime::HostState::kRunning) {
    DrainOutput(inst);
    const std::string how = DescribeHostEnd(st);
    std::string tail = OutputTail(inst);
    return FailedPrecondition("The primary container for production variant " + inst.variant +
                              " did not pass the ping health check: instance " + inst.id +
                              " stopped (" + how + ") before answering GET /ping." +
                              (tail.empty() ? "" : " Last output:\n" + tail));
  }
  if (inst.pool == nullptr) {
    inst.pool = std::make_unique<http::ConnectionPool>("127.0.0.1", inst.port, 2);
  }
  http::ClientRequest ping_request;
  ping_request.target = "/ping";
  auto ping = inst.pool->Send(ping_request, c_.options_.ping_timeout);
  if (ping.ok() && ping->status == 200) return true;
  const std::chrono::milliseconds timeout =
      variant != nullptr && variant->contains("ContainerStartupHealthCheckTimeoutInSeconds")
          ? std::chrono::seconds(
                (*variant)["ContainerStartupHealthCheckTimeoutInSeconds"].get<std::int64_t>())
          : c_.options_.health_check_timeout;
  if (std::chrono::steady_clock::now() - since <= timeout) return false;
  const std::int64_t timeout_s = timeout.count() / 1000;
  std::string last = ping.ok() ? "its last answer was HTTP " + std::to_string(ping->status)
                               : "its last attempt failed: " + ping.status().message();
  std::string tail = OutputTail(inst);
  return FailedPrecondition("The primary container for production variant " + inst.variant +
                            " did not pass the ping health check: instance " + inst.id +
                            " did not answer GET /ping with 200 within " +
                            std::to_string(timeout_s) + " seconds (" + last + ")." +
                            (tail.empty() ? "" : " Last output:\n" + tail));
}

Status EndpointController::Runner::PrepareModels(const json& variants, int generation) {
  // "model.ready" says an earlier run (before a restart) finished unpacking.
  for (const json& variant : variants) {
    const std::string vname = variant.value("VariantName", "");
    const fs::path vdir = GenerationDir(generation) / vname;
    if (fs::exists(vdir / "model.ready")) continue;
    Status prepared = PrepareModelDir(c_.objects_, variant["Container"], vdir / "model");
    if (prepared.ok()) {
      std::error_code ec;
      fs::create_directories(vdir, ec);
      prepared = WriteFileAtomic(vdir / "model.ready", "", Durability::kSurvivesProcessCrash);
    }
    if (!prepared.ok()) {
      return Status(prepared.code(),
                    "ClientError: production variant " + vname + ": " + prepared.message());
    }
    if (DeleteRequested() || ShuttingDown()) return Status::Ok();
  }
  return Status::Ok();
}

EndpointController::Runner::Outcome EndpointController::Runner::Deploy(std::string* failure) {
  // Models: unpacked once per variant.
  if (Status prepared = PrepareModels(record_.internal["variants"], LiveGeneration());
      !prepared.ok()) {
    *failure = prepared.message();
    return Outcome::kFailed;
  }
  if (DeleteRequested()) return Outcome::kDeleting;
  if (ShuttingDown()) return Outcome::kShuttingDown;

  // Instances recorded earlier (before a restart) are kept when their supervisor still runs
  // them; the others are replaced by new ones. Instances of another generation (an update
  // that was coming up, or a fleet that was draining) are stopped: a pending update starts
  // over.
  std::vector<std::unique_ptr<Instance>> kept;
  for (auto& inst : instances_) {
    auto st = c_.runtime_.Poll(inst->state_dir());
    if (st.ok() && st->state == runtime::HostState::kRunning &&
        inst->generation == LiveGeneration() && VariantSpec(*inst) != nullptr) {
      auto position = c_.logs_.SourcePosition(group_, inst->stream());
      inst->log_offset = position.ok() ? static_cast<std::uint64_t>(*position) : 0;
      ports_.insert(inst->port);
      kept.push_back(std::move(inst));
      continue;
    }
    if (st.ok()) {
      DrainOutput(*inst);
      c_.runtime_.Signal(inst->state_dir(), SIGKILL).IgnoreError();
    }
    std::error_code ec;
    fs::remove_all(inst->dir, ec);
  }
  instances_ = std::move(kept);

  std::vector<Instance*> to_launch;
  for (const json& variant : record_.internal["variants"]) {
    const std::string vname = variant.value("VariantName", "");
    int have = 0;
    for (const auto& inst : instances_) have += inst->variant == vname ? 1 : 0;
    for (int i = have; i < variant.value("InitialInstanceCount", 1); ++i) {
      auto added = AddInstance(vname, LiveGeneration());
      if (!added.ok()) {
        *failure = "InternalServerError: " + added.status().message();
        return Outcome::kFailed;
      }
      to_launch.push_back(*added);
    }
  }
  // Recorded before launching: after a crash in between, Recover() finds (and replaces or
  // adopts) every instance that may have started.
  if (Status saved = SaveInstances(); !saved.ok()) {
    *failure = "InternalServerError: cannot record the endpoint's instances: " + saved.message();
    return Outcome::kFailed;
  }
  for (Instance* inst : to_launch) {
    Status launched = LaunchInstance(*inst, *VariantSpec(*inst));
    if (!launched.ok()) {
      *failure = "InternalServerError: could not start instance " + inst->id +
                 " of production variant " + inst->variant + ": " + launched.message();
      return Outcome::kFailed;
    }
  }

  // Health: every instance must answer GET /ping with 200 before its variant's deadline.
  const auto start = std::chrono::steady_clock::now();
  // Model servers usually answer within tens of milliseconds: poll often at first.
  PollBackoff backoff(c_.options_.poll_interval);
  for (;;) {
    if (DeleteRequested()) return Outcome::kDeleting;
    if (ShuttingDown()) return Outcome::kShuttingDown;
    bool all_healthy = true;
    for (auto& inst : instances_) {
      IngestOutput(*inst);
      if (inst->healthy) continue;
      auto check = StartupCheck(*inst, start);
      if (!check.ok()) {
        *failure = check.status().message();
        return Outcome::kFailed;
      }
      inst->healthy = *check;
      all_healthy = all_healthy && inst->healthy;
    }
    if (all_healthy) return Outcome::kServing;
    backoff.Sleep();
  }
}

void EndpointController::Runner::PublishFleet() {
  std::vector<serving::VariantFleet> fleet;
  for (const json& variant : record_.internal["variants"]) {
    serving::VariantFleet v;
    v.name = variant.value("VariantName", "");
    v.weight = variant.value("InitialVariantWeight", 1.0);
    for (const auto& inst : instances_) {
      if (inst->generation != LiveGeneration() || inst->variant != v.name || inst->exited ||
          !inst->healthy) {
        continue;
      }
      v.instances.push_back({.id = name_ + "/" + inst->variant + "/" + inst->id,
                             .host = "127.0.0.1",
                             .port = inst->port});
    }
    fleet.push_back(std::move(v));
  }
  c_.router_.SetFleet(name_, std::move(fleet));
}

std::string EndpointController::Runner::CheckInstance(Instance& inst, bool ping_now,
                                                      bool* became_healthy) {
  if (!inst.healthy) {
    // Starting up: a replacement, or an instance of an update.
    auto check = StartupCheck(inst, inst.launched_at);
    if (!check.ok()) return check.status().message();
    if (*check) {
      inst.healthy = true;
      *became_healthy = true;
    }
    return "";
  }
  if (auto st = c_.runtime_.Poll(inst.state_dir());
      !st.ok() || st->state != runtime::HostState::kRunning) {
    return DescribeHostEnd(st);
  }
  if (!ping_now) return "";
  http::ClientRequest ping_request;
  ping_request.target = "/ping";
  auto ping = inst.pool->Send(ping_request, c_.options_.ping_timeout);
  if (ping.ok() && ping->status == 200) {
    inst.ping_failures = 0;
    return "";
  }
  if (++inst.ping_failures < kLivePingFailures) return "";
  return "it did not answer GET /ping with 200 in " + std::to_string(kLivePingFailures) +
         " consecutive checks (" +
         (ping.ok() ? "last answer HTTP " + std::to_string(ping->status)
                    : "last attempt: " + ping.status().message()) +
         ")";
}

void EndpointController::Runner::Serve() {
  auto next_ping = std::chrono::steady_clock::now() + kLivePingInterval;
  while (!ShuttingDown() && !DeleteRequested()) {
    if (run_.update_requested.exchange(false) && !updating_) {
      if (auto loaded = c_.store_.Get(kKind, name_); loaded.ok()) {
        record_ = std::move(loaded).value();
        if (record_.status == "Deleting") break;
        if (Pending() != nullptr) StartUpdate();
      }
    }
    const auto now = std::chrono::steady_clock::now();
    const bool ping_now = now >= next_ping;
    if (ping_now) next_ping = now + kLivePingInterval;
    bool changed = false;
    std::string rollback;  // not empty: the update fails
    for (std::size_t i = 0; i < instances_.size();) {
      Instance& inst = *instances_[i];
      IngestOutput(inst);
      if (inst.drain_deadline) {
        if (DrainStep(inst)) {
          Forget(i);
        } else {
          ++i;
        }
        continue;
      }
      bool became_healthy = false;
      std::string why = CheckInstance(inst, ping_now, &became_healthy);
      if (inst.generation == PendingGeneration()) {
        if (!why.empty()) {
          rollback = "The new instance " + inst.id + " of production variant " + inst.variant +
                     " did not become healthy: " + why;
          break;
        }
        ++i;
        continue;
      }
      if (became_healthy) {
        repairs_[inst.variant] = Repair{};
        changed = true;
        spdlog::info("endpoint {}: replacement instance {} of variant {} is healthy", name_,
                     inst.id, inst.variant);
        LogToInstance(inst, "Hearth: instance " + inst.id +
                                " answers GET /ping and takes traffic as a replacement");
      }
      if (why.empty()) {
        ++i;
        continue;
      }
      if (!inst.healthy) {
        // A replacement that did not start: retried after a growing delay.
        Repair& repair = repairs_[inst.variant];
        why += " (next attempt in " + std::to_string(repair.backoff.count() / 1000) + " s)";
        repair.next_attempt = now + repair.backoff;
        repair.backoff = std::min(repair.backoff * 2, kRepairBackoffMax);
      }
      changed = changed || inst.healthy;
      Retire(i, why);
    }
    if (!rollback.empty()) {
      RollBack(rollback);
    } else if (updating_) {
      bool all_up = true;
      for (const auto& inst : instances_) {
        all_up = all_up && (inst->generation != PendingGeneration() || inst->healthy);
      }
      if (all_up) SwitchToPending();
    }
    if (changed) {
      // The fleet without the dead instance stays published until its replacement is healthy.
      PublishFleet();
      RecordInstanceCounts();
    }
    LaunchReplacements();
    std::this_thread::sleep_for(c_.options_.poll_interval);
  }
}

void EndpointController::Runner::StartUpdate() {
  const json pending = *Pending();  // a copy: recording the instances replaces record_
  const int generation = pending.value("generation", 0);
  spdlog::info("endpoint {}: deploying endpoint configuration {} next to the live fleet", name_,
               pending.value("EndpointConfigName", ""));
  // A directory left by an update that did not finish (before a restart) is not trusted.
  std::error_code ec;
  fs::remove_all(GenerationDir(generation), ec);
  if (Status prepared = PrepareModels(pending["variants"], generation); !prepared.ok()) {
    RollBack(prepared.message());
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  std::vector<Instance*> to_launch;
  for (const json& variant : pending["variants"]) {
    const std::string vname = variant.value("VariantName", "");
    for (int i = 0; i < variant.value("InitialInstanceCount", 1); ++i) {
      auto added = AddInstance(vname, generation);
      if (!added.ok()) {
        updating_ = true;  // RollBack forgets what was added
        RollBack("InternalServerError: " + added.status().message());
        return;
      }
      (*added)->launched_at = now;
      to_launch.push_back(*added);
    }
  }
  updating_ = true;
  // Recorded before launching, as Deploy does.
  if (Status saved = SaveInstances(); !saved.ok()) {
    RollBack("InternalServerError: cannot record the endpoint's instances: " + saved.message());
    return;
  }
  for (Instance* inst : to_launch) {
    Status launched = LaunchInstance(*inst, *VariantSpec(*inst));
    if (!launched.ok()) {
      RollBack("InternalServerError: could not start instance " + inst->id +
               " of production variant " + inst->variant + ": " + launched.message());
      return;
    }
    LogToInstance(*inst, "Hearth: instance " + inst->id + " of production variant " +
                             inst->variant + " launched for endpoint configuration " +
                             pending.value("EndpointConfigName", ""));
  }
}

void EndpointController::Runner::SwitchToPending() {
  const json pending = *Pending();
  const int generation = pending.value("generation", 0);
  const int old_generation = LiveGeneration();
  std::map<std::string, int> counts;
  for (const auto& inst : instances_) {
    if (inst->generation == generation) ++counts[inst->variant];
  }
  Status recorded = Transition("InService", "Endpoint updated", [&](metadata::Resource& r) {
    r.internal["variants"] = pending["variants"];
    r.internal["generation"] = generation;
    r.internal.erase("pending");
    r.doc["EndpointConfigName"] = pending.value("EndpointConfigName", "");
    json variants = pending["doc_variants"];
    for (json& v : variants) {
      v["CurrentInstanceCount"] = counts[v.value("VariantName", "")];
      v["CurrentWeight"] = v.value("DesiredWeight", 1.0);
      v.erase("VariantStatus");
    }
    r.doc["ProductionVariants"] = variants;
    r.doc.erase("PendingDeploymentSummary");
    r.doc.erase("FailureReason");
  });
  if (!recorded.ok()) {
    // Deleting meanwhile: Serve ends and the teardown stops every instance. Another error:
    // the update stays pending and is retried as a whole after a restart.
    if (recorded.code() != StatusCode::kFailedPrecondition) {
      spdlog::error("endpoint {}: cannot record the update: {}", name_, recorded.ToString());
    }
    return;
  }
  updating_ = false;
  repairs_.clear();
  // Traffic moves to the new fleet at once; requests already sent finish on the old one.
  PublishFleet();
  const auto deadline = std::chrono::steady_clock::now() + c_.options_.drain_timeout;
  for (auto& inst : instances_) {
    if (inst->generation == old_generation) inst->drain_deadline = deadline;
  }
  spdlog::info("endpoint {}: in service with endpoint configuration {}; draining the old fleet",
               name_, pending.value("EndpointConfigName", ""));
}

void EndpointController::Runner::RollBack(const std::string& reason) {
  const int generation = PendingGeneration();
  spdlog::warn("endpoint {}: update failed, the live fleet stays: {}", name_, reason);
  for (std::size_t i = 0; i < instances_.size();) {
    if (instances_[i]->generation != generation) {
      ++i;
      continue;
    }
    Forget(i, "Hearth: the update failed: " + reason);
  }
  updating_ = false;
  std::string r = reason.substr(0, kFailureReasonLimit);
  Status recorded = Transition("InService", "Update failed", [&](metadata::Resource& rec) {
    rec.internal.erase("pending");
    rec.doc.erase("PendingDeploymentSummary");
    rec.doc["FailureReason"] = r;
  });
  if (!recorded.ok() && recorded.code() != StatusCode::kFailedPrecondition) {
    spdlog::error("endpoint {}: cannot record the failed update: {}", name_, recorded.ToString());
  }
  std::error_code ec;
  if (generation > 0) fs::remove_all(GenerationDir(generation), ec);
}

bool EndpointController::Runner::DrainStep(Instance& inst) {
  const auto now = std::chrono::steady_clock::now();
  if (!inst.terminated_at) {
    const std::string router_id = name_ + "/" + inst.variant + "/" + inst.id;
    if (c_.router_.Reachable(router_id) && now < *inst.drain_deadline) return false;
    c_.runtime_.Signal(inst.state_dir(), SIGTERM).IgnoreError();
    inst.terminated_at = now;
    return false;
  }
  auto st = c_.runtime_.Poll(inst.state_dir());
  if (!st.ok() || st->state != runtime::HostState::kRunning) {
    DrainOutput(inst);
    LogToInstance(inst, "Hearth: instance " + inst.id + " of production variant " +
                            inst.variant + " stopped after the endpoint was updated");
    return true;
  }
  if (now - *inst.terminated_at >= c_.options_.stop_grace) {
    c_.runtime_.Signal(inst.state_dir(), SIGKILL).IgnoreError();
  }
  return false;
}

void EndpointController::Runner::Forget(std::size_t index, const std::string& log_line) {
  Instance& inst = *instances_[index];
  c_.runtime_.Signal(inst.state_dir(), SIGKILL).IgnoreError();
  const auto killed_at = std::chrono::steady_clock::now();
  for (;;) {
    auto st = c_.runtime_.Poll(inst.state_dir());
    if (!st.ok() || st->state != runtime::HostState::kRunning) break;
    if (std::chrono::steady_clock::now() - killed_at > kKillBound) break;
    std::this_thread::sleep_for(c_.options_.poll_interval);
  }
  DrainOutput(inst);
  if (!log_line.empty()) LogToInstance(inst, log_line);
  ports_.erase(inst.port);
  const fs::path dir = inst.dir;
  const int generation = inst.generation;
  instances_.erase(instances_.begin() + static_cast<std::ptrdiff_t>(index));
  if (Status saved = SaveInstances(); !saved.ok()) {
    // Recover() then finds the instance recorded and gone, and replaces or drops it.
    spdlog::error("endpoint {}: cannot record its instances: {}", name_, saved.ToString());
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  // The last instance of a retired generation takes its models along.
  bool any_left = false;
  for (const auto& other : instances_) any_left = any_left || other->generation == generation;
  if (!any_left && generation != LiveGeneration() && generation != PendingGeneration()) {
    if (generation > 0) {
      fs::remove_all(GenerationDir(generation), ec);
    } else {
      // Generation 0 keeps its variants at the top, beside the "gen.<n>" directories.
      std::vector<fs::path> variant_dirs;
      for (const auto& entry : fs::directory_iterator(EndpointDir(), ec)) {
        if (entry.path().filename().string().find('.') == std::string::npos) {
          variant_dirs.push_back(entry.path());
        }
      }
      for (const auto& d : variant_dirs) fs::remove_all(d, ec);
    }
  }
}

void EndpointController::Runner::Retire(std::size_t index, const std::string& why) {
  const Instance& inst = *instances_[index];
  spdlog::warn("endpoint {}: replacing instance {} of variant {}: {}", name_, inst.id,
               inst.variant, why);
  Forget(index, "Hearth: instance " + inst.id + " of production variant " + inst.variant +
                    " is replaced: " + why);
}

void EndpointController::Runner::LaunchReplacements() {
  const auto now = std::chrono::steady_clock::now();
  // A copy: recording the instances replaces record_.
  const json variants = record_.internal["variants"];
  for (const json& variant : variants) {
    const std::string vname = variant.value("VariantName", "");
    int have = 0;
    for (const auto& inst : instances_) {
      have += inst->generation == LiveGeneration() && inst->variant == vname ? 1 : 0;
    }
    if (have >= variant.value("InitialInstanceCount", 1)) continue;
    Repair& repair = repairs_[vname];
    if (now < repair.next_attempt) continue;
    // The deploy path: recorded before it is launched, so Recover() after a crash in between
    // finds it (and adopts or replaces it).
    auto added = AddInstance(vname, LiveGeneration());
    Status launched = added.status();
    if (added.ok()) {
      (*added)->launched_at = now;
      launched = SaveInstances();
      if (launched.ok()) launched = LaunchInstance(**added, variant);
    }
    if (!launched.ok()) {
      spdlog::error("endpoint {}: cannot launch a replacement instance of variant {}: {}", name_,
                    vname, launched.ToString());
      if (added.ok()) {
        // Retired at once; StartupCheck would report it as stopped.
        for (std::size_t i = 0; i < instances_.size(); ++i) {
          if (instances_[i].get() == *added) {
            Retire(i, "it could not be launched: " + launched.message());
            break;
          }
        }
      }
      repair.next_attempt = now + repair.backoff;
      repair.backoff = std::min(repair.backoff * 2, kRepairBackoffMax);
      continue;
    }
    spdlog::info("endpoint {}: launched instance {} of variant {} as a replacement", name_,
                 (*added)->id, vname);
    LogToInstance(**added, "Hearth: instance " + (*added)->id + " of production variant " +
                               vname + " launched as a replacement");
  }
}

void EndpointController::Runner::RecordInstanceCounts() {
  auto updated = MutateResource(
      c_.store_, kKind, name_,
      [&](metadata::Resource& r) -> Result<std::optional<metadata::Transition>> {
        if (r.status != "InService" && r.status != "Updating") {
          return FailedPrecondition("the endpoint is not serving");
        }
        for (json& v : r.doc["ProductionVariants"]) {
          int count = 0;
          for (const auto& inst : instances_) {
            count += inst->generation == LiveGeneration() &&
                             inst->variant == v.value("VariantName", "") && inst->healthy
                         ? 1
                         : 0;
          }
          v["CurrentInstanceCount"] = count;
        }
        return std::optional<metadata::Transition>();
      });
  if (updated.ok()) record_ = std::move(updated).value();
}

void EndpointController::Runner::LogToInstance(const Instance& inst, const std::string& message) {
  c_.logs_.Append(group_, inst.stream(), {metadata::LogEvent{.timestamp_millis = NowMillis(),
                                                             .message = message}})
      .IgnoreError();
}

void EndpointController::Runner::StopInstances(std::chrono::milliseconds grace) {
  const auto start = std::chrono::steady_clock::now();
  for (auto& inst : instances_) {
    if (!inst->exited) c_.runtime_.Signal(inst->state_dir(), SIGTERM).IgnoreError();
  }
  bool killed = false;
  std::chrono::steady_clock::time_point killed_at;
  for (;;) {
    bool all_ended = true;
    for (auto& inst : instances_) {
      IngestOutput(*inst);
      if (inst->exited) continue;
      auto st = c_.runtime_.Poll(inst->state_dir());
      if (st.ok() && st->state == runtime::HostState::kRunning) {
        all_ended = false;
        continue;
      }
      DrainOutput(*inst);
      inst->exited = true;
    }
    if (all_ended) return;
    const auto now = std::chrono::steady_clock::now();
    if (!killed && now - start >= grace) {
      killed = true;
      killed_at = now;
      for (auto& inst : instances_) {
        if (!inst->exited) c_.runtime_.Signal(inst->state_dir(), SIGKILL).IgnoreError();
      }
    }
    if (killed && now - killed_at > kKillBound) return;
    std::this_thread::sleep_for(c_.options_.poll_interval);
  }
}

void EndpointController::Runner::Fail(const std::string& reason) {
  // A failed endpoint keeps nothing running: its instances are stopped without a grace.
  StopInstances(std::chrono::milliseconds(0));
  std::string r = reason.substr(0, kFailureReasonLimit);
  Status recorded = Transition("Failed", r.substr(0, 200), [&](metadata::Resource& rec) {
    rec.doc["FailureReason"] = r;
    for (json& v : rec.doc["ProductionVariants"]) {
      v["CurrentInstanceCount"] = 0;
      v.erase("VariantStatus");
    }
    rec.internal["instances"] = json::array();
  });
  if (recorded.code() == StatusCode::kFailedPrecondition) {
    Teardown();  // deleted meanwhile
    return;
  }
  instances_.clear();
  std::error_code ec;
  fs::remove_all(EndpointDir(), ec);
}

void EndpointController::Runner::Teardown() {
  c_.router_.Remove(name_);
  StopInstances(c_.options_.stop_grace);
  std::error_code ec;
  fs::remove_all(EndpointDir(), ec);
  Status deleted = c_.store_.Delete(kKind, name_);
  if (!deleted.ok() && deleted.code() != StatusCode::kNotFound) {
    spdlog::error("endpoint {}: cannot remove its record: {}", name_, deleted.ToString());
    return;
  }
  torn_down_ = true;
}

void EndpointController::Runner::Execute() {
  auto loaded = c_.store_.Get(kKind, name_);
  if (!loaded.ok()) {
    spdlog::error("endpoint {}: cannot load its record: {}", name_, loaded.status().ToString());
    return;
  }
  record_ = std::move(loaded).value();
  for (const json& i : record_.internal.value("instances", json::array())) {
    auto inst = std::make_unique<Instance>();
    inst->variant = i.value("variant", "");
    inst->generation = i.value("generation", 0);
    inst->id = i.value("id", "");
    inst->port = i.value("port", std::uint16_t{0});
    inst->dir = i.value("dir", "");
    instances_.push_back(std::move(inst));
  }
  if (record_.status == "Deleting" || DeleteRequested()) {
    Teardown();
    return;
  }
  if (record_.status == "Failed") return;

  std::string failure;
  Outcome outcome = Deploy(&failure);
  if (outcome == Outcome::kShuttingDown) return;
  if (outcome == Outcome::kFailed) {
    Fail(failure);
    return;
  }
  if (outcome == Outcome::kServing) {
    // Published first: a client that sees InService can invoke.
    PublishFleet();
    // An update recorded before a restart starts over next to the live fleet.
    const bool updating = record_.status == "Updating";
    if (updating) run_.update_requested = true;
    Status recorded = Status::Ok();
    if (!updating) {
      recorded = Transition("InService", "Endpoint is in service", [&](metadata::Resource& r) {
        for (json& v : r.doc["ProductionVariants"]) {
          int count = 0;
          for (const auto& inst : instances_) count += inst->variant == v.value("VariantName", "");
          v["CurrentInstanceCount"] = count;
          v["CurrentWeight"] = v.value("DesiredWeight", 1.0);
          v.erase("VariantStatus");
        }
      });
    }
    if (recorded.ok()) {
      Serve();
      if (ShuttingDown()) return;
    } else if (recorded.code() != StatusCode::kFailedPrecondition) {
      spdlog::error("endpoint {}: cannot record InService: {}", name_, recorded.ToString());
      return;  // left for the next Recover()
    }
  }
  if (ShuttingDown()) return;
  Teardown();
}

// ---------------------------------------------------------------------------------------------

EndpointController::EndpointController(EndpointOptions options, metadata::MetadataStore& store,
                                       metadata::LogStore& logs, storage::ObjectStore& objects,
                                       runtime::HostProcessRuntime& runtime,
                                       const ImageRegistry& images,
                                       serving::EndpointRouter& router)
    : options_(std::move(options)),
      store_(store),
      logs_(logs),
      objects_(objects),
      runtime_(runtime),
      images_(images),
      router_(router) {}

EndpointController::~EndpointController() { monitors_.Shutdown(); }

void EndpointController::StartRunner(const std::string& name) {
  monitors_.Start(name, [this, name](MonitorThreads::Run& run) {
    Runner runner(*this, name, run);
    runner.Execute();
    // A delete that landed as this run was ending (just after it recorded Failed, say) found
    // it still registered and left the work to it: then the monitor runs again to finish it.
    return runner.torn_down() || !run.end_requested;
  });
}

Result<metadata::Resource> EndpointController::Find(const std::string& name) {
  const Status missing = Validation("Could not find endpoint \"" +
                                    SageMakerArn(options_.account, "endpoint", name) + "\".");
  return FindResourceIgnoringCase(store_, kKind, name, missing);
}

Result<EndpointController::Plan> EndpointController::PlanDeployment(
    const std::string& config_name, std::int64_t now) {
  ASSIGN_OR_RETURN(
      metadata::Resource config,
      FindResourceIgnoringCase(
          store_, kConfigKind, config_name,
          Validation("Could not find endpoint configuration \"" +
                     SageMakerArn(options_.account, "endpoint-config", config_name) + "\".")));
  Plan plan;
  plan.config_name = config.name;
  for (const json& pv : config.doc.value("ProductionVariants", json::array())) {
    const std::string vname = pv.value("VariantName", "");
    const std::string model_name = pv.value("ModelName", "");
    ASSIGN_OR_RETURN(
        metadata::Resource model,
        FindResourceIgnoringCase(store_, kModelKind, model_name,
                                 Validation("Could not find model \"" +
                                            SageMakerArn(options_.account, "model", model_name) +
                                            "\".")));
    const json& md = model.doc;
    const std::size_t containers =
        md.contains("PrimaryContainer") ? 1 : md.value("Containers", json::array()).size();
    if (containers != 1) {
      return Validation("Model \"" + model_name + "\" of production variant " + vname + " has " +
                        std::to_string(containers) +
                        " containers; Hearth serves models of one container (PrimaryContainer, "
                        "or one entry in Containers), not inference pipelines.");
    }
    const json& container = ModelContainer(md);
    if (container.value("Mode", "SingleModel") != "SingleModel") {
      return Validation("Model \"" + model_name + "\" of production variant " + vname +
                        " has Mode " + container.value("Mode", "") +
                        "; Hearth serves SingleModel containers only.");
    }
    const std::string image_name = container.value("Image", "");
    ASSIGN_OR_RETURN(ResolvedImage image, images_.Resolve(image_name, "primaryContainer.image"));
    const double weight = pv.value("InitialVariantWeight", 1.0);
    const int count = pv.value("InitialInstanceCount", 1);
    json v = {{"VariantName", vname},
              {"ModelName", model.name},
              {"Container", container},
              {"InitialInstanceCount", count},
              {"InitialVariantWeight", weight}};
    if (pv.contains("ContainerStartupHealthCheckTimeoutInSeconds")) {
      v["ContainerStartupHealthCheckTimeoutInSeconds"] =
          pv["ContainerStartupHealthCheckTimeoutInSeconds"];
    }
    plan.variants.push_back(std::move(v));
    const std::string resolved =
        image.builtin ? "hearth/" + image.algorithm : "file://" + image.program_dir.string();
    plan.doc_variants.push_back(
        {{"VariantName", vname},
         {"DeployedImages",
          json::array({{{"SpecifiedImage", image_name},
                        {"ResolvedImage", resolved},
                        {"ResolutionTime", ToEpochSeconds(now)}}})},
         {"CurrentWeight", weight},
         {"DesiredWeight", weight},
         {"CurrentInstanceCount", 0},
         {"DesiredInstanceCount", count},
         {"VariantStatus", VariantStatus("Creating", now)}});
  }
  if (plan.variants.empty()) {
    return Validation("Endpoint configuration \"" + config.name +
                      "\" has no ProductionVariants to deploy.");
  }
  return plan;
}

Result<json> EndpointController::Create(const json& request) {
  const std::string name = request.value("EndpointName", "");
  const std::string arn = SageMakerArn(options_.account, "endpoint", name);
  if (request.contains("DeploymentConfig")) {
    return Validation("DeploymentConfig is not supported by Hearth's CreateEndpoint yet.");
  }
  const std::int64_t now = NowMillis();
  ASSIGN_OR_RETURN(Plan plan, PlanDeployment(request.value("EndpointConfigName", ""), now));

  metadata::Resource r;
  r.kind = std::string(kKind);
  r.name = name;
  r.arn = arn;
  r.status = "Creating";
  r.created_millis = r.modified_millis = now;
  r.doc = {{"EndpointName", name},
           {"EndpointArn", arn},
           {"EndpointConfigName", plan.config_name},
           {"ProductionVariants", plan.doc_variants},
           {"EndpointStatus", "Creating"},
           {"CreationTime", ToEpochSeconds(now)},
           {"LastModifiedTime", ToEpochSeconds(now)}};
  r.internal = {{"variants", plan.variants}, {"instances", json::array()}};
  const Status duplicate = Validation("Cannot create already existing endpoint \"" + arn + "\".");
  {
    std::lock_guard<std::mutex> lock(create_mu_);
    RETURN_IF_ERROR(
        CreateIfAbsentIgnoringCase(store_, r, {"Creating", "", now, "CreateEndpoint"}, duplicate));
  }
  StartRunner(name);
  return json{{"EndpointArn", arn}};
}

Result<json> EndpointController::Describe(const json& request) {
  ASSIGN_OR_RETURN(metadata::Resource r, Find(request.value("EndpointName", "")));
  return r.doc;
}

Result<json> EndpointController::List(const json& request) {
  ASSIGN_OR_RETURN(std::vector<metadata::Resource> all, store_.List(kKind));
  ASSIGN_OR_RETURN(ListPage page,
                   FilterSortPage(all, request, {.creation_time_after_inclusive = true}));
  json summaries = json::array();
  for (const metadata::Resource* r : page.rows) {
    const json& d = r->doc;
    summaries.push_back({{"EndpointName", r->name},
                         {"EndpointArn", r->arn},
                         {"CreationTime", d["CreationTime"]},
                         {"LastModifiedTime", d["LastModifiedTime"]},
                         {"EndpointStatus", r->status}});
  }
  json result = {{"Endpoints", summaries}};
  if (page.next_token) result["NextToken"] = *page.next_token;
  return result;
}

Result<json> EndpointController::Update(const json& request) {
  ASSIGN_OR_RETURN(metadata::Resource found, Find(request.value("EndpointName", "")));
  if (request.contains("DeploymentConfig")) {
    return Validation(
        "DeploymentConfig is not supported by Hearth's UpdateEndpoint yet: an update deploys the "
        "new fleet next to the old one and moves all traffic at once when it is healthy.");
  }
  const std::int64_t now = NowMillis();
  ASSIGN_OR_RETURN(Plan plan, PlanDeployment(request.value("EndpointConfigName", ""), now));
  // RetainAllVariantProperties keeps the live variants' weights and instance counts (by
  // variant name), except the properties listed in ExcludeRetainedVariantProperties.
  std::set<std::string> excluded;
  for (const json& p : request.value("ExcludeRetainedVariantProperties", json::array())) {
    excluded.insert(p.value("VariantPropertyType", ""));
  }
  const bool retain = request.value("RetainAllVariantProperties", false);
  const std::string arn = SageMakerArn(options_.account, "endpoint", found.name);
  auto updated = MutateResource(
      store_, kKind, found.name,
      [&](metadata::Resource& r) -> Result<std::optional<metadata::Transition>> {
        if (r.status == "Failed") {
          return Validation("Cannot update endpoint \"" + arn +
                            "\" because it is in status Failed; delete it and create it again.");
        }
        if (r.status != "InService") {
          return Validation("Cannot update in-progress endpoint \"" + arn + "\".");
        }
        json variants = plan.variants;
        json doc_variants = plan.doc_variants;
        if (retain) {
          for (std::size_t i = 0; i < variants.size(); ++i) {
            for (const json& live : r.doc["ProductionVariants"]) {
              if (live.value("VariantName", "") != variants[i].value("VariantName", "")) continue;
              if (!excluded.contains("DesiredWeight")) {
                const double weight = live.value("DesiredWeight", 1.0);
                variants[i]["InitialVariantWeight"] = weight;
                doc_variants[i]["DesiredWeight"] = doc_variants[i]["CurrentWeight"] = weight;
              }
              if (!excluded.contains("DesiredInstanceCount")) {
                const int count = live.value("DesiredInstanceCount", 1);
                variants[i]["InitialInstanceCount"] = count;
                doc_variants[i]["DesiredInstanceCount"] = count;
              }
            }
          }
        }
        r.status = "Updating";
        r.modified_millis = now;
        r.doc["EndpointStatus"] = "Updating";
        r.doc["LastModifiedTime"] = ToEpochSeconds(now);
        r.doc.erase("FailureReason");
        r.doc["PendingDeploymentSummary"] = {{"EndpointConfigName", plan.config_name},
                                             {"ProductionVariants", doc_variants},
                                             {"StartTime", ToEpochSeconds(now)}};
        r.internal["pending"] = {{"generation", r.internal.value("generation", 0) + 1},
                                 {"EndpointConfigName", plan.config_name},
                                 {"variants", variants},
                                 {"doc_variants", doc_variants}};
        return std::optional<metadata::Transition>(
            metadata::Transition{"Updating", "", now, "UpdateEndpoint " + plan.config_name});
      });
  if (!updated.ok()) {
    if (updated.status().code() == StatusCode::kNotFound) {
      return Validation("Could not find endpoint \"" + arn + "\".");
    }
    return updated.status();
  }
  // An InService endpoint has a monitor thread, unless the server is starting or stopping.
  if (!monitors_.RequestUpdate(found.name)) StartRunner(found.name);
  return json{{"EndpointArn", arn}};
}

Result<json> EndpointController::Delete(const json& request) {
  ASSIGN_OR_RETURN(metadata::Resource found, Find(request.value("EndpointName", "")));
  auto updated = MutateResource(
      store_, kKind, found.name,
      [&](metadata::Resource& r) -> Result<std::optional<metadata::Transition>> {
        if (r.status == "Deleting") return std::optional<metadata::Transition>();
        std::int64_t now = NowMillis();
        r.status = "Deleting";
        r.modified_millis = now;
        r.doc["EndpointStatus"] = "Deleting";
        r.doc["LastModifiedTime"] = ToEpochSeconds(now);
        return std::optional<metadata::Transition>(
            metadata::Transition{"Deleting", "", now, "DeleteEndpoint"});
      });
  if (!updated.ok()) {
    if (updated.status().code() == StatusCode::kNotFound) {
      // Removed meanwhile (another delete finished): as if it had never been found.
      return Validation("Could not find endpoint \"" +
                        SageMakerArn(options_.account, "endpoint", found.name) + "\".");
    }
    return updated.status();
  }
  // Traffic stops as soon as the delete is acknowledged; the monitor thread removes the fleet
  // again after its last publish, so a deploy finishing meanwhile cannot bring it back.
  router_.Remove(found.name);
  // A Failed endpoint has no monitor thread: one starts to finish the deletion.
  if (!monitors_.RequestEnd(found.name)) StartRunner(found.name);
  return json::object();
}

std::size_t EndpointController::MonitoredEndpoints() { return monitors_.size(); }

Status EndpointController::Recover() {
  ASSIGN_OR_RETURN(std::vector<metadata::Resource> all, store_.List(kKind));
  for (const auto& r : all) {
    if (r.status != "Creating" && r.status != "InService" && r.status != "Updating" &&
        r.status != "Deleting") {
      continue;
    }
    spdlog::info("resuming endpoint {} ({})", r.name, r.status);
    StartRunner(r.name);
  }
  return Status::Ok();
}

}  // namespace hearth::control
