#include "runtime/host_process.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/ids.h"
#include "common/wait.h"
#include "runtime/log_reader.h"

namespace hearth::runtime {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr char kPython[] = "/usr/bin/python3";
const std::map<std::string, std::string> kBaseEnv = {{"PATH", "/usr/local/bin:/usr/bin:/bin"},
                                                     {"LANG", "C.UTF-8"}};

std::vector<OutputLine> AllLines(const fs::path& state_dir) {
  std::uint64_t offset = 0;
  Result<std::vector<OutputLine>> lines = ReadOutputLines(state_dir / "output.log", &offset);
  return lines.ok() ? *lines : std::vector<OutputLine>{};
}

bool HasLine(const fs::path& state_dir, const std::string& text, bool is_stderr = false) {
  for (const OutputLine& l : AllLines(state_dir)) {
    if (l.text == text && l.is_stderr == is_stderr) return true;
  }
  return false;
}

// Host pids of processes started from `program` whose command line contains `marker` (bwrap
// and the sandbox's init carry the same arguments and are not counted).
std::vector<int> ProcessesWith(const std::string& program, const std::string& marker) {
  std::vector<int> pids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    Result<std::string> cmdline = ReadFile(entry.path() / "cmdline");
    if (cmdline.ok() && cmdline->starts_with(program + '\0') &&
        cmdline->find(marker) != std::string::npos) {
      pids.push_back(std::stoi(name));
    }
  }
  return pids;
}

class HostProcessTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    runtime_ = std::make_unique<HostProcessRuntime>(
        HostProcessOptions{.supervisor_path = HEARTH_SUPERVISOR_PATH, .use_bwrap = GetParam()});
    if (GetParam() && !runtime_->sandboxed()) GTEST_SKIP() << "bubblewrap is not usable here";
    root_ = fs::temp_directory_path() / ("hearth-runtime-test-" + NewUuid());
    ml_dir_ = root_ / "ml";
    fs::create_directories(ml_dir_ / "input");
    fs::create_directories(ml_dir_ / "model");
    std::ofstream(ml_dir_ / "input" / "hello.txt") << "hello from the host\n";
  }

  void TearDown() override {
    for (const fs::path& dir : launched_) {
      if (runtime_->Poll(dir).ok() && runtime_->Poll(dir)->state == HostState::kRunning) {
        runtime_->Signal(dir, SIGKILL).IgnoreError();
        WaitFor([&] { return runtime_->Poll(dir)->state != HostState::kRunning; });
      }
    }
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  HostSpec Spec(std::vector<std::string> argv) {
    HostSpec spec;
    spec.ml_dir = ml_dir_;
    spec.argv = std::move(argv);
    spec.env = kBaseEnv;
    spec.env["ML"] = runtime_->MlPathInside(ml_dir_);
    return spec;
  }

  // Launches into a fresh state dir and returns it.
  fs::path Launch(const HostSpec& spec) {
    fs::path dir = root_ / ("state-" + std::to_string(launched_.size()));
    fs::create_directories(dir);
    Status s = runtime_->Launch(spec, dir);
    EXPECT_TRUE(s.ok()) << s.ToString();
    launched_.push_back(dir);
    return dir;
  }

  HostStatus WaitForExit(const fs::path& dir) {
    HostStatus last;
    EXPECT_TRUE(WaitFor([&] {
      Result<HostStatus> st = runtime_->Poll(dir);
      if (st.ok()) last = *st;
      return st.ok() && st->state != HostState::kRunning;
    })) << "process in "
        << dir << " did not exit";
    return last;
  }

  std::unique_ptr<HostProcessRuntime> runtime_;
  fs::path root_, ml_dir_;
  std::vector<fs::path> launched_;
};

