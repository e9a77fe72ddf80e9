#include "control/training_jobs.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/wait.h"
#include "metadata/sqlite_metadata_store.h"
#include "storage/local_object_store.h"

namespace hearth::control {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;

constexpr milliseconds kStopGrace{1000};
constexpr char kRole[] = "arn:aws:iam::000000000000:role/SageMakerRole";

bool IsTerminal(const std::string& status) {
  return status == "Completed" || status == "Failed" || status == "Stopped";
}

json Channel(const std::string& name, const std::string& uri) {
  return {{"ChannelName", name},
          {"DataSource", {{"S3DataSource", {{"S3DataType", "S3Prefix"}, {"S3Uri", uri}}}}}};
}

// A minimal CreateTrainingJob input: one File channel with one object, output to s3://output.
json TrainingRequest(const std::string& name, const std::string& image) {
  return {{"TrainingJobName", name},
          {"RoleArn", kRole},
          {"AlgorithmSpecification", {{"TrainingImage", image}, {"TrainingInputMode", "File"}}},
          {"InputDataConfig", json::array({Channel("train", "s3://input/train/")})},
          {"OutputDataConfig", {{"S3OutputPath", "s3://output/jobs"}}},
          {"ResourceConfig",
           {{"InstanceType", "ml.m5.large"}, {"InstanceCount", 1}, {"VolumeSizeInGB", 1}}},
          {"StoppingCondition", {{"MaxRuntimeInSeconds", 60}}}};
}

std::vector<std::string> SecondaryStatuses(const json& doc) {
  std::vector<std::string> out;
  for (const json& t : doc.value("SecondaryStatusTransitions", json::array())) {
    out.push_back(t.value("Status", ""));
  }
  return out;
}

std::vector<std::string> SummaryNames(const json& list_output) {
  std::vector<std::string> names;
  for (const json& s : list_output.value("TrainingJobSummaries", json::array())) {
    names.push_back(s.value("TrainingJobName", ""));
  }
  return names;
}

// Real components throughout: SQLite stores in a temp file, a LocalObjectStore in a temp dir,
// and hosts run by the real hearth-supervisor (under bubblewrap unless a subclass says not).
class TrainingJobControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "hearth-control-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    fs::create_directories(root_ / "jobs");

    auto store = metadata::OpenSqliteMetadataStore({.path = root_ / "metadata.db"});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    auto logs = metadata::OpenSqliteLogStore({.path = root_ / "metadata.db"});
    ASSERT_TRUE(logs.ok()) << logs.status().ToString();
    logs_ = std::move(logs).value();
    auto objects = storage::OpenLocalObjectStore({.root = root_ / "objects"});
    ASSERT_TRUE(objects.ok()) << objects.status().ToString();
    objects_ = std::move(objects).value();
    ASSERT_TRUE(objects_->CreateBucket("input").ok());
    ASSERT_TRUE(objects_->CreateBucket("output").ok());
    ASSERT_TRUE(objects_->PutObject("input", "train/part-0.csv", "1,2\n3,4\n").ok());

