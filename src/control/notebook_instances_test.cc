#include "control/notebook_instances.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/wait.h"
#include "http/http_client.h"
#include "metadata/sqlite_metadata_store.h"

namespace hearth::control {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;

constexpr char kRole[] = "arn:aws:iam::000000000000:role/SageMakerRole";
constexpr char kArnPrefix[] = "arn:aws:sagemaker:us-east-1:000000000000:notebook-instance/";
// Where the notebooks are told the server is; nothing needs to listen there for these tests.
constexpr char kServerUrl[] = "http://127.0.0.1:7071";
// Jupyter starts in about a second; the bound is for a loaded machine.
constexpr milliseconds kJupyterDeadline{90000};

// Real components throughout: SQLite stores and Debian's Jupyter run by the real
// hearth-supervisor (under bubblewrap where usable).
class NotebookInstanceControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists("/usr/lib/python3/dist-packages/notebook/notebookapp.py"))
        << "Debian's jupyter-notebook is not installed (scripts/install-deps.sh installs it)";
    std::string pattern = (fs::temp_directory_path() / "hearth-notebooks-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    auto store = metadata::OpenSqliteMetadataStore({.path = root_ / "metadata.db"});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    auto logs = metadata::OpenSqliteLogStore({.path = root_ / "metadata.db"});
    ASSERT_TRUE(logs.ok()) << logs.status().ToString();
    logs_ = std::move(logs).value();
    fs::create_directories(root_ / "sdk" / "hearth");
    runtime_ = std::make_unique<runtime::HostProcessRuntime>(
        runtime::HostProcessOptions{.supervisor_path = HEARTH_SUPERVISOR_PATH});
    controller_ = MakeController();
  }

  void TearDown() override {
    controller_.reset();
    // Leave no Jupyter behind: whatever a test left running is killed through its supervisor.
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(root_ / "notebooks", ec)) {
      const fs::path state = entry.path() / "state";
      if (!Running(state)) continue;
      runtime_->Signal(state, SIGKILL).IgnoreError();
      EXPECT_TRUE(WaitFor([&] { return !Running(state); }));
    }
    fs::remove_all(root_, ec);
  }

  std::unique_ptr<NotebookInstanceController> MakeController() {
    NotebookOptions options;
    options.notebooks_dir = root_ / "notebooks";
    options.sdk_dir = root_ / "sdk";
    options.python = python_;
    options.startup_timeout = startup_timeout_;
    options.stop_grace = milliseconds(10000);
    options.poll_interval = milliseconds(20);
    auto c = std::make_unique<NotebookInstanceController>(options, *store_, *logs_, *runtime_);
    c->SetServerUrl(kServerUrl);
    return c;
  }

  bool Running(const fs::path& state_dir) {
    auto st = runtime_->Poll(state_dir);
    return st.ok() && st->state == runtime::HostState::kRunning;
  }

  Result<json> Create(const std::string& name, json extra = json::object()) {
    json request = {
        {"NotebookInstanceName", name}, {"InstanceType", "ml.t3.medium"}, {"RoleArn", kRole}};
    request.update(extra);
    return controller_->Create(request);
  }

  json Describe(const std::string& name) {
    auto d = controller_->Describe({{"NotebookInstanceName", name}});
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    return d.ok() ? *d : json::object();
  }

  std::string StatusOf(const std::string& name) {
    auto d = controller_->Describe({{"NotebookInstanceName", name}});
    return d.ok() ? d->value("NotebookInstanceStatus", "") : "(" + d.status().message() + ")";
  }

  bool WaitForStatus(const std::string& name, const std::string& status,
                     milliseconds timeout = kJupyterDeadline) {
    bool reached = WaitFor([&] { return StatusOf(name) == status; }, timeout);
    if (!reached) {
      ADD_FAILURE() << name << " is " << StatusOf(name) << ", not " << status << "; "
                    << Describe(name).dump();
    }
    return reached;
  }

  std::uint16_t PortOf(const std::string& name) {
    const std::string url = Describe(name).value("Url", "");
    EXPECT_EQ(url.rfind("127.0.0.1:", 0), 0u) << url;
    return static_cast<std::uint16_t>(std::stoi(url.substr(url.find(':') + 1)));
  }

  std::string TokenOf(const std::string& name) {
    auto url = controller_->CreatePresignedUrl({{"NotebookInstanceName", name}});
    EXPECT_TRUE(url.ok()) << url.status().ToString();
    const std::string authorized = url.ok() ? url->value("AuthorizedUrl", "") : "";
    const std::size_t at = authorized.find("/?token=");
    EXPECT_NE(at, std::string::npos) << authorized;
    return at == std::string::npos ? "" : authorized.substr(at + 8);
  }

  // One request to Jupyter; `token` empty sends none.
  Result<http::ClientResponse> Jupyter(std::uint16_t port, const std::string& target,
                                       const std::string& token, const std::string& method = "GET",
                                       const std::string& body = "") {
    http::ConnectionPool pool("127.0.0.1", port, 0);
    http::ClientRequest request;
    request.method = method;
    request.target = target;
    request.body = body;
    if (!token.empty()) request.headers.push_back({"Authorization", "token " + token});
    if (!body.empty()) request.headers.push_back({"Content-Type", "application/json"});
    return pool.Send(request, milliseconds(10000));
  }

  int JupyterStatus(std::uint16_t port, const std::string& target, const std::string& token) {
    auto r = Jupyter(port, target, token);
    return r.ok() ? r->status : -1;
  }

  fs::path StateDir(const std::string& name) { return root_ / "notebooks" / name / "state"; }

  std::string StreamText(const std::string& name) {
    metadata::GetEventsQuery query;
    query.from_head = true;
    auto events = logs_->GetEvents(NotebookInstanceController::kLogGroup,
                                   NotebookInstanceController::LogStream(name), query);
    std::string text;
    if (events.ok()) {
      for (const auto& e : *events) text += e.message + "\n";
    }
    return text;
  }

  void ExpectValidation(const Result<json>& result, const std::string& message) {
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().reason(), "ValidationException");
    EXPECT_EQ(result.status().message(), message);
  }

  fs::path root_;
  fs::path python_ = "/usr/bin/python3";
  milliseconds startup_timeout_{kJupyterDeadline};
  std::unique_ptr<metadata::MetadataStore> store_;
  std::unique_ptr<metadata::LogStore> logs_;
  std::unique_ptr<runtime::HostProcessRuntime> runtime_;
  std::unique_ptr<NotebookInstanceController> controller_;
};