TEST_P(HostProcessTest, OutputLinesCarryStreamTagsAndPartialLastLine) {
  fs::path dir = Launch(Spec({"/bin/sh", "-c", "echo out1; echo err1 >&2; echo; printf partial"}));
  HostStatus st = WaitForExit(dir);
  EXPECT_EQ(st.state, HostState::kExited);
  std::vector<OutputLine> lines = AllLines(dir);
  std::vector<std::pair<bool, std::string>> got;
  for (const OutputLine& l : lines) {
    EXPECT_GT(l.timestamp_millis, 0);
    got.emplace_back(l.is_stderr, l.text);
  }
  std::vector<std::pair<bool, std::string>> stdout_only;
  for (auto& g : got) {
    if (!g.first) stdout_only.push_back(g);
  }
  EXPECT_EQ(stdout_only, (std::vector<std::pair<bool, std::string>>{
                             {false, "out1"}, {false, ""}, {false, "partial"}}));
  EXPECT_TRUE(HasLine(dir, "err1", /*is_stderr=*/true));
}

TEST_P(HostProcessTest, ExitCodeIsRecorded) {
  fs::path dir = Launch(Spec({"/bin/sh", "-c", "exit 3"}));
  HostStatus st = WaitForExit(dir);
  EXPECT_EQ(st.state, HostState::kExited);
  EXPECT_EQ(st.exit_code, 3);
  EXPECT_EQ(st.signal, 0);
  EXPECT_GT(st.ended_millis, 0);
  nlohmann::json sup = nlohmann::json::parse(*ReadFile(dir / "supervisor.json"));
  EXPECT_GT(sup["pid"].get<int>(), 0);
  EXPECT_GT(sup["started_millis"].get<std::int64_t>(), 0);
}

TEST_P(HostProcessTest, LongLinesAreSplitWithoutLosingBytes) {
  fs::path dir = Launch(Spec({"/bin/sh", "-c", "head -c 200000 /dev/zero | tr '\\0' a; echo"}));
  WaitForExit(dir);
  std::size_t total = 0;
  for (const OutputLine& l : AllLines(dir)) {
    EXPECT_LE(l.text.size(), 64u * 1024);
    EXPECT_EQ(l.text.find_first_not_of('a'), std::string::npos);
    total += l.text.size();
  }
  EXPECT_EQ(total, 200000u);
}

TEST_P(HostProcessTest, MissingProgramExitsWith127AndSaysWhy) {
  fs::path dir = Launch(Spec({"no-such-program-hearth"}));
  HostStatus st = WaitForExit(dir);
  EXPECT_EQ(st.exit_code, 127);
  bool said = false;
  for (const OutputLine& l : AllLines(dir)) {
    said = said || (l.is_stderr && l.text.find("no-such-program-hearth") != std::string::npos);
  }
  EXPECT_TRUE(said);
}

TEST_P(HostProcessTest, OptMlPathsResolveInEitherMode) {
  HostSpec spec = Spec({"/bin/cat", "/opt/ml/input/hello.txt"});
  spec.working_dir = "/opt/ml/model";
  fs::path dir = Launch(spec);
  EXPECT_EQ(WaitForExit(dir).exit_code, 0);
  EXPECT_TRUE(HasLine(dir, "hello from the host"));
}

TEST_P(HostProcessTest, EnvironmentIsExactlyTheSpecs) {
  HostSpec spec = Spec({"/usr/bin/env"});
  spec.env["SM_CURRENT_HOST"] = "algo-1";
  fs::path dir = Launch(spec);
  WaitForExit(dir);
  std::set<std::string> got;
  for (const OutputLine& l : AllLines(dir)) got.insert(l.text);
  std::set<std::string> want;
  for (const auto& [k, v] : spec.env) want.insert(k + "=" + v);
  EXPECT_EQ(got, want);
}

