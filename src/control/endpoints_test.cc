#include "control/endpoints.h"

#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/fs.h"
#include "common/wait.h"
#include "control/endpoint_configs.h"
#include "control/models.h"
#include "metadata/sqlite_metadata_store.h"
#include "runtime/training_contract.h"
#include "storage/local_object_store.h"

namespace hearth::control {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;

constexpr char kRole[] = "arn:aws:iam::000000000000:role/SageMakerRole";
constexpr char kArnPrefix[] = "arn:aws:sagemaker:us-east-1:000000000000:";

// An instance under the inference contract: it prints the model file it was given, answers
// GET /ping with 200 and POST /invocations with "<its port>:<the body>".
constexpr char kHealthyServe[] = R"SH(echo "model says $(cat "$SM_MODEL_DIR/greeting")"
exec /usr/bin/python3 -c '
import http.server, os
port = int(os.environ["SAGEMAKER_BIND_TO_PORT"])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.answer(200 if self.path == "/ping" else 404, b"")
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.answer(200, b"%d:" % port + body)
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
')SH";

// kHealthyServe, except that GET /ping hangs once the file "hang" appears in its ml dir
// (SAGEMAKER_BASE_DIR): the process runs and accepts connections but no longer answers.
constexpr char kHangingServe[] = R"SH(exec /usr/bin/python3 -c '
import http.server, os, time
port = int(os.environ["SAGEMAKER_BIND_TO_PORT"])
marker = os.path.join(os.environ["SAGEMAKER_BASE_DIR"], "hang")
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        while self.path == "/ping" and os.path.exists(marker):
            time.sleep(1)
        self.answer(200 if self.path == "/ping" else 404, b"")
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.answer(200, b"%d:" % port + body)
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
')SH";

// Prepended to a serve script: it starts only once the file "go" appears beside it (in the
// image's directory, which the test controls), so a test sees the state before it deterministically.
constexpr char kWaitForGo[] = "while [ ! -e \"$(dirname \"$0\")/go\" ]; do sleep 0.02; done\n";

// Real components throughout: SQLite stores, a LocalObjectStore, instances run by the real
// hearth-supervisor (under bubblewrap where usable) and a real EndpointRouter.
class EndpointControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "hearth-endpoints-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    auto store = metadata::OpenSqliteMetadataStore({.path = root_ / "metadata.db"});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    auto logs = metadata::OpenSqliteLogStore({.path = root_ / "metadata.db"});
    ASSERT_TRUE(logs.ok()) << logs.status().ToString();
    logs_ = std::move(logs).value();
    auto objects = storage::OpenLocalObjectStore({.root = root_ / "objects"});
    ASSERT_TRUE(objects.ok()) << objects.status().ToString();
    objects_ = std::move(objects).value();
    ASSERT_TRUE(objects_->CreateBucket("models").ok());
    fs::create_directories(root_ / "trained");
    std::ofstream(root_ / "trained" / "greeting") << "hello";
    ASSERT_TRUE(runtime::PackDirectoryToObject(root_ / "trained", *objects_,
                                               {"models", "m/model.tar.gz"})
                    .ok());

