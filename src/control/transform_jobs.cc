#include "control/transform_jobs.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include <signal.h>

#include "common/clock.h"
#include "common/fs.h"
#include "common/strings.h"
#include "common/wait.h"
#include "control/host_output.h"
#include "control/model_host.h"
#include "control/resource_records.h"
#include "http/http_client.h"
#include "runtime/log_reader.h"
#include "spdlog/spdlog.h"
#include "transform/byte_source.h"
#include "transform/data_processing.h"
#include "transform/output_assembler.h"
#include "transform/payload_splitter.h"

namespace hearth::control {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kFailureReasonLimit = 1024;
constexpr std::size_t kTailLines = 8;
// How much of a model's error answer goes into a FailureReason (all of it goes to the log,
// up to kLoggedMessageLimit).
constexpr std::size_t kModelMessageLimit = 400;
constexpr std::size_t kLoggedMessageLimit = 16384;
constexpr std::string_view kModelKind = "Model";
constexpr std::int64_t kPayloadLimitMB = 100;  // MaxPayloadInMB, and with concurrency
constexpr std::int64_t kDefaultTimeoutSeconds = 600;
constexpr std::int64_t kDefaultMaxRetries = 3;
// Requests in flight per instance, at most, whatever MaxConcurrentTransforms or the
// container's /execution-parameters say: each one is a thread here.
constexpr int kMaxConcurrency = 256;
// After SIGKILL the supervisors record the exit at once; the bound is only a guard.
constexpr std::chrono::seconds kKillBound{10};
// What SageMaker's FailureReason says for a model's failure; Hearth adds the details.
constexpr std::string_view kClientError = "ClientError: See job logs for more information. ";

double ToEpochSeconds(std::int64_t millis) { return static_cast<double>(millis) / 1000.0; }

Status Validation(std::string message) {
  return InvalidArgument(std::move(message), "ValidationException");
}

std::string Uri(const storage::S3Location& l) { return "s3://" + l.bucket + "/" + l.key; }

bool IsLive(const std::string& status) { return status == "InProgress" || status == "Stopping"; }

// One input object and where its output goes.
struct InputObject {
  storage::S3Location in;
  storage::S3Location out;
};

// `rel` under the output prefix `prefix` (S3OutputPath's key, which may be empty).
std::string OutputKey(const std::string& prefix, const std::string& rel) {
  if (prefix.empty()) return rel + ".out";
  return prefix + (prefix.back() == '/' ? "" : "/") + rel + ".out";
}

// The key of `key` relative to the S3Prefix `prefix` (transform_jobs.h).
std::string RelativeToPrefix(const std::string& prefix, const std::string& key) {
  if (!prefix.empty() && prefix.back() != '/' && key.size() > prefix.size() + 1 &&
      key.compare(0, prefix.size(), prefix) == 0 && key[prefix.size()] == '/') {
    return key.substr(prefix.size() + 1);
  }
  const std::size_t slash = prefix.rfind('/');
  return key.substr(slash == std::string::npos ? 0 : slash + 1);
}

Result<std::vector<std::string>> ListKeys(storage::ObjectStore& objects,
                                          const storage::S3Location& where) {
  std::vector<std::string> keys;
  storage::ListOptions options{.prefix = where.key};
  for (;;) {
    ASSIGN_OR_RETURN(storage::ListResult page, objects.List(where.bucket, options));
    for (auto& o : page.objects) {
      if (!o.key.empty() && o.key.back() == '/') continue;  // a folder marker
      keys.push_back(std::move(o.key));
    }
    if (!page.truncated || page.last_returned.empty()) break;
    options.start_after = page.last_returned;
  }
  return keys;
}

// The job's input objects in order, with their output locations. NotFound when there are
// none; InvalidArgument for a bad URI or manifest. Messages are SageMaker's where known.
Result<std::vector<InputObject>> ResolveInputs(storage::ObjectStore& objects, const json& request) {
  const json& s3 = request["TransformInput"]["DataSource"]["S3DataSource"];
  const std::string type = s3.value("S3DataType", "S3Prefix");
  const std::string uri = s3.value("S3Uri", "");
  auto where = storage::ParseS3Uri(uri);
  if (!where.ok()) {
    return InvalidArgument("TransformInput.DataSource.S3DataSource.S3Uri '" + uri +
                           "' is not an s3:// URI.");
  }
  const std::string out_uri = request["TransformOutput"].value("S3OutputPath", "");
  auto out = storage::ParseS3Uri(out_uri);
  if (!out.ok()) {
    return InvalidArgument("TransformOutput.S3OutputPath '" + out_uri + "' is not an s3:// URI.");
  }
  std::vector<InputObject> inputs;
  if (type == "S3Prefix") {
    auto keys = ListKeys(objects, *where);
    if (!keys.ok() && keys.status().code() != StatusCode::kNotFound) return keys.status();
    if (keys.ok()) {
      for (const std::string& key : *keys) {
        inputs.push_back({{where->bucket, key},
                          {out->bucket, OutputKey(out->key, RelativeToPrefix(where->key, key))}});
      }
    }
  } else if (type == "ManifestFile") {
    auto text = objects.GetObject(where->bucket, where->key);
    if (!text.ok()) {
      if (text.status().code() == StatusCode::kNotFound) {
        return NotFound("No S3 objects found under S3 URL \"" + uri +
                        "\" given in input data source: the manifest file does not exist.");
      }
      return text.status();
    }
    json manifest = json::parse(*text, nullptr, false);
    const std::string bad = "The manifest file \"" + uri +
                            "\" must be a JSON array: [{\"prefix\": \"s3://bucket/prefix/\"}, "
                            "\"relative/key\", ...]";
    if (!manifest.is_array() || manifest.empty() || !manifest[0].is_object() ||
        !manifest[0].contains("prefix") || !manifest[0]["prefix"].is_string()) {
      return InvalidArgument(bad + ".");
    }
    auto prefix = storage::ParseS3Uri(manifest[0]["prefix"].get<std::string>());
    if (!prefix.ok()) return InvalidArgument(bad + ": its prefix is not an s3:// URI.");
    for (std::size_t i = 1; i < manifest.size(); ++i) {
      if (!manifest[i].is_string()) {
        return InvalidArgument(bad + ": entry " + std::to_string(i) + " is not a string.");
      }
      const std::string rel = manifest[i].get<std::string>();
      inputs.push_back(
          {{prefix->bucket, prefix->key + rel}, {out->bucket, OutputKey(out->key, rel)}});
    }
  } else {
    return InvalidArgument("S3DataType '" + type +
                           "' at 'transformInput.dataSource.s3DataSource.s3DataType' is not "
                           "supported for batch transform; use S3Prefix or ManifestFile.");
  }
  if (inputs.empty()) {
    return NotFound("No S3 objects found under S3 URL \"" + uri +
                    "\" given in input data source. Please ensure that the bucket exists and "
                    "that objects exist under that S3 prefix.");
  }
  return inputs;
}

json InputsToJson(const std::vector<InputObject>& inputs) {
  json out = json::array();
  for (const auto& i : inputs) {
    out.push_back(json::array({i.in.bucket, i.in.key, i.out.bucket, i.out.key}));
  }
  return out;
}

std::vector<InputObject> InputsFromJson(const json& doc) {
  std::vector<InputObject> inputs;
  for (const json& e : doc) {
    inputs.push_back({{e[0].get<std::string>(), e[1].get<std::string>()},
                      {e[2].get<std::string>(), e[3].get<std::string>()}});
  }
  return inputs;
}

transform::DataProcessingOptions ProcessingOptions(const json& request) {
  const json dp = request.value("DataProcessing", json::object());
  const json& in = request["TransformInput"];
  transform::DataProcessingOptions o;
  o.input_filter = dp.value("InputFilter", "");
  o.output_filter = dp.value("OutputFilter", "");
  o.join_source = dp.value("JoinSource", "None") == "Input" ? transform::JoinSource::kInput
                                                            : transform::JoinSource::kNone;
  auto split = transform::ParseSplitType(in.value("SplitType", "None"), "TransformInput.SplitType");
  o.split_type = split.ok() ? *split : transform::SplitType::kNone;
  o.content_type = in.value("ContentType", "");
  o.accept = request["TransformOutput"].value("Accept", "");
  return o;
}

// "[sagemaker logs]" lines carry their own timestamp, as SageMaker's do.
std::string DataLogLine(std::string_view text) {
  std::string stamp = FormatIso8601Millis(NowMillis());
  if (!stamp.empty() && stamp.back() == 'Z') stamp.pop_back();
  return stamp + ":[sagemaker logs]: " + std::string(text);
}

}  // namespace