    runtime_ = std::make_unique<runtime::HostProcessRuntime>(runtime::HostProcessOptions{
        .supervisor_path = HEARTH_SUPERVISOR_PATH, .use_bwrap = use_bwrap_});
    images_ = std::make_unique<ImageRegistry>(
        *store_, std::map<std::string, BuiltinImage>{
                     {"kmeans", {.repositories = {"kmeans"},
                                 .metric_definitions = {{"test:msd", "msd=(\\S+)"}}}}});
    controller_ = MakeController();
  }

  void TearDown() override {
    // Leave no training process behind: stop what still runs and wait for it to end.
    if (controller_ != nullptr) {
      Result<std::vector<metadata::Resource>> all = store_->List(TrainingJobController::kKind);
      if (all.ok()) {
        for (const metadata::Resource& r : *all) {
          if (IsTerminal(r.status)) continue;
          controller_->Stop({{"TrainingJobName", r.name}}).status().IgnoreError();
          WaitForTerminal(r.name);
        }
      }
    }
    controller_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::unique_ptr<TrainingJobController> MakeController() {
    TrainingJobOptions options;
    options.jobs_dir = root_ / "jobs";
    options.hearth_binary = "/bin/false";  // no built-in algorithm runs here
    options.stop_grace = kStopGrace;
    options.poll_interval = poll_interval_;
    options.num_cpus = 1;
    options.max_running_instances = max_running_instances_;
    return std::make_unique<TrainingJobController>(options, *store_, *logs_, *objects_, *runtime_,
                                                   *images_);
  }

  // Registers a bring-your-own image whose `train` runs `body` under /bin/sh.
  std::string Image(const std::string& name, const std::string& body) {
    fs::path dir = root_ / "images" / name;
    fs::create_directories(dir);
    std::ofstream(dir / "train") << "#!/bin/sh\n" << body << "\n";
    chmod((dir / "train").c_str(), 0755);
    Status s = images_->RegisterDirectory("test/" + name, dir);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return "test/" + name;
  }

  json Describe(const std::string& name) {
    Result<json> doc = controller_->Describe({{"TrainingJobName", name}});
    EXPECT_TRUE(doc.ok()) << doc.status().ToString();
    return doc.ok() ? *doc : json::object();
  }

  // Polls Describe until the job is terminal and returns its last document. When `seen` is
  // given, it receives every TrainingJobStatus observed, consecutive repeats collapsed.
  json WaitForTerminal(const std::string& name, std::vector<std::string>* seen = nullptr,
                       milliseconds timeout = milliseconds(20000)) {
    json doc;
    bool done = WaitFor(
        [&] {
          doc = Describe(name);
          std::string status = doc.value("TrainingJobStatus", "");
          if (seen != nullptr && (seen->empty() || seen->back() != status)) {
            seen->push_back(status);
          }
          return IsTerminal(status);
        },
        timeout);
    EXPECT_TRUE(done) << "job " << name << " did not end: " << doc.dump();
    return doc;
  }

  // Every message the job's hosts printed, in stream order.
  std::vector<std::string> LogMessages(const std::string& name) {
    std::vector<std::string> out;
    auto streams = logs_->ListStreams(TrainingJobController::kLogGroup, name + "/");
    if (!streams.ok()) return out;
    for (const metadata::LogStreamInfo& s : *streams) {
      metadata::GetEventsQuery query;
      query.from_head = true;
      auto events = logs_->GetEvents(TrainingJobController::kLogGroup, s.name, query);
      if (!events.ok()) continue;
      for (const metadata::LogEvent& e : *events) out.push_back(e.message);
    }
    return out;
  }

  int CountLog(const std::string& name, const std::string& message) {
    std::vector<std::string> messages = LogMessages(name);
    return static_cast<int>(std::count(messages.begin(), messages.end(), message));
  }

  bool WaitForLog(const std::string& name, const std::string& message) {
    return WaitFor([&] { return CountLog(name, message) > 0; });
  }

  fs::path HostDir(const std::string& name) { return root_ / "jobs" / name / "algo-1"; }

  std::vector<std::string> JobNames() {
    Result<json> listed = controller_->List(json::object());
    EXPECT_TRUE(listed.ok()) << listed.status().ToString();
    return listed.ok() ? SummaryNames(*listed) : std::vector<std::string>{};
  }

  // Create must fail with `code`/`reason`, mention `text`, and store nothing.
  void ExpectCreateRejected(const json& request, StatusCode code, const std::string& reason,
                            const std::string& text) {
    std::vector<std::string> before = JobNames();
    Result<json> created = controller_->Create(request);
    ASSERT_FALSE(created.ok()) << "accepted: " << request.dump();
    EXPECT_EQ(created.status().code(), code) << created.status().ToString();
    EXPECT_EQ(created.status().reason(), reason) << created.status().ToString();
    EXPECT_NE(created.status().message().find(text), std::string::npos)
        << "'" << text << "' not in: " << created.status().message();
    EXPECT_EQ(JobNames(), before);
  }

  // A job that reads its channel, prints metrics, writes a model and exits 0.
  void ExpectSuccessfulJobCompletes(const std::string& name) {
    std::string image = Image("ok", R"sh(echo "channel has $(ls "$SM_CHANNEL_TRAIN")"
echo "model dir $SM_MODEL_DIR"
echo "train:loss=0.5"
echo "train:loss=0.25"
echo trained > "$SM_MODEL_DIR/model.txt")sh");
    json request = TrainingRequest(name, image);
    request["AlgorithmSpecification"]["MetricDefinitions"] =
        json::array({{{"Name", "train:loss"}, {"Regex", "train:loss=([0-9.]+)"}}});
    Result<json> created = controller_->Create(request);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    EXPECT_EQ((*created)["TrainingJobArn"],
              "arn:aws:sagemaker:us-east-1:000000000000:training-job/" + name);

    json doc = WaitForTerminal(name);
    ASSERT_EQ(doc["TrainingJobStatus"], "Completed") << doc.dump(2);
    EXPECT_EQ(doc["SecondaryStatus"], "Completed");
    EXPECT_FALSE(doc.contains("FailureReason"));

    // SecondaryStatusTransitions: in order, each closed where the next one opens.
    EXPECT_EQ(SecondaryStatuses(doc),
              (std::vector<std::string>{"Starting", "Downloading", "Training", "Uploading",
                                        "Completed"}));
    const json& transitions = doc["SecondaryStatusTransitions"];
    for (std::size_t i = 0; i < transitions.size(); ++i) {
      const json& t = transitions[i];
      ASSERT_TRUE(t.contains("EndTime")) << t.dump();
      EXPECT_GE(t["EndTime"].get<double>(), t["StartTime"].get<double>()) << t.dump();
      EXPECT_FALSE(t.value("StatusMessage", "").empty()) << t.dump();
      if (i + 1 < transitions.size()) {
        EXPECT_DOUBLE_EQ(t["EndTime"].get<double>(), transitions[i + 1]["StartTime"].get<double>())
            << t.dump() << " then " << transitions[i + 1].dump();
      }
    }
    EXPECT_DOUBLE_EQ(doc["TrainingEndTime"].get<double>(),
                     transitions.back()["EndTime"].get<double>());
    EXPECT_GE(doc["TrainingEndTime"].get<double>(), doc["TrainingStartTime"].get<double>());
    EXPECT_GE(doc["TrainingStartTime"].get<double>(), doc["CreationTime"].get<double>());
    EXPECT_GE(doc["TrainingTimeInSeconds"].get<int>(), 1);

    // The store's history records the same sequence, one transaction each.
    Result<std::vector<metadata::Transition>> history =
        store_->History(TrainingJobController::kKind, name);
    ASSERT_TRUE(history.ok()) << history.status().ToString();
    std::vector<std::string> secondary, primary;
    for (const metadata::Transition& t : *history) {
      secondary.push_back(t.secondary_status);
      primary.push_back(t.status);
    }
    EXPECT_EQ(secondary, SecondaryStatuses(doc));
    EXPECT_EQ(primary, (std::vector<std::string>{"InProgress", "InProgress", "InProgress",
                                                 "InProgress", "Completed"}));

    // The model artifact exists where ModelArtifacts points.
    std::string model_uri = doc["ModelArtifacts"].value("S3ModelArtifacts", "");
    EXPECT_EQ(model_uri, "s3://output/jobs/" + name + "/output/model.tar.gz");
    Result<storage::S3Location> model = storage::ParseS3Uri(model_uri);
    ASSERT_TRUE(model.ok()) << model_uri;
    Result<storage::ObjectInfo> info = objects_->Stat(model->bucket, model->key);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_GT(info->size, 0u);

    // Output went to the LogStore; metric matches to the series and the final metrics.
    EXPECT_EQ(CountLog(name, "channel has part-0.csv"), 1);
    std::string ml_dir = runtime_->sandboxed() ? "/opt/ml" : (HostDir(name) / "ml").string();
    EXPECT_EQ(CountLog(name, "model dir " + ml_dir + "/model"), 1);
    auto points = logs_->Metrics(TrainingJobController::kKind, name);
    ASSERT_TRUE(points.ok());
    ASSERT_EQ(points->size(), 2u);
    EXPECT_DOUBLE_EQ((*points)[1].value, 0.25);
    ASSERT_EQ(doc["FinalMetricDataList"].size(), 1u) << doc.dump(2);
    EXPECT_EQ(doc["FinalMetricDataList"][0]["MetricName"], "train:loss");
    EXPECT_DOUBLE_EQ(doc["FinalMetricDataList"][0]["Value"].get<double>(), 0.25);

    // The working directory goes once the job has ended.
    EXPECT_TRUE(WaitFor([&] { return !fs::exists(root_ / "jobs" / name); }));
  }

  bool use_bwrap_ = true;
  milliseconds poll_interval_{10};
  int max_running_instances_ = 64;
  fs::path root_;
  std::unique_ptr<metadata::MetadataStore> store_;
  std::unique_ptr<metadata::LogStore> logs_;
  std::unique_ptr<storage::ObjectStore> objects_;
  std::unique_ptr<runtime::HostProcessRuntime> runtime_;
  std::unique_ptr<ImageRegistry> images_;
  std::unique_ptr<TrainingJobController> controller_;
};