    runtime_ = std::make_unique<runtime::HostProcessRuntime>(
        runtime::HostProcessOptions{.supervisor_path = HEARTH_SUPERVISOR_PATH});
    images_ = std::make_unique<ImageRegistry>(*store_, std::map<std::string, BuiltinImage>{});
    models_ = std::make_unique<ModelController>(AccountContext{}, *store_, *objects_, *images_);
    configs_ = std::make_unique<EndpointConfigController>(AccountContext{}, *store_);
    router_ = std::make_unique<serving::EndpointRouter>();
    controller_ = MakeController();
  }

  void TearDown() override {
    // Leave no instance behind: delete every endpoint and wait for its record to go.
    if (controller_ != nullptr) {
      auto all = store_->List(EndpointController::kKind);
      if (all.ok()) {
        for (const auto& r : *all) {
          controller_->Delete({{"EndpointName", r.name}}).status().IgnoreError();
        }
        EXPECT_TRUE(WaitFor([&] {
          auto left = store_->List(EndpointController::kKind);
          return left.ok() && left->empty();
        }));
      }
    }
    controller_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::unique_ptr<EndpointController> MakeController() {
    EndpointOptions options;
    options.endpoints_dir = root_ / "endpoints";
    options.hearth_binary = "/bin/false";  // no built-in algorithm serves here
    options.stop_grace = milliseconds(2000);
    options.poll_interval = milliseconds(20);
    options.health_check_timeout = health_timeout_;
    return std::make_unique<EndpointController>(options, *store_, *logs_, *objects_, *runtime_,
                                                *images_, *router_);
  }

  // Registers a bring-your-own image whose `serve` runs `body` under /bin/sh.
  std::string Image(const std::string& name, const std::string& body) {
    fs::path dir = root_ / "images" / name;
    fs::create_directories(dir);
    std::ofstream(dir / "serve") << "#!/bin/sh\n" << body << "\n";
    chmod((dir / "serve").c_str(), 0755);
    Status s = images_->RegisterDirectory("test/" + name, dir);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return "test/" + name;
  }

  // A model serving `image` and an endpoint config with one variant of `count` instances.
  void ModelAndConfig(const std::string& name, const std::string& image, int count = 1) {
    auto model = models_->Create({{"ModelName", name},
                                  {"ExecutionRoleArn", kRole},
                                  {"PrimaryContainer",
                                   {{"Image", image},
                                    {"ModelDataUrl", "s3://models/m/model.tar.gz"},
                                    {"Environment", {{"GREETING_SUFFIX", "!"}}}}}});
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    auto config = configs_->Create(
        {{"EndpointConfigName", name},
         {"ProductionVariants", json::array({{{"VariantName", "AllTraffic"},
                                              {"ModelName", name},
                                              {"InitialInstanceCount", count},
                                              {"InstanceType", "ml.m5.large"}}})}});
    ASSERT_TRUE(config.ok()) << config.status().ToString();
  }

  json Describe(const std::string& name) {
    Result<json> doc = controller_->Describe({{"EndpointName", name}});
    EXPECT_TRUE(doc.ok()) << doc.status().ToString();
    return doc.ok() ? *doc : json::object();
  }

  // Polls until the endpoint leaves Creating; returns its document.
  json WaitSettled(const std::string& name, milliseconds timeout = milliseconds(30000)) {
    json doc;
    bool done = WaitFor(
        [&] {
          doc = Describe(name);
          return doc.value("EndpointStatus", "") != "Creating";
        },
        timeout);
    EXPECT_TRUE(done) << "endpoint " << name << " is still Creating: " << doc.dump();
    return doc;
  }

  bool WaitGone(const std::string& name) {
    return WaitFor([&] { return !controller_->Describe({{"EndpointName", name}}).ok(); });
  }

  json Internal(const std::string& name) {
    auto r = store_->Get(EndpointController::kKind, name);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->internal : json::object();
  }

  std::vector<std::string> LogMessages(const std::string& endpoint) {
    std::vector<std::string> out;
    const std::string group = std::string(EndpointController::kLogGroupPrefix) + endpoint;
    auto streams = logs_->ListStreams(group, "");
    if (!streams.ok()) return out;
    for (const auto& s : *streams) {
      metadata::GetEventsQuery query;
      query.from_head = true;
      auto events = logs_->GetEvents(group, s.name, query);
      if (!events.ok()) continue;
      for (const auto& e : *events) out.push_back(s.name + " " + e.message);
    }
    return out;
  }

  // The answer of the endpoint's fleet to one POST /invocations, through the router.
  Result<serving::InvocationResult> Invoke(const std::string& endpoint) {
    serving::Invocation inv;
    inv.endpoint = endpoint;
    inv.request.method = "POST";
    inv.request.target = "/invocations";
    inv.request.headers = {{"Content-Type", "text/csv"}};
    inv.request.body = "1,2,3";
    inv.timeout = milliseconds(5000);
    return router_->Invoke(inv);
  }

  // The instances that answer `count` invocations in a row (all must succeed).
  std::set<std::string> Answering(const std::string& endpoint, int count = 8) {
    std::set<std::string> answered;
    for (int i = 0; i < count; ++i) {
      auto r = Invoke(endpoint);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) continue;
      EXPECT_EQ(r->response.status, 200);
      answered.insert(r->instance_id);
    }
    return answered;
  }

  // Waits until the endpoint's recorded instances are `count` and none of them is `gone`, and
  // every one answers GET /ping; returns their ids.
  std::vector<std::string> WaitReplaced(const std::string& endpoint, const std::string& gone,
                                        std::size_t count) {
    std::vector<std::string> ids;
    bool replaced = WaitFor(
        [&] {
          ids.clear();
          const json instances = Internal(endpoint)["instances"];
          for (const json& inst : instances) ids.push_back(inst["id"]);
          if (ids.size() != count || std::find(ids.begin(), ids.end(), gone) != ids.end()) {
            return false;
          }
          return Describe(endpoint)["ProductionVariants"][0]["CurrentInstanceCount"] ==
                 static_cast<int>(count);
        },
        milliseconds(40000));
    EXPECT_TRUE(replaced) << "instance " << gone << " was not replaced: "
                          << Internal(endpoint).dump();
    return ids;
  }

  fs::path root_;
  milliseconds health_timeout_{20000};
  std::unique_ptr<metadata::MetadataStore> store_;
  std::unique_ptr<metadata::LogStore> logs_;
  std::unique_ptr<storage::ObjectStore> objects_;
  std::unique_ptr<runtime::HostProcessRuntime> runtime_;
  std::unique_ptr<ImageRegistry> images_;
  std::unique_ptr<ModelController> models_;
  std::unique_ptr<EndpointConfigController> configs_;
  std::unique_ptr<serving::EndpointRouter> router_;
  std::unique_ptr<EndpointController> controller_;
};

