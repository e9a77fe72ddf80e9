// TransformJobController: SageMaker batch transform — CreateTransformJob, DescribeTransformJob,
// ListTransformJobs, StopTransformJob — and the reconciler that runs them.
//
// State machine (TransformJobStatus), enforced only in this controller:
//
//   InProgress ──────────────► Completed   every input object's `.out` was written
//       │  │
//       │  └─────────────────► Failed      (FailureReason) an object failed, the instances did
//       │                                  not start or one stopped, the input went missing
//       ▼
//   Stopping ────────────────► Stopped     (StopTransformJob)
//
// Completed, Failed and Stopped are terminal. A job in Stopping never returns to InProgress:
// progress the monitor thread records leaves the status alone, and a job that finishes its
// last object after the stop was recorded still ends Stopped. Every transition is one
// MetadataStore transaction with a history row.
//
// Who drives what: the API thread validates and records the job (Create) — with a snapshot of
// its model's container, as SageMaker reads the model once — or records Stopping (Stop). One
// monitor thread per live job does the rest:
//   inputs     S3Prefix: every object under the prefix, in key order (keys ending in '/' are
//              folder markers and skipped); ManifestFile: the manifest's {"prefix": ...} plus
//              each entry, in the manifest's order. An object's output is
//              <S3OutputPath>/<key relative to the input>.out, where the key is taken relative
//              to the prefix when the prefix names a folder (s3://b/in or s3://b/in/ with
//              s3://b/in/x/a.csv -> x/a.csv.out) and to the prefix's last '/' otherwise
//              (s3://b/in/da with s3://b/in/data.csv -> data.csv.out); a manifest entry is its
//              own relative key.
//   instances  the model is unpacked once (control/model_host.h) into
//              <transforms_dir>/<job>-<created>/model, then TransformResources.InstanceCount
//              model servers are launched, each with SAGEMAKER_BATCH=true and, only when the
//              request set them, SAGEMAKER_MAX_PAYLOAD_IN_MB, SAGEMAKER_BATCH_STRATEGY
//              (SINGLE_RECORD|MULTI_RECORD) and SAGEMAKER_MAX_CONCURRENT_TRANSFORMS; the job's
//              Environment applies over those and over the container's. Each must answer
//              GET /ping with 200 within TransformJobOptions::startup_timeout; one that exits or
//              does not fails the job with a reason naming it and the tail of its output.
//   settings   MaxConcurrentTransforms, BatchStrategy and MaxPayloadInMB each come from the
//              request, else from the first instance's GET /execution-parameters, else from
//              the defaults 1, MultiRecord and 6 (MaxConcurrentTransforms 0 counts as unset).
//              The values used are recorded in the Describe document and logged.
//              MaxPayloadInMB 0 (SageMaker's HTTP-chunked mode) means no limit here: each
//              payload is sent with a Content-Length and so is held in memory whole.
//   transform  objects go to instances one whole object at a time (an object is never split
//              between instances): each instance takes the next unstarted object when it has
//              room. Per instance at most MaxConcurrentTransforms requests are in flight, from
//              one object or several. Payloads (transform/payload_splitter.h) are POSTed to
//              /invocations with Content-Type = TransformInput.ContentType and Accept =
//              TransformOutput.Accept (each only when set); responses are joined and filtered
//              (transform/data_processing.h), assembled in input order
//              (transform/output_assembler.h) and streamed into the `.out` object, which
//              becomes visible only when its last payload succeeded (ObjectWriter::Commit).
//              A request that gets no answer, times out (InvocationsTimeoutInSeconds, default
//              600) or is answered 5xx is sent again, up to InvocationsMaxRetries (default 3)
//              more times; a 4xx answer is final. An object that fails leaves no `.out`; the
//              other objects carry on, as SageMaker's docs say, and the job ends Failed with a
//              FailureReason naming the object, the status and the model's message.
//   stop       instances get SIGTERM, SIGKILL after stop_grace; objects not finished leave no
//              `.out` (finished ones keep theirs); then Stopped.
// Logs: each instance's output goes to group /aws/sagemaker/TransformJobs, stream
// <job>/<instance-id>; Hearth's own lines (the settings used, failed objects and the model's
// answers, retries) go to <job>/<instance-id>/data-log, as SageMaker's "[sagemaker logs]"
// lines do.
//
// Restart safety: the instances are recorded in the record's `internal` document before they
// are launched, and each object's output key once its `.out` is committed (in batches: an
// object committed but not yet recorded is transformed again, which rewrites the same bytes).
// Recover() resumes every InProgress or Stopping job: instances left by the previous server are
// killed, a Stopping job ends Stopped, an InProgress one relaunches its instances and carries
// on with the objects whose `.out` is not recorded and present.
//
// Create validates what the service model cannot, with SageMaker's messages where known:
//   missing model     -> ValidationException `Could not find model "<arn>".`
//   duplicate name    -> ValidationException `Job name must be unique within an AWS account and
//                        region, and a job with this name already exists (<arn>)` (names are
//                        compared without case)
//   no input objects  -> ValidationException `No S3 objects found under S3 URL "<uri>" given in
//                        input data source. ...`
//   MaxPayloadInMB > 100, or MaxConcurrentTransforms x MaxPayloadInMB > 100 (MaxPayloadInMB
//   taken as 6 when only MaxConcurrentTransforms is set); a model of several containers; an
//   S3DataType of AugmentedManifestFile; DataCaptureConfig; DataProcessing that
//   transform::DataProcessing::Create rejects; an output bucket that does not exist.
//   More instances than TransformJobOptions::max_running_instances over the live jobs ->
//   ResourceLimitExceeded.
// BatchStrategy is accepted with SplitType None, where it changes nothing (each object is one
// record); the docs say only that splitting is needed to enable it.
// Describe and Stop find jobs without case too; a missing job is a ValidationException
// (Describe, which boto3's waiter treats as failure) or ResourceNotFound (Stop, as modelled);
// stopping a finished job is a ValidationException naming its status.
//
// Thread safety: thread safe.
#pragma once