TEST_F(NotebookInstanceControllerTest, CreateRunsJupyterThatAnswersOnlyWithItsToken) {
  auto created =
      Create("nb-one", {{"VolumeSizeInGB", 20}, {"PlatformIdentifier", "notebook-al2-v3"}});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ((*created)["NotebookInstanceArn"], std::string(kArnPrefix) + "nb-one");
  // Not in service before Jupyter answers.
  EXPECT_EQ(StatusOf("nb-one"), "Pending");
  ASSERT_TRUE(WaitForStatus("nb-one", "InService"));

  json d = Describe("nb-one");
  EXPECT_EQ(d["NotebookInstanceName"], "nb-one");
  EXPECT_EQ(d["InstanceType"], "ml.t3.medium");
  EXPECT_EQ(d["RoleArn"], kRole);
  EXPECT_EQ(d["VolumeSizeInGB"], 20);
  EXPECT_EQ(d["PlatformIdentifier"], "notebook-al2-v3");
  EXPECT_EQ(d["DirectInternetAccess"], "Enabled");
  EXPECT_EQ(d["RootAccess"], "Enabled");
  EXPECT_FALSE(d.contains("FailureReason"));
  EXPECT_GE(d["LastModifiedTime"].get<double>(), d["CreationTime"].get<double>());

  const std::uint16_t port = PortOf("nb-one");
  const std::string token = TokenOf("nb-one");
  EXPECT_EQ(token.size(), 32u);
  EXPECT_EQ(JupyterStatus(port, "/api/status", token), 200);
  EXPECT_EQ(JupyterStatus(port, "/api/status", ""), 403);
  EXPECT_EQ(JupyterStatus(port, "/api/status", "not-" + token), 403);
  // The presigned URL logs a browser in: it leads to the notebook tree, which sets the login
  // cookie.
  auto landing = Jupyter(port, "/?token=" + token, "");
  ASSERT_TRUE(landing.ok()) << landing.status().ToString();
  EXPECT_EQ(landing->status, 302);
  const std::string location = landing->headers.Get("Location").value_or("");
  EXPECT_NE(location.find("/tree?token=" + token), std::string::npos) << location;
  auto tree = Jupyter(port, "/tree?token=" + token, "");
  ASSERT_TRUE(tree.ok()) << tree.status().ToString();
  EXPECT_EQ(tree->status, 200);
  EXPECT_EQ(tree->headers.Get("Set-Cookie")
                .value_or("")
                .rfind("username-127-0-0-1-" + std::to_string(port) + "=", 0),
            0u);
  auto no_token = Jupyter(port, "/tree", "");
  ASSERT_TRUE(no_token.ok()) << no_token.status().ToString();
  EXPECT_EQ(no_token->status, 302);
  EXPECT_EQ(no_token->headers.Get("Location").value_or("").rfind("/login", 0), 0u);

  // Jupyter's own output is in the instance's stream.
  EXPECT_TRUE(WaitFor([&] {
    return StreamText("nb-one").find("Jupyter Notebook") != std::string::npos;
  })) << StreamText("nb-one");
}

