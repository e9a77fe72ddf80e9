#include "control/endpoints.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <set>

#include "common/clock.h"
#include "control/host_output.h"
#include "control/resource_records.h"
#include "http/http_client.h"
#include "runtime/log_reader.h"
#include "runtime/model_archive.h"
#include "runtime/training_contract.h"
#include "spdlog/spdlog.h"

namespace hearth::control {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kFailureReasonLimit = 1024;
constexpr std::size_t kTailLines = 8;
// Where a sandboxed instance of a built-in algorithm finds the `hearth` binary.
constexpr std::string_view kSandboxHearthPath = "/opt/.hearth/hearth";
constexpr std::string_view kSandboxModelDir = "/opt/ml/model";
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

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// An EC2-style instance id: "i-" and 17 hex digits.
std::string NewInstanceId() {
  std::string hex;
  for (char c : NewUuid()) {
    if (std::isxdigit(static_cast<unsigned char>(c))) hex.push_back(c);
  }
  return "i-" + hex.substr(0, 17);
}

// A loopback port nothing listens on right now. The instance binds it a moment later; `taken`
// keeps two instances launched together from drawing the same one.
Result<std::uint16_t> FreeLoopbackPort(std::set<std::uint16_t>& taken) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Internal("socket: cannot pick a port for an endpoint instance");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
              ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    ::close(fd);
    if (!ok) return Internal("bind: cannot pick a port for an endpoint instance");
    std::uint16_t port = ntohs(addr.sin_port);
    if (taken.insert(port).second) return port;
  }
  return Internal("cannot pick a free port for an endpoint instance");
}

// The one container of a model (PrimaryContainer, or a single Containers entry); inference
// pipelines are refused at create time.
const json& ModelContainer(const json& model) {
  if (model.contains("PrimaryContainer")) return model["PrimaryContainer"];
  return model["Containers"][0];
}

json VariantStatus(const std::string& status, std::int64_t now) {
  return json::array({{{"Status", status}, {"StartTime", ToEpochSeconds(now)}}});
}

}  // namespace

// Shared between the API threads and an endpoint's monitor thread.
struct EndpointController::Run {
  std::atomic<bool> delete_requested{false};
  std::thread thread;
};

// Drives one endpoint from its recorded state. Lives on the monitor thread.
class EndpointController::Runner {
 public:
  Runner(EndpointController& c, std::string name, Run& run)
      : c_(c), name_(std::move(name)), run_(run), group_(std::string(kLogGroupPrefix) + name_) {}

  void Execute();
  // True once the endpoint's record is gone.
  bool torn_down() const { return torn_down_; }

 private:
  struct Instance {
    std::string variant;
    std::string id;
    std::uint16_t port = 0;
    fs::path dir;  // holds ml/ and state/
    std::uint64_t log_offset = 0;
    bool exited = false;
    bool healthy = false;  // answered GET /ping once: takes traffic
    std::chrono::steady_clock::time_point launched_at;  // starts the startup health deadline
    int ping_failures = 0;  // consecutive failed checks while healthy
    std::unique_ptr<http::ConnectionPool> pool;

    fs::path ml_dir() const { return dir / "ml"; }
    fs::path state_dir() const { return dir / "state"; }
    std::string stream() const { return variant + "/" + id; }
    json ToJson() const {
      return {{"variant", variant}, {"id", id}, {"port", port}, {"dir", dir.string()}};
    }
  };

  enum class Outcome { kServing, kFailed, kDeleting, kShuttingDown };

  // Per variant: when a replacement may be launched next, and how long to wait after the next
  // failed one.
  struct Repair {
    std::chrono::steady_clock::time_point next_attempt;
    std::chrono::milliseconds backoff = kRepairBackoffInitial;
  };

  bool DeleteRequested() const { return run_.delete_requested.load(); }
  bool ShuttingDown() const { return c_.shutting_down_.load(); }
  fs::path EndpointDir() const {
    return c_.options_.endpoints_dir /
           (Lower(name_) + "-" + std::to_string(record_.created_millis));
  }

