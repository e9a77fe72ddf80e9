// The command line that runs a HostSpec: under bubblewrap, or as a plain child process.
//
// Sandboxed, the supervisor execs
//   bwrap --ro-bind / / --proc /proc --dev /dev --tmpfs /tmp --tmpfs /opt --bind <ml_dir> /opt/ml
//         <extra binds> --ro-bind <hearth-supervisor> /opt/.hearth/init
//         --unshare-pid [--unshare-net] --die-with-parent --as-pid-1 --info-fd 3 --chdir <dir>
//         -- /opt/.hearth/init --sandbox-init --status-fd 4 --unset-env PWD -- <argv...>
// so that PID 1 of the sandbox is hearth-supervisor in "init" mode (supervisor_main.cc). bwrap
// writes the init's host pid to fd 3; the init forwards the signals it gets to the training
// process and writes that process's exact exit status to fd 4 (bwrap itself folds a signal into
// exit code 128+N).
//
// Thread safety: free functions; BwrapUsable probes once per process and is thread safe.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/host_process.h"

namespace hearth::runtime {

inline constexpr char kBwrapPath[] = "/usr/bin/bwrap";
inline constexpr char kSandboxMlDir[] = "/opt/ml";
inline constexpr char kSandboxInitPath[] = "/opt/.hearth/init";
// Descriptors the supervisor passes to bwrap (see above).
inline constexpr int kSandboxInfoFd = 3;
inline constexpr int kSandboxStatusFd = 4;

// True when `bwrap_path` exists and can build the sandbox we use (every flag above, run once
// with `true` inside); the answer is cached per path for the life of the process.
bool BwrapUsable(const std::string& bwrap_path = kBwrapPath);

struct LaunchCommand {
  std::vector<std::string> argv;  // argv[0] is looked up with the spec env's PATH
  std::string working_dir;        // host directory to chdir into before exec; empty: none
  bool sandboxed = false;
};

// `supervisor_path` is bound into the sandbox as its init.
LaunchCommand BuildSandboxCommand(const HostSpec& spec,
                                  const std::filesystem::path& supervisor_path,
                                  const std::string& bwrap_path = kBwrapPath);

// Without a sandbox the process sees host paths, so argv elements and the working dir that name
// a path under /opt/ml (or under an extra bind's sandbox_path) are rewritten to the host path;
// an empty working dir is ml_dir.
LaunchCommand BuildPlainCommand(const HostSpec& spec);

}  // namespace hearth::runtime