// Drives one job from its recorded state to a terminal one. Lives on the monitor thread; the
// per-instance sender threads it starts are joined before it returns.
class TransformJobController::Runner {
 public:
  Runner(TransformJobController& c, std::string name, MonitorThreads::Run& run)
      : c_(c), name_(std::move(name)), run_(run) {}

  void Execute();
  // True once the job is in a terminal state.
  bool finished() const { return finished_; }

 private:
  struct Instance {
    std::string id;
    std::uint16_t port = 0;
    fs::path dir;  // holds ml/ and state/
    std::uint64_t log_offset = 0;
    bool exited = false;
    bool healthy = false;
    std::chrono::steady_clock::time_point launched_at;
    std::unique_ptr<http::ConnectionPool> pool;

    fs::path state_dir() const { return dir / "state"; }
    json ToJson() const { return {{"id", id}, {"port", port}, {"dir", dir.string()}}; }
  };

  // One object being transformed by one instance. Guarded by its lane's mutex.
  struct ObjectWork {
    std::size_t index = 0;  // in inputs_
    // The reader outlives the splitter that reads through it (members die in reverse order).
    std::unique_ptr<storage::ObjectReader> reader;
    std::unique_ptr<transform::PayloadSplitter> splitter;
    std::unique_ptr<storage::ObjectWriter> writer;
    std::uint64_t issued = 0;   // payloads handed to senders
    std::uint64_t written = 0;  // payloads whose output is in the writer
    bool exhausted = false;     // the splitter has no more payloads
    bool done = false;          // committed or failed
    // Outputs of payloads that came back before an earlier one, by payload number.
    std::map<std::uint64_t, std::vector<std::string>> ready;
  };

  // The objects one instance works on and the senders that feed it.
  struct Lane {
    Instance* inst = nullptr;
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::shared_ptr<ObjectWork>> open;  // GUARDED_BY(mu)
    std::vector<std::thread> threads;
  };

  struct Work {
    std::shared_ptr<ObjectWork> object;
    std::uint64_t seq = 0;
    transform::Payload payload;
  };

  struct Answer {
    Result<http::ClientResponse> response = Unavailable("not sent");
    int attempts = 0;
  };

  enum class Outcome { kReady, kFailed, kStopping, kShuttingDown };

  bool Stopping() const { return run_.end_requested.load() || record_.status == "Stopping"; }
  bool ShuttingDown() const { return c_.monitors_.shutting_down(); }
  fs::path JobDir() const {
    return c_.options_.transforms_dir /
           (AsciiLower(name_) + "-" + std::to_string(record_.created_millis));
  }
  std::string Stream(const Instance& inst) const { return name_ + "/" + inst.id; }
  std::string DataStream(const Instance& inst) const { return Stream(inst) + "/data-log"; }

  // Records InProgress progress (`extra`), leaving a Stopping job Stopping.
  Status Record(const std::string& message, const std::function<void(metadata::Resource&)>& extra);
  Status SaveInstances();
  void KillLeftovers();
  Result<std::vector<InputObject>> LoadInputs();
  Status PrepareModel();
  Outcome StartInstances(std::string* failure);
  void ResolveSettings();
  Status OpenDataProcessing();
  void Transform(const std::vector<std::size_t>& todo);
  void SenderLoop(Lane& lane);
  bool TakePayload(Lane& lane, Work* work);             // REQUIRES(lane.mu)
  bool OpenNext(Lane& lane);                            // REQUIRES(lane.mu)
  void Deliver(Lane& lane, Work& work, Answer answer);  // REQUIRES(lane.mu)
  void CompleteObject(Lane& lane, ObjectWork& o);       // REQUIRES(lane.mu)
  void FailObject(Lane& lane, ObjectWork& o, const std::string& detail,
                  const std::vector<std::string>& log_lines);  // REQUIRES(lane.mu)
  void CloseObject(Lane& lane, ObjectWork& o);                 // REQUIRES(lane.mu)
  Answer Invoke(Lane& lane, Work& work);
  // Waits `delay` unless the transform is aborted first; false when aborted.
  bool Backoff(std::chrono::milliseconds delay);
  void Abort();
  void FlushProgress();
  // `at_millis` is the lines' time (now when 0).
  void LogData(const Instance& inst, const std::vector<std::string>& lines,
               std::int64_t at_millis = 0);
  void IngestOutput(Instance& inst);
  void DrainOutput(Instance& inst);
  std::string OutputTail(const Instance& inst) const;
  void StopInstances(std::chrono::milliseconds grace);
  void Finish(const std::string& status, const std::string& reason);

  TransformJobController& c_;
  std::string name_;
  MonitorThreads::Run& run_;
  metadata::Resource record_;
  json request_;
  json container_;
  std::vector<InputObject> inputs_;
  std::vector<std::unique_ptr<Instance>> instances_;
  std::set<std::uint16_t> ports_;
  bool finished_ = false;

  // Settings in effect (transform_jobs.h), resolved once the instances are up.
  int concurrency_ = 1;
  transform::BatchStrategy strategy_ = transform::BatchStrategy::kMultiRecord;
  std::int64_t max_payload_mb_ = static_cast<std::int64_t>(transform::kDefaultMaxPayloadInMB);
  transform::SplitType split_ = transform::SplitType::kNone;
  transform::AssembleWith assemble_ = transform::AssembleWith::kNone;
  transform::DataProcessing processing_;
  std::chrono::milliseconds invocation_timeout_{kDefaultTimeoutSeconds * 1000};
  int max_retries_ = static_cast<int>(kDefaultMaxRetries);

  // Shared with the sender threads.
  std::atomic<bool> abort_{false};
  std::atomic<bool> first_request_sent_{false};
  std::mutex state_mu_;
  std::condition_variable state_cv_;  // signalled on abort and when a sender ends
  std::deque<std::size_t> pending_;   // GUARDED_BY(state_mu_): objects no instance took yet
  int senders_running_ = 0;           // GUARDED_BY(state_mu_)
  std::vector<std::size_t> completed_unrecorded_;  // GUARDED_BY(state_mu_)
  std::vector<std::string> failures_;              // GUARDED_BY(state_mu_): FailureReasons
};

Status TransformJobController::Runner::Record(
    const std::string& message, const std::function<void(metadata::Resource&)>& extra) {
  auto updated =
      MutateResource(c_.store_, kKind, name_,
                     [&](metadata::Resource& r) -> Result<std::optional<metadata::Transition>> {
                       const std::int64_t now = NowMillis();
                       r.modified_millis = now;
                       r.doc["LastModifiedTime"] = ToEpochSeconds(now);
                       if (extra) extra(r);
                       if (message.empty()) return std::optional<metadata::Transition>();
                       return std::optional<metadata::Transition>(
                           metadata::Transition{r.status, "", now, message});
                     });
  if (!updated.ok()) return updated.status();
  record_ = std::move(updated).value();
  return Status::Ok();
}