#include <chrono>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/ids.h"
#include "common/status.h"
#include "control/image_registry.h"
#include "control/monitor_threads.h"
#include "metadata/log_store.h"
#include "metadata/metadata_store.h"
#include "runtime/host_process.h"
#include "storage/object_store.h"

namespace hearth::control {

struct TransformJobOptions {
  std::filesystem::path transforms_dir;  // per-job directories (model, instances)
  std::filesystem::path hearth_binary;   // serves built-in algorithms: `hearth algo <name> serve`
  AccountContext account;
  // SageMaker's container contract: SIGTERM, then SIGKILL 30 s later.
  std::chrono::milliseconds stop_grace{30000};
  std::chrono::milliseconds poll_interval{100};
  // How long an instance may take to answer GET /ping with 200 after it is launched.
  std::chrono::milliseconds startup_timeout{600000};
  std::chrono::milliseconds ping_timeout{2000};  // one GET /ping, as SageMaker's 2 s
  // Before the first retry of a failed invocation; doubles for each further one.
  std::chrono::milliseconds retry_backoff{200};
  // Model-server instances that may run at once over all transform jobs; over it, Create
  // answers ResourceLimitExceeded.
  int max_running_instances = 64;
};

class TransformJobController {
 public:
  // The stores, runtime and registry are not owned and must outlive this object.
  TransformJobController(TransformJobOptions options, metadata::MetadataStore& store,
                         metadata::LogStore& logs, storage::ObjectStore& objects,
                         runtime::HostProcessRuntime& runtime, const ImageRegistry& images);
  // Stops monitoring: the jobs' instances are killed (they cannot progress unwatched) and the
  // jobs stay as recorded, for the next Recover() to resume.
  ~TransformJobController();

  // Each takes the operation's input (already validated against the service model) and
  // returns its output document.
  Result<nlohmann::json> Create(const nlohmann::json& request);
  Result<nlohmann::json> Describe(const nlohmann::json& request);
  Result<nlohmann::json> List(const nlohmann::json& request);
  Result<nlohmann::json> Stop(const nlohmann::json& request);

  // Resumes every job that is InProgress or Stopping in the store. Call once at start-up.
  Status Recover();

  // Jobs with a monitor thread right now (diagnostics, tests). Finished jobs have none.
  std::size_t MonitoredJobs();

  static constexpr std::string_view kKind = "TransformJob";
  static constexpr std::string_view kLogGroup = "/aws/sagemaker/TransformJobs";

 private:
  class Runner;

  void StartRunner(const std::string& name);
  Result<metadata::Resource> Find(const std::string& name, const Status& missing);

  TransformJobOptions options_;
  metadata::MetadataStore& store_;
  metadata::LogStore& logs_;
  storage::ObjectStore& objects_;
  runtime::HostProcessRuntime& runtime_;
  const ImageRegistry& images_;

  // Serializes the case-insensitive duplicate check and the instance quota with the create.
  std::mutex create_mu_;
  MonitorThreads monitors_{"transform job"};
};

}  // namespace hearth::control
