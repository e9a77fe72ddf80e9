#include "control/transform_jobs.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/wait.h"
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

// A model server under the inference contract, steered by environment variables:
//   MODE           prefix (default): each input line L answers "L|<port>"; sum: each CSV line
//                  answers the sum of its fields; len: the answer is the body's length
//   EXEC_PARAMS    the body of GET /execution-parameters (404 without it)
//   PROBE_DIR      each request is appended to PROBE_DIR/requests.log as JSON: body, headers,
//                  requests in flight, attempt number for that body, batch variables
//   FAIL_ON        a body holding this text is answered FAIL_STATUS (default 500)
//   FLAKY_TIMES    the first N attempts of each body are answered 503
//   DELAY_MS       rows "r<i>,...": row i waits (12 - i) * DELAY_MS, so earlier rows answer later
//   HANG_ON        a body holding this text is not answered: while the file HANG_WHILE
//                  exists when that is set, else for 300 s
// It prints the greeting found in its model directory when it starts.
constexpr char kModelPy[] = R"PY(
import http.server, json, os, threading, time
env = os.environ
port = int(env["SAGEMAKER_BIND_TO_PORT"])
probe = env.get("PROBE_DIR")
lock = threading.Lock()
state = {"inflight": 0, "seen": {}}
try:
    print("model says " + open(os.path.join(env["SM_MODEL_DIR"], "greeting")).read(), flush=True)
except OSError:
    print("model has no greeting", flush=True)
WATCHED = ["SAGEMAKER_BATCH", "SAGEMAKER_MAX_PAYLOAD_IN_MB", "SAGEMAKER_BATCH_STRATEGY",
           "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", "JOB_VAR", "MODEL_VAR"]

def transform(body):
    mode = env.get("MODE", "prefix")
    if mode == "len":
        return b"%d" % len(body)
    lines = body.decode().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if mode == "sum":
        return "".join("%g\n" % sum(float(x) for x in l.split(",")) for l in lines).encode()
    return "".join("%s|%d\n" % (l, port) for l in lines).encode()

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def answer(self, status, body, ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/ping":
            return self.answer(200, b"")
        if self.path == "/execution-parameters" and "EXEC_PARAMS" in env:
            return self.answer(200, env["EXEC_PARAMS"].encode(), "application/json")
        self.answer(404, b"")
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        text = body.decode(errors="replace")
        with lock:
            state["inflight"] += 1
            attempt = state["seen"].get(body, 0) + 1
            state["seen"][body] = attempt
            if probe:
                with open(os.path.join(probe, "requests.log"), "a") as f:
                    f.write(json.dumps({
                        "port": port, "body": text, "inflight": state["inflight"],
                        "attempt": attempt, "content_type": self.headers.get("Content-Type"),
                        "accept": self.headers.get("Accept"),
                        "env": {k: env[k] for k in WATCHED if k in env}}) + "\n")
        try:
            if env.get("HANG_ON") and env["HANG_ON"] in text:
                if env.get("HANG_WHILE"):
                    while os.path.exists(env["HANG_WHILE"]):
                        time.sleep(0.02)
                else:
                    time.sleep(300)
            if env.get("DELAY_MS"):
                row = int(text.split(",")[0][1:])
                time.sleep(max(0, 12 - row) * int(env["DELAY_MS"]) / 1000.0)
            if env.get("FAIL_ON") and env["FAIL_ON"] in text:
                return self.answer(int(env.get("FAIL_STATUS", "500")),
                                   ("model failed on %r" % text.strip()).encode())
            if attempt <= int(env.get("FLAKY_TIMES", "0")):
                return self.answer(503, b"busy, try again")
            self.answer(200, transform(body), env.get("RESPONSE_TYPE", "text/csv"))
        finally:
            with lock:
                state["inflight"] -= 1

http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
)PY";

bool IsTerminal(const std::string& status) {
  return status == "Completed" || status == "Failed" || status == "Stopped";
}

