#include "runtime/sandbox.h"

#include <cerrno>
#include <map>
#include <mutex>
#include <string_view>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace hearth::runtime {

namespace {

// Flags shared by the probe and the real sandbox, so a "usable" answer means these work.
void AppendIsolationFlags(std::vector<std::string>* argv) {
  for (const char* a : {"--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs",
                        "/tmp", "--tmpfs", "/opt"}) {
    argv->emplace_back(a);
  }
}

bool RunQuietly(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return false;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool UnderPrefix(std::string_view path, std::string_view prefix, std::string_view* rest) {
  if (prefix.empty() || path.substr(0, prefix.size()) != prefix) return false;
  std::string_view tail = path.substr(prefix.size());
  if (!tail.empty() && tail.front() != '/' && prefix.back() != '/') return false;
  *rest = tail;
  return true;
}

// The host path for a sandbox path, or the path itself when no mount covers it.
std::string MapToHost(const std::string& path, const HostSpec& spec) {
  std::string_view rest;
  // Later binds shadow earlier ones inside the sandbox, so the last match wins here too.
  for (auto it = spec.extra_binds.rbegin(); it != spec.extra_binds.rend(); ++it) {
    if (UnderPrefix(path, it->sandbox_path, &rest))
      return it->host_path.string() + std::string(rest);
  }
  if (UnderPrefix(path, kSandboxMlDir, &rest)) return spec.ml_dir.string() + std::string(rest);
  return path;
}

}  // namespace

bool BwrapUsable(const std::string& bwrap_path) {
  static std::mutex mu;
  static std::map<std::string, bool> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(bwrap_path);
  if (it != cache.end()) return it->second;
  bool usable = false;
  if (::access(bwrap_path.c_str(), X_OK) == 0) {
    std::vector<std::string> argv{bwrap_path};
    AppendIsolationFlags(&argv);
    for (const char* a :
         {"--unshare-pid", "--unshare-net", "--die-with-parent", "--as-pid-1", "--", "true"}) {
      argv.emplace_back(a);
    }
    usable = RunQuietly(argv);
  }
  cache[bwrap_path] = usable;
  return usable;
}

LaunchCommand BuildSandboxCommand(const HostSpec& spec,
                                  const std::filesystem::path& supervisor_path,
                                  const std::string& bwrap_path) {
  LaunchCommand cmd;
  cmd.sandboxed = true;
  cmd.working_dir = "/";
  std::vector<std::string>& a = cmd.argv;
  a.push_back(bwrap_path);
  AppendIsolationFlags(&a);
  a.insert(a.end(), {"--bind", spec.ml_dir.string(), kSandboxMlDir});
  // After /opt/ml so that a bind may sit inside it, and after the tmpfs mounts so that none of
  // them hides a bind.
  for (const BindMount& b : spec.extra_binds) {
    a.insert(a.end(), {b.read_only ? "--ro-bind" : "--bind", b.host_path.string(), b.sandbox_path});
  }
  a.insert(a.end(), {"--ro-bind", supervisor_path.string(), kSandboxInitPath});
  a.emplace_back("--unshare-pid");
  if (spec.network_isolation) a.emplace_back("--unshare-net");
  a.insert(
      a.end(),
      {"--die-with-parent", "--as-pid-1", "--info-fd", std::to_string(kSandboxInfoFd), "--chdir",
       spec.working_dir.empty() ? std::string(kSandboxMlDir) : spec.working_dir, "--",
       kSandboxInitPath, "--sandbox-init", "--status-fd", std::to_string(kSandboxStatusFd)});
  // bwrap --chdir sets PWD; the process gets exactly the spec's environment.
  auto pwd = spec.env.find("PWD");
  if (pwd == spec.env.end()) {
    a.insert(a.end(), {"--unset-env", "PWD"});
  } else {
    a.insert(a.end(), {"--set-env", "PWD=" + pwd->second});
  }
  a.emplace_back("--");
  a.insert(a.end(), spec.argv.begin(), spec.argv.end());
  return cmd;
}

LaunchCommand BuildPlainCommand(const HostSpec& spec) {
  LaunchCommand cmd;
  for (const std::string& arg : spec.argv) cmd.argv.push_back(MapToHost(arg, spec));
  cmd.working_dir =
      spec.working_dir.empty() ? spec.ml_dir.string() : MapToHost(spec.working_dir, spec);
  return cmd;
}

}  // namespace hearth::runtime