// The same controller, with hosts as plain child processes instead of bubblewrap sandboxes.
class TrainingJobControllerPlainProcessTest : public TrainingJobControllerTest {
 public:
  TrainingJobControllerPlainProcessTest() { use_bwrap_ = false; }
};

// --- Create: the checks the service model cannot express ------------------------------------

TEST_F(TrainingJobControllerTest, CreateWithoutTrainingImageIsRejected) {
  json request = TrainingRequest("no-image", "unused");
  request["AlgorithmSpecification"].erase("TrainingImage");
  ExpectCreateRejected(request, StatusCode::kInvalidArgument, "ValidationException",
                       "TrainingImage");
}

TEST_F(TrainingJobControllerTest, CreateWithUnknownImageNamesTheField) {
  ExpectCreateRejected(TrainingRequest("unknown-image", "no-such/image:1"),
                       StatusCode::kInvalidArgument, "ValidationException",
                       "algorithmSpecification.trainingImage");
}

TEST_F(TrainingJobControllerTest, BuiltinImageJobCarriesTheAlgorithmsMetricDefinitions) {
  ASSERT_TRUE(controller_->Create(TrainingRequest("builtin-metrics", "hearth/kmeans")).ok());
  json defs = Describe("builtin-metrics")["AlgorithmSpecification"]["MetricDefinitions"];
  ASSERT_EQ(defs.size(), 1u) << defs.dump();
  EXPECT_EQ(defs[0]["Name"], "test:msd");
  EXPECT_EQ(defs[0]["Regex"], "msd=(\\S+)");
}

TEST_F(TrainingJobControllerTest, UserMetricDefinitionsOfABuiltinJobAreKept) {
  json request = TrainingRequest("builtin-own-metrics", "hearth/kmeans");
  request["AlgorithmSpecification"]["MetricDefinitions"] = {{{"Name", "mine"}, {"Regex", "m=(.*)"}}};
  ASSERT_TRUE(controller_->Create(request).ok());
  json defs = Describe("builtin-own-metrics")["AlgorithmSpecification"]["MetricDefinitions"];
  ASSERT_EQ(defs.size(), 1u) << defs.dump();
  EXPECT_EQ(defs[0]["Name"], "mine");
}

TEST_F(TrainingJobControllerPlainProcessTest, NetworkIsolationWithoutASandboxIsRefused) {
  json request = TrainingRequest("isolated", Image("noop", "exit 0"));
  request["EnableNetworkIsolation"] = true;
  ExpectCreateRejected(request, StatusCode::kInvalidArgument, "ValidationException",
                       "EnableNetworkIsolation");
}

TEST_F(TrainingJobControllerTest, CreateBeyondTheInstanceLimitIsResourceLimitExceeded) {
  max_running_instances_ = 2;
  controller_ = MakeController();
  json two = TrainingRequest("two-hosts", Image("sleeper", "exec sleep 60"));
  two["ResourceConfig"]["InstanceCount"] = 2;
  ASSERT_TRUE(controller_->Create(two).ok());
  ExpectCreateRejected(TrainingRequest("one-more", Image("sleeper", "exec sleep 60")),
                       StatusCode::kResourceExhausted, "ResourceLimitExceeded",
                       "current utilization of 2 Instances and a request delta of 1");
  // Once the running job ends, its instances are free again.
  ASSERT_TRUE(controller_->Stop({{"TrainingJobName", "two-hosts"}}).ok());
  WaitForTerminal("two-hosts");
  EXPECT_TRUE(controller_->Create(TrainingRequest("one-more", Image("noop", "exit 0"))).ok());
  WaitForTerminal("one-more");
}