TEST_F(NotebookInstanceControllerTest, JupyterGetsTheServerAsItsDefaultEndpoint) {
  ASSERT_TRUE(Create("nb-env").ok());
  ASSERT_TRUE(WaitForStatus("nb-env", "InService"));
  // The environment the supervisor ran Jupyter (and so its kernels) with.
  auto spec_text = ReadFile(StateDir("nb-env") / "spec.json");
  ASSERT_TRUE(spec_text.ok()) << spec_text.status().ToString();
  json spec = json::parse(*spec_text);
  const json& env = spec["env"];
  EXPECT_EQ(env["HEARTH_ENDPOINT_URL"], kServerUrl);
  EXPECT_EQ(env["AWS_ENDPOINT_URL"], kServerUrl);
  EXPECT_FALSE(env.value("AWS_ACCESS_KEY_ID", "").empty());
  EXPECT_FALSE(env.value("AWS_SECRET_ACCESS_KEY", "").empty());
  EXPECT_EQ(env["AWS_DEFAULT_REGION"], "us-east-1");
  EXPECT_EQ(env["PYTHONPATH"],
            runtime_->sandboxed() ? "/opt/hearth-sdk" : (root_ / "sdk").string());
  EXPECT_EQ(env["JUPYTER_TOKEN"], TokenOf("nb-env"));
  // The token is not on a command line.
  EXPECT_EQ(spec["argv"].dump().find(TokenOf("nb-env")), std::string::npos);

  // A notebook written through Jupyter lands in the instance's notebook directory.
  const std::uint16_t port = PortOf("nb-env");
  auto put = Jupyter(port, "/api/contents/hello.ipynb", TokenOf("nb-env"), "PUT",
                     R"({"type":"notebook","content":{"cells":[],"metadata":{},"nbformat":4,)"
                     R"("nbformat_minor":5}})");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->status, 201) << put->body;
  EXPECT_TRUE(fs::exists(controller_->NotebookDir("nb-env") / "hello.ipynb"));
  if (runtime_->sandboxed()) {
    // Named as SageMaker names its notebook instances (the sagemaker SDK reads this file).
    auto meta = ReadFile(root_ / "notebooks" / "nb-env" / "instance" / "metadata" /
                         "resource-metadata.json");
    ASSERT_TRUE(meta.ok());
    EXPECT_EQ(json::parse(*meta)["ResourceName"], "nb-env");
  }
}

