// hearth-supervisor: keeps one training host's process company, detached from the server
// (host_process.h has the contract; sandbox.h the command line).
//
//   hearth-supervisor --state-dir DIR
//     Reads DIR/spec.json, starts the process and records supervisor.json, output.log and
//     exit.json. The invoked process exits 0 once supervisor.json is written (1 if the start
//     failed); a forked copy, in its own session, supervises until the process has exited.
//
//   hearth-supervisor --sandbox-init --status-fd N [--unset-env NAME] [--set-env N=V] -- ARGV...
//     PID 1 inside the bubblewrap sandbox. Applies the env edits (bwrap --chdir sets PWD). Runs
//     ARGV as its child, forwards the signals it gets to it, reaps orphans, and writes the child's
//     exact exit status to fd N as JSON. When the child ends the init exits, and the kernel kills
//     whatever else is left in the sandbox.
//
// Signals the supervisor acts on: SIGTERM and SIGINT are forwarded; SIGRTMIN carrying a signal
// number in its value (sigqueue, sent by HostProcessRuntime::Signal) forwards that signal,
// SIGKILL included, which could not be forwarded any other way.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "runtime/sandbox.h"

extern char** environ;

namespace hearth::runtime {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxLineBytes = 64 * 1024;  // longer lines are split
constexpr int kStartTimeoutMs = 30000;            // bwrap reporting the sandbox's pid
constexpr int kDrainTimeoutMs = 2000;             // output still arriving after the exit
constexpr int kForwardedSignals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

void Log(const std::string& msg) {
  std::string line = "hearth-supervisor: " + msg + "\n";
  [[maybe_unused]] ssize_t n = ::write(2, line.data(), line.size());
}

bool IsForwardable(int signo) {
  if (signo == SIGKILL) return true;
  for (int s : kForwardedSignals) {
    if (s == signo) return true;
  }
  return false;
}

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

int PidfdSendSignal(int pidfd, int signo) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0));
}

// Child side of fork(): default signal state, then exec. Never returns.
[[noreturn]] void ExecChild(const std::vector<char*>& argv, std::vector<char*>& envp) {
  for (int s = 1; s < NSIG; ++s) ::signal(s, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (envp.size() > 0) environ = envp.data();
  ::execvp(argv[0], argv.data());
  std::string msg = std::string("hearth-supervisor: cannot execute ") + argv[0] + ": " +
                    std::strerror(errno) + "\n";
  WriteAllToFd(2, msg);
  ::_exit(127);
}

// Splits a stream into "<millis> <tag> <text>\n" records, one write each.
class LineSink {
 public:
  LineSink(int log_fd, const char* tag) : log_fd_(log_fd), tag_(tag) {}

  void Feed(const char* data, std::size_t n) {
    for (std::size_t i = 0; i < n;) {
      const void* nl = std::memchr(data + i, '\n', n - i);
      std::size_t end = nl ? static_cast<const char*>(nl) - data : n;
      std::size_t take = std::min(end - i, kMaxLineBytes - pending_.size());
      pending_.append(data + i, take);
      i += take;
      if (pending_.size() >= kMaxLineBytes) {
        Emit();
      } else if (i < n && data[i] == '\n') {
        Emit();
        ++i;
      }
    }
  }

  // A last line without its newline still counts.
  void Flush() {
    if (!pending_.empty()) Emit();
  }

 private:
  void Emit() {
    std::string record = std::to_string(NowMillis()) + " " + tag_ + " " + pending_ + "\n";
    if (!WriteAllToFd(log_fd_, record))
      Log(std::string("cannot append to output.log: ") + std::strerror(errno));
    pending_.clear();
  }

  int log_fd_;
  const char* tag_;
  std::string pending_;
};

struct Spec {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "K=V"
  std::string working_dir;
  bool sandboxed = false;
};

bool ReadSpec(const fs::path& path, Spec* spec) {
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) {
    Log(text.status().ToString());
    return false;
  }
  try {
    nlohmann::json j = nlohmann::json::parse(*text);
    spec->argv = j.at("argv").get<std::vector<std::string>>();
    for (const auto& [k, v] : j.at("env").items())
      spec->env.push_back(k + "=" + v.get<std::string>());
    spec->working_dir = j.value("working_dir", "");
    spec->sandboxed = j.value("sandboxed", false);
  } catch (const nlohmann::json::exception& e) {
    Log("bad " + path.string() + ": " + e.what());
    return false;
  }
  if (spec->argv.empty()) {
    Log("spec.json has an empty argv");
    return false;
  }
  return true;
}