TEST_F(EndpointControllerTest, CreateNeedsAnExistingConfigAndAUniqueName) {
  auto missing = controller_->Create({{"EndpointName", "ep"}, {"EndpointConfigName", "nope"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().reason(), "ValidationException");
  EXPECT_EQ(missing.status().message(),
            std::string("Could not find endpoint configuration \"") + kArnPrefix +
                "endpoint-config/nope\".");

  ModelAndConfig("dup", Image("dup", kHealthyServe));
  ASSERT_TRUE(controller_->Create({{"EndpointName", "Dup-EP"}, {"EndpointConfigName", "dup"}}).ok());
  // Names are compared without case, as SageMaker's lower-cased ARNs are.
  auto again = controller_->Create({{"EndpointName", "dup-ep"}, {"EndpointConfigName", "dup"}});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().message(), std::string("Cannot create already existing endpoint \"") +
                                          kArnPrefix + "endpoint/dup-ep\".");
}

TEST_F(EndpointControllerTest, DescribeAndDeleteOfAMissingEndpointSayCouldNotFind) {
  const std::string expected = std::string("Could not find endpoint \"") + kArnPrefix +
                               "endpoint/ghost\".";
  auto described = controller_->Describe({{"EndpointName", "ghost"}});
  ASSERT_FALSE(described.ok());
  EXPECT_EQ(described.status().reason(), "ValidationException");
  EXPECT_EQ(described.status().message(), expected);
  auto deleted = controller_->Delete({{"EndpointName", "ghost"}});
  ASSERT_FALSE(deleted.ok());
  EXPECT_EQ(deleted.status().message(), expected);
}

TEST_F(EndpointControllerTest, InferencePipelinesAreRefusedAndNothingIsStored) {
  const std::string image = Image("pipe", kHealthyServe);
  json c = {{"Image", image}, {"ModelDataUrl", "s3://models/m/model.tar.gz"}};
  ASSERT_TRUE(models_->Create({{"ModelName", "pipeline"},
                               {"ExecutionRoleArn", kRole},
                               {"Containers", json::array({c, c})}})
                  .ok());
  ASSERT_TRUE(configs_
                  ->Create({{"EndpointConfigName", "pipeline"},
                            {"ProductionVariants",
                             json::array({{{"VariantName", "v"},
                                           {"ModelName", "pipeline"},
                                           {"InitialInstanceCount", 1},
                                           {"InstanceType", "ml.m5.large"}}})}})
                  .ok());
  auto created =
      controller_->Create({{"EndpointName", "pipeline"}, {"EndpointConfigName", "pipeline"}});
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().reason(), "ValidationException");
  EXPECT_NE(created.status().message().find("2 containers"), std::string::npos)
      << created.status().message();
  EXPECT_FALSE(store_->Get(EndpointController::kKind, "pipeline").ok());
}

TEST_F(EndpointControllerTest, CreateDeploysEveryInstanceThenPublishesTheFleet) {
  ModelAndConfig("live", Image("live", kHealthyServe), /*count=*/2);
  auto created = controller_->Create({{"EndpointName", "live"}, {"EndpointConfigName", "live"}});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ((*created)["EndpointArn"], std::string(kArnPrefix) + "endpoint/live");
  json creating = Describe("live");
  EXPECT_EQ(creating["EndpointStatus"], "Creating");
  EXPECT_EQ(creating["ProductionVariants"][0]["CurrentInstanceCount"], 0);
  EXPECT_EQ(creating["ProductionVariants"][0]["VariantStatus"][0]["Status"], "Creating");

  json doc = WaitSettled("live");
  ASSERT_EQ(doc["EndpointStatus"], "InService") << doc.dump();
  EXPECT_FALSE(doc.contains("FailureReason"));
  EXPECT_EQ(doc["EndpointName"], "live");
  EXPECT_EQ(doc["EndpointConfigName"], "live");
  const json& v = doc["ProductionVariants"][0];
  EXPECT_EQ(v["VariantName"], "AllTraffic");
  EXPECT_EQ(v["CurrentInstanceCount"], 2);
  EXPECT_EQ(v["DesiredInstanceCount"], 2);
  EXPECT_EQ(v["CurrentWeight"], 1.0);
  EXPECT_EQ(v["DesiredWeight"], 1.0);
  EXPECT_EQ(v["DeployedImages"][0]["SpecifiedImage"], "test/live");
  EXPECT_FALSE(v.contains("VariantStatus"));
  EXPECT_GE(doc["LastModifiedTime"].get<double>(), doc["CreationTime"].get<double>());

  // The fleet is in the router, and both instances answer.
  ASSERT_TRUE(router_->Has("live"));
  std::set<std::string> answered;
  for (int i = 0; i < 8; ++i) {
    auto r = Invoke("live");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->variant, "AllTraffic");
    EXPECT_EQ(r->response.status, 200);
    EXPECT_EQ(r->response.body.substr(r->response.body.find(':')), ":1,2,3");
    answered.insert(r->instance_id);
  }
  EXPECT_EQ(answered.size(), 2u);  // least in flight, ties round-robin: both serve

  // Each instance's output is in its own stream, and each read the unpacked model.
  json instances = Internal("live")["instances"];
  ASSERT_EQ(instances.size(), 2u);
  for (const json& inst : instances) {
    const std::string line = "AllTraffic/" + inst["id"].get<std::string>() + " model says hello";
    EXPECT_TRUE(WaitFor([&] {
      auto lines = LogMessages("live");
      return std::find(lines.begin(), lines.end(), line) != lines.end();
    })) << line;
  }

  // Delete: the fleet leaves the router, the instances stop, the record and directory go.
  ASSERT_TRUE(controller_->Delete({{"EndpointName", "LIVE"}}).ok());
  EXPECT_FALSE(router_->Has("live"));
  ASSERT_TRUE(WaitGone("live"));
  for (const json& inst : instances) {
    auto st = runtime_->Poll(fs::path(inst["dir"].get<std::string>()) / "state");
    EXPECT_TRUE(!st.ok() || st->state != runtime::HostState::kRunning);
  }
  EXPECT_TRUE(fs::is_empty(root_ / "endpoints"));
  // The name is free again.
  EXPECT_TRUE(controller_->Create({{"EndpointName", "live"}, {"EndpointConfigName", "live"}}).ok());
}