// Real components throughout: SQLite stores, a LocalObjectStore, and model servers run by the
// real hearth-supervisor. Without bubblewrap, so that the model can write its probe file where
// the test reads it (the sandboxed path is the endpoints' and the e2e tests').
class TransformJobControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "hearth-transforms-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    fs::create_directories(root_ / "probe");
    auto store = metadata::OpenSqliteMetadataStore({.path = root_ / "metadata.db"});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    auto logs = metadata::OpenSqliteLogStore({.path = root_ / "metadata.db"});
    ASSERT_TRUE(logs.ok()) << logs.status().ToString();
    logs_ = std::move(logs).value();
    auto objects = storage::OpenLocalObjectStore({.root = root_ / "objects"});
    ASSERT_TRUE(objects.ok()) << objects.status().ToString();
    objects_ = std::move(objects).value();
    for (const char* bucket : {"models", "input", "output"}) {
      ASSERT_TRUE(objects_->CreateBucket(bucket).ok());
    }
    fs::create_directories(root_ / "trained");
    std::ofstream(root_ / "trained" / "greeting") << "hello";
    ASSERT_TRUE(
        runtime::PackDirectoryToObject(root_ / "trained", *objects_, {"models", "m/model.tar.gz"})
            .ok());

    runtime_ = std::make_unique<runtime::HostProcessRuntime>(
        runtime::HostProcessOptions{.supervisor_path = HEARTH_SUPERVISOR_PATH, .use_bwrap = false});
    images_ = std::make_unique<ImageRegistry>(*store_, std::map<std::string, BuiltinImage>{});
    models_ = std::make_unique<ModelController>(AccountContext{}, *store_, *objects_, *images_);
    controller_ = MakeController();

    fs::path dir = root_ / "images" / "model";
    fs::create_directories(dir);
    std::ofstream(dir / "model.py") << kModelPy;
    std::ofstream(dir / "serve")
        << "#!/bin/sh\nexec /usr/bin/python3 \"$(dirname \"$0\")/model.py\"\n";
    chmod((dir / "serve").c_str(), 0755);
    ASSERT_TRUE(images_->RegisterDirectory("test/model", dir).ok());
  }

  void TearDown() override {
    // Leave no model server behind: stop what still runs and wait for it to end.
    if (controller_ != nullptr) {
      auto all = store_->List(TransformJobController::kKind);
      if (all.ok()) {
        for (const auto& r : *all) {
          if (IsTerminal(r.status)) continue;
          controller_->Stop({{"TransformJobName", r.name}}).status().IgnoreError();
          WaitDone(r.name);
        }
      }
    }
    controller_.reset();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  std::unique_ptr<TransformJobController> MakeController() {
    TransformJobOptions options;
    options.transforms_dir = root_ / "transforms";
    options.hearth_binary = "/bin/false";  // no built-in algorithm serves here
    options.stop_grace = milliseconds(2000);
    options.poll_interval = milliseconds(20);
    options.startup_timeout = milliseconds(20000);
    options.retry_backoff = milliseconds(10);
    options.max_running_instances = 8;
    return std::make_unique<TransformJobController>(options, *store_, *logs_, *objects_, *runtime_,
                                                    *images_);
  }

  // A model of the test image; `env` is its container's Environment (PROBE_DIR is added).
  void Model(const std::string& name, json env = json::object(), bool with_data = true) {
    env["PROBE_DIR"] = (root_ / "probe").string();
    json container = {{"Image", "test/model"}, {"Environment", env}};
    if (with_data) container["ModelDataUrl"] = "s3://models/m/model.tar.gz";
    auto model = models_->Create(
        {{"ModelName", name}, {"ExecutionRoleArn", kRole}, {"PrimaryContainer", container}});
    ASSERT_TRUE(model.ok()) << model.status().ToString();
  }

  void Put(const std::string& bucket, const std::string& key, const std::string& data) {
    ASSERT_TRUE(objects_->PutObject(bucket, key, data).ok());
  }

  std::string Get(const std::string& bucket, const std::string& key) {
    auto data = objects_->GetObject(bucket, key);
    EXPECT_TRUE(data.ok()) << bucket << "/" << key << ": " << data.status().ToString();
    return data.ok() ? *data : "";
  }

  bool Exists(const std::string& bucket, const std::string& key) {
    return objects_->Stat(bucket, key).ok();
  }

  // A CreateTransformJob input reading s3://input/<prefix> and writing s3://output/<name>.
  static json Request(const std::string& name, const std::string& model, const std::string& prefix,
                      json extra = json::object()) {
    json r = {
        {"TransformJobName", name},
        {"ModelName", model},
        {"TransformInput",
         {{"DataSource",
           {{"S3DataSource", {{"S3DataType", "S3Prefix"}, {"S3Uri", "s3://input/" + prefix}}}}},
          {"ContentType", "text/csv"},
          {"SplitType", "Line"}}},
        {"TransformOutput", {{"S3OutputPath", "s3://output/" + name}, {"AssembleWith", "Line"}}},
        {"TransformResources", {{"InstanceType", "ml.m5.large"}, {"InstanceCount", 1}}}};
    r.merge_patch(extra);
    return r;
  }

  json Describe(const std::string& name) {
    auto doc = controller_->Describe({{"TransformJobName", name}});
    EXPECT_TRUE(doc.ok()) << doc.status().ToString();
    return doc.ok() ? *doc : json::object();
  }

  json Internal(const std::string& name) {
    auto r = store_->Get(TransformJobController::kKind, name);
    return r.ok() ? r->internal : json::object();
  }

  // Polls until the job is in a terminal state; returns its document.
  json WaitDone(const std::string& name, milliseconds timeout = milliseconds(60000)) {
    json doc;
    bool done = WaitFor(
        [&] {
          doc = Describe(name);
          return IsTerminal(doc.value("TransformJobStatus", ""));
        },
        timeout, milliseconds(20));
    EXPECT_TRUE(done) << "transform job " << name << " did not end: " << doc.dump();
    return doc;
  }

  json CreateAndWait(const json& request) {
    auto created = controller_->Create(request);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    if (!created.ok()) return json::object();
    return WaitDone(request["TransformJobName"]);
  }

  // The requests the model servers received, in the order they logged them.
  std::vector<json> Requests() {
    std::vector<json> out;
    std::ifstream in(root_ / "probe" / "requests.log");
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
    return out;
  }

  // Every log event of the job, as "<stream> <message>".
  std::vector<std::string> LogLines(const std::string& job) {
    std::vector<std::string> out;
    const std::string group(TransformJobController::kLogGroup);
    auto streams = logs_->ListStreams(group, job + "/");
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

  static bool AnyContains(const std::vector<std::string>& lines, const std::string& text) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(text) != std::string::npos; });
  }

  void ExpectRejected(const json& request, const std::string& message_part) {
    auto created = controller_->Create(request);
    ASSERT_FALSE(created.ok()) << "created " << request.dump();
    EXPECT_EQ(created.status().reason(), "ValidationException");
    EXPECT_NE(created.status().message().find(message_part), std::string::npos)
        << created.status().message();
  }

  fs::path root_;
  std::unique_ptr<metadata::MetadataStore> store_;
  std::unique_ptr<metadata::LogStore> logs_;
  std::unique_ptr<storage::ObjectStore> objects_;
  std::unique_ptr<runtime::HostProcessRuntime> runtime_;
  std::unique_ptr<ImageRegistry> images_;
  std::unique_ptr<ModelController> models_;
  std::unique_ptr<TransformJobController> controller_;
};