// Moves `fd` onto `target` in a child; dup2 onto a different number clears FD_CLOEXEC.
void MoveFd(int fd, int target) {
  if (fd == target) {
    ::fcntl(fd, F_SETFD, 0);
    return;
  }
  ::dup2(fd, target);
}

// Reads bwrap's --info-fd report up to its closing brace; returns the sandbox init's host pid or
// 0 when bwrap failed before reporting (it then exits, and its error is on stderr).
// True once `pid` has a handler for `signo` (/proc/<pid>/status, SigCgt); false if it is gone or
// `timeout_ms` passed first.
bool WaitUntilCatches(pid_t pid, int signo, int timeout_ms) {
  const std::string path = "/proc/" + std::to_string(pid) + "/status";
  const std::int64_t deadline = NowMillis() + timeout_ms;
  while (NowMillis() < deadline) {
    FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr) return false;
    char line[256];
    unsigned long long caught = 0;
    bool found = false;
    while (std::fgets(line, sizeof(line), f) != nullptr) {
      if (std::sscanf(line, "SigCgt: %llx", &caught) == 1) {
        found = true;
        break;
      }
    }
    std::fclose(f);
    if (found && (caught & (1ULL << (signo - 1))) != 0) return true;
    ::usleep(500);
  }
  return false;
}