TEST_F(NotebookInstanceControllerTest, RefusesWhatItCannotHonourNamingTheField) {
  const std::vector<std::pair<std::string, json>> refused = {
      {"LifecycleConfigName", "my-config"},
      {"DefaultCodeRepository", "https://example.com/repo.git"},
      {"AdditionalCodeRepositories", json::array({"https://example.com/repo.git"})},
      {"AcceleratorTypes", json::array({"ml.eia1.medium"})},
      {"KmsKeyId", "key-1"},
      {"SubnetId", "subnet-0123"},
      {"SecurityGroupIds", json::array({"sg-0123"})},
      {"DirectInternetAccess", "Disabled"},
      {"RootAccess", "Disabled"},
  };
  for (const auto& [field, value] : refused) {
    auto created = Create("nb-refused", {{field, value}});
    ASSERT_FALSE(created.ok()) << field;
    EXPECT_EQ(created.status().reason(), "ValidationException") << field;
    EXPECT_EQ(created.status().message().rfind(field, 0), 0u) << created.status().message();
    EXPECT_NE(created.status().message().find("not supported"), std::string::npos);
  }
  auto all = store_->List(NotebookInstanceController::kKind);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
  EXPECT_EQ(controller_->MonitoredInstances(), 0u);
}

TEST_F(NotebookInstanceControllerTest, AMissingInstanceIsRecordNotFound) {
  const json request = {{"NotebookInstanceName", "nowhere"}};
  ExpectValidation(controller_->Describe(request), "RecordNotFound");
  ExpectValidation(controller_->Stop(request), "RecordNotFound");
  ExpectValidation(controller_->Start(request), "RecordNotFound");
  ExpectValidation(controller_->Delete(request), "RecordNotFound");
  ExpectValidation(controller_->CreatePresignedUrl(request), "RecordNotFound");
}

TEST_F(NotebookInstanceControllerTest, StopThenStartKeepsTheNotebookDirectory) {
  ASSERT_TRUE(Create("nb-keep").ok());
  ASSERT_TRUE(WaitForStatus("nb-keep", "InService"));
  const std::uint16_t port = PortOf("nb-keep");
  const std::string first_token = TokenOf("nb-keep");
  auto put = Jupyter(port, "/api/contents/kept.txt", first_token, "PUT",
                     R"({"type":"file","format":"text","content":"kept across stop"})");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  ASSERT_EQ(put->status, 201) << put->body;

  ASSERT_TRUE(controller_->Stop({{"NotebookInstanceName", "nb-keep"}}).ok());
  const std::string right_after = StatusOf("nb-keep");
  EXPECT_TRUE(right_after == "Stopping" || right_after == "Stopped") << right_after;
  ASSERT_TRUE(WaitForStatus("nb-keep", "Stopped"));
  EXPECT_FALSE(Running(StateDir("nb-keep")));
  EXPECT_EQ(JupyterStatus(port, "/api/status", first_token), -1);  // nothing listens
  EXPECT_TRUE(fs::exists(controller_->NotebookDir("nb-keep") / "kept.txt"));
  EXPECT_NE(StreamText("nb-keep").find("Hearth: Jupyter stopped"), std::string::npos);

  ASSERT_TRUE(controller_->Start({{"NotebookInstanceName", "nb-keep"}}).ok());
  EXPECT_EQ(StatusOf("nb-keep"), "Pending");
  ASSERT_TRUE(WaitForStatus("nb-keep", "InService"));
  const std::string second_token = TokenOf("nb-keep");
  EXPECT_NE(second_token, first_token);  // a new token per start
  const std::uint16_t second_port = PortOf("nb-keep");
  auto got = Jupyter(second_port, "/api/contents/kept.txt", second_token);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->status, 200) << got->body;
  EXPECT_EQ(json::parse(got->body)["content"], "kept across stop");
  EXPECT_EQ(JupyterStatus(second_port, "/api/status", first_token), 403);
  // One stream for both launches: the first launch's lines are still there once.
  const std::string text = StreamText("nb-keep");
  const std::string launched = "Hearth: launched Jupyter";
  const std::size_t first = text.find(launched);
  ASSERT_NE(first, std::string::npos);
  EXPECT_NE(text.find(launched, first + 1), std::string::npos);
}