TEST_F(TransformJobControllerTest, CreateRejectsWhatCannotRunAndStoresNothing) {
  Put("input", "data/a.csv", "1,2\n");
  ExpectRejected(Request("j", "ghost", "data/"),
                 std::string("Could not find model \"") + kArnPrefix + "model/ghost\".");
  Model("m");
  ExpectRejected(Request("j", "m", "data/", {{"MaxPayloadInMB", 101}}),
                 "Value '101' at 'maxPayloadInMB'");
  ExpectRejected(Request("j", "m", "data/", {{"MaxConcurrentTransforms", 20}}),
                 "MaxConcurrentTransforms (20) x MaxPayloadInMB (6, the default) = 120 MB");
  ExpectRejected(
      Request("j", "m", "data/", {{"MaxConcurrentTransforms", 4}, {"MaxPayloadInMB", 30}}),
      "exceeds the limit of 100 MB");
  ExpectRejected(Request("j", "m", "nothing-here/"),
                 "No S3 objects found under S3 URL \"s3://input/nothing-here/\"");
  ExpectRejected(Request("j", "m", "data/", {{"DataProcessing", {{"InputFilter", "$["}}}}),
                 "DataProcessing.InputFilter");
  ExpectRejected(
      Request("j", "m", "data/",
              {{"TransformInput",
                {{"DataSource", {{"S3DataSource", {{"S3DataType", "AugmentedManifestFile"}}}}}}}}),
      "AugmentedManifestFile");
  ExpectRejected(
      Request("j", "m", "data/", {{"TransformOutput", {{"S3OutputPath", "s3://nobucket/x"}}}}),
      "The bucket 'nobucket' in TransformOutput.S3OutputPath does not exist.");
  ExpectRejected(Request("j", "m", "data/",
                         {{"DataCaptureConfig", {{"DestinationS3Uri", "s3://output/capture"}}}}),
                 "DataCaptureConfig");
  auto all = store_->List(TransformJobController::kKind);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
}

TEST_F(TransformJobControllerTest, NamesAreUniqueWithoutCase) {
  Put("input", "data/a.csv", "1,2\n");
  Model("m");
  ASSERT_TRUE(controller_->Create(Request("Batch-1", "m", "data/")).ok());
  ExpectRejected(Request("batch-1", "M", "data/"),
                 std::string("Job name must be unique within an AWS account and region, and a job "
                             "with this name already exists (") +
                     kArnPrefix + "transform-job/batch-1)");
  // Describe finds it under either spelling.
  EXPECT_EQ(WaitDone("BATCH-1")["TransformJobName"], "Batch-1");
}

