#include "runtime/host_process.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fs.h"
#include "runtime/sandbox.h"

extern char** environ;

namespace hearth::runtime {

namespace fs = std::filesystem;

namespace {

constexpr int kSignalsAccepted[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGKILL};

Status Errno(const std::string& what) { return Internal(what + ": " + std::strerror(errno)); }

// The canonical form is what the supervisor's command line carries, so Poll can recognise it.
fs::path CanonicalDir(const fs::path& dir) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(dir, ec), ec);
  return ec ? dir : p;
}

bool IsInside(const fs::path& path, const fs::path& dir) {
  auto [d, p] = std::mismatch(dir.begin(), dir.end(), path.begin(), path.end());
  return d == dir.end();
}

struct SupervisorRecord {
  pid_t pid = 0;
};

Result<SupervisorRecord> ReadSupervisorRecord(const fs::path& state_dir) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(state_dir / "supervisor.json"));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("pid") || !j["pid"].is_number_integer()) {
    return Internal("malformed " + (state_dir / "supervisor.json").string());
  }
  return SupervisorRecord{j["pid"].get<pid_t>()};
}

// Exit record, or NotFound while the process runs.
Result<HostStatus> ReadExitRecord(const fs::path& state_dir) {
  std::error_code ec;
  if (!fs::exists(state_dir / "exit.json", ec)) return NotFound("no exit.json");
  ASSIGN_OR_RETURN(std::string text, ReadFile(state_dir / "exit.json"));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Internal("malformed " + (state_dir / "exit.json").string());
  }
  HostStatus st;
  st.state = HostState::kExited;
  st.exit_code = j.value("exit_code", 0);
  st.signal = j.value("signal", 0);
  st.ended_millis = j.value("ended_millis", std::int64_t{0});
  return st;
}

// True when `pid` is a live (not zombie) hearth-supervisor for exactly this state dir; a pid
// that was recycled by another program, or by a supervisor of another job, is not ours.
bool IsOurSupervisor(pid_t pid, const fs::path& canonical_state_dir) {
  if (pid <= 0) return false;
  std::string proc = "/proc/" + std::to_string(pid);
  Result<std::string> stat = ReadFile(proc + "/stat");
  if (!stat.ok()) return false;
  std::size_t paren = stat->rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat->size()) return false;
  char state = (*stat)[paren + 2];
  if (state == 'Z' || state == 'X') return false;
  Result<std::string> cmdline = ReadFile(proc + "/cmdline");
  if (!cmdline.ok()) return false;
  std::vector<std::string> args;
  std::size_t start = 0;
  for (std::size_t i = 0; i < cmdline->size(); ++i) {
    if ((*cmdline)[i] == '\0') {
      args.push_back(cmdline->substr(start, i - start));
      start = i + 1;
    }
  }
  return args.size() == 3 && fs::path(args[0]).filename() == "hearth-supervisor" &&
         args[1] == "--state-dir" && args[2] == canonical_state_dir.string();
}

Status ValidateSpec(const HostSpec& spec, const fs::path& state_dir) {
  if (spec.argv.empty() || spec.argv[0].empty()) {
    return InvalidArgument("HostSpec.argv must name a program");
  }
  std::error_code ec;
  if (!spec.ml_dir.is_absolute() || !fs::is_directory(spec.ml_dir, ec)) {
    return InvalidArgument("HostSpec.ml_dir must be an existing absolute directory: " +
                           spec.ml_dir.string());
  }
  for (const BindMount& b : spec.extra_binds) {
    if (!b.host_path.is_absolute() || !fs::exists(b.host_path, ec)) {
      return InvalidArgument("bind mount source must be an existing absolute path: " +
                             b.host_path.string());
    }
    if (b.sandbox_path.empty() || b.sandbox_path.front() != '/') {
      return InvalidArgument("bind mount target must be an absolute path: " + b.sandbox_path);
    }
  }
  if (!fs::is_directory(state_dir, ec)) {
    return InvalidArgument("state dir does not exist: " + state_dir.string());
  }
  if (!fs::is_empty(state_dir, ec) || ec) {
    return FailedPrecondition("state dir is not empty: " + state_dir.string());
  }
  if (IsInside(state_dir, CanonicalDir(spec.ml_dir))) {
    return InvalidArgument("state dir must not be inside ml_dir: " + state_dir.string());
  }
  return Status::Ok();
}

// Starts the supervisor and waits for it to report that it is in place; the supervisor forks,
// so the process spawned here exits promptly and leaves no zombie.
Status SpawnSupervisor(const fs::path& supervisor, const fs::path& state_dir) {
  std::string sup = supervisor.string(), flag = "--state-dir", dir = state_dir.string();
  std::string log = (state_dir / "supervisor.log").string();
  char* argv[] = {sup.data(), flag.data(), dir.data(), nullptr};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // A new session: the supervisor must outlive the server, and no signal aimed at the server's
  // process group may reach it. Default signal state: the server ignores SIGPIPE, and ignored
  // dispositions survive exec.
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, sup.c_str(), &actions, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return Internal("cannot start " + sup + ": " + std::strerror(rc));
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno == EINTR) continue;
    // Someone else reaped it (a waitpid(-1) elsewhere): its record says whether it started.
    std::error_code ec;
    if (errno == ECHILD && fs::exists(state_dir / "supervisor.json", ec)) return Status::Ok();
    return Errno("waitpid for hearth-supervisor");
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  Result<std::string> why = ReadFile(log);
  return Internal("hearth-supervisor failed to start the process in " + state_dir.string() +
                  (why.ok() && !why->empty() ? ": " + *why : std::string()));
}

}  // namespace