TEST_F(TrainingJobControllerTest, CreateRejectsDuplicateChannelNames) {
  json request = TrainingRequest("dup-channels", Image("noop", "exit 0"));
  request["InputDataConfig"].push_back(Channel("train", "s3://input/train/"));
  ExpectCreateRejected(request, StatusCode::kInvalidArgument, "ValidationException",
                       "'train' appears more than once");
}

TEST_F(TrainingJobControllerTest, CreateRejectsChannelInMissingBucket) {
  json request = TrainingRequest("missing-bucket", Image("noop", "exit 0"));
  request["InputDataConfig"] = json::array({Channel("train", "s3://no-such-bucket/train/")});
  ExpectCreateRejected(request, StatusCode::kInvalidArgument, "ValidationException",
                       "s3://no-such-bucket/train/");
}

TEST_F(TrainingJobControllerTest, CreateRejectsChannelWithNoObjectsUnderPrefix) {
  json request = TrainingRequest("empty-prefix", Image("noop", "exit 0"));
  request["InputDataConfig"] = json::array({Channel("train", "s3://input/nothing-here/")});
  ExpectCreateRejected(request, StatusCode::kInvalidArgument, "ValidationException",
                       "No S3 objects found");
}

TEST_F(TrainingJobControllerTest, CreateRejectsMissingOutputBucket) {
  json request = TrainingRequest("missing-output", Image("noop", "exit 0"));
  request["OutputDataConfig"]["S3OutputPath"] = "s3://no-such-output/models";
  ExpectCreateRejected(request, StatusCode::kInvalidArgument, "ValidationException",
                       "no-such-output");
}

TEST_F(TrainingJobControllerTest, CreateRejectsMetricRegexThatDoesNotCompile) {
  json request = TrainingRequest("bad-regex", Image("noop", "exit 0"));
  request["AlgorithmSpecification"]["MetricDefinitions"] =
      json::array({{{"Name", "loss"}, {"Regex", "loss=([0-9."}}});
  ExpectCreateRejected(request, StatusCode::kInvalidArgument, "ValidationException",
                       "MetricDefinitions regex for metric 'loss'");
}

TEST_F(TrainingJobControllerTest, CreateRejectsMetricRegexWithoutCaptureGroup) {
  json request = TrainingRequest("no-group", Image("noop", "exit 0"));
  request["AlgorithmSpecification"]["MetricDefinitions"] =
      json::array({{{"Name", "loss"}, {"Regex", "loss=[0-9.]+"}}});
  ExpectCreateRejected(request, StatusCode::kInvalidArgument, "ValidationException",
                       "capture group");
}

TEST_F(TrainingJobControllerTest, CreateRejectsDuplicateNameAsResourceInUse) {
  std::string image = Image("noop", "exit 0");
  ASSERT_TRUE(controller_->Create(TrainingRequest("twice", image)).ok());
  json first = Describe("twice");
  json again = TrainingRequest("twice", image);
  again["StoppingCondition"]["MaxRuntimeInSeconds"] = 5;
  ExpectCreateRejected(again, StatusCode::kAlreadyExists, "ResourceInUse", "already exists");
  EXPECT_EQ(Describe("twice")["StoppingCondition"], first["StoppingCondition"]);
  WaitForTerminal("twice");
}

TEST_F(TrainingJobControllerTest, DescribeOfUnknownJobIsValidationException) {
  Result<json> doc = controller_->Describe({{"TrainingJobName", "ghost"}});
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(doc.status().reason(), "ValidationException");
}

// --- State transitions -----------------------------------------------------------------------

TEST_F(TrainingJobControllerTest, SuccessfulJobCompletesThroughEverySecondaryStatus) {
  ExpectSuccessfulJobCompletes("ok-sandboxed");
}

TEST_F(TrainingJobControllerPlainProcessTest, SuccessfulJobCompletesWithoutSandbox) {
  ASSERT_FALSE(runtime_->sandboxed());
  ExpectSuccessfulJobCompletes("ok-plain");
}

TEST_F(TrainingJobControllerTest, OutputPrintedJustBeforeExitIsIngestedInFull) {
  // 200 lines of 60,000 characters: several bounded reads of the host's output, all
  // printed between two polls of a slow monitor, so that only the reads after the exit can
  // catch them.
  poll_interval_ = milliseconds(2000);
  controller_ = MakeController();
  ASSERT_TRUE(
      controller_
          ->Create(TrainingRequest("burst", Image("burst",
                                                  "head -c 12000000 /dev/zero | tr '\\0' x | "
                                                  "fold -w 60000; echo; echo the-end")))
          .ok());
  json doc = WaitForTerminal("burst");
  ASSERT_EQ(doc["TrainingJobStatus"], "Completed") << doc.dump(2);
  std::vector<std::string> messages = LogMessages("burst");
  ASSERT_EQ(messages.size(), 201u);
  EXPECT_EQ(messages.back(), "the-end");
  EXPECT_EQ(messages.front(), std::string(60000, 'x'));
}