TEST_F(EndpointControllerTest, AnInstanceThatExitsFailsTheEndpointWithItsLastOutput) {
  ModelAndConfig("crash", Image("crash", "echo 'loading model'\necho 'no module named torch' >&2\n"
                                         "exit 3"));
  ASSERT_TRUE(controller_->Create({{"EndpointName", "crash"}, {"EndpointConfigName", "crash"}}).ok());
  json doc = WaitSettled("crash");
  ASSERT_EQ(doc["EndpointStatus"], "Failed");
  const std::string reason = doc["FailureReason"];
  const std::string id = Internal("crash").dump();
  EXPECT_NE(reason.find("production variant AllTraffic"), std::string::npos) << reason;
  EXPECT_NE(reason.find("instance i-"), std::string::npos) << reason;
  EXPECT_NE(reason.find("exited with code 3"), std::string::npos) << reason;
  EXPECT_NE(reason.find("no module named torch"), std::string::npos) << reason;
  EXPECT_EQ(doc["ProductionVariants"][0]["CurrentInstanceCount"], 0);
  EXPECT_FALSE(router_->Has("crash"));
  // Its lines were kept in CloudWatch Logs.
  auto lines = LogMessages("crash");
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [](const std::string& l) {
    return l.find("no module named torch") != std::string::npos;
  }));
  // A failed endpoint can be deleted.
  ASSERT_TRUE(controller_->Delete({{"EndpointName", "crash"}}).ok());
  EXPECT_TRUE(WaitGone("crash"));
}

TEST_F(EndpointControllerTest, AnInstanceThatNeverAnswersPingFailsAtTheHealthDeadline) {
  health_timeout_ = milliseconds(1000);
  controller_ = MakeController();
  ModelAndConfig("mute", Image("mute", "echo 'warming up forever'\nexec sleep 600"));
  ASSERT_TRUE(controller_->Create({{"EndpointName", "mute"}, {"EndpointConfigName", "mute"}}).ok());
  json doc = WaitSettled("mute");
  ASSERT_EQ(doc["EndpointStatus"], "Failed");
  const std::string reason = doc["FailureReason"];
  EXPECT_NE(reason.find("did not answer GET /ping with 200 within 1 seconds"), std::string::npos)
      << reason;
  EXPECT_NE(reason.find("warming up forever"), std::string::npos) << reason;
  // Failing stopped the instance: nothing is left running.
  EXPECT_TRUE(Internal("mute")["instances"].empty());
}

TEST_F(EndpointControllerTest, DeleteWhileCreatingStopsTheDeployment) {
  ModelAndConfig("slow", Image("slow", "exec sleep 600"));
  ASSERT_TRUE(controller_->Create({{"EndpointName", "slow"}, {"EndpointConfigName", "slow"}}).ok());
  // Wait until the instance is launched, so that deleting has something to stop.
  ASSERT_TRUE(WaitFor([&] { return Internal("slow")["instances"].size() == 1; }));
  fs::path state = fs::path(Internal("slow")["instances"][0]["dir"].get<std::string>()) / "state";
  ASSERT_TRUE(WaitFor([&] { return runtime_->Poll(state).ok(); }));
  ASSERT_TRUE(controller_->Delete({{"EndpointName", "slow"}}).ok());
  EXPECT_EQ(Describe("slow")["EndpointStatus"], "Deleting");
  ASSERT_TRUE(WaitGone("slow"));
  EXPECT_FALSE(router_->Has("slow"));
  EXPECT_FALSE(fs::exists(state));
}

TEST_F(EndpointControllerTest, RecoverReadoptsLiveInstancesAndReplacesLostOnes) {
  ModelAndConfig("keep", Image("keep", kHealthyServe), /*count=*/2);
  ASSERT_TRUE(controller_->Create({{"EndpointName", "keep"}, {"EndpointConfigName", "keep"}}).ok());
  ASSERT_EQ(WaitSettled("keep")["EndpointStatus"], "InService");
  json before = Internal("keep")["instances"];
  ASSERT_EQ(before.size(), 2u);

  // The server goes away (the instances keep running) and one instance dies meanwhile.
  controller_.reset();
  router_ = std::make_unique<serving::EndpointRouter>();
  fs::path lost = fs::path(before[1]["dir"].get<std::string>()) / "state";
  ASSERT_TRUE(runtime_->Signal(lost, SIGKILL).ok());
  ASSERT_TRUE(WaitFor([&] { return runtime_->Poll(lost)->state != runtime::HostState::kRunning; }));

  controller_ = MakeController();
  ASSERT_TRUE(controller_->Recover().ok());
  ASSERT_TRUE(WaitFor([&] { return router_->Has("keep"); }));
  EXPECT_EQ(Describe("keep")["EndpointStatus"], "InService");
  json after = Internal("keep")["instances"];
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0]["id"], before[0]["id"]);    // re-adopted
  EXPECT_EQ(after[0]["port"], before[0]["port"]);
  EXPECT_NE(after[1]["id"], before[1]["id"]);    // replaced
  std::set<std::string> answered;
  for (int i = 0; i < 6; ++i) {
    auto r = Invoke("keep");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    answered.insert(r->instance_id);
  }
  EXPECT_EQ(answered, (std::set<std::string>{"keep/AllTraffic/" + after[0]["id"].get<std::string>(),
                                             "keep/AllTraffic/" + after[1]["id"].get<std::string>()}));
}