Status TransformJobController::Runner::SaveInstances() {
  json list = json::array();
  for (const auto& inst : instances_) list.push_back(inst->ToJson());
  auto updated =
      MutateResource(c_.store_, kKind, name_,
                     [&](metadata::Resource& r) -> Result<std::optional<metadata::Transition>> {
                       r.internal["instances"] = list;
                       return std::optional<metadata::Transition>();
                     });
  if (!updated.ok()) return updated.status();
  record_ = std::move(updated).value();
  return Status::Ok();
}

void TransformJobController::Runner::LogData(const Instance& inst,
                                             const std::vector<std::string>& lines,
                                             std::int64_t at_millis) {
  std::vector<metadata::LogEvent> events;
  const std::int64_t now = at_millis ? at_millis : NowMillis();
  for (const auto& line : lines) {
    events.push_back({.timestamp_millis = now, .message = DataLogLine(line)});
  }
  c_.logs_.Append(kLogGroup, DataStream(inst), events).IgnoreError();
}

void TransformJobController::Runner::IngestOutput(Instance& inst) {
  // On a store error the same lines are read again next time.
  (void)IngestHostOutput(c_.logs_, inst.state_dir() / "output.log", &inst.log_offset, kLogGroup,
                         Stream(inst));
}

void TransformJobController::Runner::DrainOutput(Instance& inst) {
  // Each read is bounded: read until nothing is left.
  for (std::uint64_t before = ~0ULL; before != inst.log_offset;) {
    before = inst.log_offset;
    IngestOutput(inst);
  }
}

std::string TransformJobController::Runner::OutputTail(const Instance& inst) const {
  std::deque<std::string> tail;
  std::uint64_t offset = 0;
  for (;;) {
    auto lines = runtime::ReadOutputLines(inst.state_dir() / "output.log", &offset);
    if (!lines.ok() || lines->empty()) break;
    for (auto& line : *lines) {
      tail.push_back(std::move(line.text));
      if (tail.size() > kTailLines) tail.pop_front();
    }
  }
  std::string out;
  for (const auto& line : tail) out += (out.empty() ? "" : "\n") + line;
  return out;
}

void TransformJobController::Runner::KillLeftovers() {
  if (instances_.empty()) return;
  for (auto& inst : instances_) {
    auto position = c_.logs_.SourcePosition(kLogGroup, Stream(*inst));
    inst->log_offset = position.ok() ? static_cast<std::uint64_t>(*position) : 0;
    auto st = c_.runtime_.Poll(inst->state_dir());
    if (st.ok() && st->state == runtime::HostState::kRunning) {
      spdlog::info("transform job {}: killing instance {} left by the previous server", name_,
                   inst->id);
      c_.runtime_.Signal(inst->state_dir(), SIGKILL).IgnoreError();
      const auto deadline = std::chrono::steady_clock::now() + kKillBound;
      while (std::chrono::steady_clock::now() < deadline) {
        auto now_st = c_.runtime_.Poll(inst->state_dir());
        if (!now_st.ok() || now_st->state != runtime::HostState::kRunning) break;
        std::this_thread::sleep_for(c_.options_.poll_interval);
      }
      LogData(*inst, {"The server restarted: this instance was stopped; the job resumes on new "
                      "instances."});
    }
    DrainOutput(*inst);
    std::error_code ec;
    fs::remove_all(inst->dir, ec);
  }
  instances_.clear();
  SaveInstances().IgnoreError();  // Recover() would only find them gone again
}

Result<std::vector<InputObject>> TransformJobController::Runner::LoadInputs() {
  // Resolved once and kept, so that a resumed job works on the list its recorded progress
  // counts in (its own `.out` objects may have appeared under the input prefix since).
  const fs::path file = JobDir() / "inputs.json";
  if (auto text = ReadFile(file); text.ok()) {
    json doc = json::parse(*text, nullptr, false);
    if (doc.is_array()) return InputsFromJson(doc);
  }
  ASSIGN_OR_RETURN(std::vector<InputObject> inputs, ResolveInputs(c_.objects_, request_));
  std::error_code ec;
  fs::create_directories(JobDir(), ec);
  RETURN_IF_ERROR(
      WriteFileAtomic(file, InputsToJson(inputs).dump(), Durability::kSurvivesProcessCrash));
  // Progress recorded against another list (its file lost) means nothing now.
  RETURN_IF_ERROR(
      Record("", [](metadata::Resource& r) { r.internal["completed"] = json::array(); }));
  return inputs;
}

Status TransformJobController::Runner::PrepareModel() {
  // "model.ready" says an earlier run (before a restart) finished unpacking.
  const fs::path dir = JobDir();
  if (fs::exists(dir / "model.ready")) return Status::Ok();
  RETURN_IF_ERROR(PrepareModelDir(c_.objects_, container_, dir / "model"));
  return WriteFileAtomic(dir / "model.ready", "", Durability::kSurvivesProcessCrash);
}