TEST_F(TrainingJobControllerTest, FinishedJobsKeepNoMonitorThread) {
  for (const char* name : {"done-1", "done-2", "done-3"}) {
    ASSERT_TRUE(controller_->Create(TrainingRequest(name, Image("noop", "exit 0"))).ok());
  }
  for (const char* name : {"done-1", "done-2", "done-3"}) WaitForTerminal(name);
  EXPECT_TRUE(WaitFor([&] { return controller_->MonitoredJobs() == 0; }))
      << controller_->MonitoredJobs() << " monitors left";
}

TEST_F(TrainingJobControllerTest, NonZeroExitFailsTheJobWithItsExitCode) {
  ASSERT_TRUE(controller_->Create(TrainingRequest("exit-3", Image("exit3", "exit 3"))).ok());
  json doc = WaitForTerminal("exit-3");
  EXPECT_EQ(doc["TrainingJobStatus"], "Failed");
  EXPECT_EQ(doc["SecondaryStatus"], "Failed");
  EXPECT_NE(doc.value("FailureReason", "").find("ExitCode 3"), std::string::npos) << doc.dump(2);
  EXPECT_FALSE(doc.contains("ModelArtifacts"));
  const json& last = doc["SecondaryStatusTransitions"].back();
  EXPECT_EQ(last["Status"], "Failed");
  EXPECT_TRUE(last.contains("EndTime"));
  EXPECT_TRUE(doc.contains("TrainingEndTime"));
  Result<std::vector<metadata::Transition>> history =
      store_->History(TrainingJobController::kKind, "exit-3");
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->back().status, "Failed");
}

TEST_F(TrainingJobControllerTest, FailureFileTextBecomesTheFailureReason) {
  std::string image =
      Image("failfile", R"sh(echo "ValueError: column 3 is not numeric" > "$SM_OUTPUT_DIR/failure"
exit 1)sh");
  ASSERT_TRUE(controller_->Create(TrainingRequest("fail-file", image)).ok());
  json doc = WaitForTerminal("fail-file");
  EXPECT_EQ(doc["TrainingJobStatus"], "Failed");
  EXPECT_EQ(doc["FailureReason"], "ValueError: column 3 is not numeric");
}

TEST_F(TrainingJobControllerTest, OneFailingHostFailsTheJobAndStopsTheOthers) {
  std::string image = Image("host2fails", R"sh(echo "host $SM_CURRENT_HOST"
if [ "$SM_CURRENT_HOST" = algo-2 ]; then exit 3; fi
while :; do sleep 0.05; done)sh");
  json request = TrainingRequest("two-hosts", image);
  request["ResourceConfig"]["InstanceCount"] = 2;
  ASSERT_TRUE(controller_->Create(request).ok());
  json doc = WaitForTerminal("two-hosts");
  EXPECT_EQ(doc["TrainingJobStatus"], "Failed");
  // The reason names the host that failed, not the one the controller then stopped.
  EXPECT_NE(doc.value("FailureReason", "").find("ExitCode 3 on algo-2"), std::string::npos)
      << doc.value("FailureReason", "");
  EXPECT_EQ(CountLog("two-hosts", "host algo-1"), 1);
  EXPECT_EQ(CountLog("two-hosts", "host algo-2"), 1);
  auto streams = logs_->ListStreams(TrainingJobController::kLogGroup, "two-hosts/");
  ASSERT_TRUE(streams.ok());
  EXPECT_EQ(streams->size(), 2u);
}

TEST_F(TrainingJobControllerTest, StopMovesThroughStoppingToStoppedAndNeverBack) {
  // Saves its work for a moment on SIGTERM, so that Stopping lasts long enough to be seen.
  std::string image = Image("graceful", R"sh(trap 'echo saving; sleep 0.5; exit 0' TERM
echo ready
while :; do sleep 0.05; done)sh");
  ASSERT_TRUE(controller_->Create(TrainingRequest("stop-me", image)).ok());
  ASSERT_TRUE(WaitForLog("stop-me", "ready"));

  Result<json> stopped = controller_->Stop({{"TrainingJobName", "stop-me"}});
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  std::vector<std::string> seen;
  json doc = WaitForTerminal("stop-me", &seen);
  EXPECT_EQ(seen, (std::vector<std::string>{"Stopping", "Stopped"}));
  EXPECT_EQ(doc["TrainingJobStatus"], "Stopped");
  EXPECT_EQ(doc["SecondaryStatus"], "Stopped");
  EXPECT_FALSE(doc.contains("FailureReason"));
  EXPECT_EQ(CountLog("stop-me", "saving"), 1);
  // Artifacts are still uploaded when a job is stopped.
  EXPECT_TRUE(doc.contains("ModelArtifacts")) << doc.dump(2);

  Result<std::vector<metadata::Transition>> history =
      store_->History(TrainingJobController::kKind, "stop-me");
  ASSERT_TRUE(history.ok());
  std::vector<std::string> statuses;
  for (const metadata::Transition& t : *history) statuses.push_back(t.status);
  auto stopping = std::find(statuses.begin(), statuses.end(), "Stopping");
  ASSERT_NE(stopping, statuses.end());
  EXPECT_EQ(std::find(stopping, statuses.end(), "InProgress"), statuses.end());
  EXPECT_EQ(statuses.back(), "Stopped");
}