TEST_F(EndpointControllerTest, AnInstanceKilledWhileInServiceIsReplaced) {
  ModelAndConfig("heal", Image("heal", kHealthyServe), /*count=*/2);
  ASSERT_TRUE(controller_->Create({{"EndpointName", "heal"}, {"EndpointConfigName", "heal"}}).ok());
  ASSERT_EQ(WaitSettled("heal")["EndpointStatus"], "InService");
  json before = Internal("heal")["instances"];
  ASSERT_EQ(before.size(), 2u);
  const std::string killed = before[1]["id"], kept = before[0]["id"];
  const fs::path killed_dir = before[1]["dir"].get<std::string>();

  // The instance dies as a crash would kill it: SIGKILL to the process its supervisor runs.
  auto supervisor = ReadFile(killed_dir / "state" / "supervisor.json");
  ASSERT_TRUE(supervisor.ok()) << supervisor.status().ToString();
  const pid_t child = json::parse(*supervisor)["child_pid"].get<pid_t>();
  ASSERT_EQ(::kill(child, SIGKILL), 0);

  std::vector<std::string> after = WaitReplaced("heal", killed, 2);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_NE(std::find(after.begin(), after.end(), kept), after.end());
  const std::string added = after[0] == kept ? after[1] : after[0];
  json doc = Describe("heal");
  EXPECT_EQ(doc["EndpointStatus"], "InService");
  EXPECT_EQ(doc["ProductionVariants"][0]["DesiredInstanceCount"], 2);
  EXPECT_FALSE(doc.contains("FailureReason"));
  // Both the surviving instance and the replacement take traffic; the dead one is gone.
  EXPECT_EQ(Answering("heal"),
            (std::set<std::string>{"heal/AllTraffic/" + kept, "heal/AllTraffic/" + added}));
  EXPECT_FALSE(fs::exists(killed_dir));
  // The replacement is logged in the dead instance's stream, with the reason.
  auto lines = LogMessages("heal");
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
    return l.rfind("AllTraffic/" + killed + " ", 0) == 0 &&
           l.find("is replaced: it was killed by signal") != std::string::npos;
  })) << testing::PrintToString(lines);
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
    return l.rfind("AllTraffic/" + added + " ", 0) == 0 &&
           l.find("launched as a replacement") != std::string::npos;
  })) << testing::PrintToString(lines);
}

TEST_F(EndpointControllerTest, AReplacementThatCannotStartIsRetriedWithAGrowingDelay) {
  // Instances refuse to start while the model directory holds "refuse" (the test writes it
  // there from outside: the directory is shared read-only by the variant's instances).
  ModelAndConfig("retry", Image("retry", "if [ -e \"$SM_MODEL_DIR/refuse\" ]; then\n"
                                         "  echo 'refusing to start'; exit 5\nfi\n" +
                                             std::string(kHealthyServe)));
  ASSERT_TRUE(controller_->Create({{"EndpointName", "retry"}, {"EndpointConfigName", "retry"}}).ok());
  ASSERT_EQ(WaitSettled("retry")["EndpointStatus"], "InService");
  const json first = Internal("retry")["instances"][0];
  const fs::path instance_dir = first["dir"].get<std::string>();
  const fs::path refuse = instance_dir.parent_path() / "model" / "refuse";
  std::ofstream(refuse) << "";
  ASSERT_TRUE(runtime_->Signal(instance_dir / "state", SIGKILL).ok());

  // Two failed replacements, the second after the first one's delay, then one more delay.
  auto has = [&](const std::string& text) {
    auto lines = LogMessages("retry");
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
      return l.find(text) != std::string::npos;
    });
  };
  ASSERT_TRUE(WaitFor([&] { return has("exited with code 5") && has("next attempt in 2 s"); },
                      milliseconds(30000)))
      << testing::PrintToString(LogMessages("retry"));
  EXPECT_TRUE(has("next attempt in 1 s"));
  EXPECT_TRUE(has("refusing to start"));
  json doc = Describe("retry");
  EXPECT_EQ(doc["EndpointStatus"], "InService");
  EXPECT_EQ(doc["ProductionVariants"][0]["CurrentInstanceCount"], 0);
  EXPECT_FALSE(doc.contains("FailureReason"));

  // Once the model can start again, the next attempt brings the variant back.
  fs::remove(refuse);
  ASSERT_TRUE(WaitFor(
      [&] { return Describe("retry")["ProductionVariants"][0]["CurrentInstanceCount"] == 1; },
      milliseconds(30000)));
  EXPECT_EQ(Answering("retry", 2).size(), 1u);
}

TEST_F(EndpointControllerTest, AnInstanceThatStopsAnsweringPingIsKilledAndReplaced) {
  ModelAndConfig("hang", Image("hang", kHangingServe), /*count=*/2);
  ASSERT_TRUE(controller_->Create({{"EndpointName", "hang"}, {"EndpointConfigName", "hang"}}).ok());
  ASSERT_EQ(WaitSettled("hang")["EndpointStatus"], "InService");
  json before = Internal("hang")["instances"];
  ASSERT_EQ(before.size(), 2u);
  const std::string hung = before[0]["id"], kept = before[1]["id"];
  auto supervisor =
      ReadFile(fs::path(before[0]["dir"].get<std::string>()) / "state" / "supervisor.json");
  ASSERT_TRUE(supervisor.ok()) << supervisor.status().ToString();
  const pid_t hung_pid = json::parse(*supervisor)["child_pid"].get<pid_t>();
  std::ofstream(fs::path(before[0]["dir"].get<std::string>()) / "ml" / "hang") << "";

  std::vector<std::string> after = WaitReplaced("hang", hung, 2);
  ASSERT_EQ(after.size(), 2u);
  const std::string added = after[0] == kept ? after[1] : after[0];
  EXPECT_NE(added, kept);
  EXPECT_EQ(Describe("hang")["EndpointStatus"], "InService");
  EXPECT_EQ(Answering("hang"),
            (std::set<std::string>{"hang/AllTraffic/" + kept, "hang/AllTraffic/" + added}));
  // The hung process was killed, not left running (its pid gone, or a zombie until reaped).
  EXPECT_TRUE(WaitFor([&] {
    auto stat = ReadFile("/proc/" + std::to_string(hung_pid) + "/stat");
    return !stat.ok() || stat->find(") Z ") != std::string::npos;
  }));
  auto lines = LogMessages("hang");
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
    return l.rfind("AllTraffic/" + hung + " ", 0) == 0 &&
           l.find("did not answer GET /ping with 200 in 3 consecutive checks") !=
               std::string::npos;
  })) << testing::PrintToString(lines);
}