TransformJobController::Runner::Outcome TransformJobController::Runner::StartInstances(
    std::string* failure) {
  const int count = request_["TransformResources"].value("InstanceCount", 1);
  for (int i = 0; i < count; ++i) {
    auto inst = std::make_unique<Instance>();
    inst->id = NewInstanceId();
    auto port = FreeLoopbackPort(ports_);
    if (!port.ok()) {
      *failure = "InternalServerError: " + port.status().message();
      return Outcome::kFailed;
    }
    inst->port = *port;
    inst->dir = JobDir() / inst->id;
    instances_.push_back(std::move(inst));
  }
  // Recorded before launching: after a crash in between, Recover() finds (and kills) every
  // instance that may have started.
  if (Status saved = SaveInstances(); !saved.ok()) {
    *failure = "InternalServerError: cannot record the job's instances: " + saved.message();
    return Outcome::kFailed;
  }

  // The batch contract's variables, then the job's Environment over them (and over the
  // container's).
  std::map<std::string, std::string> overrides = {{"SAGEMAKER_BATCH", "true"}};
  if (request_.contains("MaxPayloadInMB")) {
    overrides["SAGEMAKER_MAX_PAYLOAD_IN_MB"] =
        std::to_string(request_["MaxPayloadInMB"].get<std::int64_t>());
  }
  if (request_.contains("BatchStrategy")) {
    overrides["SAGEMAKER_BATCH_STRATEGY"] =
        request_["BatchStrategy"] == "SingleRecord" ? "SINGLE_RECORD" : "MULTI_RECORD";
  }
  if (request_.value("MaxConcurrentTransforms", 0) > 0) {
    overrides["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] =
        std::to_string(request_["MaxConcurrentTransforms"].get<std::int64_t>());
  }
  const json environment = request_.value("Environment", json::object());
  for (const auto& [k, v] : environment.items()) {
    if (v.is_string()) overrides[k] = v.get<std::string>();
  }
  for (auto& inst : instances_) {
    ModelServerSpec spec;
    spec.container = container_;
    spec.model_dir = JobDir() / "model";
    spec.dir = inst->dir;
    spec.port = inst->port;
    spec.env_overrides = overrides;
    inst->launched_at = std::chrono::steady_clock::now();
    Status launched = LaunchModelServer(c_.runtime_, c_.images_, c_.options_.hearth_binary, spec);
    if (!launched.ok()) {
      *failure =
          "InternalServerError: could not start instance " + inst->id + ": " + launched.message();
      return Outcome::kFailed;
    }
    c_.logs_.EnsureStream(kLogGroup, Stream(*inst)).IgnoreError();
    inst->pool = std::make_unique<http::ConnectionPool>("127.0.0.1", inst->port, 4);
  }

  // Model servers usually answer within tens of milliseconds: poll often at first.
  PollBackoff backoff(c_.options_.poll_interval);
  for (;;) {
    bool all_healthy = true;
    for (auto& inst : instances_) {
      IngestOutput(*inst);
      if (inst->healthy) continue;
      auto st = c_.runtime_.Poll(inst->state_dir());
      if (!st.ok() || st->state != runtime::HostState::kRunning) {
        DrainOutput(*inst);
        inst->exited = true;
        const std::string tail = OutputTail(*inst);
        *failure = std::string(kClientError) + "The model container of instance " + inst->id +
                   " did not pass the ping health check: it stopped (" + DescribeHostEnd(st) +
                   ") before answering GET /ping." + (tail.empty() ? "" : " Last output:\n" + tail);
        return Outcome::kFailed;
      }
      http::ClientRequest ping;
      ping.target = "/ping";
      auto answer = inst->pool->Send(ping, c_.options_.ping_timeout);
      if (answer.ok() && answer->status == 200) {
        inst->healthy = true;
        continue;
      }
      all_healthy = false;
      if (std::chrono::steady_clock::now() - inst->launched_at > c_.options_.startup_timeout) {
        const std::string last = answer.ok()
                                     ? "its last answer was HTTP " + std::to_string(answer->status)
                                     : "its last attempt failed: " + answer.status().message();
        const std::string tail = OutputTail(*inst);
        *failure = std::string(kClientError) + "The model container of instance " + inst->id +
                   " did not pass the ping health check: it did not answer GET /ping with 200 "
                   "within " +
                   std::to_string(c_.options_.startup_timeout.count() / 1000) + " seconds (" +
                   last + ")." + (tail.empty() ? "" : " Last output:\n" + tail);
        return Outcome::kFailed;
      }
    }
    if (all_healthy) return Outcome::kReady;
    if (ShuttingDown()) return Outcome::kShuttingDown;
    if (Stopping()) return Outcome::kStopping;
    backoff.Sleep();
  }
}

void TransformJobController::Runner::ResolveSettings() {
  const json& r = request_;
  const bool given_concurrency = r.value("MaxConcurrentTransforms", 0) > 0;
  json ep = json::object();
  if (!given_concurrency || !r.contains("BatchStrategy") || !r.contains("MaxPayloadInMB")) {
    http::ClientRequest request;
    request.target = "/execution-parameters";
    auto answer = instances_.front()->pool->Send(request, c_.options_.ping_timeout);
    if (answer.ok() && answer->status == 200) {
      json parsed = json::parse(answer->body, nullptr, false);
      if (parsed.is_object()) ep = std::move(parsed);
    }
  }
  if (given_concurrency) {
    concurrency_ = r["MaxConcurrentTransforms"].get<int>();
  } else if (ep.contains("MaxConcurrentTransforms") &&
             ep["MaxConcurrentTransforms"].is_number_integer() &&
             ep["MaxConcurrentTransforms"].get<std::int64_t>() > 0) {
    concurrency_ = static_cast<int>(
        std::min<std::int64_t>(ep["MaxConcurrentTransforms"].get<std::int64_t>(), kMaxConcurrency));
  }
  concurrency_ = std::clamp(concurrency_, 1, kMaxConcurrency);
  if (r.contains("BatchStrategy")) {
    strategy_ = r["BatchStrategy"] == "SingleRecord" ? transform::BatchStrategy::kSingleRecord
                                                     : transform::BatchStrategy::kMultiRecord;
  } else if (ep.contains("BatchStrategy") && ep["BatchStrategy"].is_string()) {
    const std::string s = ep["BatchStrategy"].get<std::string>();
    if (s == "SINGLE_RECORD" || s == "SingleRecord")
      strategy_ = transform::BatchStrategy::kSingleRecord;
  }
  if (r.contains("MaxPayloadInMB")) {
    max_payload_mb_ = r["MaxPayloadInMB"].get<std::int64_t>();
  } else if (ep.contains("MaxPayloadInMB") && ep["MaxPayloadInMB"].is_number_integer() &&
             ep["MaxPayloadInMB"].get<std::int64_t>() >= 0 &&
             ep["MaxPayloadInMB"].get<std::int64_t>() <= kPayloadLimitMB) {
    max_payload_mb_ = ep["MaxPayloadInMB"].get<std::int64_t>();
  }
}

Status TransformJobController::Runner::OpenDataProcessing() {
  const transform::DataProcessingOptions options = ProcessingOptions(request_);
  split_ = options.split_type;
  ASSIGN_OR_RETURN(processing_, transform::DataProcessing::Create(options));
  ASSIGN_OR_RETURN(assemble_, transform::ParseAssembleWith(
                                  request_["TransformOutput"].value("AssembleWith", "None"),
                                  "TransformOutput.AssembleWith"));
  const json mcc = request_.value("ModelClientConfig", json::object());
  invocation_timeout_ =
      std::chrono::seconds(mcc.value("InvocationsTimeoutInSeconds", kDefaultTimeoutSeconds));
  max_retries_ = static_cast<int>(mcc.value("InvocationsMaxRetries", kDefaultMaxRetries));
  return Status::Ok();
}

// --- the transform proper ------------------------------------------------------------------

void TransformJobController::Runner::Abort() {
  abort_ = true;
  { std::lock_guard<std::mutex> lock(state_mu_); }
  state_cv_.notify_all();
}

bool TransformJobController::Runner::Backoff(std::chrono::milliseconds delay) {
  std::unique_lock<std::mutex> lock(state_mu_);
  return !state_cv_.wait_for(lock, delay, [&] { return abort_.load(); });
}

bool TransformJobController::Runner::OpenNext(Lane& lane) {
  std::size_t index;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    if (pending_.empty()) return false;
    index = pending_.front();
    pending_.pop_front();
  }
  auto o = std::make_shared<ObjectWork>();
  o->index = index;
  lane.open.push_back(o);
  const InputObject& obj = inputs_[index];
  const std::string uri = Uri(obj.in);
  auto reader = c_.objects_.OpenForRead(obj.in.bucket, obj.in.key);
  if (!reader.ok()) {
    FailObject(lane, *o, "cannot read the object: " + reader.status().message(), {});
    return true;
  }
  o->reader = std::move(reader).value();
  storage::ObjectReader* r = o->reader.get();
  transform::ByteSource source =
      transform::SourceFromReadAt([r](std::uint64_t offset, std::size_t n, std::string* out) {
        return r->ReadAt(offset, n, out);
      });
  if (request_["TransformInput"].value("CompressionType", "None") == "Gzip") {
    source = transform::GunzipSource(std::move(source), uri);
  }
  transform::PayloadSplitter::Options options;
  options.split_type = split_;
  options.batch_strategy = strategy_;
  options.max_payload_bytes =
      transform::PayloadLimitBytes(static_cast<std::uint64_t>(max_payload_mb_));
  options.object_name = uri;
  if (processing_.filters_input()) options.filter = processing_.InputFilterFor(uri);
  options.keep_input = processing_.needs_input();
  auto splitter = transform::PayloadSplitter::Open(std::move(options), std::move(source));
  if (!splitter.ok()) {
    FailObject(lane, *o, splitter.status().message(), {});
    return true;
  }
  o->splitter = std::move(splitter).value();
  storage::PutOptions put;
  put.content_type = request_["TransformOutput"].value("Accept", "");
  auto writer = c_.objects_.OpenForWrite(obj.out.bucket, obj.out.key, put);
  if (!writer.ok()) {
    FailObject(lane, *o, "cannot write " + Uri(obj.out) + ": " + writer.status().message(), {});
    return true;
  }
  o->writer = std::move(writer).value();
  return true;
}