TEST_F(NotebookInstanceControllerTest, DeleteIsRefusedUnlessStoppedOrFailed) {
  ASSERT_TRUE(Create("nb-del").ok());
  ASSERT_TRUE(WaitForStatus("nb-del", "InService"));
  const std::string arn = std::string(kArnPrefix) + "nb-del";
  const json request = {{"NotebookInstanceName", "NB-Del"}};  // names ignore case
  ExpectValidation(controller_->Delete(request),
                   "Status (InService) not in ([Stopped, Failed]). Unable to transition to "
                   "(Deleting) for Notebook Instance (" +
                       arn + ")");
  ExpectValidation(controller_->Start(request),
                   "Status (InService) not in ([Stopped, Failed]). Unable to transition to "
                   "(Pending) for Notebook Instance (" +
                       arn + ")");
  EXPECT_EQ(StatusOf("nb-del"), "InService");

  ASSERT_TRUE(controller_->Stop(request).ok());
  ASSERT_TRUE(WaitForStatus("nb-del", "Stopped"));
  ExpectValidation(controller_->Stop(request),
                   "Status (Stopped) not in ([InService]). Unable to transition to (Stopping) "
                   "for Notebook Instance (" +
                       arn + ")");
  ASSERT_TRUE(controller_->Delete(request).ok());
  const std::string right_after = StatusOf("nb-del");
  EXPECT_TRUE(right_after == "Deleting" || right_after == "(RecordNotFound)") << right_after;
  ASSERT_TRUE(WaitFor([&] { return StatusOf("nb-del") == "(RecordNotFound)"; }));
  EXPECT_FALSE(fs::exists(root_ / "notebooks" / "nb-del"));
  EXPECT_TRUE(WaitFor([&] { return controller_->MonitoredInstances() == 0; }));
  // Its logs stay, as CloudWatch keeps them.
  EXPECT_NE(StreamText("nb-del").find("Hearth: Jupyter stopped"), std::string::npos);
  // The name is free again.
  ASSERT_TRUE(Create("nb-del").ok());
  EXPECT_TRUE(WaitForStatus("nb-del", "InService"));
}

TEST_F(NotebookInstanceControllerTest, NamesAreUniqueIgnoringCase) {
  python_ = "/bin/sh";  // no Jupyter needed
  controller_ = MakeController();
  ASSERT_TRUE(Create("Dup").ok());
  ExpectValidation(Create("dUP"), "Cannot create a duplicate Notebook Instance (" +
                                      std::string(kArnPrefix) + "dup)");
  EXPECT_EQ(Describe("DUP")["NotebookInstanceName"], "Dup");
}

TEST_F(NotebookInstanceControllerTest, JupyterThatCannotStartFailsWithItsOutput) {
  // `/bin/sh -m notebook ...` exits 2, saying it cannot open "notebook".
  python_ = "/bin/sh";
  controller_ = MakeController();
  ASSERT_TRUE(Create("nb-broken").ok());
  ASSERT_TRUE(WaitForStatus("nb-broken", "Failed"));
  const std::string reason = Describe("nb-broken").value("FailureReason", "");
  EXPECT_EQ(reason.rfind("Jupyter stopped before answering GET /api/status (it exited with code "
                         "2). Last output:\n",
                         0),
            0u)
      << reason;
  EXPECT_NE(reason.find("notebook"), std::string::npos) << reason;
  EXPECT_TRUE(WaitFor([&] { return controller_->MonitoredInstances() == 0; }));

  // Failed may start again (and fails again here), or be deleted.
  ASSERT_TRUE(controller_->Start({{"NotebookInstanceName", "nb-broken"}}).ok());
  EXPECT_FALSE(Describe("nb-broken").contains("FailureReason"));
  ASSERT_TRUE(WaitForStatus("nb-broken", "Failed"));
  ASSERT_TRUE(controller_->Delete({{"NotebookInstanceName", "nb-broken"}}).ok());
  EXPECT_TRUE(WaitFor([&] { return StatusOf("nb-broken") == "(RecordNotFound)"; }));
}