HostProcessRuntime::HostProcessRuntime(HostProcessOptions options)
    : options_(std::move(options)), sandboxed_(options_.use_bwrap && BwrapUsable()) {}

std::string HostProcessRuntime::MlPathInside(const fs::path& ml_dir) const {
  return sandboxed_ ? std::string(kSandboxMlDir) : ml_dir.string();
}

Status HostProcessRuntime::Launch(const HostSpec& spec, const fs::path& state_dir_in) {
  fs::path state_dir = CanonicalDir(state_dir_in);
  RETURN_IF_ERROR(ValidateSpec(spec, state_dir));
  std::error_code ec;
  fs::path supervisor = fs::canonical(options_.supervisor_path, ec);
  if (ec || ::access(supervisor.c_str(), X_OK) != 0) {
    return FailedPrecondition("hearth-supervisor is not executable: " +
                              options_.supervisor_path.string());
  }
  LaunchCommand cmd = sandboxed_ ? BuildSandboxCommand(spec, supervisor) : BuildPlainCommand(spec);
  nlohmann::json j = {{"argv", cmd.argv},
                      {"env", spec.env},
                      {"working_dir", cmd.working_dir},
                      {"sandboxed", cmd.sandboxed}};
  std::string text;
  try {
    text = j.dump(2);
  } catch (const nlohmann::json::exception&) {
    return InvalidArgument("HostSpec argv, env and paths must be valid UTF-8");
  }
  // The process it describes cannot outlive a machine crash either: no fsync needed.
  RETURN_IF_ERROR(
      WriteFileAtomic(state_dir / "spec.json", text, Durability::kSurvivesProcessCrash));
  return SpawnSupervisor(supervisor, state_dir);
}

Result<HostStatus> HostProcessRuntime::Poll(const fs::path& state_dir_in) const {
  fs::path state_dir = CanonicalDir(state_dir_in);
  Result<HostStatus> exited = ReadExitRecord(state_dir);
  if (exited.ok() || exited.status().code() != StatusCode::kNotFound) return exited;
  std::error_code ec;
  if (!fs::exists(state_dir / "spec.json", ec)) {
    return NotFound("no process was launched in " + state_dir.string());
  }
  Result<SupervisorRecord> sup = ReadSupervisorRecord(state_dir);
  if (sup.ok() && IsOurSupervisor(sup->pid, state_dir)) return HostStatus{};
  // The supervisor may have written exit.json and exited since the first look.
  exited = ReadExitRecord(state_dir);
  if (exited.ok() || exited.status().code() != StatusCode::kNotFound) return exited;
  HostStatus lost;
  lost.state = HostState::kLost;
  return lost;
}

Status HostProcessRuntime::Signal(const fs::path& state_dir_in, int signo) const {
  bool accepted = false;
  for (int s : kSignalsAccepted) accepted = accepted || s == signo;
  if (!accepted) return InvalidArgument("signal " + std::to_string(signo) + " is not forwarded");
  fs::path state_dir = CanonicalDir(state_dir_in);
  std::error_code ec;
  if (fs::exists(state_dir / "exit.json", ec)) return Status::Ok();
  if (!fs::exists(state_dir / "spec.json", ec)) {
    return NotFound("no process was launched in " + state_dir.string());
  }
  Result<SupervisorRecord> sup = ReadSupervisorRecord(state_dir);
  if (!sup.ok()) return Status::Ok();  // lost
  // Open a pidfd first and then check whose pid it is: a signal through that pidfd cannot
  // reach a process that recycled the pid after the check.
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, sup->pid, 0));
  if (pidfd < 0 && errno == ESRCH) return Status::Ok();
  if (!IsOurSupervisor(sup->pid, state_dir)) {
    if (pidfd >= 0) ::close(pidfd);
    return Status::Ok();  // gone
  }
  // A queued real-time signal carries the number, so even SIGKILL can be forwarded.
  int rc;
  if (pidfd >= 0) {
    siginfo_t info{};
    info.si_signo = SIGRTMIN;
    info.si_code = SI_QUEUE;
    info.si_pid = ::getpid();
    info.si_uid = ::getuid();
    info.si_value.sival_int = signo;
    rc = static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, SIGRTMIN, &info, 0));
    int saved = errno;
    ::close(pidfd);
    errno = saved;
  } else {
    union sigval value {};
    value.sival_int = signo;
    rc = ::sigqueue(sup->pid, SIGRTMIN, value);
  }
  if (rc != 0 && errno != ESRCH) {
    return Errno("signal hearth-supervisor " + std::to_string(sup->pid));
  }
  return Status::Ok();
}

}  // namespace hearth::runtime