bool TransformJobController::Runner::TakePayload(Lane& lane, Work* work) {
  // A window per object bounds the outputs held back for an earlier, slower payload.
  const std::uint64_t window = static_cast<std::uint64_t>(std::max(2, 2 * concurrency_));
  for (std::size_t i = 0; i < lane.open.size();) {
    std::shared_ptr<ObjectWork> o = lane.open[i];
    if (o->done || o->exhausted || o->issued - o->written >= window) {
      ++i;
      continue;
    }
    transform::Payload payload;
    auto more = o->splitter->Next(&payload);
    if (!more.ok()) {
      FailObject(lane, *o, more.status().message(), {});
      continue;  // closed: lane.open[i] is the next one now
    }
    if (!*more) {
      o->exhausted = true;
      if (o->written == o->issued) {
        CompleteObject(lane, *o);
        continue;
      }
      ++i;
      continue;
    }
    work->object = o;
    work->seq = o->issued++;
    work->payload = std::move(payload);
    return true;
  }
  return false;
}

void TransformJobController::Runner::CloseObject(Lane& lane, ObjectWork& o) {
  o.done = true;
  o.writer.reset();  // an uncommitted writer discards what it got
  o.splitter.reset();
  o.reader.reset();
  o.ready.clear();
  lane.open.erase(std::remove_if(lane.open.begin(), lane.open.end(),
                                 [&](const auto& p) { return p.get() == &o; }),
                  lane.open.end());
}

void TransformJobController::Runner::CompleteObject(Lane& lane, ObjectWork& o) {
  auto committed = o.writer->Commit();
  if (!committed.ok()) {
    FailObject(lane, o,
               "cannot store " + Uri(inputs_[o.index].out) + ": " + committed.status().message(),
               {});
    return;
  }
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    completed_unrecorded_.push_back(o.index);
  }
  CloseObject(lane, o);
}

void TransformJobController::Runner::FailObject(Lane& lane, ObjectWork& o,
                                                const std::string& detail,
                                                const std::vector<std::string>& log_lines) {
  const InputObject& obj = inputs_[o.index];
  const std::string where = obj.in.bucket + "/" + obj.in.key;
  std::vector<std::string> lines;
  if (log_lines.empty()) {
    lines.push_back(where + ": " + detail);
  } else {
    for (const auto& line : log_lines) lines.push_back(where + ": " + line);
  }
  LogData(*lane.inst, lines);
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    failures_.push_back(std::string(kClientError) + Uri(obj.in) + ": " + detail);
  }
  CloseObject(lane, o);
}

TransformJobController::Runner::Answer TransformJobController::Runner::Invoke(Lane& lane,
                                                                              Work& work) {
  http::ClientRequest request;
  request.method = "POST";
  request.target = "/invocations";
  const std::string content_type = request_["TransformInput"].value("ContentType", "");
  const std::string accept = request_["TransformOutput"].value("Accept", "");
  if (!content_type.empty()) request.headers.emplace_back("Content-Type", content_type);
  if (!accept.empty()) request.headers.emplace_back("Accept", accept);
  request.body = std::move(work.payload.body);
  Answer answer;
  std::chrono::milliseconds delay = c_.options_.retry_backoff;
  for (int attempt = 0; attempt <= max_retries_; ++attempt) {
    if (attempt > 0) {
      const std::string why = answer.response.ok()
                                  ? "HTTP " + std::to_string(answer.response->status)
                                  : answer.response.status().message();
      LogData(*lane.inst, {Uri(inputs_[work.object->index].in) + ": invocation failed (" + why +
                           "); retrying (" + std::to_string(attempt) + " of " +
                           std::to_string(max_retries_) + ")"});
      if (!Backoff(delay)) break;
      delay *= 2;
    }
    answer.response = lane.inst->pool->Send(request, invocation_timeout_);
    answer.attempts = attempt + 1;
    if (abort_) break;
    // A 4xx answer is the model's verdict on this payload: sending it again changes nothing.
    if (answer.response.ok() && answer.response->status < 500) break;
  }
  work.payload.body = std::move(request.body);
  return answer;
}

void TransformJobController::Runner::Deliver(Lane& lane, Work& work, Answer answer) {
  ObjectWork& o = *work.object;
  if (o.done || abort_) return;
  const transform::Payload& p = work.payload;
  const std::string uri = Uri(inputs_[o.index].in);
  const std::string records = p.record_count == 1
                                  ? "record " + std::to_string(p.first_record + 1)
                                  : "records " + std::to_string(p.first_record + 1) + "-" +
                                        std::to_string(p.first_record + p.record_count);
  const std::string tries =
      answer.attempts > 1 ? " after " + std::to_string(answer.attempts) + " attempts" : "";
  if (!answer.response.ok()) {
    const Status& s = answer.response.status();
    const std::string what = s.code() == StatusCode::kDeadlineExceeded
                                 ? "no answer within " +
                                       std::to_string(invocation_timeout_.count() / 1000) +
                                       " seconds (ModelClientConfig.InvocationsTimeoutInSeconds)"
                                 : "no answer: " + s.message();
    FailObject(lane, o,
               "instance " + lane.inst->id + " gave " + what + " to " + records + tries + ".",
               {"ClientError: " + what});
    return;
  }
  const http::ClientResponse& r = *answer.response;
  if (r.status < 200 || r.status >= 300) {
    std::string message = r.body.substr(0, kModelMessageLimit);
    while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) {
      message.pop_back();
    }
    std::vector<std::string> lines = {"ClientError: " + std::to_string(r.status), "", "Message:"};
    std::string logged = r.body.substr(0, kLoggedMessageLimit);
    for (std::size_t start = 0; start < logged.size();) {
      std::size_t nl = logged.find('\n', start);
      if (nl == std::string::npos) nl = logged.size();
      lines.push_back(logged.substr(start, nl - start));
      start = nl + 1;
    }
    FailObject(lane, o,
               "the model answered HTTP " + std::to_string(r.status) + " to " + records + tries +
                   (message.empty() ? "." : ": " + message),
               lines);
    return;
  }
  auto written = processing_.ProcessResponse(p, r.body, r.headers.GetOr("content-type", ""), uri);
  if (!written.ok()) {
    FailObject(lane, o, written.status().message(), {});
    return;
  }
  o.ready[work.seq] = std::move(written).value();
  std::string bytes;
  while (!o.ready.empty() && o.ready.begin()->first == o.written) {
    bytes.clear();
    for (const std::string& record : o.ready.begin()->second) {
      transform::AppendAssembled(assemble_, record, &bytes);
    }
    if (Status s = o.writer->Append(bytes); !s.ok()) {
      FailObject(lane, o, "cannot write " + Uri(inputs_[o.index].out) + ": " + s.message(), {});
      return;
    }
    o.ready.erase(o.ready.begin());
    ++o.written;
  }
  if (o.exhausted && o.written == o.issued) CompleteObject(lane, o);
}