TEST_F(NotebookInstanceControllerTest, JupyterThatDoesNotAnswerInTimeFailsAndIsKilled) {
  // Jupyter cannot answer within a millisecond of its launch.
  startup_timeout_ = milliseconds(1);
  controller_ = MakeController();
  ASSERT_TRUE(Create("nb-slow").ok());
  ASSERT_TRUE(WaitForStatus("nb-slow", "Failed"));
  const std::string reason = Describe("nb-slow").value("FailureReason", "");
  EXPECT_EQ(reason.rfind("Jupyter did not answer GET /api/status with 200 within 0 seconds", 0), 0u)
      << reason;
  EXPECT_FALSE(Running(StateDir("nb-slow")));
}

TEST_F(NotebookInstanceControllerTest, JupyterEndingWhileInServiceFailsTheInstance) {
  ASSERT_TRUE(Create("nb-crash").ok());
  ASSERT_TRUE(WaitForStatus("nb-crash", "InService"));
  ASSERT_TRUE(runtime_->Signal(StateDir("nb-crash"), SIGKILL).ok());
  ASSERT_TRUE(WaitForStatus("nb-crash", "Failed"));
  EXPECT_EQ(Describe("nb-crash")
                .value("FailureReason", "")
                .rfind("Jupyter stopped while in service (it was killed by signal 9).", 0),
            0u)
      << Describe("nb-crash").dump();
}

TEST_F(NotebookInstanceControllerTest, RecoverAdoptsAJupyterThatKeptRunning) {
  ASSERT_TRUE(Create("nb-adopt").ok());
  ASSERT_TRUE(WaitForStatus("nb-adopt", "InService"));
  const std::uint16_t port = PortOf("nb-adopt");
  const std::string token = TokenOf("nb-adopt");
  auto supervisor = ReadFile(StateDir("nb-adopt") / "supervisor.json");
  ASSERT_TRUE(supervisor.ok());

  controller_.reset();  // as a server that stops (or crashes): Jupyter keeps running
  EXPECT_EQ(JupyterStatus(port, "/api/status", token), 200);
  controller_ = MakeController();
  ASSERT_TRUE(controller_->Recover().ok());
  EXPECT_EQ(controller_->MonitoredInstances(), 1u);
  EXPECT_EQ(StatusOf("nb-adopt"), "InService");
  EXPECT_EQ(PortOf("nb-adopt"), port);
  EXPECT_EQ(TokenOf("nb-adopt"), token);
  EXPECT_EQ(JupyterStatus(port, "/api/status", token), 200);
  // The same process, not a new one.
  auto supervisor_now = ReadFile(StateDir("nb-adopt") / "supervisor.json");
  ASSERT_TRUE(supervisor_now.ok());
  EXPECT_EQ(*supervisor_now, *supervisor);

  // The adopted instance is driven as any other.
  ASSERT_TRUE(controller_->Stop({{"NotebookInstanceName", "nb-adopt"}}).ok());
  ASSERT_TRUE(WaitForStatus("nb-adopt", "Stopped"));
  EXPECT_EQ(JupyterStatus(port, "/api/status", token), -1);
}