TEST_F(EndpointControllerTest, RecoverFinishesADeletion) {
  ModelAndConfig("half", Image("half", kHealthyServe));
  ASSERT_TRUE(controller_->Create({{"EndpointName", "half"}, {"EndpointConfigName", "half"}}).ok());
  ASSERT_EQ(WaitSettled("half")["EndpointStatus"], "InService");
  json instances = Internal("half")["instances"];
  controller_.reset();
  // Deleting was recorded, but the server died before it stopped anything.
  auto r = store_->Get(EndpointController::kKind, "half");
  ASSERT_TRUE(r.ok());
  r->status = "Deleting";
  r->doc["EndpointStatus"] = "Deleting";
  ASSERT_TRUE(store_->Update(*r, metadata::Transition{"Deleting", "", NowMillis(), "test"}).ok());

  controller_ = MakeController();
  ASSERT_TRUE(controller_->Recover().ok());
  ASSERT_TRUE(WaitGone("half"));
  auto st = runtime_->Poll(fs::path(instances[0]["dir"].get<std::string>()) / "state");
  EXPECT_TRUE(!st.ok() || st->state != runtime::HostState::kRunning);
}

// List reads records only: these are stored directly, no instance runs.
// The endpoint's fleet answered by instances of `prefix`-tagged ids only: the router's ids are
// "<endpoint>/<variant>/<instance id>".
std::set<std::string> InstanceIds(const json& instances) {
  std::set<std::string> ids;
  for (const json& inst : instances) ids.insert(inst["id"].get<std::string>());
  return ids;
}

std::string IdOf(const std::string& router_id) {
  return router_id.substr(router_id.rfind('/') + 1);
}

TEST_F(EndpointControllerTest, UpdateIsRefusedUnlessInServiceAndNeedsAnExistingConfig) {
  auto missing = controller_->Update({{"EndpointName", "ghost"}, {"EndpointConfigName", "x"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            std::string("Could not find endpoint \"") + kArnPrefix + "endpoint/ghost\".");

  ModelAndConfig("starting", Image("starting", "exec sleep 600"));
  ASSERT_TRUE(
      controller_->Create({{"EndpointName", "starting"}, {"EndpointConfigName", "starting"}}).ok());
  auto creating =
      controller_->Update({{"EndpointName", "starting"}, {"EndpointConfigName", "starting"}});
  ASSERT_FALSE(creating.ok());
  EXPECT_EQ(creating.status().reason(), "ValidationException");
  EXPECT_EQ(creating.status().message(), std::string("Cannot update in-progress endpoint \"") +
                                             kArnPrefix + "endpoint/starting\".");
  auto no_config =
      controller_->Update({{"EndpointName", "starting"}, {"EndpointConfigName", "nope"}});
  ASSERT_FALSE(no_config.ok());
  EXPECT_EQ(no_config.status().message(),
            std::string("Could not find endpoint configuration \"") + kArnPrefix +
                "endpoint-config/nope\".");
  EXPECT_EQ(Describe("starting")["EndpointStatus"], "Creating");
}

// Blue/green: the new fleet comes up next to the old one, which serves until the new one is
// healthy; traffic then moves at once, the old instances drain and stop. A client invoking all
// along sees no failure.
TEST_F(EndpointControllerTest, UpdateMovesTrafficToTheNewFleetOnceHealthyWithoutFailures) {
  ModelAndConfig("blue", Image("blue", kHealthyServe), /*count=*/2);
  ASSERT_TRUE(controller_->Create({{"EndpointName", "bg"}, {"EndpointConfigName", "blue"}}).ok());
  ASSERT_EQ(WaitSettled("bg")["EndpointStatus"], "InService");
  const std::set<std::string> blue_ids = InstanceIds(Internal("bg")["instances"]);
  const std::string blue_dir = Internal("bg")["instances"][0]["dir"];
  // The green model's server starts only when the test says, so that the update is seen
  // Updating first.
  ModelAndConfig("green", Image("green", kWaitForGo + std::string(kHealthyServe)));

  std::atomic<bool> stop{false};
  std::atomic<int> calls{0}, failures{0};
  std::string first_failure;
  std::thread client([&] {
    while (!stop) {
      auto r = Invoke("bg");
      ++calls;
      if (!r.ok() || r->response.status != 200) {
        if (failures++ == 0) first_failure = r.ok() ? r->response.body : r.status().ToString();
      }
    }
  });

  auto updated = controller_->Update({{"EndpointName", "bg"}, {"EndpointConfigName", "green"}});
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ((*updated)["EndpointArn"], std::string(kArnPrefix) + "endpoint/bg");
  json updating = Describe("bg");
  EXPECT_EQ(updating["EndpointStatus"], "Updating");
  EXPECT_EQ(updating["EndpointConfigName"], "blue");
  EXPECT_EQ(updating["PendingDeploymentSummary"]["EndpointConfigName"], "green");
  // While the green fleet starts, the blue one answers.
  for (const std::string& id : Answering("bg", 4)) EXPECT_TRUE(blue_ids.contains(IdOf(id)));
  // Another update waits for this one.
  auto again = controller_->Update({{"EndpointName", "bg"}, {"EndpointConfigName", "green"}});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("Cannot update in-progress endpoint"),
            std::string::npos);
  std::ofstream(root_ / "images" / "green" / "go") << "";

  json doc;
  ASSERT_TRUE(WaitFor(
      [&] {
        doc = Describe("bg");
        return doc["EndpointStatus"] != "Updating";
      },
      milliseconds(30000)));
  ASSERT_EQ(doc["EndpointStatus"], "InService") << doc.dump();
  EXPECT_EQ(doc["EndpointConfigName"], "green");
  EXPECT_FALSE(doc.contains("PendingDeploymentSummary"));
  EXPECT_FALSE(doc.contains("FailureReason"));
  EXPECT_EQ(doc["ProductionVariants"][0]["CurrentInstanceCount"], 1);
  EXPECT_EQ(doc["ProductionVariants"][0]["DesiredInstanceCount"], 1);
  // Traffic moved: only green instances answer from now on.
  for (const std::string& id : Answering("bg", 6)) EXPECT_FALSE(blue_ids.contains(IdOf(id)));
  // The blue instances drain and stop; their directories go.
  ASSERT_TRUE(WaitFor([&] { return Internal("bg")["instances"].size() == 1; }));
  EXPECT_FALSE(blue_ids.contains(Internal("bg")["instances"][0]["id"].get<std::string>()));
  EXPECT_FALSE(fs::exists(blue_dir));
  stop = true;
  client.join();
  EXPECT_EQ(failures.load(), 0) << "of " << calls.load() << " calls; first: " << first_failure;
  EXPECT_GT(calls.load(), 10);
  // Both fleets logged to the endpoint's group.
  auto lines = LogMessages("bg");
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [](const std::string& l) {
    return l.find("stopped after the endpoint was updated") != std::string::npos;
  }));
}