void TransformJobController::Runner::SenderLoop(Lane& lane) {
  for (;;) {
    Work work;
    {
      std::unique_lock<std::mutex> lock(lane.mu);
      bool got = false;
      while (!abort_) {
        if (TakePayload(lane, &work)) {
          got = true;
          break;
        }
        // More objects at once only while the open ones cannot use this sender.
        if (lane.open.size() < static_cast<std::size_t>(concurrency_) && OpenNext(lane)) continue;
        if (lane.open.empty()) {
          std::lock_guard<std::mutex> state(state_mu_);
          if (pending_.empty()) break;  // nothing left for this instance
          continue;
        }
        lane.cv.wait(lock);
      }
      if (!got) {
        lane.cv.notify_all();  // the others may be done too
        return;
      }
    }
    // When the first record reached a model shows how long the job took to start; logged
    // after the answer so the store write does not delay it.
    const bool first = !first_request_sent_.exchange(true);
    const std::int64_t sent_millis = first ? NowMillis() : 0;
    const std::size_t sent_bytes = work.payload.body.size();
    Answer answer = Invoke(lane, work);
    if (first) {
      LogData(*lane.inst,
              {"first request: " + std::to_string(sent_bytes) + " bytes of " +
               Uri(inputs_[work.object->index].in)},
              sent_millis);
    }
    std::lock_guard<std::mutex> lock(lane.mu);
    Deliver(lane, work, std::move(answer));
    lane.cv.notify_all();
  }
}

void TransformJobController::Runner::FlushProgress() {
  std::vector<std::size_t> batch;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    batch.swap(completed_unrecorded_);
  }
  if (batch.empty()) return;
  Status recorded = Record("", [&](metadata::Resource& r) {
    json& done = r.internal["completed"];
    if (!done.is_array()) done = json::array();
    for (std::size_t i : batch) done.push_back(i);
  });
  if (!recorded.ok()) {
    spdlog::warn("transform job {}: cannot record progress: {}", name_, recorded.ToString());
    std::lock_guard<std::mutex> lock(state_mu_);
    completed_unrecorded_.insert(completed_unrecorded_.end(), batch.begin(), batch.end());
  }
}

void TransformJobController::Runner::Transform(const std::vector<std::size_t>& todo) {
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    pending_.assign(todo.begin(), todo.end());
  }
  std::vector<std::unique_ptr<Lane>> lanes;
  for (auto& inst : instances_) {
    auto lane = std::make_unique<Lane>();
    lane->inst = inst.get();
    // Idle connections kept for every sender, so a steady stream of requests reuses them.
    inst->pool = std::make_unique<http::ConnectionPool>("127.0.0.1", inst->port,
                                                        static_cast<std::size_t>(concurrency_));
    lanes.push_back(std::move(lane));
  }
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    senders_running_ = static_cast<int>(lanes.size()) * concurrency_;
  }
  for (auto& lane : lanes) {
    for (int i = 0; i < concurrency_; ++i) {
      Lane* l = lane.get();
      l->threads.emplace_back([this, l] {
        SenderLoop(*l);
        std::lock_guard<std::mutex> lock(state_mu_);
        --senders_running_;
        state_cv_.notify_all();
      });
    }
  }

  std::string instance_failure;
  bool stopped = false;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(state_mu_);
      state_cv_.wait_for(lock, c_.options_.poll_interval, [&] { return senders_running_ == 0; });
      if (senders_running_ == 0) break;
    }
    FlushProgress();
    for (auto& inst : instances_) IngestOutput(*inst);
    if (ShuttingDown()) break;
    if (Stopping()) {
      stopped = true;
      break;
    }
    for (auto& inst : instances_) {
      auto st = c_.runtime_.Poll(inst->state_dir());
      if (st.ok() && st->state == runtime::HostState::kRunning) continue;
      DrainOutput(*inst);
      inst->exited = true;
      const std::string tail = OutputTail(*inst);
      instance_failure = std::string(kClientError) + "Instance " + inst->id + " stopped (" +
                         DescribeHostEnd(st) + ") while transforming." +
                         (tail.empty() ? "" : " Last output:\n" + tail);
      LogData(*inst, {"The model container stopped (" + DescribeHostEnd(st) + ")."});
      break;
    }
    if (!instance_failure.empty()) break;
  }

  const bool finished = instance_failure.empty() && !stopped && !ShuttingDown();
  Abort();
  // In-flight requests end when their instance does. A stop gives the containers their grace,
  // as does the end of the work; a failure or a shutdown ends them at once.
  StopInstances(stopped || finished ? c_.options_.stop_grace : std::chrono::milliseconds(0));
  for (auto& lane : lanes) {
    // Taken before notifying: a sender between its abort check and its wait cannot miss it.
    { std::lock_guard<std::mutex> lock(lane->mu); }
    lane->cv.notify_all();
    for (auto& t : lane->threads) t.join();
  }
  // Objects left open had not finished: their writers are discarded with them.
  lanes.clear();
  FlushProgress();
  if (!instance_failure.empty()) {
    std::lock_guard<std::mutex> lock(state_mu_);
    failures_.insert(failures_.begin(), instance_failure);
  }
}

void TransformJobController::Runner::StopInstances(std::chrono::milliseconds grace) {
  const auto start = std::chrono::steady_clock::now();
  for (auto& inst : instances_) {
    if (inst->exited) continue;
    c_.runtime_.Signal(inst->state_dir(), grace.count() > 0 ? SIGTERM : SIGKILL).IgnoreError();
  }
  bool killed = grace.count() == 0;
  std::chrono::steady_clock::time_point killed_at = start;
  for (;;) {
    bool all_ended = true;
    for (auto& inst : instances_) {
      IngestOutput(*inst);
      if (inst->exited) continue;
      auto st = c_.runtime_.Poll(inst->state_dir());
      if (st.ok() && st->state == runtime::HostState::kRunning) {
        all_ended = false;
        continue;
      }
      DrainOutput(*inst);
      inst->exited = true;
    }
    if (all_ended) return;
    const auto now = std::chrono::steady_clock::now();
    if (!killed && now - start >= grace) {
      killed = true;
      killed_at = now;
      for (auto& inst : instances_) {
        if (!inst->exited) c_.runtime_.Signal(inst->state_dir(), SIGKILL).IgnoreError();
      }
    }
    if (killed && now - killed_at > kKillBound) return;
    std::this_thread::sleep_for(c_.options_.poll_interval);
  }
}

void TransformJobController::Runner::Finish(const std::string& status, const std::string& reason) {
  const std::string r = reason.substr(0, kFailureReasonLimit);
  auto updated = MutateResource(
      c_.store_, kKind, name_,
      [&](metadata::Resource& rec) -> Result<std::optional<metadata::Transition>> {
        // Stopping is sticky: a stopped job ends Stopped whatever else happened meanwhile.
        const std::string final_status = rec.status == "Stopping" ? "Stopped" : status;
        const std::int64_t now = NowMillis();
        rec.status = final_status;
        rec.modified_millis = now;
        rec.doc["TransformJobStatus"] = final_status;
        rec.doc["LastModifiedTime"] = ToEpochSeconds(now);
        rec.doc["TransformEndTime"] = ToEpochSeconds(now);
        if (final_status == "Failed") rec.doc["FailureReason"] = r;
        rec.internal["instances"] = json::array();
        const std::string message = final_status == "Failed"
                                        ? "Transform job failed: " + r.substr(0, 200)
                                    : final_status == "Stopped" ? "Transform job stopped"
                                                                : "Transform job completed";
        return std::optional<metadata::Transition>(
            metadata::Transition{final_status, "", now, message});
      });
  if (!updated.ok()) {
    spdlog::error("transform job {}: cannot record its end: {}", name_,
                  updated.status().ToString());
    return;  // left for the next Recover()
  }
  record_ = std::move(updated).value();
  finished_ = true;
  instances_.clear();
  std::error_code ec;
  fs::remove_all(JobDir(), ec);
}