TEST_F(TransformJobControllerTest, LineMultiRecordSpreadsObjectsOverInstancesInOrder) {
  // Nested keys keep their path under the output prefix; a folder marker is not an input.
  Put("input", "data/a.csv", "1,2\n3,4\n");
  Put("input", "data/sub/b.csv", "5,6\n7,8\n9,10");  // no final newline: still a record
  Put("input", "data/sub/c.csv", "11,12\n");
  Put("input", "data/sub/", "");
  Model("m",
        {{"EXEC_PARAMS",
          R"({"MaxConcurrentTransforms":2,"BatchStrategy":"MULTI_RECORD","MaxPayloadInMB":6})"},
         {"MODEL_VAR", "model"}});
  json doc =
      CreateAndWait(Request("lines", "m", "data",
                            {{"TransformResources", {{"InstanceCount", 2}}},
                             {"TransformOutput", {{"Accept", "text/csv"}}},
                             {"Environment", {{"JOB_VAR", "job"}, {"MODEL_VAR", "job wins"}}}}));
  ASSERT_EQ(doc["TransformJobStatus"], "Completed") << doc.dump();

  // Each object went to one instance: all its lines carry one port.
  auto lines_of = [&](const std::string& key) {
    std::vector<std::string> lines;
    std::istringstream in(Get("output", key));
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
  };
  auto a = lines_of("lines/a.csv.out");
  auto b = lines_of("lines/sub/b.csv.out");
  auto c = lines_of("lines/sub/c.csv.out");
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(b.size(), 3u);
  ASSERT_EQ(c.size(), 1u);
  const std::string port_b = b[0].substr(b[0].find('|'));
  EXPECT_EQ(b[0], "5,6" + port_b);
  EXPECT_EQ(b[1], "7,8" + port_b);
  EXPECT_EQ(b[2], "9,10" + port_b);
  EXPECT_EQ(a[0].substr(0, 4), "1,2|");
  EXPECT_EQ(a[1], "3,4" + a[0].substr(a[0].find('|')));
  EXPECT_EQ(c[0].substr(0, 6), "11,12|");
  EXPECT_FALSE(Exists("output", "lines/sub/.out"));

  // MultiRecord: one request per object here, with the job's headers and batch variables.
  auto requests = Requests();
  ASSERT_EQ(requests.size(), 3u);
  std::set<int> ports;
  for (const json& r : requests) {
    ports.insert(r["port"].get<int>());
    EXPECT_EQ(r["content_type"], "text/csv");
    EXPECT_EQ(r["accept"], "text/csv");
    EXPECT_EQ(r["env"]["SAGEMAKER_BATCH"], "true");
    EXPECT_EQ(r["env"]["JOB_VAR"], "job");
    EXPECT_EQ(r["env"]["MODEL_VAR"], "job wins");
    // Only what the request set is passed on.
    EXPECT_FALSE(r["env"].contains("SAGEMAKER_MAX_PAYLOAD_IN_MB"));
    EXPECT_FALSE(r["env"].contains("SAGEMAKER_BATCH_STRATEGY"));
    EXPECT_FALSE(r["env"].contains("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"));
  }
  EXPECT_TRUE(std::any_of(requests.begin(), requests.end(),
                          [](const json& r) { return r["body"] == "5,6\n7,8\n9,10"; }));

  // The settings came from /execution-parameters; Describe shows them and SageMaker's defaults.
  EXPECT_EQ(doc["MaxConcurrentTransforms"], 2);
  EXPECT_EQ(doc["MaxPayloadInMB"], 6);
  EXPECT_EQ(doc["BatchStrategy"], "MultiRecord");
  EXPECT_EQ(doc["TransformJobArn"], std::string(kArnPrefix) + "transform-job/lines");
  EXPECT_EQ(doc["ModelName"], "m");
  EXPECT_EQ(doc["TransformInput"]["CompressionType"], "None");
  EXPECT_EQ(doc["DataProcessing"],
            json({{"InputFilter", "$"}, {"OutputFilter", "$"}, {"JoinSource", "None"}}));
  EXPECT_EQ(doc["ModelClientConfig"],
            json({{"InvocationsTimeoutInSeconds", 600}, {"InvocationsMaxRetries", 3}}));
  EXPECT_EQ(doc["Environment"]["JOB_VAR"], "job");
  EXPECT_LE(doc["CreationTime"].get<double>(), doc["TransformStartTime"].get<double>());
  EXPECT_LE(doc["TransformStartTime"].get<double>(), doc["TransformEndTime"].get<double>());
  EXPECT_FALSE(doc.contains("FailureReason"));

  // Logs: each instance's output, and the settings in its data log.
  auto logs = LogLines("lines");
  EXPECT_TRUE(AnyContains(logs, "model says hello")) << ::testing::PrintToString(logs);
  EXPECT_TRUE(AnyContains(logs, "/data-log ")) << ::testing::PrintToString(logs);
  EXPECT_TRUE(AnyContains(logs,
                          "[sagemaker logs]: MaxConcurrentTransforms=2, MaxPayloadInMB=6, "
                          "BatchStrategy=MULTI_RECORD"));
  // The first request sent is logged once, with when it was sent (job start → first record).
  EXPECT_EQ(std::count_if(logs.begin(), logs.end(),
                          [](const std::string& line) {
                            return line.find("[sagemaker logs]: first request: ") !=
                                       std::string::npos &&
                                   line.find(" bytes of s3://input/") != std::string::npos;
                          }),
            1)
      << ::testing::PrintToString(logs);
  // Nothing is left running or on disk.
  EXPECT_TRUE(WaitFor(
      [&] { return controller_->MonitoredJobs() == 0 && fs::is_empty(root_ / "transforms"); }));
}

