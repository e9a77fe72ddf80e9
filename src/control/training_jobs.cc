#include "control/training_jobs.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <set>
#include <thread>

#include <re2/re2.h>
#include <signal.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fs.h"
#include "control/host_output.h"
#include "control/resource_records.h"
#include "runtime/training_contract.h"
#include "spdlog/spdlog.h"

namespace hearth::control {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kDefaultMaxRuntimeSeconds = 86400;
constexpr std::size_t kFailureReasonLimit = 1024;

double ToEpochSeconds(std::int64_t millis) { return static_cast<double>(millis) / 1000.0; }

Status Validation(std::string message) {
  return InvalidArgument(std::move(message), "ValidationException");
}

// Closes the open SecondaryStatusTransitions entry and opens `status`.
void AddSecondaryTransition(json& doc, const std::string& status, const std::string& message,
                            std::int64_t now) {
  json& transitions = doc["SecondaryStatusTransitions"];
  if (!transitions.is_array()) transitions = json::array();
  if (!transitions.empty() && !transitions.back().contains("EndTime")) {
    transitions.back()["EndTime"] = ToEpochSeconds(now);
  }
  transitions.push_back(
      {{"Status", status}, {"StartTime", ToEpochSeconds(now)}, {"StatusMessage", message}});
  doc["SecondaryStatus"] = status;
  doc["LastModifiedTime"] = ToEpochSeconds(now);
}

// One InputDataConfig entry (validated: it has DataSource.S3DataSource). A channel without its
// own InputMode takes the job's TrainingInputMode.
runtime::ChannelSpec ChannelSpecFor(const json& ch, const std::string& default_mode) {
  runtime::ChannelSpec spec;
  spec.name = ch.value("ChannelName", "");
  const json& s3 = ch.at("DataSource").at("S3DataSource");
  spec.s3_uri = s3.value("S3Uri", "");
  spec.s3_data_type = s3.value("S3DataType", "S3Prefix");
  spec.distribution = s3.value("S3DataDistributionType", "FullyReplicated");
  spec.compression = ch.value("CompressionType", "None");
  spec.input_mode = ch.value("InputMode", default_mode);
  spec.content_type = ch.value("ContentType", "");
  spec.record_wrapper = ch.value("RecordWrapperType", "None");
  return spec;
}

std::string DefaultInputMode(const json& request) {
  return request.at("AlgorithmSpecification").value("TrainingInputMode", std::string("File"));
}

std::vector<runtime::ChannelSpec> ChannelSpecs(const json& request) {
  std::vector<runtime::ChannelSpec> specs;
  const std::string default_mode = DefaultInputMode(request);
  for (const json& ch : request.value("InputDataConfig", json::array())) {
    specs.push_back(ChannelSpecFor(ch, default_mode));
  }
  return specs;
}

std::string UpperChannelVar(const std::string& name) {
  std::string out = "SM_CHANNEL_";
  for (char c : name) {
    out.push_back(std::isalnum(static_cast<unsigned char>(c))
                      ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                      : '_');
  }
  return out;
}

std::string HostName(int i) { return "algo-" + std::to_string(i + 1); }

// Where a sandboxed host of a built-in algorithm finds the `hearth` binary.
constexpr std::string_view kSandboxHearthPath = "/opt/.hearth/hearth";

std::string ReadFailureFile(const fs::path& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return "";
  std::string s = std::move(text).value();
  if (s.size() > kFailureReasonLimit) s.resize(kFailureReasonLimit);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

}  // namespace

// Drives one job from its recorded phase to a terminal state. Lives on the monitor thread.
class TrainingJobController::JobRunner {
 public:
  JobRunner(TrainingJobController& c, std::string name, MonitorThreads::Run& run)
      : c_(c), name_(std::move(name)), run_(run), job_dir_(c.options_.jobs_dir / name_) {}

  void Execute();

 private:
  struct Host {
    std::string name;
    fs::path ml_dir;
    fs::path state_dir;
    std::string stream;
    std::uint64_t log_offset = 0;
    bool exited = false;
    runtime::HostStatus status;
  };

  Status Transition(const std::string& status, const std::string& secondary,
                    const std::string& message,
                    const std::function<void(metadata::Resource&)>& extra = nullptr);
  // Kills hosts a previous server launched but never recorded (it stopped between Launch()
  // and the "Training" record) and waits for their supervisors to record the exit, so that
  // Prepare() starts from nothing and no stray exit.json lands in the new hosts' state.
  void EndUnrecordedHosts();
  Status Prepare();
  Status Launch();
  void Monitor();
  void IngestOutput(Host& host);
  void Finish();
  Status UploadArtifacts(json& artifacts_doc);
  // The objects of every channel read in `input_mode`, listed once for all hosts.
  using ChannelObjects = std::map<std::string, std::vector<storage::S3Location>>;
  Result<ChannelObjects> ResolveChannels(const std::vector<runtime::ChannelSpec>& channels,
                                         std::string_view input_mode);
  std::vector<std::string> HostNames() const;
  // Copies new or changed files of every host's checkpoints/ to CheckpointConfig.S3Uri.
  Status SyncCheckpoints();
  void Fail(const std::string& reason);
  bool Stopping() const;
  bool ShuttingDown() const { return c_.monitors_.shutting_down(); }