  // Records `status` (with `extra` applied) unless the endpoint is Deleting, which is sticky:
  // FailedPrecondition then, and the caller tears down instead.
  Status Transition(const std::string& status, const std::string& message,
                    const std::function<void(metadata::Resource&)>& extra);
  Status SaveInstances();
  Outcome Deploy(std::string* failure);
  Status PrepareModel(const json& variant, const fs::path& model_dir);
  // A new instance of `variant` (new id, port and directory), added to instances_; not yet
  // recorded nor launched.
  Result<Instance*> AddInstance(const std::string& variant);
  Status LaunchInstance(Instance& inst, const json& variant);
  // One startup health check of an instance that has not answered GET /ping yet: true once it
  // answers 200, false while it may still; FailedPrecondition with a FailureReason once it
  // stopped or missed its variant's startup deadline counted from `since`.
  Result<bool> StartupCheck(Instance& inst, std::chrono::steady_clock::time_point since);
  // Publishes the healthy instances.
  void PublishFleet();
  // While InService: replaces instances that stop or stop answering /ping.
  void Serve();
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
  const json* VariantSpec(const std::string& name) const;

  EndpointController& c_;
  std::string name_;
  Run& run_;
  std::string group_;
  metadata::Resource record_;
  std::vector<std::unique_ptr<Instance>> instances_;
  std::set<std::uint16_t> ports_;
  std::map<std::string, Repair> repairs_;  // by variant name
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

const json* EndpointController::Runner::VariantSpec(const std::string& name) const {
  for (const json& v : record_.internal["variants"]) {
    if (v.value("VariantName", "") == name) return &v;
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

Status EndpointController::Runner::PrepareModel(const json& variant, const fs::path& model_dir) {
  const json& container = variant["Container"];
  std::error_code ec;
  fs::remove_all(model_dir, ec);
  fs::create_directories(model_dir, ec);
  if (ec) return Internal("cannot create " + model_dir.string() + ": " + ec.message());
  if (container.contains("ModelDataUrl")) {
    const std::string uri = container["ModelDataUrl"].get<std::string>();
    ASSIGN_OR_RETURN(storage::S3Location loc, storage::ParseS3Uri(uri));
    Status s = runtime::ExtractArchiveObject(c_.objects_, loc, model_dir);
    if (!s.ok()) return InvalidArgument("Failed to extract model data archive from URL \"" + uri +
                                        "\": " + s.message());
    return Status::Ok();
  }
  if (container.contains("ModelDataSource")) {
    const json s3 = container["ModelDataSource"].value("S3DataSource", json::object());
    const std::string uri = s3.value("S3Uri", "");
    ASSIGN_OR_RETURN(storage::S3Location loc, storage::ParseS3Uri(uri));
    Status s;
    if (s3.value("CompressionType", "None") == "Gzip") {
      s = runtime::ExtractArchiveObject(c_.objects_, loc, model_dir);
    } else if (s3.value("S3DataType", "S3Object") == "S3Prefix") {
      s = runtime::DownloadPrefix(c_.objects_, loc, model_dir);
    } else {
      auto reader = c_.objects_.OpenForRead(loc.bucket, loc.key);
      s = reader.ok() ? (*reader)->CopyTo(model_dir / fs::path(loc.key).filename())
                      : reader.status();
    }
    if (!s.ok()) return InvalidArgument("Failed to download model data from \"" + uri +
                                        "\": " + s.message());
  }
  return Status::Ok();
}

Status EndpointController::Runner::LaunchInstance(Instance& inst, const json& variant) {
  const json& container = variant["Container"];
  ASSIGN_OR_RETURN(ResolvedImage image,
                   c_.images_.Resolve(container.value("Image", ""), "primaryContainer.image"));
  const bool sandboxed = c_.runtime_.sandboxed();
  const fs::path model_dir = EndpointDir() / inst.variant / "model";
  std::error_code ec;
  fs::remove_all(inst.dir, ec);
  fs::create_directories(inst.ml_dir() / "model", ec);
  fs::create_directories(inst.state_dir(), ec);
  if (ec) return Internal("cannot create " + inst.dir.string() + ": " + ec.message());

  const std::string program_inside = sandboxed ? "/opt/program" : image.program_dir.string();
  std::vector<std::string> argv;
  if (image.builtin) {
    argv = {sandboxed ? std::string(kSandboxHearthPath) : c_.options_.hearth_binary.string(),
            "algo", image.algorithm, "serve"};
  } else {
    argv = {program_inside + "/serve"};
  }
  std::map<std::string, std::string> env;
  env["PATH"] = (image.builtin ? "" : program_inside + ":") +
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  env["HOME"] = "/root";
  env["LANG"] = "C.UTF-8";
  env["PYTHONUNBUFFERED"] = "1";
  env["SAGEMAKER_BIND_TO_PORT"] = std::to_string(inst.port);
  env["SM_MODEL_DIR"] = sandboxed ? std::string(kSandboxModelDir) : model_dir.string();
  env["SAGEMAKER_BASE_DIR"] = c_.runtime_.MlPathInside(inst.ml_dir());
  env["SAGEMAKER_ENDPOINT_NAME"] = name_;
  env["SAGEMAKER_VARIANT_NAME"] = inst.variant;
  const json environment = container.value("Environment", json::object());
  for (const auto& [k, v] : environment.items()) {
    if (v.is_string()) env[k] = v.get<std::string>();
  }

  runtime::HostSpec spec;
  spec.ml_dir = inst.ml_dir();
  spec.argv = std::move(argv);
  spec.env = std::move(env);
  // The model is unpacked once per variant and shared read-only by its instances.
  spec.extra_binds.push_back({model_dir, std::string(kSandboxModelDir), true});
  if (image.builtin) {
    // The binary is bound at a fixed path: where it was built (/tmp, say) may be hidden.
    spec.extra_binds.push_back({c_.options_.hearth_binary, std::string(kSandboxHearthPath), true});
  } else {
    spec.extra_binds.push_back({image.program_dir, "/opt/program", true});
    spec.working_dir = program_inside;
  }
  RETURN_IF_ERROR(c_.runtime_.Launch(spec, inst.state_dir()));
  c_.logs_.EnsureStream(group_, inst.stream()).IgnoreError();
  return Status::Ok();
}

Result<EndpointController::Runner::Instance*> EndpointController::Runner::AddInstance(
    const std::string& variant) {
  auto inst = std::make_unique<Instance>();
  inst->variant = variant;
  inst->id = NewInstanceId();
  ASSIGN_OR_RETURN(inst->port, FreeLoopbackPort(ports_));
  inst->dir = EndpointDir() / variant / inst->id;
  instances_.push_back(std::move(inst));
  return instances_.back().get();
}

Result<bool> EndpointController::Runner::StartupCheck(
    Instance& inst, std::chrono::steady_clock::time_point since) {
  const json* variant = VariantSpec(inst.variant);
  auto st = c_.runtime_.Poll(inst.state_dir());
  if (!st.ok() || st->state != runtime::HostState::kRunning) {
    DrainOutput(inst);
    std::string how = !st.ok() || st->state == runtime::HostState::kLost
                          ? "its process ended without recording an exit status"
                      : st->signal != 0 ? "it was killed by signal " + std::to_string(st->signal)
                                        : "it exited with code " + std::to_string(st->exit_code);
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

EndpointController::Runner::Outcome EndpointController::Runner::Deploy(std::string* failure) {
  const fs::path ep_dir = EndpointDir();
  // Models: unpacked once per variant; "model.ready" says an earlier run (before a restart)
  // finished unpacking.
  for (const json& variant : record_.internal["variants"]) {
    const std::string vname = variant.value("VariantName", "");
    const fs::path vdir = ep_dir / vname;
    if (fs::exists(vdir / "model.ready")) continue;
    Status prepared = PrepareModel(variant, vdir / "model");
    if (prepared.ok()) {
      std::error_code ec;
      fs::create_directories(vdir, ec);
      prepared = WriteFileAtomic(vdir / "model.ready", "", Durability::kSurvivesProcessCrash);
    }
    if (!prepared.ok()) {
      *failure = "ClientError: production variant " + vname + ": " + prepared.message();
      return Outcome::kFailed;
    }
    if (DeleteRequested()) return Outcome::kDeleting;
    if (ShuttingDown()) return Outcome::kShuttingDown;
  }

  // Instances recorded earlier (before a restart) are kept when their supervisor still runs
  // them; the others are replaced by new ones.
  std::vector<std::unique_ptr<Instance>> kept;
  for (auto& inst : instances_) {
    auto st = c_.runtime_.Poll(inst->state_dir());
    if (st.ok() && st->state == runtime::HostState::kRunning &&
        VariantSpec(inst->variant) != nullptr) {
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
      auto added = AddInstance(vname);
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
    Status launched = LaunchInstance(*inst, *VariantSpec(inst->variant));
    if (!launched.ok()) {
      *failure = "InternalServerError: could not start instance " + inst->id +
                 " of production variant " + inst->variant + ": " + launched.message();
      return Outcome::kFailed;
    }
  }

  // Health: every instance must answer GET /ping with 200 before its variant's deadline.
  const auto start = std::chrono::steady_clock::now();
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
    std::this_thread::sleep_for(c_.options_.poll_interval);
  }
}

void EndpointController::Runner::PublishFleet() {
  std::vector<serving::VariantFleet> fleet;
  for (const json& variant : record_.internal["variants"]) {
    serving::VariantFleet v;
    v.name = variant.value("VariantName", "");
    v.weight = variant.value("InitialVariantWeight", 1.0);
    for (const auto& inst : instances_) {
      if (inst->variant != v.name || inst->exited || !inst->healthy) continue;
      v.instances.push_back({.id = name_ + "/" + inst->variant + "/" + inst->id,
                             .host = "127.0.0.1",
                             .port = inst->port});
    }
    fleet.push_back(std::move(v));
  }
  c_.router_.SetFleet(name_, std::move(fleet));
}

void EndpointController::Runner::Serve() {
  auto next_ping = std::chrono::steady_clock::now() + kLivePingInterval;
  while (!ShuttingDown() && !DeleteRequested()) {
    const auto now = std::chrono::steady_clock::now();
    const bool ping_now = now >= next_ping;
    if (ping_now) next_ping = now + kLivePingInterval;
    bool changed = false;
    for (std::size_t i = 0; i < instances_.size();) {
      Instance& inst = *instances_[i];
      IngestOutput(inst);
      std::string why;  // not empty: the instance is replaced
      if (!inst.healthy) {
        // A replacement starting up.
        auto check = StartupCheck(inst, inst.launched_at);
        if (!check.ok()) {
          Repair& repair = repairs_[inst.variant];
          why = check.status().message() + " (next attempt in " +
                std::to_string(repair.backoff.count() / 1000) + " s)";
          repair.next_attempt = now + repair.backoff;
          repair.backoff = std::min(repair.backoff * 2, kRepairBackoffMax);
        } else if (*check) {
          inst.healthy = true;
          repairs_[inst.variant] = Repair{};
          changed = true;
          spdlog::info("endpoint {}: replacement instance {} of variant {} is healthy", name_,
                       inst.id, inst.variant);
          LogToInstance(inst, "Hearth: instance " + inst.id +
                                  " answers GET /ping and takes traffic as a replacement");
        }
      } else if (auto st = c_.runtime_.Poll(inst.state_dir());
                 !st.ok() || st->state != runtime::HostState::kRunning) {
        why = !st.ok() || st->state == runtime::HostState::kLost
                  ? "its process ended without recording an exit status"
              : st->signal != 0 ? "it was killed by signal " + std::to_string(st->signal)
                                : "it exited with code " + std::to_string(st->exit_code);
      } else if (ping_now) {
        http::ClientRequest ping_request;
        ping_request.target = "/ping";
        auto ping = inst.pool->Send(ping_request, c_.options_.ping_timeout);
        if (ping.ok() && ping->status == 200) {
          inst.ping_failures = 0;
        } else if (++inst.ping_failures >= kLivePingFailures) {
          why = "it did not answer GET /ping with 200 in " + std::to_string(kLivePingFailures) +
                " consecutive checks (" +
                (ping.ok() ? "last answer HTTP " + std::to_string(ping->status)
                           : "last attempt: " + ping.status().message()) +
                ")";
        }
      }
      if (why.empty()) {
        ++i;
        continue;
      }
      changed = changed || inst.healthy;
      Retire(i, why);
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

void EndpointController::Runner::Retire(std::size_t index, const std::string& why) {
  Instance& inst = *instances_[index];
  spdlog::warn("endpoint {}: replacing instance {} of variant {}: {}", name_, inst.id,
               inst.variant, why);
  c_.runtime_.Signal(inst.state_dir(), SIGKILL).IgnoreError();
  const auto killed_at = std::chrono::steady_clock::now();
  for (;;) {
    auto st = c_.runtime_.Poll(inst.state_dir());
    if (!st.ok() || st->state != runtime::HostState::kRunning) break;
    if (std::chrono::steady_clock::now() - killed_at > kKillBound) break;
    std::this_thread::sleep_for(c_.options_.poll_interval);
  }
  DrainOutput(inst);
  LogToInstance(inst, "Hearth: instance " + inst.id + " of production variant " + inst.variant +
                          " is replaced: " + why);
  ports_.erase(inst.port);
  const fs::path dir = inst.dir;
  instances_.erase(instances_.begin() + static_cast<std::ptrdiff_t>(index));
  if (Status saved = SaveInstances(); !saved.ok()) {
    // Recover() then finds the instance recorded and gone, and replaces it.
    spdlog::error("endpoint {}: cannot record its instances: {}", name_, saved.ToString());
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

void EndpointController::Runner::LaunchReplacements() {
  const auto now = std::chrono::steady_clock::now();
  // A copy: recording the instances replaces record_.
  const json variants = record_.internal["variants"];
  for (const json& variant : variants) {
    const std::string vname = variant.value("VariantName", "");
    int have = 0;
    for (const auto& inst : instances_) have += inst->variant == vname ? 1 : 0;
    if (have >= variant.value("InitialInstanceCount", 1)) continue;
    Repair& repair = repairs_[vname];
    if (now < repair.next_attempt) continue;
    // The deploy path: recorded before it is launched, so Recover() after a crash in between
    // finds it (and adopts or replaces it).
    auto added = AddInstance(vname);
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
        if (r.status != "InService") return FailedPrecondition("the endpoint is not InService");
        for (json& v : r.doc["ProductionVariants"]) {
          int count = 0;
          for (const auto& inst : instances_) {
            count += inst->variant == v.value("VariantName", "") && inst->healthy ? 1 : 0;
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
    Status recorded = Transition("InService", "Endpoint is in service", [&](metadata::Resource& r) {
      for (json& v : r.doc["ProductionVariants"]) {
        int count = 0;
        for (const auto& inst : instances_) count += inst->variant == v.value("VariantName", "");
        v["CurrentInstanceCount"] = count;
        v["CurrentWeight"] = v.value("DesiredWeight", 1.0);
        v.erase("VariantStatus");
      }
    });
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

EndpointController::~EndpointController() {
  shutting_down_ = true;
  std::map<std::string, std::shared_ptr<Run>> runs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    runs.swap(runs_);
  }
  for (auto& [name, run] : runs) {
    if (run->thread.joinable()) run->thread.join();
  }
}

void EndpointController::StartRunner(const std::string& name) {
  auto run = std::make_shared<Run>();
  std::lock_guard<std::mutex> lock(mu_);
  // The destructor sets the flag before it takes the runs: a run added later would not be
  // joined.
  if (shutting_down_) return;
  auto& slot = runs_[name];
  if (slot && slot->thread.joinable()) slot->thread.detach();  // a finished earlier run
  slot = run;
  run->thread = std::thread([this, name, run] {
    Runner runner(*this, name, *run);
    try {
      runner.Execute();
    } catch (const std::exception& e) {
      // A bug, not an expected failure: keep the server up and leave it for Recover().
      spdlog::error("endpoint {}: monitor failed: {}", name, e.what());
    }
    bool again = false;
    {
      std::lock_guard<std::mutex> done(mu_);
      auto it = runs_.find(name);
      if (it != runs_.end() && it->second == run) {
        run->thread.detach();
        runs_.erase(it);
        // A delete that landed as this run was ending (just after it recorded Failed, say)
        // found it still registered and left the work to it: finish it in a new run.
        again = run->delete_requested && !runner.torn_down() && !shutting_down_;
      }
    }
    if (again) StartRunner(name);
  });
}

Result<metadata::Resource> EndpointController::Find(const std::string& name) {
  const Status missing = Validation("Could not find endpoint \"" +
                                    SageMakerArn(options_.account, "endpoint", name) + "\".");
  return FindResourceIgnoringCase(store_, kKind, name, missing);
}

Result<json> EndpointController::Create(const json& request) {
  const std::string name = request.value("EndpointName", "");
  const std::string config_name = request.value("EndpointConfigName", "");
  const std::string arn = SageMakerArn(options_.account, "endpoint", name);
  ASSIGN_OR_RETURN(
      metadata::Resource config,
      FindResourceIgnoringCase(
          store_, kConfigKind, config_name,
          Validation("Could not find endpoint configuration \"" +
                     SageMakerArn(options_.account, "endpoint-config", config_name) + "\".")));
  if (request.contains("DeploymentConfig")) {
    return Validation("DeploymentConfig is not supported by Hearth's CreateEndpoint yet.");
  }
  const std::int64_t now = NowMillis();
  json variants = json::array();      // what the monitor thread deploys
  json doc_variants = json::array();  // what DescribeEndpoint shows
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
    variants.push_back(std::move(v));
    const std::string resolved =
        image.builtin ? "hearth/" + image.algorithm : "file://" + image.program_dir.string();
    doc_variants.push_back(
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
  if (variants.empty()) {
    return Validation("Endpoint configuration \"" + config.name +
                      "\" has no ProductionVariants to deploy.");
  }

  metadata::Resource r;
  r.kind = std::string(kKind);
  r.name = name;
  r.arn = arn;
  r.status = "Creating";
  r.created_millis = r.modified_millis = now;
  r.doc = {{"EndpointName", name},
           {"EndpointArn", arn},
           {"EndpointConfigName", config.name},
           {"ProductionVariants", doc_variants},
           {"EndpointStatus", "Creating"},
           {"CreationTime", ToEpochSeconds(now)},
           {"LastModifiedTime", ToEpochSeconds(now)}};
  r.internal = {{"variants", variants}, {"instances", json::array()}};
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
  auto bound = [&](const char* key) -> std::optional<std::int64_t> {
    return request.contains(key) ? TimestampMillis(request[key]) : std::nullopt;
  };
  auto created_after = bound("CreationTimeAfter"), created_before = bound("CreationTimeBefore");
  auto modified_after = bound("LastModifiedTimeAfter");
  auto modified_before = bound("LastModifiedTimeBefore");
  const std::string contains = Lower(request.value("NameContains", ""));
  const std::string status = request.value("StatusEquals", "");
  std::vector<const metadata::Resource*> rows;
  for (const auto& r : all) {
    if (created_after && r.created_millis <= *created_after) continue;
    if (created_before && r.created_millis >= *created_before) continue;
    if (modified_after && r.modified_millis <= *modified_after) continue;
    if (modified_before && r.modified_millis >= *modified_before) continue;
    if (!status.empty() && r.status != status) continue;
    if (!contains.empty() && Lower(r.name).find(contains) == std::string::npos) continue;
    rows.push_back(&r);
  }
  const std::string sort_by = request.value("SortBy", "CreationTime");
  const bool descending = request.value("SortOrder", "Descending") == "Descending";
  std::stable_sort(rows.begin(), rows.end(), [&](const auto* a, const auto* b) {
    if (sort_by == "Name") return Lower(a->name) < Lower(b->name);
    if (sort_by == "Status" && a->status != b->status) return a->status < b->status;
    if (a->created_millis != b->created_millis) return a->created_millis < b->created_millis;
    return a->name < b->name;
  });
  if (descending) std::reverse(rows.begin(), rows.end());
  std::vector<std::string> names;
  names.reserve(rows.size());
  for (const auto* r : rows) names.push_back(r->name);
  ASSIGN_OR_RETURN(Page page, Paginate(request, names));
  json summaries = json::array();
  for (std::size_t i = page.begin; i < page.end; ++i) {
    const json& d = rows[i]->doc;
    summaries.push_back({{"EndpointName", rows[i]->name},
                         {"EndpointArn", rows[i]->arn},
                         {"CreationTime", d["CreationTime"]},
                         {"LastModifiedTime", d["LastModifiedTime"]},
                         {"EndpointStatus", rows[i]->status}});
  }
  json result = {{"Endpoints", summaries}};
  if (page.next_token) result["NextToken"] = *page.next_token;
  return result;
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
  bool running = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = runs_.find(found.name);
    if (it != runs_.end()) {
      it->second->delete_requested = true;
      running = true;
    }
  }
  // A Failed endpoint has no monitor thread: one starts to finish the deletion.
  if (!running) StartRunner(found.name);
  return json::object();
}

std::size_t EndpointController::MonitoredEndpoints() {
  std::lock_guard<std::mutex> lock(mu_);
  return runs_.size();
}

Status EndpointController::Recover() {
  ASSIGN_OR_RETURN(std::vector<metadata::Resource> all, store_.List(kKind));
  for (const auto& r : all) {
    if (r.status != "Creating" && r.status != "InService" && r.status != "Deleting") continue;
    spdlog::info("resuming endpoint {} ({})", r.name, r.status);
    StartRunner(r.name);
  }
  return Status::Ok();
}

}  // namespace hearth::control