TEST_P(HostProcessTest, SigtermReachesTheTrainingProcesssHandler) {
  const char* script = R"(
import os, signal, sys, time
def on_term(signo, frame):
    with open(os.path.join(os.environ["ML"], "model", "saved"), "w") as f:
        f.write("saved")
    print("saved", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
while True:
    time.sleep(1)
)";
  if (!fs::exists(kPython)) GTEST_SKIP() << kPython << " is missing";
  fs::path dir = Launch(Spec({kPython, "-c", script}));
  ASSERT_TRUE(WaitFor([&] { return HasLine(dir, "ready"); }));
  ASSERT_EQ(runtime_->Poll(dir)->state, HostState::kRunning);
  ASSERT_TRUE(runtime_->Signal(dir, SIGTERM).ok());
  HostStatus st = WaitForExit(dir);
  EXPECT_EQ(st.state, HostState::kExited);
  EXPECT_EQ(st.exit_code, 0);
  EXPECT_EQ(st.signal, 0);
  EXPECT_TRUE(HasLine(dir, "saved"));
  EXPECT_EQ(*ReadFile(ml_dir_ / "model" / "saved"), "saved");
}

TEST_P(HostProcessTest, SigtermWithoutHandlerEndsTheProcess) {
  fs::path dir = Launch(Spec({"/bin/sh", "-c", "echo ready; exec sleep 300"}));
  ASSERT_TRUE(WaitFor([&] { return HasLine(dir, "ready"); }));
  ASSERT_TRUE(runtime_->Signal(dir, SIGTERM).ok());
  HostStatus st = WaitForExit(dir);
  EXPECT_EQ(st.signal, SIGTERM);
  EXPECT_EQ(st.exit_code, 128 + SIGTERM);
}

TEST_P(HostProcessTest, SigtermSentTheMomentLaunchReturnsIsNotLost) {
  // Launch returns once the process may be signalled; a SIGTERM then must end it, whatever
  // stage of starting it is in (the sandbox's init drops signals it does not yet catch).
  for (int i = 0; i < 5; ++i) {
    fs::path dir = Launch(Spec({"/bin/sleep", "300"}));
    ASSERT_TRUE(runtime_->Signal(dir, SIGTERM).ok());
    ASSERT_TRUE(WaitFor([&] { return runtime_->Poll(dir)->state != HostState::kRunning; },
                        std::chrono::milliseconds(10000)))
        << "SIGTERM was lost on launch " << i;
    EXPECT_EQ(runtime_->Poll(dir)->signal, SIGTERM);
  }
}

TEST_P(HostProcessTest, SigkillEndsAProcessThatIgnoresSigterm) {
  std::string marker = "hearth-marker-" + NewUuid();
  const char* script = R"(
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen(["/bin/sh", "-c", "sleep 300; :", sys.argv[1]])
print("ready", flush=True)
while True:
    time.sleep(1)
)";
  if (!fs::exists(kPython)) GTEST_SKIP() << kPython << " is missing";
  fs::path dir = Launch(Spec({kPython, "-c", script, marker}));
  ASSERT_TRUE(WaitFor([&] { return HasLine(dir, "ready"); }));
  ASSERT_EQ(ProcessesWith(kPython, marker).size(), 1u);
  ASSERT_TRUE(WaitFor([&] { return ProcessesWith("/bin/sh", marker).size() == 1; }));
  ASSERT_TRUE(runtime_->Signal(dir, SIGTERM).ok());
  ASSERT_TRUE(runtime_->Signal(dir, SIGKILL).ok());
  HostStatus st = WaitForExit(dir);
  EXPECT_EQ(st.state, HostState::kExited);
  EXPECT_EQ(st.signal, SIGKILL);
  EXPECT_EQ(st.exit_code, 128 + SIGKILL);
  EXPECT_TRUE(ProcessesWith(kPython, marker).empty());
  EXPECT_TRUE(WaitFor([&] { return ProcessesWith("/bin/sh", marker).empty(); }))
      << "the process's own child outlived it";
}