TEST_F(TransformJobControllerTest, SplitTypeNoneSendsEachObjectWholeAndAssemblesBytesAsIs) {
  Put("input", "whole/x.bin", "abc\ndefg");
  Put("input", "whole/y.bin", "");
  Model("m", {{"MODE", "len"}});
  json doc = CreateAndWait(Request("whole", "m", "whole/",
                                   {{"TransformInput", {{"SplitType", "None"}}},
                                    {"TransformOutput", {{"AssembleWith", "None"}}}}));
  ASSERT_EQ(doc["TransformJobStatus"], "Completed") << doc.dump();
  EXPECT_EQ(Get("output", "whole/x.bin.out"), "8");
  EXPECT_EQ(Get("output", "whole/y.bin.out"), "0");
  // Without /execution-parameters the defaults apply.
  EXPECT_EQ(doc["MaxConcurrentTransforms"], 1);
  EXPECT_EQ(doc["MaxPayloadInMB"], 6);
  EXPECT_EQ(doc["BatchStrategy"], "MultiRecord");
}

TEST_F(TransformJobControllerTest, SingleRecordWithConcurrencyKeepsInputOrder) {
  std::string rows;
  for (int i = 0; i < 12; ++i) rows += "r" + std::to_string(i) + ",1\n";
  Put("input", "rows/data.csv", rows);
  Model("m", {{"DELAY_MS", "25"}});
  json doc = CreateAndWait(Request(
      "ordered", "m", "rows/",
      {{"MaxConcurrentTransforms", 4}, {"BatchStrategy", "SingleRecord"}, {"MaxPayloadInMB", 1}}));
  ASSERT_EQ(doc["TransformJobStatus"], "Completed") << doc.dump();

  std::istringstream out(Get("output", "ordered/data.csv.out"));
  int expected = 0;
  for (std::string line; std::getline(out, line); ++expected) {
    EXPECT_EQ(line.substr(0, line.find('|')), "r" + std::to_string(expected) + ",1");
  }
  EXPECT_EQ(expected, 12);
  auto requests = Requests();
  ASSERT_EQ(requests.size(), 12u);
  int most = 0;
  for (const json& r : requests) {
    most = std::max(most, r["inflight"].get<int>());
    // One record per request, sent with its newline.
    const std::string body = r["body"];
    EXPECT_EQ(std::count(body.begin(), body.end(), '\n'), 1) << body;
    EXPECT_EQ(body.back(), '\n');
    EXPECT_EQ(r["env"]["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"], "4");
    EXPECT_EQ(r["env"]["SAGEMAKER_BATCH_STRATEGY"], "SINGLE_RECORD");
    EXPECT_EQ(r["env"]["SAGEMAKER_MAX_PAYLOAD_IN_MB"], "1");
  }
  // Earlier rows answer later, so order was restored, not merely kept.
  EXPECT_GT(most, 1);
  EXPECT_LE(most, 4);
  EXPECT_EQ(doc["MaxConcurrentTransforms"], 4);
  EXPECT_EQ(doc["BatchStrategy"], "SingleRecord");
}