  TrainingJobController& c_;
  std::string name_;
  MonitorThreads::Run& run_;
  fs::path job_dir_;
  metadata::Resource record_;
  json request_;
  std::vector<Host> hosts_;
  MetricRegexes metric_res_;
  std::map<std::string, metadata::MetricPoint> last_metrics_;
  std::vector<std::unique_ptr<runtime::PipeFeeder>> feeders_;
  std::vector<runtime::UploadedFiles> checkpoint_uploads_;  // one per host
  std::int64_t last_checkpoint_sync_millis_ = 0;
  std::string pipe_failure_;             // set when a Pipe mode channel could not be fed
  std::string stop_reason_ = "Stopped";  // or "MaxRuntimeExceeded"
  std::int64_t sigterm_sent_millis_ = 0;
  bool sigkill_sent_ = false;
};

bool TrainingJobController::JobRunner::Stopping() const {
  return run_.end_requested.load() || record_.status == "Stopping";
}

Status TrainingJobController::JobRunner::Transition(
    const std::string& status, const std::string& secondary, const std::string& message,
    const std::function<void(metadata::Resource&)>& extra) {
  auto updated = MutateResource(
      c_.store_, kKind, name_,
      [&](metadata::Resource& r) -> Result<std::optional<metadata::Transition>> {
        std::int64_t now = NowMillis();
        // Stopping is sticky: progress recorded by this thread must not undo a stop request.
        // A stop can land between this thread's check and its next step (Downloading,
        // Training), so that step still records its phase (`extra`) but leaves both statuses
        // at Stopping: SecondaryStatus must not go back to an InProgress one.
        std::string new_status = status;
        std::string new_secondary = secondary;
        if (r.status == "Stopping" && new_status == "InProgress") {
          new_status = "Stopping";
          new_secondary = "Stopping";
        }
        r.status = new_status;
        r.modified_millis = now;
        r.doc["TrainingJobStatus"] = new_status;
        if (!new_secondary.empty() && r.doc.value("SecondaryStatus", "") != new_secondary) {
          AddSecondaryTransition(r.doc, new_secondary, message, now);
        }
        r.doc["LastModifiedTime"] = ToEpochSeconds(now);
        if (extra) extra(r);
        return std::optional<metadata::Transition>(
            metadata::Transition{new_status, new_secondary, now, message});
      });
  if (!updated.ok()) return updated.status();
  record_ = std::move(updated).value();
  return Status::Ok();
}

void TrainingJobController::JobRunner::Fail(const std::string& reason) {
  // Checkpoints are what a user needs to resume a failed job: keep the last ones.
  SyncCheckpoints().IgnoreError();
  std::string r = reason.substr(0, kFailureReasonLimit);
  Transition("Failed", "Failed", "Training job failed: " + r.substr(0, 200),
             [&](metadata::Resource& rec) {
               rec.doc["FailureReason"] = r;
               std::int64_t now = NowMillis();
               if (!rec.doc.contains("TrainingEndTime")) {
                 rec.doc["TrainingEndTime"] = ToEpochSeconds(now);
               }
               rec.internal["phase"] = "Done";
               auto& t = rec.doc["SecondaryStatusTransitions"];
               if (t.is_array() && !t.empty()) t.back()["EndTime"] = ToEpochSeconds(now);
             })
      .IgnoreError();
  std::error_code ec;
  fs::remove_all(job_dir_, ec);
}

void TrainingJobController::JobRunner::Execute() {
  auto loaded = c_.store_.Get(kKind, name_);
  if (!loaded.ok()) {
    spdlog::error("training job {}: cannot load its record: {}", name_, loaded.status().ToString());
    return;
  }
  record_ = std::move(loaded).value();
  request_ = record_.internal.value("request", json::object());

  for (const json& def :
       request_["AlgorithmSpecification"].value("MetricDefinitions", json::array())) {
    auto re = std::make_unique<RE2>(def.value("Regex", ""));
    if (re->ok()) metric_res_.emplace_back(def.value("Name", ""), std::move(re));
  }
  int count = request_["ResourceConfig"].value("InstanceCount", 1);
  for (int i = 0; i < count; ++i) {
    Host h;
    h.name = HostName(i);
    h.ml_dir = job_dir_ / h.name / "ml";
    h.state_dir = job_dir_ / h.name / "state";
    h.stream = name_ + "/" + h.name + "-" + std::to_string(record_.created_millis / 1000);
    hosts_.push_back(std::move(h));
  }

  std::string phase = record_.internal.value("phase", "");
  if (phase == "Done") return;
  if (phase != "Training" && phase != "Uploading") {
    if (Stopping()) {
      Finish();
      return;
    }
    EndUnrecordedHosts();
    Status prepared = Prepare();
    if (!prepared.ok()) {
      Fail(prepared.message());
      return;
    }
    if (Stopping()) {
      Finish();
      return;
    }
    Status launched = Launch();
    if (!launched.ok()) {
      // Hosts that did start must not train on alone, unwatched.
      for (Host& h : hosts_) c_.runtime_.Signal(h.state_dir, SIGKILL).IgnoreError();
      for (auto& f : feeders_) f->Stop();
      Fail("InternalServerError: could not start the training hosts: " + launched.message());
      return;
    }
  } else {
    // Re-adopting after a restart: continue each host's log from where ingestion stopped,
    // and remember the metrics seen so far for FinalMetricDataList.
    for (Host& h : hosts_) {
      auto position = c_.logs_.SourcePosition(kLogGroup, h.stream);
      h.log_offset = position.ok() ? static_cast<std::uint64_t>(*position) : 0;
    }
    if (auto seen = c_.logs_.Metrics(kKind, name_); seen.ok()) {
      for (const auto& p : *seen) last_metrics_[p.name] = p;
    }
    sigterm_sent_millis_ = record_.internal.value("sigterm_millis", std::int64_t{0});
    stop_reason_ = record_.internal.value("stop_reason", std::string("Stopped"));
  }
  if (phase != "Uploading") Monitor();
  if (ShuttingDown()) return;
  Finish();
}

Result<TrainingJobController::JobRunner::ChannelObjects>
TrainingJobController::JobRunner::ResolveChannels(const std::vector<runtime::ChannelSpec>& channels,
                                                  std::string_view input_mode) {
  ChannelObjects resolved;
  for (const auto& ch : channels) {
    if (ch.input_mode != input_mode) continue;
    ASSIGN_OR_RETURN(resolved[ch.name], runtime::ResolveChannelObjects(c_.objects_, ch));
  }
  return resolved;
}

std::vector<std::string> TrainingJobController::JobRunner::HostNames() const {
  std::vector<std::string> names;
  for (const Host& h : hosts_) names.push_back(h.name);
  return names;
}

void TrainingJobController::JobRunner::EndUnrecordedHosts() {
  for (Host& h : hosts_) {
    auto running = [&] {
      Result<runtime::HostStatus> st = c_.runtime_.Poll(h.state_dir);
      return st.ok() && st->state == runtime::HostState::kRunning;
    };
    if (!running()) continue;
    spdlog::warn("training job {}: host {} was launched before a restart but never recorded; "
                 "killing it before starting over",
                 name_, h.name);
    c_.runtime_.Signal(h.state_dir, SIGKILL).IgnoreError();
    const auto deadline = std::chrono::steady_clock::now() + c_.options_.stop_grace;
    while (running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(c_.options_.poll_interval);
    }
  }
}

Status TrainingJobController::JobRunner::Prepare() {
  std::error_code ec;
  fs::remove_all(job_dir_, ec);
  std::vector<runtime::ChannelSpec> channels = ChannelSpecs(request_);
  bool any_file_channel = false;
  for (const auto& ch : channels) any_file_channel |= ch.input_mode == "File";
  if (any_file_channel) {
    RETURN_IF_ERROR(Transition("InProgress", "Downloading", "Downloading input data", nullptr));
  }
  auto file_objects = ResolveChannels(channels, "File");
  if (!file_objects.ok()) return InvalidArgument("ClientError: " + file_objects.status().message());
  const std::vector<std::string> host_names = HostNames();
  std::map<std::string, std::string> hps;
  const json hp_json = request_.value("HyperParameters", json::object());
  for (const auto& [k, v] : hp_json.items()) {
    hps[k] = v.get<std::string>();
  }
  for (std::size_t i = 0; i < hosts_.size(); ++i) {
    Host& h = hosts_[i];
    runtime::HostLayout layout{
        .ml_dir = h.ml_dir,
        .current_host = h.name,
        .hosts = host_names,
        .instance_type = request_["ResourceConfig"].value("InstanceType", "ml.m5.large"),
        .hyperparameters = hps,
        .channels = channels};
    RETURN_IF_ERROR(runtime::WriteHostLayout(layout));
    fs::create_directories(h.state_dir, ec);
    if (ec) return Internal("cannot create " + h.state_dir.string() + ": " + ec.message());
    for (const auto& ch : channels) {
      if (ch.input_mode != "File") continue;
      auto share = runtime::ShareForHost(file_objects->at(ch.name), ch, static_cast<int>(i),
                                         static_cast<int>(hosts_.size()));
      Status staged = runtime::StageFileChannel(c_.objects_, ch, share, h.ml_dir);
      if (!staged.ok())
        return InvalidArgument("ClientError: Data download failed: " + staged.message());
    }
    if (request_.contains("CheckpointConfig")) {
      auto loc = storage::ParseS3Uri(request_["CheckpointConfig"].value("S3Uri", ""));
      if (loc.ok()) {
        Status s = runtime::DownloadPrefix(c_.objects_, *loc, h.ml_dir / "checkpoints");
        if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
      }
    }
  }
  return Status::Ok();
}

Status TrainingJobController::JobRunner::Launch() {
  auto image = c_.images_.Resolve(request_["AlgorithmSpecification"].value("TrainingImage", ""),
                                  "algorithmSpecification.trainingImage");
  if (!image.ok()) return image.status();
  const json& spec = request_["AlgorithmSpecification"];
  json hosts_json = HostNames();
  json hps = request_.value("HyperParameters", json::object());
  std::vector<runtime::ChannelSpec> channels = ChannelSpecs(request_);
  ASSIGN_OR_RETURN(ChannelObjects pipe_objects, ResolveChannels(channels, "Pipe"));
  int cpus = c_.options_.num_cpus > 0 ? c_.options_.num_cpus
                                      : static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  std::string program_inside =
      c_.runtime_.sandboxed() ? "/opt/program" : image->program_dir.string();

  std::vector<std::string> argv;
  if (spec.contains("ContainerEntrypoint")) {
    for (const auto& a : spec["ContainerEntrypoint"]) argv.push_back(a.get<std::string>());
    for (const auto& a : spec.value("ContainerArguments", json::array())) {
      argv.push_back(a.get<std::string>());
    }
  } else if (image->builtin) {
    argv = {c_.runtime_.sandboxed() ? std::string(kSandboxHearthPath)
                                    : c_.options_.hearth_binary.string(),
            "algo", image->algorithm, "train"};
  } else {
    argv = {program_inside + "/train"};
  }

  const json job_env = request_.value("Environment", json::object());
  // Hosts of a multi-host job find each other by name, as SageMaker's algo-1..algo-N do. All
  // of them run on this machine, so every name is loopback.
  fs::path hosts_file = job_dir_ / "hosts";
  bool bind_hosts = c_.runtime_.sandboxed() && hosts_.size() > 1 &&
                    !request_.value("EnableNetworkIsolation", false);
  if (bind_hosts) {
    std::string names;
    for (const Host& h : hosts_) names += " " + h.name;
    RETURN_IF_ERROR(WriteFileAtomic(
        hosts_file, "127.0.0.1\tlocalhost" + names + "\n::1\tlocalhost ip6-localhost\n",
        Durability::kSurvivesProcessCrash));
  }
  std::int64_t now = NowMillis();
  for (Host& h : hosts_) {
    std::string ml = c_.runtime_.MlPathInside(h.ml_dir);
    std::map<std::string, std::string> env;
    env["PATH"] = (image->builtin ? "" : program_inside + ":") +
                  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    env["HOME"] = "/root";
    env["LANG"] = "C.UTF-8";
    env["PYTHONUNBUFFERED"] = "1";
    env["TRAINING_JOB_NAME"] = name_;
    env["TRAINING_JOB_ARN"] = record_.arn;
    env["SM_TRAINING_JOB_NAME"] = name_;
    env["SM_CURRENT_HOST"] = h.name;
    env["SM_HOSTS"] = hosts_json.dump();
    env["SM_NUM_CPUS"] = std::to_string(cpus);
    env["SM_NUM_GPUS"] = "0";
    env["SM_CURRENT_INSTANCE_TYPE"] = request_["ResourceConfig"].value("InstanceType", "");
    env["SM_NETWORK_INTERFACE_NAME"] = "eth0";
    env["SM_MODEL_DIR"] = ml + "/model";
    env["SM_INPUT_DIR"] = ml + "/input";
    env["SM_INPUT_CONFIG_DIR"] = ml + "/input/config";
    env["SM_OUTPUT_DIR"] = ml + "/output";
    env["SM_OUTPUT_DATA_DIR"] = ml + "/output/data";
    env["SM_OUTPUT_INTERMEDIATE_DIR"] = ml + "/output/intermediate";
    env["SM_CHECKPOINT_DIR"] = ml + "/checkpoints";
    env["SM_HPS"] = hps.dump();
    json channel_names = json::array();
    for (const auto& ch : channels) {
      channel_names.push_back(ch.name);
      env[UpperChannelVar(ch.name)] = ml + "/input/data/" + ch.name;
    }
    env["SM_CHANNELS"] = channel_names.dump();
    for (const auto& [k, v] : hps.items()) env["SM_HP_" + UpperChannelVar(k).substr(11)] = v;
    for (const auto& [k, v] : job_env.items()) {
      env[k] = v.get<std::string>();
    }
    runtime::HostSpec host_spec;
    host_spec.ml_dir = h.ml_dir;
    host_spec.argv = argv;
    host_spec.env = std::move(env);
    host_spec.network_isolation = request_.value("EnableNetworkIsolation", false);
    if (bind_hosts) host_spec.extra_binds.push_back({hosts_file, "/etc/hosts", true});
    if (image->builtin) {
      // The binary is bound at a fixed path: where it was built (/tmp, say) may be hidden.
      host_spec.extra_binds.push_back(
          {c_.options_.hearth_binary, std::string(kSandboxHearthPath), true});
    } else {
      host_spec.extra_binds.push_back({image->program_dir, "/opt/program", true});
      host_spec.working_dir = program_inside;
    }
    for (const auto& ch : channels) {
      if (ch.input_mode != "Pipe") continue;
      int index = static_cast<int>(&h - hosts_.data());
      auto feeder = std::make_unique<runtime::PipeFeeder>(
          c_.objects_, ch,
          runtime::ShareForHost(pipe_objects.at(ch.name), ch, index,
                                static_cast<int>(hosts_.size())),
          h.ml_dir);
      RETURN_IF_ERROR(feeder->Start());
      feeders_.push_back(std::move(feeder));
    }
    RETURN_IF_ERROR(c_.runtime_.Launch(host_spec, h.state_dir));
    c_.logs_.EnsureStream(kLogGroup, h.stream).IgnoreError();
  }
  return Transition("InProgress", "Training",
                    "Training image download completed. Training in progress.",
                    [&](metadata::Resource& r) {
                      r.internal["phase"] = "Training";
                      r.doc["TrainingStartTime"] = ToEpochSeconds(now);
                    });
}

void TrainingJobController::JobRunner::IngestOutput(Host& h) {
  auto points = IngestHostOutput(c_.logs_, h.state_dir / "output.log", &h.log_offset, kLogGroup,
                                 h.stream, kKind, name_, metric_res_);
  if (!points.ok()) return;  // the same lines are read again next time
  for (const auto& p : *points) last_metrics_[p.name] = p;
}

void TrainingJobController::JobRunner::Monitor() {
  std::int64_t max_runtime_s =
      request_["StoppingCondition"].value("MaxRuntimeInSeconds", kDefaultMaxRuntimeSeconds);
  auto start = TimestampMillis(record_.doc.value("TrainingStartTime", json()));
  std::int64_t deadline = start.value_or(NowMillis()) + max_runtime_s * 1000;
  while (!ShuttingDown()) {
    bool all_exited = true;
    bool any_failed = false;
    for (Host& h : hosts_) {
      IngestOutput(h);
      if (h.exited) continue;
      auto st = c_.runtime_.Poll(h.state_dir);
      if (!st.ok()) {
        h.exited = true;
        h.status.state = runtime::HostState::kLost;
        any_failed = true;
        continue;
      }
      if (st->state == runtime::HostState::kRunning) {
        all_exited = false;
        continue;
      }
      // The last lines printed before exit: each read is bounded, so read until none are left.
      for (std::uint64_t before = ~0ULL; before != h.log_offset;) {
        before = h.log_offset;
        IngestOutput(h);
      }
      h.exited = true;
      h.status = *st;
      if (st->state == runtime::HostState::kLost || st->signal != 0 || st->exit_code != 0) {
        any_failed = true;
      }
    }
    if (all_exited) return;
    for (const auto& feeder : feeders_) {
      if (Status fed = feeder->error(); !fed.ok() && pipe_failure_.empty()) {
        pipe_failure_ = "ClientError: Pipe mode input failed: " + fed.message();
        any_failed = true;
      }
    }
    std::int64_t now = NowMillis();
    if (now - last_checkpoint_sync_millis_ >= c_.options_.checkpoint_sync_interval.count()) {
      last_checkpoint_sync_millis_ = now;
      SyncCheckpoints().IgnoreError();  // retried at the next interval and at the end
    }
    if (!Stopping() && now >= deadline) {
      stop_reason_ = "MaxRuntimeExceeded";
      Transition("Stopping", "Stopping", "Stopping the training job: MaxRuntimeInSeconds reached",
                 [&](metadata::Resource& r) { r.internal["stop_reason"] = stop_reason_; })
          .IgnoreError();
    }
    // One host failing ends the job: SageMaker does not leave the others training.
    if ((Stopping() || any_failed) && sigterm_sent_millis_ == 0) {
      // Sent first, recorded second: a crash in between means SIGTERM is sent again after
      // the restart (harmless), never that it is not sent at all.
      for (Host& h : hosts_) {
        if (!h.exited) c_.runtime_.Signal(h.state_dir, SIGTERM).IgnoreError();
      }
      sigterm_sent_millis_ = now;
      MutateResource(c_.store_, kKind, name_,
                     [&](metadata::Resource& r) -> Result<std::optional<metadata::Transition>> {
                       r.internal["sigterm_millis"] = now;
                       return std::optional<metadata::Transition>();
                     })
          .status()
          .IgnoreError();
    }
    if (sigterm_sent_millis_ != 0 && !sigkill_sent_ &&
        now - sigterm_sent_millis_ >= c_.options_.stop_grace.count()) {
      sigkill_sent_ = true;
      for (Host& h : hosts_) {
        if (!h.exited) c_.runtime_.Signal(h.state_dir, SIGKILL).IgnoreError();
      }
    }
    std::this_thread::sleep_for(c_.options_.poll_interval);
  }
}

Status TrainingJobController::JobRunner::SyncCheckpoints() {
  if (!request_.contains("CheckpointConfig")) return Status::Ok();
  ASSIGN_OR_RETURN(storage::S3Location dest,
                   storage::ParseS3Uri(request_["CheckpointConfig"].value("S3Uri", "")));
  checkpoint_uploads_.resize(hosts_.size());
  for (std::size_t i = 0; i < hosts_.size(); ++i) {
    RETURN_IF_ERROR(runtime::UploadDirectory(hosts_[i].ml_dir / "checkpoints", c_.objects_, dest,
                                             &checkpoint_uploads_[i]));
  }
  return Status::Ok();
}

Status TrainingJobController::JobRunner::UploadArtifacts(json& doc) {
  auto out = storage::ParseS3Uri(request_["OutputDataConfig"].value("S3OutputPath", ""));
  if (!out.ok()) return out.status();
  std::string base = out->key;
  if (!base.empty() && base.back() != '/') base += '/';
  base += name_ + "/output/";
  const Host& first = hosts_.front();
  storage::S3Location model{out->bucket, base + "model.tar.gz"};
  RETURN_IF_ERROR(runtime::PackDirectoryToObject(first.ml_dir / "model", c_.objects_, model));
  doc["ModelArtifacts"] = {{"S3ModelArtifacts", "s3://" + model.bucket + "/" + model.key}};
  std::error_code ec;
  fs::path data = first.ml_dir / "output" / "data";
  if (fs::exists(data, ec) && !fs::is_empty(data, ec)) {
    RETURN_IF_ERROR(
        runtime::PackDirectoryToObject(data, c_.objects_, {out->bucket, base + "output.tar.gz"}));
  }
  return SyncCheckpoints();
}

void TrainingJobController::JobRunner::Finish() {
  for (auto& f : feeders_) f->Stop();
  feeders_.clear();
  bool stopping = Stopping();
  bool launched = !hosts_.empty() && fs::exists(hosts_.front().state_dir / "spec.json");
  std::string failure = pipe_failure_;
  // The host that ended first is the one to blame: the others were then stopped because of it.
  std::vector<const Host*> by_end;
  for (const Host& h : hosts_) by_end.push_back(&h);
  std::stable_sort(by_end.begin(), by_end.end(), [](const Host* a, const Host* b) {
    return a->status.ended_millis < b->status.ended_millis;
  });
  for (const Host* h : by_end) {
    if (!failure.empty()) break;
    if (!h->exited) continue;
    if (h->status.state == runtime::HostState::kLost) {
      failure = "InternalServerError: the process of training host " + h->name +
                " ended without recording an exit status (its supervisor is gone).";
      break;
    }
    if (!stopping && (h->status.signal != 0 || h->status.exit_code != 0)) {
      std::string from_file = ReadFailureFile(h->ml_dir / "output" / "failure");
      std::string how = h->status.signal != 0
                            ? "killed by signal " + std::to_string(h->status.signal)
                            : "ExitCode " + std::to_string(h->status.exit_code);
      failure = from_file.empty()
                    ? "AlgorithmError: " + how + " on " + h->name +
                          ". See the job's logs in /aws/sagemaker/TrainingJobs for details."
                    : from_file;
      break;
    }
  }
  if (!failure.empty()) {
    Fail(failure);
    return;
  }
  if (!stopping) {
    Transition("InProgress", "Uploading", "Uploading generated training model",
               [](metadata::Resource& r) { r.internal["phase"] = "Uploading"; })
        .IgnoreError();
  }
  json artifacts;
  if (launched) {
    Status uploaded = UploadArtifacts(artifacts);
    if (!uploaded.ok()) {
      Fail("ClientError: could not upload the model artifacts: " + uploaded.message());
      return;
    }
  }
  std::int64_t end = NowMillis();  // refined to the terminal transition's time below
  bool stopped = Stopping();
  std::string final_status = stopped ? "Stopped" : "Completed";
  std::string final_secondary = stopped ? stop_reason_ : "Completed";
  std::string message = stopped ? (stop_reason_ == "MaxRuntimeExceeded"
                                       ? "Training job stopped: MaxRuntimeInSeconds exceeded"
                                       : "Training job stopped")
                                : "Training job completed";
  Transition(final_status, final_secondary, message, [&](metadata::Resource& r) {
    r.internal["phase"] = "Done";
    if (artifacts.contains("ModelArtifacts")) r.doc["ModelArtifacts"] = artifacts["ModelArtifacts"];
    // The terminal transition opened just now: it starts and ends at the job's end.
    auto& t = r.doc["SecondaryStatusTransitions"];
    if (t.is_array() && !t.empty()) {
      t.back()["EndTime"] = t.back()["StartTime"];
      end = TimestampMillis(t.back()["StartTime"]).value_or(end);
    }
    r.doc["TrainingEndTime"] = ToEpochSeconds(end);
    auto start = TimestampMillis(r.doc.value("TrainingStartTime", json()));
    if (start) {
      std::int64_t secs = std::max<std::int64_t>(1, (end - *start + 999) / 1000);
      r.doc["TrainingTimeInSeconds"] = secs;
      r.doc["BillableTimeInSeconds"] = secs;
    }
    json finals = json::array();
    for (const auto& [metric, p] : last_metrics_) {
      finals.push_back({{"MetricName", metric},
                        {"Value", p.value},
                        {"Timestamp", ToEpochSeconds(p.timestamp_millis)}});
    }
    if (!finals.empty()) r.doc["FinalMetricDataList"] = finals;
  }).IgnoreError();
  std::error_code ec;
  fs::remove_all(job_dir_, ec);
}

// ---------------------------------------------------------------------------------------------

TrainingJobController::TrainingJobController(TrainingJobOptions options,
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

TrainingJobController::~TrainingJobController() { monitors_.Shutdown(); }

void TrainingJobController::StartRunner(const std::string& name) {
  monitors_.Start(name, [this, name](MonitorThreads::Run& run) {
    JobRunner runner(*this, name, run);
    runner.Execute();
    // A stop is recorded before it is requested, and the runner ends only in a terminal
    // state or when shutting down (left for the next Recover()).
    return true;
  });
}

Result<json> TrainingJobController::Create(const json& request) {
  return CreateForTuningJob(request, "");
}

Result<json> TrainingJobController::CreateForTuningJob(const json& request,
                                                       const std::string& tuning_job_arn) {
  const std::string name = request.value("TrainingJobName", "");
  // Checks the service model cannot express.
  if (!request.contains("AlgorithmSpecification")) {
    return Validation(
        "1 validation error detected: Value null at 'algorithmSpecification' "
        "failed to satisfy constraint: Member must not be null");
  }
  const json& spec = request["AlgorithmSpecification"];
  if (!spec.contains("TrainingImage")) {
    return Validation(spec.contains("AlgorithmName")
                          ? "AlgorithmName is not supported by Hearth: name the image in "
                            "AlgorithmSpecification.TrainingImage."
                          : "AlgorithmSpecification.TrainingImage must be provided.");
  }
  if (!request.contains("ResourceConfig")) {
    return Validation(
        "1 validation error detected: Value null at 'resourceConfig' failed to "
        "satisfy constraint: Member must not be null");
  }
  if (request.value("EnableNetworkIsolation", false) && !runtime_.sandboxed()) {
    // Running the job with a network it asked not to have would be worse than refusing it.
    return Validation(
        "EnableNetworkIsolation needs the bubblewrap sandbox, which is not "
        "usable on this server (install the bubblewrap package).");
  }
  ASSIGN_OR_RETURN(ResolvedImage image,
                   images_.Resolve(spec["TrainingImage"].get<std::string>(),
                                   "algorithmSpecification.trainingImage"));
  const std::string default_mode = DefaultInputMode(request);
  std::set<std::string> channel_names;
  int index = 0;
  for (const json& ch : request.value("InputDataConfig", json::array())) {
    ++index;
    std::string path = "inputDataConfig." + std::to_string(index) + ".member";
    std::string cname = ch.value("ChannelName", "");
    if (!channel_names.insert(cname).second) {
      return Validation("Channel names must be unique: '" + cname +
                        "' appears more than once in InputDataConfig.");
    }
    if (!ch["DataSource"].contains("S3DataSource")) {
      return Validation("Only S3DataSource is supported: " + path +
                        ".dataSource must set S3DataSource.");
    }
    const json& s3 = ch["DataSource"]["S3DataSource"];
    std::string type = s3.value("S3DataType", "S3Prefix");
    if (type != "S3Prefix" && type != "ManifestFile") {
      return Validation("S3DataType '" + type + "' at '" + path +
                        ".dataSource.s3DataSource.s3DataType' is not supported; use S3Prefix or "
                        "ManifestFile.");
    }
    runtime::ChannelSpec cs = ChannelSpecFor(ch, default_mode);
    auto objects = runtime::ResolveChannelObjects(objects_, cs);
    if (!objects.ok()) {
      return Validation("No S3 objects found under S3 URL \"" + cs.s3_uri +
                        "\" given in input data source (channel '" + cname +
                        "'). Please ensure that the bucket exists and that objects exist under "
                        "that S3 prefix: " +
                        objects.status().message());
    }
  }
  for (const json& def : spec.value("MetricDefinitions", json::array())) {
    RE2 re(def.value("Regex", ""));
    if (!re.ok() || re.NumberOfCapturingGroups() < 1) {
      return Validation("MetricDefinitions regex for metric '" + def.value("Name", "") +
                        "' must be a valid regular expression with one capture group: " +
                        (re.ok() ? "it has no capture group" : re.error()));
    }
  }
  auto out = storage::ParseS3Uri(request["OutputDataConfig"].value("S3OutputPath", ""));
  if (!out.ok()) {
    return Validation("OutputDataConfig.S3OutputPath must be an s3:// URI.");
  }
  if (!objects_.HeadBucket(out->bucket).ok()) {
    return Validation("The bucket '" + out->bucket +
                      "' in OutputDataConfig.S3OutputPath does "
                      "not exist.");
  }
  if (request.contains("CheckpointConfig") &&
      !storage::ParseS3Uri(request["CheckpointConfig"].value("S3Uri", "")).ok()) {
    return Validation("CheckpointConfig.S3Uri must be an s3:// URI.");
  }

  std::int64_t now = NowMillis();
  metadata::Resource r;
  r.kind = std::string(kKind);
  r.name = name;
  r.arn = SageMakerArn(options_.account, "training-job", name);
  r.status = "InProgress";
  r.created_millis = r.modified_millis = now;
  json doc = request;
  doc.erase("Tags");
  doc["TrainingJobArn"] = r.arn;
  if (!tuning_job_arn.empty()) doc["TuningJobArn"] = tuning_job_arn;
  doc["TrainingJobStatus"] = "InProgress";
  doc["CreationTime"] = ToEpochSeconds(now);
  doc["LastModifiedTime"] = ToEpochSeconds(now);
  if (!doc.contains("StoppingCondition")) {
    doc["StoppingCondition"] = {{"MaxRuntimeInSeconds", kDefaultMaxRuntimeSeconds}};
  }
  for (const char* flag : {"EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
                           "EnableManagedSpotTraining"}) {
    if (!doc.contains(flag)) doc[flag] = false;
  }
  doc["AlgorithmSpecification"]["TrainingInputMode"] =
      spec.value("TrainingInputMode", std::string("File"));
  json stored_request = request;
  if (image.builtin && !spec.contains("MetricDefinitions")) {
    // A built-in image carries its metric definitions, as SageMaker's do: Describe shows them
    // and the job's metrics need no user regexes.
    json defs = json::array();
    for (const auto& def : image.metric_definitions) {
      defs.push_back({{"Name", def.name}, {"Regex", def.regex}});
    }
    doc["AlgorithmSpecification"]["MetricDefinitions"] = defs;
    stored_request["AlgorithmSpecification"]["MetricDefinitions"] = defs;
  }
  AddSecondaryTransition(doc, "Starting", "Launching requested ML instances", now);
  r.doc = std::move(doc);
  r.internal = {{"request", std::move(stored_request)}, {"phase", "Starting"}};
  std::unique_lock<std::mutex> admit(create_mu_);
  ASSIGN_OR_RETURN(std::vector<metadata::Resource> all, store_.List(kKind));
  int running = 0;
  for (const auto& job : all) {
    if (job.status == "InProgress" || job.status == "Stopping") {
      running += job.internal.value(
          nlohmann::json::json_pointer("/request/ResourceConfig/InstanceCount"), 1);
    }
  }
  const int wanted = request["ResourceConfig"].value("InstanceCount", 1);
  if (running + wanted > options_.max_running_instances) {
    return ResourceExhausted("The limit on training instances running at once is " +
                                 std::to_string(options_.max_running_instances) +
                                 " Instances, with current "
                                 "utilization of " +
                                 std::to_string(running) + " Instances and a request delta of " +
                                 std::to_string(wanted) +
                                 " Instances. Wait for running jobs to end, or start the "
                                 "server with a higher --max-training-instances.",
                             "ResourceLimitExceeded");
  }
  Status created = store_.Create(r, {"InProgress", "Starting", now, "Created"});
  admit.unlock();
  if (created.code() == StatusCode::kAlreadyExists) {
    return Status(StatusCode::kAlreadyExists,
                  "Training job names must be unique within an AWS account and region, and a "
                  "training job with this name already exists (" +
                      r.arn + ")",
                  "ResourceInUse");
  }
  RETURN_IF_ERROR(created);
  StartRunner(name);
  return json{{"TrainingJobArn", r.arn}};
}

Result<json> TrainingJobController::Describe(const json& request) {
  auto r = store_.Get(kKind, request.value("TrainingJobName", ""));
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kNotFound) {
      return Validation("Requested resource not found.");
    }
    return r.status();
  }
  return r->doc;
}