TEST_P(HostProcessTest, SigtermSentToTheSupervisorIsForwarded) {
  fs::path dir = Launch(Spec({"/bin/sh", "-c", "echo ready; exec sleep 300"}));
  ASSERT_TRUE(WaitFor([&] { return HasLine(dir, "ready"); }));
  nlohmann::json sup = nlohmann::json::parse(*ReadFile(dir / "supervisor.json"));
  ASSERT_EQ(::kill(sup["pid"].get<int>(), SIGTERM), 0);
  HostStatus st = WaitForExit(dir);
  EXPECT_EQ(st.state, HostState::kExited);
  EXPECT_EQ(st.signal, SIGTERM);
}

TEST_P(HostProcessTest, SignalAfterExitIsANoOp) {
  fs::path dir = Launch(Spec({"/bin/true"}));
  HostStatus before = WaitForExit(dir);
  EXPECT_TRUE(runtime_->Signal(dir, SIGTERM).ok());
  EXPECT_TRUE(runtime_->Signal(dir, SIGKILL).ok());
  Result<HostStatus> after = runtime_->Poll(dir);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->exit_code, before.exit_code);
  EXPECT_EQ(after->ended_millis, before.ended_millis);
}

TEST_P(HostProcessTest, KilledSupervisorIsLostAndTakesTheProcessWithIt) {
  std::string marker = "hearth-marker-" + NewUuid();
  if (!fs::exists(kPython)) GTEST_SKIP() << kPython << " is missing";
  fs::path dir = Launch(
      Spec({kPython, "-c", "import time\nprint('ready', flush=True)\ntime.sleep(300)", marker}));
  ASSERT_TRUE(WaitFor([&] { return HasLine(dir, "ready"); }));
  ASSERT_EQ(ProcessesWith(kPython, marker).size(), 1u);
  nlohmann::json sup = nlohmann::json::parse(*ReadFile(dir / "supervisor.json"));
  ASSERT_EQ(::kill(sup["pid"].get<int>(), SIGKILL), 0);
  EXPECT_TRUE(WaitFor([&] { return runtime_->Poll(dir)->state == HostState::kLost; }));
  EXPECT_TRUE(WaitFor([&] { return ProcessesWith(kPython, marker).empty(); }))
      << "the training process outlived its supervisor";
  EXPECT_FALSE(fs::exists(dir / "exit.json"));
}

TEST_P(HostProcessTest, ASecondRuntimeAdoptsAProcessTheFirstLaunched) {
  fs::path dir = Launch(Spec({"/bin/sh", "-c", "echo ready; exec sleep 300"}));
  ASSERT_TRUE(WaitFor([&] { return HasLine(dir, "ready"); }));
  // As after a server restart: a new instance with nothing in memory.
  HostProcessRuntime restarted(
      HostProcessOptions{.supervisor_path = HEARTH_SUPERVISOR_PATH, .use_bwrap = GetParam()});
  Result<HostStatus> st = restarted.Poll(dir);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->state, HostState::kRunning);
  ASSERT_TRUE(restarted.Signal(dir, SIGTERM).ok());
  EXPECT_TRUE(WaitFor([&] { return restarted.Poll(dir)->state == HostState::kExited; }));
  EXPECT_EQ(restarted.Poll(dir)->signal, SIGTERM);
}

TEST_P(HostProcessTest, ProcessOutlivesTheServerThatLaunchedIt) {
  fs::path dir = root_ / "state-server";
  fs::create_directories(dir);
  launched_.push_back(dir);
  HostSpec spec = Spec({"/bin/sh", "-c", "echo ready; exec sleep 300"});
  pid_t server = ::fork();
  ASSERT_GE(server, 0);
  if (server == 0) {
    // A stand-in for the server: launches, then waits to be killed with SIGKILL.
    if (!runtime_->Launch(spec, dir).ok()) ::_exit(1);
    while (true) ::pause();
  }
  ASSERT_TRUE(WaitFor([&] { return HasLine(dir, "ready"); }));
  ASSERT_EQ(::kill(server, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(server, &status, 0), server);
  ASSERT_TRUE(WIFSIGNALED(status));
  Result<HostStatus> st = runtime_->Poll(dir);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->state, HostState::kRunning);
  ASSERT_TRUE(runtime_->Signal(dir, SIGINT).ok());
  HostStatus end = WaitForExit(dir);
  EXPECT_EQ(end.state, HostState::kExited);
  EXPECT_EQ(end.signal, SIGINT);
}