TEST_F(TrainingJobControllerTest, StopRightAfterCreateNeverReturnsToInProgress) {
  std::string image = Image("loop", R"sh(while :; do sleep 0.05; done)sh");
  ASSERT_TRUE(controller_->Create(TrainingRequest("stop-early", image)).ok());
  ASSERT_TRUE(controller_->Stop({{"TrainingJobName", "stop-early"}}).ok());
  std::vector<std::string> seen;
  json doc = WaitForTerminal("stop-early", &seen);
  // The job may end before the first poll: what is seen is a tail of Stopping, Stopped.
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "InProgress"), 0);
  EXPECT_EQ(doc["TrainingJobStatus"], "Stopped");
  EXPECT_EQ(doc["SecondaryStatus"], "Stopped");
  Result<std::vector<metadata::Transition>> history =
      store_->History(TrainingJobController::kKind, "stop-early");
  ASSERT_TRUE(history.ok());
  std::vector<std::string> statuses;
  for (const metadata::Transition& t : *history) statuses.push_back(t.status);
  // Progress the monitor recorded before the stop may precede it, but none follows it.
  auto stopping = std::find(statuses.begin(), statuses.end(), "Stopping");
  ASSERT_NE(stopping, statuses.end());
  EXPECT_EQ(std::find(stopping, statuses.end(), "InProgress"), statuses.end());
  EXPECT_EQ(statuses.back(), "Stopped");
}

TEST_F(TrainingJobControllerTest, StopOfACompletedJobIsValidationException) {
  ASSERT_TRUE(controller_->Create(TrainingRequest("done", Image("noop", "exit 0"))).ok());
  ASSERT_EQ(WaitForTerminal("done")["TrainingJobStatus"], "Completed");
  Result<json> stopped = controller_->Stop({{"TrainingJobName", "done"}});
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(stopped.status().reason(), "ValidationException");
  EXPECT_NE(stopped.status().message().find("Completed"), std::string::npos);
  EXPECT_EQ(Describe("done")["TrainingJobStatus"], "Completed");
}

TEST_F(TrainingJobControllerTest, StopOfAnUnknownJobIsResourceNotFound) {
  Result<json> stopped = controller_->Stop({{"TrainingJobName", "ghost"}});
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(stopped.status().reason(), "ResourceNotFound");
}

TEST_F(TrainingJobControllerTest, MaxRuntimeStopsTheJobAsMaxRuntimeExceeded) {
  std::string image = Image("loop", R"sh(while :; do sleep 0.05; done)sh");
  json request = TrainingRequest("too-long", image);
  request["StoppingCondition"]["MaxRuntimeInSeconds"] = 1;
  ASSERT_TRUE(controller_->Create(request).ok());
  std::vector<std::string> seen;
  json doc = WaitForTerminal("too-long", &seen);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.front(), "InProgress");
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "InProgress"), 1);
  EXPECT_EQ(doc["TrainingJobStatus"], "Stopped");
  Result<std::vector<metadata::Transition>> history =
      store_->History(TrainingJobController::kKind, "too-long");
  ASSERT_TRUE(history.ok());
  ASSERT_GE(history->size(), 2u);
  EXPECT_EQ((*history)[history->size() - 2].status, "Stopping");
  EXPECT_EQ(history->back().status, "Stopped");
  EXPECT_EQ(history->back().secondary_status, "MaxRuntimeExceeded");
  EXPECT_EQ(doc["SecondaryStatus"], "MaxRuntimeExceeded");
  std::vector<std::string> secondary = SecondaryStatuses(doc);
  ASSERT_GE(secondary.size(), 2u);
  EXPECT_EQ(secondary[secondary.size() - 2], "Stopping");
  EXPECT_EQ(secondary.back(), "MaxRuntimeExceeded");
  EXPECT_GE(doc["TrainingEndTime"].get<double>() - doc["TrainingStartTime"].get<double>(), 1.0);
}

TEST_F(TrainingJobControllerTest, ProcessIgnoringSigtermIsKilledAfterTheStopGrace) {
  std::string image = Image("stubborn", R"sh(trap 'echo caught TERM' TERM
echo ready
while :; do sleep 0.05; done)sh");
  ASSERT_TRUE(controller_->Create(TrainingRequest("stubborn", image)).ok());
  ASSERT_TRUE(WaitForLog("stubborn", "ready"));

  auto stop_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(controller_->Stop({{"TrainingJobName", "stubborn"}}).ok());
  EXPECT_EQ(Describe("stubborn")["TrainingJobStatus"], "Stopping");
  EXPECT_TRUE(controller_->Stop({{"TrainingJobName", "stubborn"}}).ok());  // idempotent
  json doc = WaitForTerminal("stubborn");
  auto took = std::chrono::steady_clock::now() - stop_at;
  EXPECT_EQ(doc["TrainingJobStatus"], "Stopped");
  EXPECT_GE(took, kStopGrace);
  EXPECT_LT(took, milliseconds(10000));
  EXPECT_EQ(CountLog("stubborn", "caught TERM"), 1);  // SIGTERM came first, and was ignored
}

// --- Recover ---------------------------------------------------------------------------------

TEST_F(TrainingJobControllerTest, RecoverAdoptsARunningJobWithoutDuplicatingLogs) {
  std::string image = Image("gated", R"sh(echo "before restart"
while [ ! -e "$SM_INPUT_DIR/gate" ]; do sleep 0.02; done
echo "after restart"
echo trained > "$SM_MODEL_DIR/model.txt")sh");
  ASSERT_TRUE(controller_->Create(TrainingRequest("survivor", image)).ok());
  ASSERT_TRUE(WaitForLog("survivor", "before restart"));

  controller_.reset();  // as if the server went away
  fs::path state_dir = HostDir("survivor") / "state";
  Result<runtime::HostStatus> running = runtime_->Poll(state_dir);
  ASSERT_TRUE(running.ok()) << running.status().ToString();
  EXPECT_EQ(running->state, runtime::HostState::kRunning);
  EXPECT_EQ(store_->Get(TrainingJobController::kKind, "survivor")->status, "InProgress");

  controller_ = MakeController();
  ASSERT_TRUE(controller_->Recover().ok());
  std::ofstream(HostDir("survivor") / "ml" / "input" / "gate") << "go\n";

  json doc = WaitForTerminal("survivor");
  EXPECT_EQ(doc["TrainingJobStatus"], "Completed") << doc.dump(2);
  EXPECT_EQ(SecondaryStatuses(doc), (std::vector<std::string>{"Starting", "Downloading", "Training",
                                                              "Uploading", "Completed"}));
  EXPECT_EQ(CountLog("survivor", "before restart"), 1);
  EXPECT_EQ(CountLog("survivor", "after restart"), 1);
  EXPECT_TRUE(doc.contains("ModelArtifacts"));
}