TEST_F(EndpointControllerTest, AnUpdateThatCannotStartRollsBackToTheLiveFleet) {
  ModelAndConfig("stable", Image("stable", kHealthyServe));
  ASSERT_TRUE(
      controller_->Create({{"EndpointName", "rb"}, {"EndpointConfigName", "stable"}}).ok());
  ASSERT_EQ(WaitSettled("rb")["EndpointStatus"], "InService");
  const std::set<std::string> live_ids = InstanceIds(Internal("rb")["instances"]);
  ModelAndConfig("broken", Image("broken", "echo 'cannot load weights' >&2\nexit 4"));

  ASSERT_TRUE(
      controller_->Update({{"EndpointName", "rb"}, {"EndpointConfigName", "broken"}}).ok());
  json doc;
  ASSERT_TRUE(WaitFor(
      [&] {
        doc = Describe("rb");
        return doc["EndpointStatus"] != "Updating";
      },
      milliseconds(30000)));
  ASSERT_EQ(doc["EndpointStatus"], "InService") << doc.dump();
  EXPECT_EQ(doc["EndpointConfigName"], "stable");
  EXPECT_FALSE(doc.contains("PendingDeploymentSummary"));
  const std::string reason = doc.value("FailureReason", "");
  EXPECT_NE(reason.find("did not become healthy"), std::string::npos) << reason;
  EXPECT_NE(reason.find("exited with code 4"), std::string::npos) << reason;
  EXPECT_NE(reason.find("cannot load weights"), std::string::npos) << reason;
  // The live fleet never stopped serving, and the failed instance is gone.
  for (const std::string& id : Answering("rb", 4)) EXPECT_TRUE(live_ids.contains(IdOf(id)));
  EXPECT_EQ(InstanceIds(Internal("rb")["instances"]), live_ids);
  EXPECT_FALSE(fs::exists(fs::path(Internal("rb")["instances"][0]["dir"].get<std::string>())
                              .parent_path()
                              .parent_path() /
                          "gen.1"));
  // A later update works.
  ModelAndConfig("fixed", Image("fixed", kHealthyServe));
  ASSERT_TRUE(controller_->Update({{"EndpointName", "rb"}, {"EndpointConfigName", "fixed"}}).ok());
  ASSERT_TRUE(WaitFor([&] { return Describe("rb")["EndpointConfigName"] == "fixed"; },
                      milliseconds(30000)));
  EXPECT_FALSE(Describe("rb").contains("FailureReason"));
}