TEST_F(TransformJobControllerTest, ServerErrorsAreRetriedUpToInvocationsMaxRetries) {
  Put("input", "flaky/a.csv", "1,2\n");
  Model("m", {{"FLAKY_TIMES", "2"}});
  json doc = CreateAndWait(Request("flaky-ok", "m", "flaky/"));
  ASSERT_EQ(doc["TransformJobStatus"], "Completed") << doc.dump();
  EXPECT_EQ(Get("output", "flaky-ok/a.csv.out").substr(0, 4), "1,2|");
  EXPECT_EQ(Requests().size(), 3u);  // two 503s, then the answer
  EXPECT_TRUE(
      AnyContains(LogLines("flaky-ok"), "a.csv: invocation failed (HTTP 503); retrying (1 of 3)"));

  // One retry is not enough for a model that answers 503 twice.
  json failed = CreateAndWait(Request("flaky-fail", "m", "flaky/",
                                      {{"ModelClientConfig", {{"InvocationsMaxRetries", 1}}}}));
  ASSERT_EQ(failed["TransformJobStatus"], "Failed") << failed.dump();
  EXPECT_EQ(failed["ModelClientConfig"]["InvocationsMaxRetries"], 1);
  EXPECT_EQ(failed["ModelClientConfig"]["InvocationsTimeoutInSeconds"], 600);
  const std::string reason = failed["FailureReason"];
  EXPECT_EQ(
      reason.rfind("ClientError: See job logs for more information. s3://input/flaky/a.csv: "
                   "the model answered HTTP 503 to record 1 after 2 attempts: busy, try again",
                   0),
      0u)
      << reason;
  EXPECT_FALSE(Exists("output", "flaky-fail/a.csv.out"));
}

TEST_F(TransformJobControllerTest, AFailedObjectLeavesNoOutputAndFailsTheJobWithTheModelsMessage) {
  Put("input", "mixed/good.csv", "1,2\n3,4\n");
  Put("input", "mixed/bad.csv", "5,6\nbad,row\n");
  Model("m", {{"FAIL_ON", "bad"}, {"FAIL_STATUS", "400"}});
  json doc = CreateAndWait(Request("mixed", "m", "mixed/"));
  ASSERT_EQ(doc["TransformJobStatus"], "Failed") << doc.dump();
  const std::string reason = doc["FailureReason"];
  EXPECT_EQ(reason,
            "ClientError: See job logs for more information. s3://input/mixed/bad.csv: the "
            "model answered HTTP 400 to records 1-2: model failed on '5,6\\nbad,row'");
  EXPECT_FALSE(Exists("output", "mixed/bad.csv.out"));
  // The other object was transformed and stored, as SageMaker does.
  EXPECT_EQ(Get("output", "mixed/good.csv.out").substr(0, 4), "1,2|");
  // A 4xx answer is not retried.
  int bad_requests = 0;
  for (const json& r : Requests())
    bad_requests += r["body"].get<std::string>().find("bad") != std::string::npos;
  EXPECT_EQ(bad_requests, 1);
  auto logs = LogLines("mixed");
  EXPECT_TRUE(AnyContains(logs, "input/mixed/bad.csv: ClientError: 400"))
      << ::testing::PrintToString(logs);
  EXPECT_TRUE(AnyContains(logs, "input/mixed/bad.csv: model failed on"));
  EXPECT_TRUE(doc.contains("TransformEndTime"));
}

TEST_F(TransformJobControllerTest, DataProcessingFiltersInputAndJoinsOutputsToIt) {
  // The guide's CSV example: the id column is kept from the model and put back next to its
  // prediction.
  Put("input", "ids/data.csv", "7,1,2\n8,3,4\n9,5,6\n");
  Model("m", {{"MODE", "sum"}});
  json doc = CreateAndWait(
      Request("joined", "m", "ids/",
              {{"DataProcessing",
                {{"InputFilter", "$[1:]"}, {"JoinSource", "Input"}, {"OutputFilter", "$[0,-1]"}}},
               {"TransformOutput", {{"Accept", "text/csv"}}}}));
  ASSERT_EQ(doc["TransformJobStatus"], "Completed") << doc.dump();
  EXPECT_EQ(Get("output", "joined/data.csv.out"), "7,3\n8,7\n9,11\n");
  auto requests = Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0]["body"], "1,2\n3,4\n5,6\n");
  EXPECT_EQ(doc["DataProcessing"]["InputFilter"], "$[1:]");
}

TEST_F(TransformJobControllerTest, ManifestInputsAreTheManifestsEntriesInItsOrder) {
  Put("input", "m/p/one.csv", "1,1\n");
  Put("input", "m/p/deep/two.csv", "2,2\n");
  Put("input", "m/p/unlisted.csv", "3,3\n");
  Put("input", "list.manifest", R"([{"prefix": "s3://input/m/p/"}, "deep/two.csv", "one.csv"])");
  Model("m");
  json doc = CreateAndWait(
      Request("manifest", "m", "",
              {{"TransformInput",
                {{"DataSource",
                  {{"S3DataSource",
                    {{"S3DataType", "ManifestFile"}, {"S3Uri", "s3://input/list.manifest"}}}}}}}}));
  ASSERT_EQ(doc["TransformJobStatus"], "Completed") << doc.dump();
  EXPECT_EQ(Get("output", "manifest/one.csv.out").substr(0, 4), "1,1|");
  EXPECT_EQ(Get("output", "manifest/deep/two.csv.out").substr(0, 4), "2,2|");
  EXPECT_FALSE(Exists("output", "manifest/unlisted.csv.out"));
  auto requests = Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0]["body"], "2,2\n");  // one instance, one at a time: manifest order
}