TEST_F(NotebookInstanceControllerTest, RecoverLaunchesAgainAJupyterWhoseProcessWasLost) {
  ASSERT_TRUE(Create("nb-lost").ok());
  ASSERT_TRUE(WaitForStatus("nb-lost", "InService"));
  const std::string token = TokenOf("nb-lost");
  auto put = Jupyter(PortOf("nb-lost"), "/api/contents/kept.txt", token, "PUT",
                     R"({"type":"file","format":"text","content":"still here"})");
  ASSERT_TRUE(put.ok() && put->status == 201);

  controller_.reset();
  // The supervisor dies without recording an exit (a reboot, say): it takes Jupyter along.
  auto supervisor = ReadFile(StateDir("nb-lost") / "supervisor.json");
  ASSERT_TRUE(supervisor.ok());
  const pid_t pid = json::parse(*supervisor)["pid"].get<pid_t>();
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] {
    auto st = runtime_->Poll(StateDir("nb-lost"));
    return st.ok() && st->state == runtime::HostState::kLost;
  }));

  controller_ = MakeController();
  ASSERT_TRUE(controller_->Recover().ok());
  // Launched again: back to Pending, then InService once the new Jupyter answers.
  auto statuses = [&] {
    std::vector<std::string> out;
    auto history = store_->History(NotebookInstanceController::kKind, "nb-lost");
    if (history.ok()) {
      for (const auto& t : *history) out.push_back(t.status);
    }
    return out;
  };
  const std::vector<std::string> relaunched = {"Pending", "InService", "Pending", "InService"};
  ASSERT_TRUE(WaitFor([&] { return statuses() == relaunched; }, kJupyterDeadline))
      << testing::PrintToString(statuses());
  EXPECT_EQ(StatusOf("nb-lost"), "InService");
  EXPECT_EQ(TokenOf("nb-lost"), token);  // the instance was not started anew by its user
  auto got = Jupyter(PortOf("nb-lost"), "/api/contents/kept.txt", token);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->status, 200);
  EXPECT_NE(StreamText("nb-lost").find("process was lost"), std::string::npos);
}

TEST_F(NotebookInstanceControllerTest, ListFiltersSortsAndPages) {
  python_ = "/bin/sh";  // instances that fail at once are enough to list
  controller_ = MakeController();
  for (const char* name : {"beta-nb", "alpha-nb", "gamma"}) {
    // Distinct creation times, so that sorting by them is not sorting by name.
    const std::int64_t before = NowMillis();
    ASSERT_TRUE(WaitFor([&] { return NowMillis() > before; }));
    ASSERT_TRUE(Create(name).ok());
  }
  for (const char* name : {"beta-nb", "alpha-nb", "gamma"}) {
    ASSERT_TRUE(WaitForStatus(name, "Failed"));
  }
  auto names = [&](const json& request) {
    std::vector<std::string> out;
    auto listed = controller_->List(request);
    EXPECT_TRUE(listed.ok()) << listed.status().ToString();
    if (!listed.ok()) return out;
    for (const json& s : (*listed)["NotebookInstances"]) {
      out.push_back(s["NotebookInstanceName"]);
      EXPECT_EQ(s["InstanceType"], "ml.t3.medium");
      EXPECT_TRUE(s.contains("Url"));
      EXPECT_TRUE(s.contains("CreationTime"));
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(names(json::object()), (V{"alpha-nb", "beta-nb", "gamma"}));  // by name
  EXPECT_EQ(names({{"SortOrder", "Descending"}}), (V{"gamma", "beta-nb", "alpha-nb"}));
  EXPECT_EQ(names({{"SortBy", "CreationTime"}}), (V{"beta-nb", "alpha-nb", "gamma"}));
  EXPECT_EQ(names({{"NameContains", "NB"}}), (V{"alpha-nb", "beta-nb"}));
  EXPECT_EQ(names({{"StatusEquals", "Failed"}}).size(), 3u);
  EXPECT_TRUE(names({{"StatusEquals", "InService"}}).empty());
  EXPECT_TRUE(names({{"NotebookInstanceLifecycleConfigNameContains", "a"}}).empty());

  auto page = controller_->List({{"MaxResults", 2}});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ((*page)["NotebookInstances"].size(), 2u);
  ASSERT_TRUE(page->contains("NextToken"));
  EXPECT_EQ(names({{"MaxResults", 2}, {"NextToken", (*page)["NextToken"]}}), (V{"gamma"}));
  ExpectValidation(controller_->List({{"NextToken", "bogus"}}),
                   "Invalid pagination token: 'bogus'.");
}

}  // namespace
}  // namespace hearth::control
