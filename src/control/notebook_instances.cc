#include "control/notebook_instances.h"

#include <algorithm>
#include <cctype>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include <netinet/in.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/fs.h"
#include "common/strings.h"
#include "control/model_host.h"
#include "control/resource_records.h"
#include "http/http_client.h"
#include "runtime/log_reader.h"
#include "spdlog/spdlog.h"

// Set by CMake to <source>/python; empty when built otherwise.
#ifndef HEARTH_SDK_DIR
#define HEARTH_SDK_DIR ""
#endif

namespace hearth::control {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kFailureReasonLimit = 1024;
constexpr std::size_t kTailLines = 8;
// After SIGKILL the supervisor records the exit at once; the bound is only a guard.
constexpr std::chrono::seconds kKillBound{10};

// Inside the sandbox (see the header).
constexpr char kSandboxHome[] = "/opt/ml/home";
constexpr char kSandboxNotebookDir[] = "/opt/ml/home/SageMaker";
constexpr char kSandboxSdkDir[] = "/opt/hearth-sdk";

// What Hearth accepts as credentials; the Python SDK uses the same when none are configured.
constexpr char kPlaceholderAccessKey[] = "hearth";
constexpr char kPlaceholderSecretKey[] = "hearth-secret";

constexpr std::string_view kPending = "Pending";
constexpr std::string_view kInService = "InService";
constexpr std::string_view kStopping = "Stopping";
constexpr std::string_view kStopped = "Stopped";
constexpr std::string_view kFailed = "Failed";
constexpr std::string_view kDeleting = "Deleting";

double ToEpochSeconds(std::int64_t millis) { return static_cast<double>(millis) / 1000.0; }

Status Validation(std::string message) {
  return InvalidArgument(std::move(message), "ValidationException");
}

// SageMaker's answer for an instance that does not exist, whatever the operation.
Status RecordNotFound() { return Validation("RecordNotFound"); }

// 128 bits from the kernel's CSPRNG, as hex: the token guards a shell on this machine.
Result<std::string> NewToken() {
  unsigned char bytes[16];
  std::size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Internal("getrandom: cannot make a notebook token");
    }
    got += static_cast<std::size_t>(n);
  }
  return HexEncode(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

// Whether Jupyter could listen on 127.0.0.1:`port` now. SO_REUSEADDR as Jupyter (tornado) binds:
// connections lingering in TIME_WAIT do not block it, a listener does.
bool PortFree(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::string HostPort(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// CreateNotebookInstance's members Hearth cannot honour: refused, so that nobody believes a
// notebook is encrypted, isolated or set up when it is not.
Status RefuseUnsupported(const json& request) {
  struct Refusal {
    const char* field;
    const char* value;  // refused only with this value; nullptr: any value
    const char* why;
  };
  static constexpr Refusal kRefused[] = {
      {"LifecycleConfigName", nullptr,
       "Hearth has no notebook instance lifecycle configurations to run"},
      {"DefaultCodeRepository", nullptr,
       "Hearth does not clone Git repositories into notebook instances"},
      {"AdditionalCodeRepositories", nullptr,
       "Hearth does not clone Git repositories into notebook instances"},
      {"AcceleratorTypes", nullptr,
       "there are no Elastic Inference accelerators (SageMaker no longer offers them either)"},
      {"KmsKeyId", nullptr, "Hearth does not encrypt the notebook directory"},
      {"SubnetId", nullptr, "there are no VPCs here: a notebook instance listens on loopback"},
      {"SecurityGroupIds", nullptr,
       "there are no VPCs here: a notebook instance listens on loopback"},
      {"DirectInternetAccess", "Disabled",
       "a notebook instance shares this machine's network, so that it reaches the server on "
       "loopback"},
      {"RootAccess", "Disabled", "Jupyter runs as the user that runs the server"},
  };
  for (const Refusal& r : kRefused) {
    auto it = request.find(r.field);
    if (it == request.end() || it->is_null()) continue;
    if (it->is_array() && it->empty()) continue;
    if (r.value != nullptr && *it != r.value) continue;
    return Validation(std::string(r.field) +
                      (r.value != nullptr ? " " + std::string(r.value) : "") +
                      " is not supported by Hearth's CreateNotebookInstance: " + r.why + ".");
  }
  return Status::Ok();
}

}  // namespace

fs::path DefaultSdkDir() { return fs::path(HEARTH_SDK_DIR); }

// Drives one instance from its recorded state. Lives on the monitor thread.
class NotebookInstanceController::Runner {
 public:
  Runner(NotebookInstanceController& c, std::string name, MonitorThreads::Run& run)
      : c_(c), name_(std::move(name)), run_(run), stream_(LogStream(name_)) {}

  // Acts on the record until the instance needs no monitor (Stopped, Failed, removed), or the
  // controller shuts down, or the store fails (left for the next Recover()).
  void Execute();

 private:
  enum class Next { kReload, kLeave };

  Next StartUp();  // Pending
  Next Serve();    // InService
  Next Halt();     // Stopping
  Next Remove();   // Deleting
  // Kills Jupyter (if it runs) and records Failed with `reason` and the tail of its output,
  // if the status is still one of `from`.
  Next Fail(const std::string& reason, std::initializer_list<std::string_view> from);
  // The process was lost (not exited): Pending, to be launched again.
  Next Relaunch();

  // Launches Jupyter anew: port, launch recorded first; fresh instance/ and state/.
  Status Launch(const std::string& server_url);
  runtime::HostSpec MakeSpec(const std::string& server_url, std::uint16_t port) const;

  // Records `to` (with `extra` applied) if the status is one of `from`; FailedPrecondition if
  // it is not. A status that does not change records no transition and keeps the times.
  Status Record(std::initializer_list<std::string_view> from, std::string_view to,
                const std::string& message, const std::function<void(metadata::Resource&)>& extra);

  Result<runtime::HostStatus> Poll() const { return c_.runtime_.Poll(StateDir()); }
  bool Running(const Result<runtime::HostStatus>& st) const {
    return st.ok() && st->state == runtime::HostState::kRunning;
  }
  // GET /api/status with the token: the HTTP status, or why there was none.
  Result<int> AskStatus();
  // SIGKILL if it runs, a bounded wait for the end, then its last output is stored.
  void KillAndDrain();

  // Output of the current launch into the LogStore; true when lines were stored.
  bool Ingest();
  void Drain() {
    while (Ingest()) {
    }
  }
  // The position in the current output.log the store has got to.
  void SyncOffset();
  std::string OutputTail() const;
  void Log(const std::string& message);

  bool ShuttingDown() const { return c_.monitors_.shutting_down(); }
  void Pause() const { std::this_thread::sleep_for(c_.options_.poll_interval); }
  fs::path Dir() const { return c_.options_.notebooks_dir / name_; }
  fs::path InstanceDir() const { return Dir() / "instance"; }
  fs::path StateDir() const { return Dir() / "state"; }
  std::uint16_t Port() const { return record_.internal.value("port", std::uint16_t{0}); }
  std::int64_t LogBase() const { return record_.internal.value("log_base", std::int64_t{0}); }

  NotebookInstanceController& c_;
  const std::string name_;  // as recorded
  MonitorThreads::Run& run_;
  const std::string stream_;
  metadata::Resource record_;
  std::uint64_t offset_ = 0;  // in the current launch's output.log
  std::unique_ptr<http::ConnectionPool> pool_;
};

void NotebookInstanceController::Runner::Execute() {
  for (;;) {
    if (ShuttingDown()) return;
    // A Kick after this point leaves the flag raised: then the thread runs again (Kick).
    run_.end_requested = false;
    auto loaded = c_.store_.Get(kKind, name_);
    if (!loaded.ok()) {
      if (loaded.status().code() != StatusCode::kNotFound) {
        spdlog::error("notebook instance {}: cannot load its record: {}", name_,
                      loaded.status().ToString());
      }
      return;
    }
    record_ = std::move(loaded).value();
    SyncOffset();
    const std::string& status = record_.status;
    Next next = Next::kLeave;
    if (status == kPending) {
      next = StartUp();
    } else if (status == kInService) {
      next = Serve();
    } else if (status == kStopping) {
      next = Halt();
    } else if (status == kDeleting) {
      next = Remove();
    }
    if (next == Next::kLeave) return;
  }
}

Status NotebookInstanceController::Runner::Record(
    std::initializer_list<std::string_view> from, std::string_view to, const std::string& message,
    const std::function<void(metadata::Resource&)>& extra) {
  auto updated =
      MutateResource(c_.store_, kKind, name_,
                     [&](metadata::Resource& r) -> Result<std::optional<metadata::Transition>> {
                       if (std::find(from.begin(), from.end(), r.status) == from.end()) {
                         return FailedPrecondition("the notebook instance is " + r.status);
                       }
                       if (extra) extra(r);
                       if (r.status == to) return std::optional<metadata::Transition>();
                       const std::int64_t now = NowMillis();
                       r.status = std::string(to);
                       r.modified_millis = now;
                       r.doc["NotebookInstanceStatus"] = r.status;
                       r.doc["LastModifiedTime"] = ToEpochSeconds(now);
                       return std::optional<metadata::Transition>(
                           metadata::Transition{r.status, "", now, message});
                     });
  if (!updated.ok()) return updated.status();
  record_ = std::move(updated).value();
  return Status::Ok();
}

void NotebookInstanceController::Runner::SyncOffset() {
  auto position = c_.logs_.SourcePosition(kLogGroup, stream_);
  const std::int64_t at = position.ok() ? *position : 0;
  offset_ = at > LogBase() ? static_cast<std::uint64_t>(at - LogBase()) : 0;
}

bool NotebookInstanceController::Runner::Ingest() {
  const std::uint64_t previous = offset_;
  auto lines = runtime::ReadOutputLines(StateDir() / "output.log", &offset_);
  if (!lines.ok() || lines->empty()) {
    offset_ = previous;
    return false;
  }
  std::vector<metadata::LogEvent> events;
  events.reserve(lines->size());
  for (auto& line : *lines) {
    metadata::LogEvent& e = events.emplace_back();
    e.timestamp_millis = line.timestamp_millis;
    e.message = std::move(line.text);
  }
  // One stream across launches, so the position the store keeps counts from the stream's first
  // launch: this launch's output.log starts at LogBase(). (IngestHostOutput stores the offset
  // in one output.log, which fits a stream per process.)
  Status stored = c_.logs_.IngestFromSource(kLogGroup, stream_, events, {}, {}, {},
                                            LogBase() + static_cast<std::int64_t>(offset_));
  if (!stored.ok()) {
    offset_ = previous;  // read again next time
    return false;
  }
  return true;
}

std::string NotebookInstanceController::Runner::OutputTail() const {
  std::deque<std::string> tail;
  std::uint64_t offset = 0;
  for (;;) {
    auto lines = runtime::ReadOutputLines(StateDir() / "output.log", &offset);
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

void NotebookInstanceController::Runner::Log(const std::string& message) {
  metadata::LogEvent e;
  e.timestamp_millis = NowMillis();
  e.message = "Hearth: " + message;
  c_.logs_.Append(kLogGroup, stream_, {e}).IgnoreError();
}

void NotebookInstanceController::Runner::KillAndDrain() {
  auto st = Poll();
  if (!st.ok()) return;  // nothing was launched in state/
  if (Running(st)) {
    c_.runtime_.Signal(StateDir(), SIGKILL).IgnoreError();
    const auto killed_at = std::chrono::steady_clock::now();
    while (Running(Poll()) && std::chrono::steady_clock::now() - killed_at < kKillBound) Pause();
  }
  Drain();
}

Result<int> NotebookInstanceController::Runner::AskStatus() {
  if (pool_ == nullptr || pool_->port() != Port()) {
    pool_ = std::make_unique<http::ConnectionPool>("127.0.0.1", Port(), 1);
  }
  http::ClientRequest request;
  request.target = "/api/status";
  // In a header rather than ?token=: Jupyter logs the URLs of some requests.
  request.headers = {{"Authorization", "token " + record_.internal.value("token", "")}};
  ASSIGN_OR_RETURN(http::ClientResponse response, pool_->Send(request, c_.options_.status_timeout));
  return response.status;
}

runtime::HostSpec NotebookInstanceController::Runner::MakeSpec(const std::string& server_url,
                                                               std::uint16_t port) const {
  const bool sandboxed = c_.runtime_.sandboxed();
  const NotebookOptions& o = c_.options_;
  const std::string home = sandboxed ? kSandboxHome : (InstanceDir() / "home").string();
  const std::string notebook_dir = sandboxed ? kSandboxNotebookDir : (Dir() / "SageMaker").string();
  std::error_code ec;
  const bool have_sdk = !o.sdk_dir.empty() && fs::is_directory(o.sdk_dir, ec);

  runtime::HostSpec spec;
  spec.ml_dir = InstanceDir();
  spec.argv = {o.python.string(), "-m", "notebook", "--no-browser", "--allow-root",
               "--ip=127.0.0.1", "--port=" + std::to_string(port),
               // A port taken meanwhile fails the launch instead of moving Jupyter elsewhere.
               "--port-retries=0", "--notebook-dir=" + notebook_dir};
  spec.working_dir = notebook_dir;
  spec.env = {
      {"HOME", home},
      {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
      {"LANG", "C.UTF-8"},
      {"PYTHONUNBUFFERED", "1"},
      // Quiets ipykernel's "frozen modules" debugger warning in every kernel's output.
      {"PYDEVD_DISABLE_FILE_VALIDATION", "1"},
      {"JUPYTER_TOKEN", record_.internal.value("token", "")},
      {"HEARTH_ENDPOINT_URL", server_url},
      {"AWS_ENDPOINT_URL", server_url},
      {"AWS_ACCESS_KEY_ID", kPlaceholderAccessKey},
      {"AWS_SECRET_ACCESS_KEY", kPlaceholderSecretKey},
      {"AWS_DEFAULT_REGION", o.account.region},
      {"AWS_REGION", o.account.region},
  };
  if (have_sdk) {
    spec.env["PYTHONPATH"] = sandboxed ? kSandboxSdkDir : o.sdk_dir.string();
  }
  if (sandboxed) {
    spec.extra_binds.push_back({Dir() / "SageMaker", kSandboxNotebookDir, /*read_only=*/false});
    if (have_sdk) spec.extra_binds.push_back({o.sdk_dir, kSandboxSdkDir, /*read_only=*/true});
  }
  return spec;
}

Status NotebookInstanceController::Runner::Launch(const std::string& server_url) {
  // The previous launch (if any) must be over and its output stored before its state goes.
  KillAndDrain();
  auto position = c_.logs_.SourcePosition(kLogGroup, stream_);
  const std::int64_t base = position.ok() ? std::max(*position, LogBase()) : LogBase();
  std::error_code ec;
  fs::remove_all(StateDir(), ec);
  fs::remove_all(InstanceDir(), ec);
  if (ec) return Internal("cannot clear " + InstanceDir().string() + ": " + ec.message());
  ASSIGN_OR_RETURN(std::uint16_t port, c_.PickPort(name_, Port()));
  // Recorded before launching: after a crash in between, Recover() finds nothing running in
  // state/ and launches again.
  RETURN_IF_ERROR(Record({kPending}, kPending, "", [&](metadata::Resource& r) {
    r.internal["port"] = port;
    r.internal["launched"] = true;
    r.internal["log_base"] = base;
    r.doc["Url"] = HostPort(port);
  }));
  offset_ = 0;

  fs::create_directories(Dir() / "SageMaker", ec);
  if (!ec) fs::create_directories(InstanceDir() / "home" / "SageMaker", ec);
  if (!ec) fs::create_directories(InstanceDir() / "metadata", ec);
  if (!ec) fs::create_directories(StateDir(), ec);
  if (ec) return Internal("cannot create " + Dir().string() + ": " + ec.message());
  // spec.json there holds the token.
  fs::permissions(StateDir(), fs::perms::owner_all, fs::perm_options::replace, ec);
  // Where SageMaker's notebook instances name themselves (the sagemaker SDK reads it).
  RETURN_IF_ERROR(
      WriteFileAtomic(InstanceDir() / "metadata" / "resource-metadata.json",
                      json{{"ResourceArn", record_.arn}, {"ResourceName", record_.name}}.dump(),
                      Durability::kSurvivesProcessCrash));
  c_.logs_.EnsureStream(kLogGroup, stream_).IgnoreError();
  RETURN_IF_ERROR(c_.runtime_.Launch(MakeSpec(server_url, port), StateDir()));
  Log("launched Jupyter on " + HostPort(port) +
      (c_.runtime_.sandboxed() ? " (sandboxed)" : " (not sandboxed: bubblewrap is not usable)"));
  return Status::Ok();
}

NotebookInstanceController::Runner::Next NotebookInstanceController::Runner::StartUp() {
  bool launched = record_.internal.value("launched", false);
  if (launched) {
    auto st = Poll();
    if (st.ok() && st->state == runtime::HostState::kExited) {
      // It ended while nobody watched (the server was down): as if it had been watched.
      Drain();
      return Fail("Jupyter stopped before answering GET /api/status (" + DescribeHostEnd(st) + ").",
                  {kPending});
    }
    launched = Running(st);  // else lost, or the launch never happened: launched again
  }
  if (!launched) {
    std::string url;
    while ((url = c_.ServerUrl()).empty()) {
      if (ShuttingDown()) return Next::kLeave;
      Pause();
    }
    Status s = Launch(url);
    if (!s.ok()) {
      if (s.code() == StatusCode::kFailedPrecondition) return Next::kReload;
      return Fail("InternalServerError: could not launch Jupyter: " + s.message(), {kPending});
    }
  }

  // InService only once Jupyter answers; an adopted launch gets the whole deadline again.
  const auto deadline = std::chrono::steady_clock::now() + c_.options_.startup_timeout;
  for (;;) {
    if (ShuttingDown()) return Next::kLeave;
    Ingest();
    auto st = Poll();
    if (!Running(st)) {
      Drain();
      return Fail("Jupyter stopped before answering GET /api/status (" + DescribeHostEnd(st) + ").",
                  {kPending});
    }
    auto answer = AskStatus();
    if (answer.ok() && *answer == 200) break;
    if (std::chrono::steady_clock::now() > deadline) {
      const std::string last = answer.ok()
                                   ? "its last answer was HTTP " + std::to_string(*answer)
                                   : "its last attempt failed: " + answer.status().message();
      return Fail("Jupyter did not answer GET /api/status with 200 within " +
                      std::to_string(c_.options_.startup_timeout.count() / 1000) + " seconds (" +
                      last + ").",
                  {kPending});
    }
    Pause();
  }
  Status recorded = Record({kPending}, kInService, "Jupyter is in service",
                           [](metadata::Resource& r) { r.doc.erase("FailureReason"); });
  if (!recorded.ok()) {
    if (recorded.code() == StatusCode::kFailedPrecondition) return Next::kReload;
    spdlog::error("notebook instance {}: cannot record InService: {}", name_, recorded.ToString());
    return Next::kLeave;
  }
  spdlog::info("notebook instance {}: in service on {}", name_, HostPort(Port()));
  return Serve();
}

NotebookInstanceController::Runner::Next NotebookInstanceController::Runner::Serve() {
  for (;;) {
    if (ShuttingDown()) return Next::kLeave;
    if (run_.end_requested) return Next::kReload;  // stopped: re-read the record
    Ingest();
    auto st = Poll();
    if (st.ok() && st->state == runtime::HostState::kExited) {
      Drain();
      return Fail("Jupyter stopped while in service (" + DescribeHostEnd(st) + ").", {kInService});
    }
    if (!Running(st)) return Relaunch();
    Pause();
  }
}

NotebookInstanceController::Runner::Next NotebookInstanceController::Runner::Relaunch() {
  Drain();
  Log("Jupyter's process was lost (its supervisor ended without recording an exit); "
      "launching it again");
  Status recorded =
      Record({kInService}, kPending, "Jupyter's process was lost; launching it again", nullptr);
  if (!recorded.ok() && recorded.code() != StatusCode::kFailedPrecondition) {
    spdlog::error("notebook instance {}: cannot record Pending: {}", name_, recorded.ToString());
    return Next::kLeave;
  }
  return Next::kReload;
}

NotebookInstanceController::Runner::Next NotebookInstanceController::Runner::Halt() {
  auto st = Poll();
  if (Running(st)) {
    c_.runtime_.Signal(StateDir(), SIGTERM).IgnoreError();
    Log("stopping Jupyter (SIGTERM)");
  }
  const auto start = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> killed_at;
  while (Running(st)) {
    if (ShuttingDown()) return Next::kLeave;  // Stopping resumes at the next Recover()
    Ingest();
    const auto now = std::chrono::steady_clock::now();
    if (!killed_at && now - start >= c_.options_.stop_grace) {
      c_.runtime_.Signal(StateDir(), SIGKILL).IgnoreError();
      Log("Jupyter did not stop within the grace period: SIGKILL");
      killed_at = now;
    }
    if (killed_at && now - *killed_at > kKillBound) {
      spdlog::error("notebook instance {}: Jupyter survived SIGKILL for {} s", name_,
                    kKillBound.count());
      break;
    }
    Pause();
    st = Poll();
  }
  Drain();
  Log("Jupyter stopped");
  Status recorded = Record({kStopping}, kStopped, "Jupyter stopped",
                           [](metadata::Resource& r) { r.internal["launched"] = false; });
  if (!recorded.ok() && recorded.code() != StatusCode::kFailedPrecondition) {
    spdlog::error("notebook instance {}: cannot record Stopped: {}", name_, recorded.ToString());
    return Next::kLeave;
  }
  return Next::kReload;
}

NotebookInstanceController::Runner::Next NotebookInstanceController::Runner::Remove() {
  KillAndDrain();
  std::error_code ec;
  fs::remove_all(Dir(), ec);
  if (ec) {
    spdlog::error("notebook instance {}: cannot remove {}: {}", name_, Dir().string(),
                  ec.message());
    return Next::kLeave;  // Deleting stays; the next Recover() tries again
  }
  Status deleted = c_.store_.Delete(kKind, name_);
  if (!deleted.ok() && deleted.code() != StatusCode::kNotFound) {
    spdlog::error("notebook instance {}: cannot remove its record: {}", name_, deleted.ToString());
    return Next::kLeave;
  }
  c_.ForgetPort(name_);
  spdlog::info("notebook instance {}: deleted", name_);
  return Next::kLeave;
}

NotebookInstanceController::Runner::Next NotebookInstanceController::Runner::Fail(
    const std::string& reason, std::initializer_list<std::string_view> from) {
  KillAndDrain();
  const std::string tail = OutputTail();
  const std::string full =
      (reason + (tail.empty() ? "" : " Last output:\n" + tail)).substr(0, kFailureReasonLimit);
  Log("failed: " + reason);
  spdlog::warn("notebook instance {}: failed: {}", name_, reason);
  Status recorded = Record(from, kFailed, reason.substr(0, 200), [&](metadata::Resource& r) {
    r.doc["FailureReason"] = full;
    r.internal["launched"] = false;
  });
  if (!recorded.ok() && recorded.code() != StatusCode::kFailedPrecondition) {
    spdlog::error("notebook instance {}: cannot record Failed: {}", name_, recorded.ToString());
    return Next::kLeave;
  }
  return Next::kReload;
}

// ---------------------------------------------------------------------------------------------

NotebookInstanceController::NotebookInstanceController(NotebookOptions options,
                                                       metadata::MetadataStore& store,
                                                       metadata::LogStore& logs,
                                                       runtime::HostProcessRuntime& runtime)
    : options_(std::move(options)), store_(store), logs_(logs), runtime_(runtime) {}

NotebookInstanceController::~NotebookInstanceController() { monitors_.Shutdown(); }

void NotebookInstanceController::SetServerUrl(std::string url) {
  // A server listening on every address is reached on loopback.
  for (const auto& [wildcard, loopback] :
       {std::pair<std::string, std::string>{"//0.0.0.0:", "//127.0.0.1:"},
        {"//[::]:", "//[::1]:"}}) {
    if (auto at = url.find(wildcard); at != std::string::npos) {
      url.replace(at, wildcard.size(), loopback);
    }
  }
  while (!url.empty() && url.back() == '/') url.pop_back();
  std::lock_guard<std::mutex> lock(url_mu_);
  server_url_ = std::move(url);
}

std::string NotebookInstanceController::ServerUrl() {
  std::lock_guard<std::mutex> lock(url_mu_);
  return server_url_;
}

fs::path NotebookInstanceController::NotebookDir(std::string_view name) const {
  return options_.notebooks_dir / std::string(name) / "SageMaker";
}

void NotebookInstanceController::Kick(const std::string& name) {
  std::lock_guard<std::mutex> lock(kick_mu_);
  if (monitors_.RequestEnd(name)) return;
  monitors_.Start(name, [this, name](MonitorThreads::Run& run) {
    Runner runner(*this, name, run);
    runner.Execute();
    // Never "finished": the thread runs again exactly when a Kick raised the flag after the
    // runner last read the record, so no request is left for the next Recover().
    return false;
  });
}

Result<std::uint16_t> NotebookInstanceController::PickPort(const std::string& name,
                                                           std::uint16_t preferred) {
  std::lock_guard<std::mutex> lock(ports_mu_);
  ASSIGN_OR_RETURN(std::vector<metadata::Resource> all, store_.List(kKind));
  const std::string self = AsciiLower(name);
  std::set<std::uint16_t> taken;
  for (const auto& r : all) {
    if (AsciiLower(r.name) != self) taken.insert(r.internal.value("port", std::uint16_t{0}));
  }
  for (const auto& [other, port] : picked_ports_) {
    if (other != self) taken.insert(port);
  }
  taken.erase(0);
  std::uint16_t port = preferred;
  if (port == 0 || taken.contains(port) || !PortFree(port)) {
    ASSIGN_OR_RETURN(port, FreeLoopbackPort(taken));
  }
  picked_ports_[self] = port;
  return port;
}

void NotebookInstanceController::ForgetPort(const std::string& name) {
  std::lock_guard<std::mutex> lock(ports_mu_);
  picked_ports_.erase(AsciiLower(name));
}

Result<metadata::Resource> NotebookInstanceController::Find(const std::string& name) {
  return FindResourceIgnoringCase(store_, kKind, name, RecordNotFound());
}

Result<metadata::Resource> NotebookInstanceController::RequestTransition(
    const std::string& name, const std::vector<std::string>& from, const std::string& to,
    const std::string& why, const std::function<void(metadata::Resource&)>& extra) {
  ASSIGN_OR_RETURN(metadata::Resource found, Find(name));
  auto updated = MutateResource(
      store_, kKind, found.name,
      [&](metadata::Resource& r) -> Result<std::optional<metadata::Transition>> {
        if (std::find(from.begin(), from.end(), r.status) == from.end()) {
          std::string allowed;
          for (const auto& s : from) allowed += (allowed.empty() ? "" : ", ") + s;
          return Validation("Status (" + r.status + ") not in ([" + allowed +
                            "]). Unable to transition to (" + to + ") for Notebook Instance (" +
                            r.arn + ")");
        }
        const std::int64_t now = NowMillis();
        r.status = to;
        r.modified_millis = now;
        r.doc["NotebookInstanceStatus"] = to;
        r.doc["LastModifiedTime"] = ToEpochSeconds(now);
        if (extra) extra(r);
        return std::optional<metadata::Transition>(metadata::Transition{to, "", now, why});
      });
  // Removed meanwhile (a delete finished): as if it had never been found.
  if (!updated.ok() && updated.status().code() == StatusCode::kNotFound) return RecordNotFound();
  return updated;
}

Result<json> NotebookInstanceController::Create(const json& request) {
  const std::string name = request.value("NotebookInstanceName", "");
  RETURN_IF_ERROR(RefuseUnsupported(request));
  ASSIGN_OR_RETURN(std::string token, NewToken());
  const std::string arn = SageMakerArn(options_.account, "notebook-instance", name);
  const std::int64_t now = NowMillis();

  metadata::Resource r;
  r.kind = std::string(kKind);
  r.name = name;
  r.arn = arn;
  r.status = std::string(kPending);
  r.created_millis = r.modified_millis = now;
  r.doc = {{"NotebookInstanceArn", arn},
           {"NotebookInstanceName", name},
           {"NotebookInstanceStatus", r.status},
           {"InstanceType", request.value("InstanceType", "")},
           {"RoleArn", request.value("RoleArn", "")},
           {"DirectInternetAccess", request.value("DirectInternetAccess", "Enabled")},
           {"VolumeSizeInGB", request.value("VolumeSizeInGB", 5)},
           {"RootAccess", request.value("RootAccess", "Enabled")},
           {"PlatformIdentifier", request.value("PlatformIdentifier", "notebook-al2-v2")},
           {"CreationTime", ToEpochSeconds(now)},
           {"LastModifiedTime", ToEpochSeconds(now)}};
  for (const char* recorded : {"IpAddressType", "InstanceMetadataServiceConfiguration"}) {
    if (request.contains(recorded) && !request[recorded].is_null()) {
      r.doc[recorded] = request[recorded];
    }
  }
  r.internal = {{"token", token},
                {"launched", false},
                {"log_base", 0},
                {"tags", request.value("Tags", json::array())}};
  const Status duplicate = Validation("Cannot create a duplicate Notebook Instance (" + arn + ")");
  {
    std::lock_guard<std::mutex> lock(create_mu_);
    // Checked before a port is picked for the name, so that a duplicate leaves the existing
    // instance's pick alone.
    auto existing = FindResourceIgnoringCase(store_, kKind, name);
    if (existing.ok()) return duplicate;
    if (existing.status().code() != StatusCode::kNotFound) return existing.status();
    ASSIGN_OR_RETURN(std::uint16_t port, PickPort(name, 0));
    r.internal["port"] = port;
    r.doc["Url"] = HostPort(port);
    Status created = CreateIfAbsentIgnoringCase(
        store_, r, {r.status, "", now, "CreateNotebookInstance"}, duplicate);
    if (!created.ok()) {
      ForgetPort(name);
      return created;
    }
  }
  // A directory left by an earlier instance of this name that could not be removed.
  std::error_code ec;
  fs::remove_all(options_.notebooks_dir / name, ec);
  Kick(name);
  return json{{"NotebookInstanceArn", arn}};
}

Result<json> NotebookInstanceController::Describe(const json& request) {
  ASSIGN_OR_RETURN(metadata::Resource r, Find(request.value("NotebookInstanceName", "")));
  return r.doc;
}

Result<json> NotebookInstanceController::List(const json& request) {
  ASSIGN_OR_RETURN(std::vector<metadata::Resource> all, store_.List(kKind));
  // No instance has a lifecycle configuration or a code repository (they are refused), so a
  // filter on one matches none.
  if (request.contains("NotebookInstanceLifecycleConfigNameContains") ||
      request.contains("DefaultCodeRepositoryContains") ||
      request.contains("AdditionalCodeRepositoryEquals")) {
    all.clear();
  }
  ASSIGN_OR_RETURN(
      ListPage page,
      FilterSortPage(all, request, {.default_sort_by = "Name", .default_sort_order = "Ascending"}));
  json summaries = json::array();
  for (const metadata::Resource* r : page.rows) {
    const json& d = r->doc;
    json s = {{"NotebookInstanceName", r->name},     {"NotebookInstanceArn", r->arn},
              {"NotebookInstanceStatus", r->status}, {"InstanceType", d.value("InstanceType", "")},
              {"CreationTime", d["CreationTime"]},   {"LastModifiedTime", d["LastModifiedTime"]}};
    if (d.contains("Url")) s["Url"] = d["Url"];
    summaries.push_back(std::move(s));
  }
  json result = {{"NotebookInstances", summaries}};
  if (page.next_token) result["NextToken"] = *page.next_token;
  return result;
}

Result<json> NotebookInstanceController::Stop(const json& request) {
  ASSIGN_OR_RETURN(
      metadata::Resource r,
      RequestTransition(request.value("NotebookInstanceName", ""), {std::string(kInService)},
                        std::string(kStopping), "StopNotebookInstance", nullptr));
  Kick(r.name);
  return json::object();
}

Result<json> NotebookInstanceController::Start(const json& request) {
  ASSIGN_OR_RETURN(std::string token, NewToken());
  ASSIGN_OR_RETURN(
      metadata::Resource r,
      RequestTransition(request.value("NotebookInstanceName", ""),
                        {std::string(kStopped), std::string(kFailed)}, std::string(kPending),
                        "StartNotebookInstance", [&](metadata::Resource& rec) {
                          rec.doc.erase("FailureReason");
                          rec.internal["launched"] = false;
                          rec.internal["token"] = token;
                        }));
  Kick(r.name);
  return json::object();
}

Result<json> NotebookInstanceController::Delete(const json& request) {
  ASSIGN_OR_RETURN(metadata::Resource r,
                   RequestTransition(request.value("NotebookInstanceName", ""),
                                     {std::string(kStopped), std::string(kFailed)},
                                     std::string(kDeleting), "DeleteNotebookInstance", nullptr));
  Kick(r.name);
  return json::object();
}

Result<json> NotebookInstanceController::CreatePresignedUrl(const json& request) {
  ASSIGN_OR_RETURN(metadata::Resource r, Find(request.value("NotebookInstanceName", "")));
  const std::uint16_t port = r.internal.value("port", std::uint16_t{0});
  return json{
      {"AuthorizedUrl", "http://" + HostPort(port) + "/?token=" + r.internal.value("token", "")}};
}

std::size_t NotebookInstanceController::MonitoredInstances() { return monitors_.size(); }

Status NotebookInstanceController::Recover() {
  ASSIGN_OR_RETURN(std::vector<metadata::Resource> all, store_.List(kKind));
  for (const auto& r : all) {
    if (r.status != kPending && r.status != kInService && r.status != kStopping &&
        r.status != kDeleting) {
      continue;
    }
    spdlog::info("resuming notebook instance {} ({})", r.name, r.status);
    Kick(r.name);
  }
  return Status::Ok();
}

}  // namespace hearth::control