TEST_F(TransformJobControllerTest, StopEndsStoppedWithoutOutputOfUnfinishedObjects) {
  Put("input", "stop/a.csv", "1,1\n");
  Put("input", "stop/b.csv", "hang\n");
  Model("m", {{"HANG_ON", "hang"}});
  ASSERT_TRUE(controller_->Create(Request("stopme", "m", "stop/")).ok());
  // a.csv comes first (key order) and finishes; b.csv then hangs in the model.
  ASSERT_TRUE(
      WaitFor([&] { return Exists("output", "stopme/a.csv.out") && Requests().size() == 2; },
              milliseconds(30000)));
  ASSERT_TRUE(controller_->Stop({{"TransformJobName", "StopMe"}}).ok());
  const std::string now = Describe("stopme")["TransformJobStatus"];
  EXPECT_TRUE(now == "Stopping" || now == "Stopped") << now;
  json doc = WaitDone("stopme");
  EXPECT_EQ(doc["TransformJobStatus"], "Stopped");
  EXPECT_FALSE(doc.contains("FailureReason"));
  EXPECT_FALSE(Exists("output", "stopme/b.csv.out"));
  EXPECT_TRUE(Exists("output", "stopme/a.csv.out"));
  auto history = store_->History(TransformJobController::kKind, "stopme");
  ASSERT_TRUE(history.ok());
  std::vector<std::string> statuses;
  for (const auto& t : *history) {
    if (statuses.empty() || statuses.back() != t.status) statuses.push_back(t.status);
  }
  EXPECT_EQ(statuses, (std::vector<std::string>{"InProgress", "Stopping", "Stopped"}));

  // Stopping a finished job names its status; an unknown one is ResourceNotFound.
  auto again = controller_->Stop({{"TransformJobName", "stopme"}});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().reason(), "ValidationException");
  EXPECT_EQ(again.status().message(),
            "The request was rejected because the transform job is in status Stopped.");
  auto missing = controller_->Stop({{"TransformJobName", "ghost"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().reason(), "ResourceNotFound");
  auto described = controller_->Describe({{"TransformJobName", "ghost"}});
  ASSERT_FALSE(described.ok());
  EXPECT_EQ(described.status().reason(), "ValidationException");
}

TEST_F(TransformJobControllerTest, AModelThatCannotStartFailsTheJobNamingTheInstance) {
  fs::path dir = root_ / "images" / "broken";
  fs::create_directories(dir);
  std::ofstream(dir / "serve") << "#!/bin/sh\necho 'cannot load the model: no weights'\nexit 3\n";
  chmod((dir / "serve").c_str(), 0755);
  ASSERT_TRUE(images_->RegisterDirectory("test/broken", dir).ok());
  ASSERT_TRUE(models_
                  ->Create({{"ModelName", "broken"},
                            {"ExecutionRoleArn", kRole},
                            {"PrimaryContainer", {{"Image", "test/broken"}}}})
                  .ok());
  Put("input", "b/a.csv", "1\n");
  json doc = CreateAndWait(Request("broken", "broken", "b/"));
  ASSERT_EQ(doc["TransformJobStatus"], "Failed") << doc.dump();
  const std::string reason = doc["FailureReason"];
  EXPECT_NE(reason.find("did not pass the ping health check: it stopped (it exited with code 3)"),
            std::string::npos)
      << reason;
  EXPECT_NE(reason.find("cannot load the model: no weights"), std::string::npos) << reason;
  EXPECT_NE(reason.find("instance i-"), std::string::npos) << reason;
  EXPECT_FALSE(Exists("output", "broken/a.csv.out"));
}

TEST_F(TransformJobControllerTest, ListFiltersSortsAndPages) {
  Put("input", "l/a.csv", "1\n");
  Model("m");
  for (const char* name : {"list-b", "list-a", "other-c"}) {
    ASSERT_TRUE(controller_->Create(Request(name, "m", "l/")).ok());
    WaitDone(name);
  }
  auto names = [](const json& out) {
    std::vector<std::string> v;
    for (const json& s : out["TransformJobSummaries"]) v.push_back(s["TransformJobName"]);
    return v;
  };
  // Newest first by default.
  auto all = controller_->List(json::object());
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(names(*all), (std::vector<std::string>{"other-c", "list-a", "list-b"}));
  const json& first = (*all)["TransformJobSummaries"][0];
  EXPECT_EQ(first["TransformJobStatus"], "Completed");
  EXPECT_TRUE(first.contains("TransformEndTime"));
  EXPECT_TRUE(first.contains("LastModifiedTime"));
  auto by_name = controller_->List({{"NameContains", "LIST"},
                                    {"SortBy", "Name"},
                                    {"SortOrder", "Ascending"},
                                    {"MaxResults", 1}});
  ASSERT_TRUE(by_name.ok());
  EXPECT_EQ(names(*by_name), (std::vector<std::string>{"list-a"}));
  ASSERT_TRUE(by_name->contains("NextToken"));
  auto next = controller_->List({{"NameContains", "LIST"},
                                 {"SortBy", "Name"},
                                 {"SortOrder", "Ascending"},
                                 {"NextToken", (*by_name)["NextToken"]}});
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(names(*next), (std::vector<std::string>{"list-b"}));
  EXPECT_FALSE(next->contains("NextToken"));
  auto failed = controller_->List({{"StatusEquals", "Failed"}});
  ASSERT_TRUE(failed.ok());
  EXPECT_TRUE(names(*failed).empty());
}

TEST_F(TransformJobControllerTest, AfterARestartTheJobResumesWithTheObjectsNotYetRecorded) {
  Put("input", "resume/a.csv", "1,1\n");
  Put("input", "resume/b.csv", "2,2\n");
  Put("input", "resume/c.csv", "hang until restart\n");
  const fs::path hold = root_ / "probe" / "hold";
  std::ofstream(hold) << "";
  Model("m", {{"HANG_ON", "hang"}, {"HANG_WHILE", hold.string()}});
  ASSERT_TRUE(controller_->Create(Request("resume", "m", "resume/")).ok());
  // a and b are done and recorded; c hangs.
  ASSERT_TRUE(
      WaitFor([&] { return Internal("resume")["completed"].size() == 2; }, milliseconds(30000)))
      << Internal("resume").dump();
  const json instances = Internal("resume")["instances"];
  ASSERT_EQ(instances.size(), 1u);

  // The server goes away (its model servers are killed with it); the job stays InProgress.
  controller_.reset();
  EXPECT_EQ(store_->Get(TransformJobController::kKind, "resume")->status, "InProgress");
  EXPECT_FALSE(Exists("output", "resume/c.csv.out"));

  // As after a kill -9, a process of the old instance still runs: the restarted server kills it.
  const fs::path old_state = fs::path(instances[0]["dir"].get<std::string>()) / "state";
  std::error_code ec;
  fs::remove_all(old_state, ec);
  fs::create_directories(old_state);
  runtime::HostSpec leftover;
  leftover.ml_dir = fs::path(instances[0]["dir"].get<std::string>()) / "ml";
  fs::create_directories(leftover.ml_dir);
  leftover.argv = {"/bin/sleep", "300"};
  leftover.env = {{"PATH", "/usr/bin:/bin"}};
  ASSERT_TRUE(runtime_->Launch(leftover, old_state).ok());
  auto supervisor = ReadFile(old_state / "supervisor.json");
  ASSERT_TRUE(supervisor.ok());
  const int leftover_pid = json::parse(*supervisor)["child_pid"].get<int>();
  ASSERT_EQ(::kill(leftover_pid, 0), 0);

  // The server comes back, and this time c gets its answer.
  fs::remove(hold);
  const std::size_t before = Requests().size();
  controller_ = MakeController();
  ASSERT_TRUE(controller_->Recover().ok());
  EXPECT_TRUE(WaitFor([&] { return ::kill(leftover_pid, 0) != 0; }, milliseconds(15000)))
      << "the old instance's process still runs";
  json doc = WaitDone("resume");
  ASSERT_EQ(doc["TransformJobStatus"], "Completed") << doc.dump();
  auto requests = Requests();
  ASSERT_EQ(requests.size(), before + 1);
  // Only c was sent again: a and b were recorded with their outputs.
  EXPECT_EQ(requests.back()["body"], "hang until restart\n");
  EXPECT_EQ(Get("output", "resume/a.csv.out").substr(0, 4), "1,1|");
  EXPECT_EQ(Get("output", "resume/b.csv.out").substr(0, 4), "2,2|");
  EXPECT_EQ(Get("output", "resume/c.csv.out").substr(0, 19), "hang until restart|");
}

}  // namespace
}  // namespace hearth::control
