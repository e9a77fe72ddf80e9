// HostProcess: runs one "instance" (training host) as a sandboxed process that outlives a
// crash of the server, and lets a restarted server find it again.
//
// Launch() writes `<state_dir>/spec.json` (the argv to exec — the whole bwrap command line when
// sandboxed, sandbox.h — the environment and the working dir) and spawns the supervisor
// (`hearth-supervisor`, supervisor_main.cc) in a new session, detached from the server; it
// returns once the supervisor has written supervisor.json. The supervisor:
//   - runs the command under bubblewrap when available: the host's directory is bound at
//     /opt/ml, the rest of the filesystem is read-only, the process has its own PID namespace,
//     and no network when network isolation is asked for; without bwrap it runs a plain child
//     process (its own process group) with the same environment;
//   - writes `<state_dir>/supervisor.json` ({"pid":…, "child_pid":…, "started_millis":…,
//     "sandboxed":…}; child_pid is the host pid of the sandbox's init, or of the plain child);
//   - appends every line the process prints to `<state_dir>/output.log` as
//     "<epoch millis> <stdout|stderr> <text>\n" (log_reader.h parses it), one write per line;
//     lines over 64 KiB are split, a last line without '\n' is still recorded;
//   - forwards SIGTERM/SIGINT it receives to the training process itself, so the process can
//     save its work before it exits. Under bwrap, PID 1 of the sandbox is hearth-supervisor in
//     "init" mode (not bwrap's own reaper, which ignores signals): the supervisor signals that
//     init (a pidfd on the host pid bwrap reports through --info-fd), and the init passes the
//     signal to the training process, its only direct child, which is PID 2. A process without
//     a SIGTERM handler therefore dies of SIGTERM, as a plain child would;
//   - when the process exits, writes `<state_dir>/exit.json` atomically
//     ({"exit_code":…, "signal":…, "ended_millis":…}; exit_code is 128+signal when a signal
//     ended it — the init reports the exact status, which bwrap alone would fold into 128+N)
//     after the output has drained, and exits. When the process ends, the rest of its sandbox
//     (or process group) is killed.
//
// Poll() reads those files: exit.json present → Exited; supervisor alive → Running; neither →
// Lost (the supervisor died without recording an exit, e.g. it was SIGKILLed or the machine
// rebooted). "Alive" means /proc/<pid> is not a zombie and its command line is
// hearth-supervisor --state-dir <this dir>, so a recycled pid is not mistaken for it. A
// supervisor that dies takes the process with it (bwrap --die-with-parent, or PDEATHSIG for a
// plain child; a plain child's own children that left its process group can survive).
//
// The server must not set SIGCHLD to SIG_IGN: Launch waits for the process it spawns.
//
// Thread safety: HostProcessRuntime is thread safe; it keeps no per-process state in memory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace hearth::runtime {

struct BindMount {
  std::filesystem::path host_path;
  std::string sandbox_path;
  bool read_only = true;
};

struct HostSpec {
  std::filesystem::path ml_dir;            // seen as /opt/ml inside the sandbox
  std::vector<std::string> argv;           // argv[0] resolved with PATH inside the sandbox
  std::map<std::string, std::string> env;  // the complete environment of the process
  std::vector<BindMount> extra_binds;      // e.g. a bring-your-own image at /opt/program
  bool network_isolation = false;
  std::string working_dir;  // inside the sandbox; empty = ml_dir's mount point
};

enum class HostState { kRunning, kExited, kLost };

struct HostStatus {
  HostState state = HostState::kRunning;
  int exit_code = 0;  // valid when kExited and signal == 0
  int signal = 0;     // the signal that ended the process, 0 if it exited
  std::int64_t ended_millis = 0;
};

struct HostProcessOptions {
  std::filesystem::path supervisor_path;  // the hearth-supervisor executable
  bool use_bwrap = true;                  // false, or bwrap missing → plain child process
};

class HostProcessRuntime {
 public:
  explicit HostProcessRuntime(HostProcessOptions options);

  // True when processes run inside bubblewrap; then containers see `/opt/ml`, else the real
  // ml_dir path. Callers use MlPathInside to build SM_* variables.
  bool sandboxed() const { return sandboxed_; }
  std::string MlPathInside(const std::filesystem::path& ml_dir) const;

  // `state_dir` must exist and be empty (FailedPrecondition); it must not be inside ml_dir,
  // argv must not be empty, ml_dir and bind sources must exist (InvalidArgument). A program
  // that cannot be executed is not a Launch error: it exits 127 and says why on stderr.
  // Returns once the process can be signalled: a SIGTERM sent right after is delivered.
  Status Launch(const HostSpec& spec, const std::filesystem::path& state_dir);
  // NotFound when nothing was launched in `state_dir`.
  Result<HostStatus> Poll(const std::filesystem::path& state_dir) const;
  // Delivers `signo` to the process through its supervisor (a SIGRTMIN sigqueue'd with the
  // number, so that SIGKILL can be forwarded too; SIGKILL takes the whole sandbox or process
  // group). SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGKILL are accepted, others
  // are InvalidArgument. No-op if the process has exited or is lost.
  Status Signal(const std::filesystem::path& state_dir, int signo) const;

 private:
  HostProcessOptions options_;
  bool sandboxed_ = false;
};

}  // namespace hearth::runtime