void TransformJobController::Runner::Execute() {
  auto loaded = c_.store_.Get(kKind, name_);
  if (!loaded.ok()) {
    spdlog::error("transform job {}: cannot load its record: {}", name_,
                  loaded.status().ToString());
    return;
  }
  record_ = std::move(loaded).value();
  if (!IsLive(record_.status)) {
    finished_ = true;
    return;
  }
  request_ = record_.internal.value("request", json::object());
  container_ = record_.internal.value("container", json::object());
  for (const json& i : record_.internal.value("instances", json::array())) {
    auto inst = std::make_unique<Instance>();
    inst->id = i.value("id", "");
    inst->port = i.value("port", std::uint16_t{0});
    inst->dir = i.value("dir", "");
    instances_.push_back(std::move(inst));
  }
  KillLeftovers();
  if (Stopping()) {
    Finish("Stopped", "");
    return;
  }

  auto inputs = LoadInputs();
  if (!inputs.ok()) {
    Finish("Failed", "ClientError: " + inputs.status().message());
    return;
  }
  inputs_ = std::move(inputs).value();
  if (Status s = OpenDataProcessing(); !s.ok()) {
    Finish("Failed", "ClientError: " + s.message());
    return;
  }
  std::set<std::size_t> done;
  for (const json& i : record_.internal.value("completed", json::array())) {
    const std::size_t index = i.get<std::size_t>();
    // Recorded and still there: a resumed job does not transform it again.
    if (index < inputs_.size() &&
        c_.objects_.Stat(inputs_[index].out.bucket, inputs_[index].out.key).ok()) {
      done.insert(index);
    }
  }
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < inputs_.size(); ++i) {
    if (!done.count(i)) todo.push_back(i);
  }
  if (!done.empty()) {
    spdlog::info("transform job {}: resuming with {} of {} objects already transformed", name_,
                 done.size(), inputs_.size());
  }

  if (todo.empty()) {
    Finish("Completed", "");
    return;
  }
  if (Status prepared = PrepareModel(); !prepared.ok()) {
    Finish("Failed", "ClientError: " + prepared.message());
    return;
  }
  if (ShuttingDown()) return;
  if (Stopping()) {
    Finish("Stopped", "");
    return;
  }

  std::string failure;
  const Outcome outcome = StartInstances(&failure);
  if (outcome != Outcome::kReady) {
    const bool shutting_down = outcome == Outcome::kShuttingDown;
    StopInstances(outcome == Outcome::kStopping ? c_.options_.stop_grace
                                                : std::chrono::milliseconds(0));
    if (outcome == Outcome::kFailed) {
      for (auto& inst : instances_) LogData(*inst, {failure});
      Finish("Failed", failure);
    } else if (!shutting_down) {
      Finish("Stopped", "");
    }
    return;
  }

  ResolveSettings();
  const std::string strategy_name =
      strategy_ == transform::BatchStrategy::kSingleRecord ? "SINGLE_RECORD" : "MULTI_RECORD";
  for (auto& inst : instances_) {
    LogData(*inst, {"MaxConcurrentTransforms=" + std::to_string(concurrency_) +
                    ", MaxPayloadInMB=" + std::to_string(max_payload_mb_) +
                    ", BatchStrategy=" + strategy_name});
  }
  Status recorded = Record("Transforming", [&](metadata::Resource& r) {
    r.doc["MaxConcurrentTransforms"] = concurrency_;
    r.doc["MaxPayloadInMB"] = max_payload_mb_;
    r.doc["BatchStrategy"] = std::string(transform::BatchStrategyName(strategy_));
    if (!r.doc.contains("TransformStartTime"))
      r.doc["TransformStartTime"] = ToEpochSeconds(NowMillis());
  });
  if (!recorded.ok()) {
    spdlog::error("transform job {}: cannot record its settings: {}", name_, recorded.ToString());
  }

  Transform(todo);                            // returns with every instance ended
  if (ShuttingDown() && !Stopping()) return;  // left as recorded for the next Recover()
  if (Stopping()) {
    Finish("Stopped", "");
    return;
  }
  std::vector<std::string> failures;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    failures = failures_;
  }
  if (!failures.empty()) {
    std::string reason = failures.front();
    if (failures.size() > 1) {
      reason += " (" + std::to_string(failures.size() - 1) + " more object" +
                (failures.size() > 2 ? "s" : "") + " failed too.)";
    }
    Finish("Failed", reason);
    return;
  }
  Finish("Completed", "");
}

// ---------------------------------------------------------------------------------------------

TransformJobController::TransformJobController(TransformJobOptions options,
                                               metadata::MetadataStore& store,
                                               metadata::LogStore& logs,
                                               storage::ObjectStore& objects,
                                               runtime::HostProcessRuntime& runtime,
                                               const ImageRegistry& images)
    : options_(std::move(options)),
      store_(store),
      logs_(logs),
      objects_(objects),
      runtime_(runtime),
      images_(images) {}

TransformJobController::~TransformJobController() { monitors_.Shutdown(); }

void TransformJobController::StartRunner(const std::string& name) {
  monitors_.Start(name, [this, name](MonitorThreads::Run& run) {
    Runner runner(*this, name, run);
    runner.Execute();
    // A stop that landed as this run was ending found it still registered and left the work
    // to it: then the monitor runs again to finish it.
    return runner.finished() || !run.end_requested;
  });
}

Result<metadata::Resource> TransformJobController::Find(const std::string& name,
                                                        const Status& missing) {
  return FindResourceIgnoringCase(store_, kKind, name, missing);
}