TEST_P(HostProcessTest, LaunchRejectsAStateDirInsideTheMlDir) {
  fs::path dir = ml_dir_ / "state";
  fs::create_directories(dir);
  EXPECT_EQ(runtime_->Launch(Spec({"/bin/true"}), dir).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(runtime_->Launch(Spec({}), root_).code(), StatusCode::kInvalidArgument);
}

TEST_P(HostProcessTest, LaunchRejectsAStateDirInUse) {
  fs::path dir = Launch(Spec({"/bin/true"}));
  WaitForExit(dir);
  Status s = runtime_->Launch(Spec({"/bin/true"}), dir);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_EQ(runtime_->Poll(root_ / "never-launched").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(runtime_->Signal(dir, 0).code(), StatusCode::kInvalidArgument);
}

TEST_P(HostProcessTest, SandboxSeesOptMlAndAReadOnlyHost) {
  if (!GetParam()) GTEST_SKIP() << "only the sandbox isolates";
  fs::path dir = Launch(Spec(
      {"/bin/sh", "-c",
       "cat /opt/ml/input/hello.txt; if touch /usr/hearth-probe 2>/dev/null; then echo "
       "writable; else echo read-only; fi; echo written > /opt/ml/model/out.txt; echo pid=$$"}));
  EXPECT_EQ(WaitForExit(dir).exit_code, 0);
  EXPECT_TRUE(HasLine(dir, "hello from the host"));
  EXPECT_TRUE(HasLine(dir, "read-only"));
  EXPECT_TRUE(HasLine(dir, "pid=2")) << "the process should be PID 2 under the sandbox's init";
  EXPECT_FALSE(fs::exists("/usr/hearth-probe"));
  EXPECT_EQ(*ReadFile(ml_dir_ / "model" / "out.txt"), "written\n");
}

TEST_P(HostProcessTest, NetworkIsolationLeavesOnlyLoopback) {
  if (!GetParam()) GTEST_SKIP() << "only the sandbox isolates";
  HostSpec spec = Spec({"/bin/sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"});
  spec.network_isolation = true;
  fs::path dir = Launch(spec);
  EXPECT_EQ(WaitForExit(dir).exit_code, 0);
  std::vector<std::string> interfaces;
  for (const OutputLine& l : AllLines(dir)) interfaces.push_back(l.text);
  EXPECT_EQ(interfaces, std::vector<std::string>{"lo"});
}

TEST_P(HostProcessTest, ExtraBindIsReadOnlyInTheSandbox) {
  if (!GetParam()) GTEST_SKIP() << "only the sandbox mounts";
  fs::path program = root_ / "program";
  fs::create_directories(program);
  std::ofstream(program / "train") << "#!/bin/sh\necho trained\ntouch /opt/program/x || echo ro\n";
  fs::permissions(program / "train", fs::perms::owner_all);
  HostSpec spec = Spec({"/opt/program/train"});
  spec.extra_binds.push_back({.host_path = program, .sandbox_path = "/opt/program"});
  fs::path dir = Launch(spec);
  EXPECT_EQ(WaitForExit(dir).exit_code, 0);
  EXPECT_TRUE(HasLine(dir, "trained"));
  EXPECT_TRUE(HasLine(dir, "ro"));
}

INSTANTIATE_TEST_SUITE_P(Modes, HostProcessTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Sandboxed" : "Plain";
                         });

}  // namespace
}  // namespace hearth::runtime