pid_t ReadSandboxPid(int info_fd) {
  std::string buf;
  std::int64_t deadline = NowMillis() + kStartTimeoutMs;
  while (true) {
    int left = static_cast<int>(deadline - NowMillis());
    if (left <= 0) return 0;
    pollfd p{info_fd, POLLIN, 0};
    int rc = ::poll(&p, 1, left);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return 0;
    char chunk[4096];
    ssize_t n = ::read(info_fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;
    buf.append(chunk, static_cast<std::size_t>(n));
    nlohmann::json j = nlohmann::json::parse(buf, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) continue;  // not complete yet
    if (!j.is_object() || !j.contains("child-pid") || !j["child-pid"].is_number_integer()) return 0;
    return j["child-pid"].get<pid_t>();
  }
}

// The init's report on fd kSandboxStatusFd, read once bwrap has exited (so every writer is gone).
bool ReadInitStatus(int status_fd, int* exit_code, int* signo) {
  std::string buf;
  char chunk[512];
  while (true) {
    pollfd p{status_fd, POLLIN, 0};
    int rc = ::poll(&p, 1, 1000);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) break;
    ssize_t n = ::read(status_fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(chunk, static_cast<std::size_t>(n));
  }
  nlohmann::json j = nlohmann::json::parse(buf, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("exit_code") ||
      !j["exit_code"].is_number_integer()) {
    return false;
  }
  *exit_code = j["exit_code"].get<int>();
  *signo = j.value("signal", 0);
  return true;
}

int Supervise(const fs::path& state_dir, int ready_fd) {
  if (::chdir("/") != 0) Log("chdir /: " + std::string(std::strerror(errno)));
  Spec spec;
  if (!ReadSpec(state_dir / "spec.json", &spec)) return 1;

  sigset_t handled;
  sigemptyset(&handled);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGRTMIN}) sigaddset(&handled, s);
  ::sigprocmask(SIG_BLOCK, &handled, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  int sig_fd = ::signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sig_fd < 0) {
    Log("signalfd: " + std::string(std::strerror(errno)));
    return 1;
  }
  int log_fd =
      ::open((state_dir / "output.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    Log("open output.log: " + std::string(std::strerror(errno)));
    return 1;
  }
  int out[2], err[2], info[2] = {-1, -1}, status[2] = {-1, -1};
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0 ||
      (spec.sandboxed && (::pipe2(info, O_CLOEXEC) != 0 || ::pipe2(status, O_CLOEXEC) != 0))) {
    Log("pipe: " + std::string(std::strerror(errno)));
    return 1;
  }

  std::vector<char*> argv;
  for (std::string& a : spec.argv) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string& e : spec.env) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t self = ::getpid();
  pid_t child = ::fork();
  if (child < 0) {
    Log("fork: " + std::string(std::strerror(errno)));
    return 1;
  }
  if (child == 0) {
    // Its own process group, so that leftovers of a plain child can be killed together.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != self) ::_exit(137);
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    // Lift every source above the targets first so no dup2 overwrites one still needed.
    int src_out = ::fcntl(out[1], F_DUPFD_CLOEXEC, 100);
    int src_err = ::fcntl(err[1], F_DUPFD_CLOEXEC, 100);
    int src_info = spec.sandboxed ? ::fcntl(info[1], F_DUPFD_CLOEXEC, 100) : -1;
    int src_status = spec.sandboxed ? ::fcntl(status[1], F_DUPFD_CLOEXEC, 100) : -1;
    MoveFd(devnull, 0);
    MoveFd(src_out, 1);
    MoveFd(src_err, 2);
    if (spec.sandboxed) {
      MoveFd(src_info, kSandboxInfoFd);
      MoveFd(src_status, kSandboxStatusFd);
    }
    if (!spec.working_dir.empty() && ::chdir(spec.working_dir.c_str()) != 0) {
      WriteAllToFd(2, "hearth-supervisor: cannot chdir to " + spec.working_dir + ": " +
                          std::strerror(errno) + "\n");
      ::_exit(127);
    }
    ExecChild(argv, envp);
  }
  ::setpgid(child, child);  // also here, so that no kill(-child) can precede the child's own call
  ::close(out[1]);
  ::close(err[1]);
  if (spec.sandboxed) {
    ::close(info[1]);
    ::close(status[1]);
  }

  // The process signals go to: the sandbox's init, or the plain child itself.
  pid_t target = child;
  if (spec.sandboxed) {
    target = ReadSandboxPid(info[0]);
    ::close(info[0]);
  }
  // A pidfd cannot hit a recycled pid; the plain child is ours and stays unrecycled until reaped.
  int target_fd = (spec.sandboxed && target > 0) ? PidfdOpen(target) : -1;
  // The sandbox's init is PID 1 of its namespace, which drops every signal it does not catch:
  // a SIGTERM sent before it installed its handlers would be lost. Announce the process (and
  // so let anyone signal it) only once the init catches SIGTERM.
  if (spec.sandboxed && target > 0 && !WaitUntilCatches(target, SIGTERM, 10000)) {
    Log("the sandbox's init did not come up (it catches no SIGTERM)");
  }

  std::int64_t started = NowMillis();
  nlohmann::json sup = {{"pid", self},
                        {"child_pid", target},
                        {"started_millis", started},
                        {"sandboxed", spec.sandboxed}};
  // Only meaningful while these processes live, which no machine crash allows: no fsync.
  Status s =
      WriteFileAtomic(state_dir / "supervisor.json", sup.dump(), Durability::kSurvivesProcessCrash);
  if (!s.ok()) {
    Log(s.ToString());
    ::kill(child, SIGKILL);
    return 1;
  }
  WriteAllToFd(ready_fd, "R");
  ::close(ready_fd);

  bool child_done = false;
  bool kill_sent = false;
  int wait_status = 0;
  std::int64_t ended = 0;
  LineSink out_sink(log_fd, "stdout"), err_sink(log_fd, "stderr");
  int out_fd = out[0], err_fd = err[0];

  auto forward = [&](int signo) {
    if (child_done || !IsForwardable(signo)) return;
    if (signo == SIGKILL) kill_sent = true;
    if (!spec.sandboxed) {
      // SIGKILL takes the whole group, like the sandbox's PID namespace going away.
      if (signo == SIGKILL) ::kill(-child, SIGKILL);
      ::kill(child, signo);
    } else if (target_fd >= 0) {
      PidfdSendSignal(target_fd, signo);
    } else if (target > 0) {
      ::kill(target, signo);
    } else {
      ::kill(child, signo);  // no sandbox pid: stopping bwrap stops everything
    }
  };

  while (true) {
    std::int64_t now = NowMillis();
    if (child_done && ((out_fd < 0 && err_fd < 0) || now >= ended + kDrainTimeoutMs)) break;
    std::vector<pollfd> fds;
    if (!child_done) fds.push_back({sig_fd, POLLIN, 0});
    if (out_fd >= 0) fds.push_back({out_fd, POLLIN, 0});
    if (err_fd >= 0) fds.push_back({err_fd, POLLIN, 0});
    int timeout = child_done ? static_cast<int>(ended + kDrainTimeoutMs - now) : -1;
    int rc = ::poll(fds.data(), fds.size(), timeout);
    if (rc < 0) {
      if (errno == EINTR) continue;
      Log("poll: " + std::string(std::strerror(errno)));
      break;
    }
    for (const pollfd& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == sig_fd) {
        signalfd_siginfo si;
        while (::read(sig_fd, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
          int signo = static_cast<int>(si.ssi_signo);
          if (signo == SIGCHLD) {
            if (child_done) continue;
            // Peek first: while the child is an unreaped zombie its pid (= its process group)
            // cannot be reused, so killing the group cannot hit a stranger.
            siginfo_t peek{};
            if (::waitid(P_PID, child, &peek, WEXITED | WNOHANG | WNOWAIT) != 0 ||
                peek.si_pid != child) {
              continue;
            }
            if (!spec.sandboxed) ::kill(-child, SIGKILL);  // leftovers of the process group
            ::waitpid(child, &wait_status, 0);
            child_done = true;
            ended = NowMillis();
          } else if (signo == SIGRTMIN) {
            forward(si.ssi_int);
          } else if (signo == SIGTERM || signo == SIGINT) {
            forward(signo);
          }
        }
      } else {
        char buf[65536];
        ssize_t n = ::read(p.fd, buf, sizeof(buf));
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        LineSink& sink = p.fd == out_fd ? out_sink : err_sink;
        if (n <= 0) {
          sink.Flush();
          ::close(p.fd);
          (p.fd == out_fd ? out_fd : err_fd) = -1;
        } else {
          sink.Feed(buf, static_cast<std::size_t>(n));
        }
      }
    }
  }
  out_sink.Flush();
  err_sink.Flush();

  int exit_code = 0, signo = 0;
  if (spec.sandboxed && ReadInitStatus(status[0], &exit_code, &signo)) {
    // The init saw the training process end: exact.
  } else if (spec.sandboxed && kill_sent) {
    signo = SIGKILL;  // the init itself was killed, and the sandbox with it
  } else if (WIFSIGNALED(wait_status)) {
    signo = WTERMSIG(wait_status);
  } else {
    exit_code = WEXITSTATUS(wait_status);
    // bwrap reports a sandbox killed by signal N (OOM killer, say) as 128+N.
    if (spec.sandboxed && exit_code > 128 && exit_code < 128 + NSIG) signo = exit_code - 128;
  }
  if (signo != 0) exit_code = 128 + signo;
  nlohmann::json exit_json = {{"exit_code", exit_code}, {"signal", signo}, {"ended_millis", ended}};
  s = WriteFileAtomic(state_dir / "exit.json", exit_json.dump());
  if (!s.ok()) {
    Log(s.ToString());
    return 1;
  }
  return 0;
}