TEST_F(EndpointControllerTest, AnUpdateInterruptedByARestartStartsOverAndCompletes) {
  ModelAndConfig("before", Image("before", kHealthyServe));
  ASSERT_TRUE(
      controller_->Create({{"EndpointName", "ur"}, {"EndpointConfigName", "before"}}).ok());
  ASSERT_EQ(WaitSettled("ur")["EndpointStatus"], "InService");
  const std::set<std::string> live_ids = InstanceIds(Internal("ur")["instances"]);
  ModelAndConfig("after", Image("after", kWaitForGo + std::string(kHealthyServe)));
  ASSERT_TRUE(controller_->Update({{"EndpointName", "ur"}, {"EndpointConfigName", "after"}}).ok());
  // The server goes away while the new instance starts.
  ASSERT_TRUE(WaitFor([&] { return Internal("ur")["instances"].size() == 2; }));
  const std::set<std::string> interrupted = InstanceIds(Internal("ur")["instances"]);
  controller_.reset();
  router_ = std::make_unique<serving::EndpointRouter>();

  controller_ = MakeController();
  ASSERT_TRUE(controller_->Recover().ok());
  // The live fleet serves again at once, and the update completes on a new instance.
  ASSERT_TRUE(WaitFor([&] { return router_->Has("ur"); }));
  EXPECT_EQ(Describe("ur")["EndpointStatus"], "Updating");
  std::ofstream(root_ / "images" / "after" / "go") << "";
  json doc;
  ASSERT_TRUE(WaitFor(
      [&] {
        doc = Describe("ur");
        return doc["EndpointStatus"] == "InService";
      },
      milliseconds(30000)));
  EXPECT_EQ(doc["EndpointConfigName"], "after");
  ASSERT_TRUE(WaitFor([&] { return Internal("ur")["instances"].size() == 1; }));
  const std::string id = Internal("ur")["instances"][0]["id"];
  EXPECT_FALSE(interrupted.contains(id));
  for (const std::string& answered : Answering("ur", 4)) EXPECT_EQ(IdOf(answered), id);
}

TEST_F(EndpointControllerTest, ListFiltersSortsAndPages) {
  const std::int64_t base = 1700000000000;
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"alpha", "InService"}, {"Bravo", "Failed"}, {"charlie", "InService"}, {"delta", "Creating"}};
  for (std::size_t i = 0; i < rows.size(); ++i) {
    metadata::Resource r;
    r.kind = std::string(EndpointController::kKind);
    r.name = rows[i].first;
    r.arn = std::string(kArnPrefix) + "endpoint/" + r.name;
    r.status = rows[i].second;
    r.created_millis = base + static_cast<std::int64_t>(i) * 1000;
    r.modified_millis = r.created_millis + 500;
    r.doc = {{"EndpointName", r.name},
             {"EndpointArn", r.arn},
             {"EndpointStatus", r.status},
             {"CreationTime", r.created_millis / 1000.0},
             {"LastModifiedTime", r.modified_millis / 1000.0}};
    ASSERT_TRUE(store_->Create(r, {r.status, "", r.created_millis, "test"}).ok());
  }
  auto names = [](const json& out) {
    std::vector<std::string> n;
    for (const json& e : out["Endpoints"]) n.push_back(e["EndpointName"]);
    return n;
  };
  auto list = [&](const json& request) {
    auto out = controller_->List(request);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? *out : json::object();
  };
  // Default: newest first.
  EXPECT_EQ(names(list(json::object())),
            (std::vector<std::string>{"delta", "charlie", "Bravo", "alpha"}));
  EXPECT_EQ(names(list({{"SortBy", "Name"}, {"SortOrder", "Ascending"}})),
            (std::vector<std::string>{"alpha", "Bravo", "charlie", "delta"}));
  EXPECT_EQ(names(list({{"SortBy", "Status"}, {"SortOrder", "Ascending"}})),
            (std::vector<std::string>{"delta", "Bravo", "alpha", "charlie"}));
  EXPECT_EQ(names(list({{"StatusEquals", "InService"}})),
            (std::vector<std::string>{"charlie", "alpha"}));
  EXPECT_EQ(names(list({{"NameContains", "RAV"}})), (std::vector<std::string>{"Bravo"}));
  // CreationTimeAfter is "greater than or equal to" for endpoints; Before is exclusive.
  EXPECT_EQ(names(list({{"CreationTimeAfter", (base + 1000) / 1000.0},
                        {"CreationTimeBefore", (base + 3000) / 1000.0}})),
            (std::vector<std::string>{"charlie", "Bravo"}));
  EXPECT_EQ(names(list({{"CreationTimeAfter", (base + 1001) / 1000.0},
                        {"CreationTimeBefore", (base + 3000) / 1000.0}})),
            (std::vector<std::string>{"charlie"}));
  EXPECT_EQ(names(list({{"LastModifiedTimeBefore", (base + 1000) / 1000.0}})),
            (std::vector<std::string>{"alpha"}));
  json summary = list({{"NameContains", "alpha"}})["Endpoints"][0];
  EXPECT_EQ(summary["EndpointArn"], std::string(kArnPrefix) + "endpoint/alpha");
  EXPECT_EQ(summary["EndpointStatus"], "InService");
  EXPECT_TRUE(summary.contains("CreationTime"));
  EXPECT_TRUE(summary.contains("LastModifiedTime"));

  json page1 = list({{"MaxResults", 3}});
  EXPECT_EQ(names(page1), (std::vector<std::string>{"delta", "charlie", "Bravo"}));
  ASSERT_TRUE(page1.contains("NextToken"));
  json page2 = list({{"MaxResults", 3}, {"NextToken", page1["NextToken"]}});
  EXPECT_EQ(names(page2), (std::vector<std::string>{"alpha"}));
  EXPECT_FALSE(page2.contains("NextToken"));
  // Stored directly with no instances: remove them so TearDown has nothing to stop.
  for (const auto& [name, status] : rows) ASSERT_TRUE(store_->Delete(EndpointController::kKind, name).ok());
}

}  // namespace
}  // namespace hearth::control