Result<json> TrainingJobController::List(const json& request) {
  ASSIGN_OR_RETURN(std::vector<metadata::Resource> all, store_.List(kKind));
  ASSIGN_OR_RETURN(ListPage page,
                   FilterSortPage(all, request, {.default_sort_order = "Ascending"}));
  json summaries = json::array();
  for (const metadata::Resource* r : page.rows) {
    const json& d = r->doc;
    json s = {{"TrainingJobName", r->name},
              {"TrainingJobArn", r->arn},
              {"CreationTime", d["CreationTime"]},
              {"TrainingJobStatus", r->status},
              {"SecondaryStatus", d.value("SecondaryStatus", "")}};
    for (const char* k : {"TrainingEndTime", "LastModifiedTime"}) {
      if (d.contains(k)) s[k] = d[k];
    }
    summaries.push_back(std::move(s));
  }
  json result = {{"TrainingJobSummaries", summaries}};
  if (page.next_token) result["NextToken"] = *page.next_token;
  return result;
}

Result<json> TrainingJobController::Stop(const json& request) {
  const std::string name = request.value("TrainingJobName", "");
  auto updated = MutateResource(
      store_, kKind, name,
      [&](metadata::Resource& r) -> Result<std::optional<metadata::Transition>> {
        if (r.status == "Stopping") return std::optional<metadata::Transition>();
        if (r.status != "InProgress") {
          return Validation("The request was rejected because the training job is in status " +
                            r.status + ".");
        }
        std::int64_t now = NowMillis();
        r.status = "Stopping";
        r.modified_millis = now;
        r.doc["TrainingJobStatus"] = "Stopping";
        AddSecondaryTransition(r.doc, "Stopping", "Stopping the training job", now);
        return std::optional<metadata::Transition>(
            metadata::Transition{"Stopping", "Stopping", now, "StopTrainingJob"});
      });
  if (!updated.ok()) {
    if (updated.status().code() == StatusCode::kNotFound) {
      return Status(StatusCode::kNotFound, "Requested resource not found.", "ResourceNotFound");
    }
    return updated.status();
  }
  monitors_.RequestEnd(name);
  return json::object();
}

std::size_t TrainingJobController::MonitoredJobs() { return monitors_.size(); }

Status TrainingJobController::Recover() {
  ASSIGN_OR_RETURN(std::vector<metadata::Resource> all, store_.List(kKind));
  for (const auto& r : all) {
    if (r.status != "InProgress" && r.status != "Stopping") continue;
    spdlog::info("resuming training job {} ({}, phase {})", r.name, r.status,
                 r.internal.value("phase", ""));
    StartRunner(r.name);
  }
  return Status::Ok();
}

}  // namespace hearth::control