int RunSupervisor(const fs::path& state_dir) {
  // Nothing the launcher leaked may stay open for the life of the job.
  ::close_range(3, ~0U, 0);
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) {
    Log("pipe: " + std::string(std::strerror(errno)));
    return 1;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    Log("fork: " + std::string(std::strerror(errno)));
    return 1;
  }
  if (pid > 0) {
    // The launcher waits for this process; it returns once the supervisor is in place.
    ::close(ready[1]);
    pollfd p{ready[0], POLLIN, 0};
    while (::poll(&p, 1, kStartTimeoutMs + 5000) < 0 && errno == EINTR) {
    }
    char c = 0;
    ssize_t n = ::read(ready[0], &c, 1);
    return n == 1 ? 0 : 1;
  }
  ::close(ready[0]);
  // Its own session: no terminal or process-group signal meant for the server reaches it.
  ::setsid();
  return Supervise(state_dir, ready[1]);
}

int RunSandboxInit(int status_fd, const std::vector<std::string>& env_edits, char** argv) {
  ::fcntl(status_fd, F_SETFD, FD_CLOEXEC);  // the training process must not hold it
  // bwrap --chdir sets PWD; put back what the spec asked for.
  for (const std::string& edit : env_edits) {
    std::size_t eq = edit.find('=');
    if (eq == std::string::npos) {
      ::unsetenv(edit.c_str());
    } else {
      ::setenv(edit.substr(0, eq).c_str(), edit.substr(eq + 1).c_str(), 1);
    }
  }
  // As PID 1 of its namespace the init only receives signals it has a handler for.
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  sigset_t handled;
  sigemptyset(&handled);
  sigaddset(&handled, SIGCHLD);
  ::sigaction(SIGCHLD, &sa, nullptr);
  for (int s : kForwardedSignals) {
    sigaddset(&handled, s);
    ::sigaction(s, &sa, nullptr);
  }
  ::sigprocmask(SIG_BLOCK, &handled, nullptr);
  int sig_fd = ::signalfd(-1, &handled, SFD_CLOEXEC);
  if (sig_fd < 0) {
    Log("signalfd: " + std::string(std::strerror(errno)));
    return 127;
  }
  pid_t child = ::fork();
  if (child < 0) {
    Log("fork: " + std::string(std::strerror(errno)));
    return 127;
  }
  if (child == 0) {
    std::vector<char*> args;
    for (char** a = argv; *a; ++a) args.push_back(*a);
    args.push_back(nullptr);
    std::vector<char*> keep_env;  // empty: keep the environment bwrap passed on
    ExecChild(args, keep_env);
  }
  while (true) {
    signalfd_siginfo si;
    ssize_t n = ::read(sig_fd, &si, sizeof(si));
    if (n != static_cast<ssize_t>(sizeof(si))) {
      if (n < 0 && errno == EINTR) continue;
      Log("read signalfd: " + std::string(std::strerror(errno)));
      return 127;
    }
    if (si.ssi_signo != SIGCHLD) {
      ::kill(child, static_cast<int>(si.ssi_signo));
      continue;
    }
    int st = 0;
    pid_t w;
    while ((w = ::waitpid(-1, &st, WNOHANG)) > 0) {
      if (w != child) continue;  // an orphan re-parented to us
      int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      int signo = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
      nlohmann::json j = {{"exit_code", code}, {"signal", signo}};
      WriteAllToFd(status_fd, j.dump() + "\n");
      return code;
    }
  }
}

int Usage() {
  std::fprintf(stderr,
               "usage: hearth-supervisor --state-dir DIR\n"
               "       hearth-supervisor --sandbox-init --status-fd N [--unset-env NAME]\n"
               "                         [--set-env NAME=VALUE] -- ARGV...\n");
  return 2;
}

}  // namespace
}  // namespace hearth::runtime

int main(int argc, char** argv) {
  using namespace hearth::runtime;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "--state-dir") return RunSupervisor(argv[2]);
  if (args.size() < 5 || args[0] != "--sandbox-init" || args[1] != "--status-fd") return Usage();
  std::vector<std::string> env_edits;
  std::size_t i = 3;
  for (; i + 1 < args.size() && args[i] != "--"; i += 2) {
    if (args[i] == "--unset-env" && args[i + 1].find('=') == std::string_view::npos) {
      env_edits.emplace_back(args[i + 1]);
    } else if (args[i] == "--set-env" && args[i + 1].find('=') != std::string_view::npos) {
      env_edits.emplace_back(args[i + 1]);
    } else {
      return Usage();
    }
  }
  if (i + 1 >= args.size() || args[i] != "--") return Usage();
  return RunSandboxInit(std::atoi(argv[3]), env_edits, argv + i + 2);
}