TEST_F(TrainingJobControllerTest, RecoverFinishesAJobWhoseHostEndedWhileNoControllerRan) {
  std::string image = Image("gated", R"sh(echo "before restart"
while [ ! -e "$SM_INPUT_DIR/gate" ]; do sleep 0.02; done
echo "while down"
exit 3)sh");
  ASSERT_TRUE(controller_->Create(TrainingRequest("orphan", image)).ok());
  ASSERT_TRUE(WaitForLog("orphan", "before restart"));

  controller_.reset();
  fs::path state_dir = HostDir("orphan") / "state";
  std::ofstream(HostDir("orphan") / "ml" / "input" / "gate") << "go\n";
  ASSERT_TRUE(WaitFor([&] {
    Result<runtime::HostStatus> st = runtime_->Poll(state_dir);
    return st.ok() && st->state == runtime::HostState::kExited;
  }));

  controller_ = MakeController();
  ASSERT_TRUE(controller_->Recover().ok());
  json doc = WaitForTerminal("orphan");
  EXPECT_EQ(doc["TrainingJobStatus"], "Failed");
  EXPECT_NE(doc.value("FailureReason", "").find("ExitCode 3"), std::string::npos);
  EXPECT_EQ(CountLog("orphan", "before restart"), 1);
  EXPECT_EQ(CountLog("orphan", "while down"), 1);
}

// Supervisors alive for `state_dir` (their command line ends with it).
int SupervisorsOf(const fs::path& state_dir) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ifstream stat_in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(stat_in)), std::istreambuf_iterator<char>());
    const bool zombie = stat.find(") Z ") != std::string::npos;
    if (!zombie && cmdline.find("hearth-supervisor") != std::string::npos &&
        cmdline.find(state_dir.string()) != std::string::npos) {
      ++count;
    }
  }
  return count;
}

TEST_F(TrainingJobControllerTest, RecoverKillsAHostLaunchedButNeverRecorded) {
  std::string image = Image("gated", R"sh(echo "waiting for the gate"
while [ ! -e "$SM_INPUT_DIR/gate" ]; do sleep 0.02; done
echo "through the gate"
echo trained > "$SM_MODEL_DIR/model.txt")sh");
  ASSERT_TRUE(controller_->Create(TrainingRequest("unrecorded", image)).ok());
  ASSERT_TRUE(WaitForLog("unrecorded", "waiting for the gate"));
  controller_.reset();

  // As if the server died after launching the host but before recording "Training".
  Result<metadata::Resource> r = store_->Get(TrainingJobController::kKind, "unrecorded");
  ASSERT_TRUE(r.ok());
  r->internal["phase"] = "Downloading";
  ASSERT_TRUE(store_->Update(*r, std::nullopt).ok());
  const fs::path state_dir = HostDir("unrecorded") / "state";
  ASSERT_EQ(SupervisorsOf(state_dir), 1);

  controller_ = MakeController();
  ASSERT_TRUE(controller_->Recover().ok());
  // The job starts over with one host: the unrecorded one is gone.
  ASSERT_TRUE(WaitFor([&] { return CountLog("unrecorded", "waiting for the gate") == 2; }));
  EXPECT_EQ(SupervisorsOf(state_dir), 1);
  std::ofstream(HostDir("unrecorded") / "ml" / "input" / "gate") << "go\n";
  json doc = WaitForTerminal("unrecorded");
  EXPECT_EQ(doc["TrainingJobStatus"], "Completed") << doc.dump(2);
  EXPECT_EQ(CountLog("unrecorded", "through the gate"), 1);
}

TEST_F(TrainingJobControllerTest, RecoverLeavesTerminalJobsAlone) {
  ASSERT_TRUE(controller_->Create(TrainingRequest("finished", Image("noop", "exit 0"))).ok());
  json before = WaitForTerminal("finished");
  controller_ = MakeController();
  ASSERT_TRUE(controller_->Recover().ok());
  EXPECT_EQ(Describe("finished"), before);
}

// --- List ------------------------------------------------------------------------------------

class TrainingJobControllerListTest : public TrainingJobControllerTest {
 protected:
  // Three ended jobs, created in this order with distinct creation times:
  // list-gamma (Completed), list-alpha (Failed), list-beta (Completed).
  void SetUp() override {
    TrainingJobControllerTest::SetUp();
    if (HasFatalFailure()) return;
    std::string ok = Image("noop", "exit 0");
    std::string fail = Image("exit3", "exit 3");
    std::int64_t last = 0;
    for (const auto& [name, image] :
         {std::pair{"list-gamma", ok}, std::pair{"list-alpha", fail}, std::pair{"list-beta", ok}}) {
      ASSERT_TRUE(WaitFor([&] { return NowMillis() > last + 1; }));
      ASSERT_TRUE(controller_->Create(TrainingRequest(name, image)).ok());
      last = NowMillis();
    }
    for (const char* name : {"list-gamma", "list-alpha", "list-beta"}) {
      docs_[name] = WaitForTerminal(name);
    }
  }