Result<json> TransformJobController::Create(const json& request) {
  const std::string name = request.value("TransformJobName", "");
  const std::string arn = SageMakerArn(options_.account, "transform-job", name);
  const std::string model_name = request.value("ModelName", "");
  if (request.contains("DataCaptureConfig")) {
    return Validation("DataCaptureConfig is not supported by Hearth's CreateTransformJob.");
  }
  ASSIGN_OR_RETURN(metadata::Resource model,
                   FindResourceIgnoringCase(
                       store_, kModelKind, model_name,
                       Validation("Could not find model \"" +
                                  SageMakerArn(options_.account, "model", model_name) + "\".")));
  const json& md = model.doc;
  const std::size_t containers =
      md.contains("PrimaryContainer") ? 1 : md.value("Containers", json::array()).size();
  if (containers != 1) {
    return Validation("Model \"" + model.name + "\" has " + std::to_string(containers) +
                      " containers; Hearth's batch transform runs models of one container "
                      "(PrimaryContainer, or one entry in Containers), not inference pipelines.");
  }
  const json& container = ModelContainer(md);
  if (container.value("Mode", "SingleModel") != "SingleModel") {
    return Validation("Model \"" + model.name + "\" has Mode " + container.value("Mode", "") +
                      "; batch transform runs SingleModel containers only.");
  }
  RETURN_IF_ERROR(images_.Resolve(container.value("Image", ""), "primaryContainer.image").status());

  if (request.contains("MaxPayloadInMB") &&
      request["MaxPayloadInMB"].get<std::int64_t>() > kPayloadLimitMB) {
    return Validation("1 validation error detected: Value '" +
                      std::to_string(request["MaxPayloadInMB"].get<std::int64_t>()) +
                      "' at 'maxPayloadInMB' failed to satisfy constraint: Member must have "
                      "value less than or equal to 100");
  }
  const std::int64_t concurrency = request.value("MaxConcurrentTransforms", std::int64_t{0});
  if (concurrency > 0) {
    const std::int64_t payload_mb = request.value(
        "MaxPayloadInMB", static_cast<std::int64_t>(transform::kDefaultMaxPayloadInMB));
    if (concurrency * payload_mb > kPayloadLimitMB) {
      return Validation(
          "MaxConcurrentTransforms (" + std::to_string(concurrency) + ") x MaxPayloadInMB (" +
          std::to_string(payload_mb) + (request.contains("MaxPayloadInMB") ? "" : ", the default") +
          ") = " + std::to_string(concurrency * payload_mb) + " MB exceeds the limit of 100 MB.");
    }
  }
  const json& input = request["TransformInput"];
  const json& output = request["TransformOutput"];
  auto checked =
      transform::ParseSplitType(input.value("SplitType", "None"), "TransformInput.SplitType");
  if (!checked.ok()) return Validation(checked.status().message());
  if (request.contains("BatchStrategy")) {
    auto strategy =
        transform::ParseBatchStrategy(request["BatchStrategy"].get<std::string>(), "BatchStrategy");
    if (!strategy.ok()) return Validation(strategy.status().message());
  }
  if (auto assemble = transform::ParseAssembleWith(output.value("AssembleWith", "None"),
                                                   "TransformOutput.AssembleWith");
      !assemble.ok()) {
    return Validation(assemble.status().message());
  }
  if (auto dp = transform::DataProcessing::Create(ProcessingOptions(request)); !dp.ok()) {
    return Validation(dp.status().message());
  }
  auto out = storage::ParseS3Uri(output.value("S3OutputPath", ""));
  if (!out.ok()) return Validation("TransformOutput.S3OutputPath must be an s3:// URI.");
  if (!objects_.HeadBucket(out->bucket).ok()) {
    return Validation("The bucket '" + out->bucket +
                      "' in TransformOutput.S3OutputPath does not exist.");
  }
  if (auto inputs = ResolveInputs(objects_, request); !inputs.ok()) {
    return Validation(inputs.status().message());
  }

  const std::int64_t now = NowMillis();
  metadata::Resource r;
  r.kind = std::string(kKind);
  r.name = name;
  r.arn = arn;
  r.status = "InProgress";
  r.created_millis = r.modified_millis = now;
  json doc = request;
  doc.erase("Tags");
  doc["TransformJobArn"] = arn;
  doc["TransformJobStatus"] = "InProgress";
  doc["CreationTime"] = ToEpochSeconds(now);
  doc["LastModifiedTime"] = ToEpochSeconds(now);
  // SageMaker's Describe shows the defaults it applied.
  json& in_doc = doc["TransformInput"];
  if (!in_doc.contains("CompressionType")) in_doc["CompressionType"] = "None";
  if (!in_doc.contains("SplitType")) in_doc["SplitType"] = "None";
  if (!doc["TransformOutput"].contains("AssembleWith"))
    doc["TransformOutput"]["AssembleWith"] = "None";
  json processing = {{"InputFilter", "$"}, {"OutputFilter", "$"}, {"JoinSource", "None"}};
  processing.update(request.value("DataProcessing", json::object()));
  doc["DataProcessing"] = processing;
  json client = {{"InvocationsTimeoutInSeconds", kDefaultTimeoutSeconds},
                 {"InvocationsMaxRetries", kDefaultMaxRetries}};
  client.update(request.value("ModelClientConfig", json::object()));
  doc["ModelClientConfig"] = client;
  r.doc = std::move(doc);
  json stored = request;
  stored.erase("Tags");
  r.internal = {{"request", stored},          {"container", container},
                {"model", model.name},        {"tags", request.value("Tags", json::array())},
                {"instances", json::array()}, {"completed", json::array()}};

  const Status duplicate = Validation(
      "Job name must be unique within an AWS account and region, and a job with this name "
      "already exists (" +
      arn + ")");
  {
    std::lock_guard<std::mutex> lock(create_mu_);
    ASSIGN_OR_RETURN(std::vector<metadata::Resource> all, store_.List(kKind));
    std::int64_t running = 0;
    for (const auto& job : all) {
      if (!IsLive(job.status)) continue;
      running += job.internal.value(json::json_pointer("/request/TransformResources/InstanceCount"),
                                    std::int64_t{1});
    }
    const std::int64_t wanted =
        request["TransformResources"].value("InstanceCount", std::int64_t{1});
    if (running + wanted > options_.max_running_instances) {
      return ResourceExhausted(
          "The account-level service limit 'Number of instances across all transform jobs' is " +
              std::to_string(options_.max_running_instances) +
              " Instances, with current utilization of " + std::to_string(running) +
              " Instances and a request delta of " + std::to_string(wanted) +
              " Instances. Wait for running transform jobs to end.",
          "ResourceLimitExceeded");
    }
    RETURN_IF_ERROR(CreateIfAbsentIgnoringCase(
        store_, r, {"InProgress", "", now, "CreateTransformJob"}, duplicate));
  }
  StartRunner(name);
  return json{{"TransformJobArn", arn}};
}

Result<json> TransformJobController::Describe(const json& request) {
  const std::string name = request.value("TransformJobName", "");
  ASSIGN_OR_RETURN(metadata::Resource r,
                   Find(name, Validation("Could not find requested job with name " + name)));
  return r.doc;
}

Result<json> TransformJobController::List(const json& request) {
  ASSIGN_OR_RETURN(std::vector<metadata::Resource> all, store_.List(kKind));
  ASSIGN_OR_RETURN(ListPage page, FilterSortPage(all, request, {}));
  json summaries = json::array();
  for (const metadata::Resource* r : page.rows) {
    const json& d = r->doc;
    json s = {{"TransformJobName", r->name},
              {"TransformJobArn", r->arn},
              {"CreationTime", d["CreationTime"]},
              {"TransformJobStatus", r->status}};
    for (const char* k : {"TransformEndTime", "LastModifiedTime", "FailureReason"}) {
      if (d.contains(k)) s[k] = d[k];
    }
    summaries.push_back(std::move(s));
  }
  json result = {{"TransformJobSummaries", summaries}};
  if (page.next_token) result["NextToken"] = *page.next_token;
  return result;
}

Result<json> TransformJobController::Stop(const json& request) {
  const std::string name = request.value("TransformJobName", "");
  const Status missing(StatusCode::kNotFound,
                       "Could not find transform job \"" +
                           SageMakerArn(options_.account, "transform-job", name) + "\".",
                       "ResourceNotFound");
  ASSIGN_OR_RETURN(metadata::Resource found, Find(name, missing));
  auto updated = MutateResource(
      store_, kKind, found.name,
      [&](metadata::Resource& r) -> Result<std::optional<metadata::Transition>> {
        if (r.status == "Stopping") return std::optional<metadata::Transition>();
        if (r.status != "InProgress") {
          return Validation("The request was rejected because the transform job is in status " +
                            r.status + ".");
        }
        const std::int64_t now = NowMillis();
        r.status = "Stopping";
        r.modified_millis = now;
        r.doc["TransformJobStatus"] = "Stopping";
        r.doc["LastModifiedTime"] = ToEpochSeconds(now);
        return std::optional<metadata::Transition>(
            metadata::Transition{"Stopping", "", now, "StopTransformJob"});
      });
  if (!updated.ok()) {
    if (updated.status().code() == StatusCode::kNotFound) return missing;
    return updated.status();
  }
  if (!monitors_.RequestEnd(found.name)) StartRunner(found.name);
  return json::object();
}

std::size_t TransformJobController::MonitoredJobs() { return monitors_.size(); }

Status TransformJobController::Recover() {
  ASSIGN_OR_RETURN(std::vector<metadata::Resource> all, store_.List(kKind));
  for (const auto& r : all) {
    if (!IsLive(r.status)) continue;
    spdlog::info("resuming transform job {} ({})", r.name, r.status);
    StartRunner(r.name);
  }
  return Status::Ok();
}

}  // namespace hearth::control