  std::vector<std::string> Names(const json& request) {
    Result<json> listed = controller_->List(request);
    EXPECT_TRUE(listed.ok()) << listed.status().ToString();
    return listed.ok() ? SummaryNames(*listed) : std::vector<std::string>{};
  }

  std::map<std::string, json> docs_;
};

TEST_F(TrainingJobControllerListTest, DefaultsToCreationTimeAscending) {
  EXPECT_EQ(Names(json::object()),
            (std::vector<std::string>{"list-gamma", "list-alpha", "list-beta"}));
}

TEST_F(TrainingJobControllerListTest, SummariesCarryStatusAndTimes) {
  Result<json> listed = controller_->List({{"NameContains", "alpha"}});
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ((*listed)["TrainingJobSummaries"].size(), 1u);
  const json& s = (*listed)["TrainingJobSummaries"][0];
  const json& d = docs_["list-alpha"];
  EXPECT_EQ(s["TrainingJobName"], "list-alpha");
  EXPECT_EQ(s["TrainingJobArn"], d["TrainingJobArn"]);
  EXPECT_EQ(s["TrainingJobStatus"], "Failed");
  EXPECT_EQ(s["SecondaryStatus"], "Failed");
  EXPECT_EQ(s["CreationTime"], d["CreationTime"]);
  EXPECT_EQ(s["TrainingEndTime"], d["TrainingEndTime"]);
  EXPECT_EQ(s["LastModifiedTime"], d["LastModifiedTime"]);
  EXPECT_FALSE(listed->contains("NextToken"));
}

TEST_F(TrainingJobControllerListTest, FiltersByNameCaseInsensitively) {
  EXPECT_EQ(Names({{"NameContains", "ALPHA"}}), (std::vector<std::string>{"list-alpha"}));
  EXPECT_EQ(Names({{"NameContains", "list-"}}).size(), 3u);
  EXPECT_TRUE(Names({{"NameContains", "delta"}}).empty());
}

TEST_F(TrainingJobControllerListTest, FiltersByStatus) {
  EXPECT_EQ(Names({{"StatusEquals", "Failed"}}), (std::vector<std::string>{"list-alpha"}));
  EXPECT_EQ(Names({{"StatusEquals", "Completed"}}),
            (std::vector<std::string>{"list-gamma", "list-beta"}));
  EXPECT_TRUE(Names({{"StatusEquals", "InProgress"}}).empty());
}

TEST_F(TrainingJobControllerListTest, FiltersByCreationTimeExclusively) {
  const json& alpha_created = docs_["list-alpha"]["CreationTime"];
  EXPECT_EQ(Names({{"CreationTimeAfter", alpha_created}}), (std::vector<std::string>{"list-beta"}));
  EXPECT_EQ(Names({{"CreationTimeBefore", alpha_created}}),
            (std::vector<std::string>{"list-gamma"}));
  EXPECT_EQ(Names({{"CreationTimeAfter", docs_["list-gamma"]["CreationTime"]},
                   {"CreationTimeBefore", docs_["list-beta"]["CreationTime"]}}),
            (std::vector<std::string>{"list-alpha"}));
}

TEST_F(TrainingJobControllerListTest, FiltersByLastModifiedTime) {
  double latest = 0;
  for (const auto& [name, d] : docs_)
    latest = std::max(latest, d["LastModifiedTime"].get<double>());
  EXPECT_TRUE(Names({{"LastModifiedTimeAfter", latest}}).empty());
  EXPECT_EQ(Names({{"LastModifiedTimeBefore", latest + 1}}).size(), 3u);
}

TEST_F(TrainingJobControllerListTest, SortsByNameStatusAndCreationTime) {
  EXPECT_EQ(Names({{"SortBy", "Name"}}),
            (std::vector<std::string>{"list-alpha", "list-beta", "list-gamma"}));
  EXPECT_EQ(Names({{"SortBy", "Name"}, {"SortOrder", "Descending"}}),
            (std::vector<std::string>{"list-gamma", "list-beta", "list-alpha"}));
  EXPECT_EQ(Names({{"SortBy", "CreationTime"}, {"SortOrder", "Descending"}}),
            (std::vector<std::string>{"list-beta", "list-alpha", "list-gamma"}));
  // Completed < Failed; ties keep creation order.
  EXPECT_EQ(Names({{"SortBy", "Status"}}),
            (std::vector<std::string>{"list-gamma", "list-beta", "list-alpha"}));
}

TEST_F(TrainingJobControllerListTest, PagesWithNextToken) {
  json request = {{"SortBy", "Name"}, {"MaxResults", 2}};
  Result<json> first = controller_->List(request);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(SummaryNames(*first), (std::vector<std::string>{"list-alpha", "list-beta"}));
  ASSERT_TRUE(first->contains("NextToken"));

  request["NextToken"] = (*first)["NextToken"];
  Result<json> second = controller_->List(request);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(SummaryNames(*second), (std::vector<std::string>{"list-gamma"}));
  EXPECT_FALSE(second->contains("NextToken"));
}

TEST_F(TrainingJobControllerListTest, BadNextTokenIsValidationException) {
  Result<json> listed = controller_->List({{"NextToken", "definitely-not-a-token"}});
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(listed.status().reason(), "ValidationException");
}

}  // namespace
}  // namespace hearth::control
