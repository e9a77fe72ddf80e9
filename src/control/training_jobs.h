// TrainingJobController: SageMaker training jobs — CreateTrainingJob, DescribeTrainingJob,
// ListTrainingJobs, StopTrainingJob — and the reconciler that runs them.
//
// State machine (TrainingJobStatus / SecondaryStatus), enforced only in this controller:
//
//   InProgress/Starting ──► InProgress/Downloading ──► InProgress/Training ──► InProgress/Uploading
//        │                        (File mode only)            │                      │
//        │                                                    │                      ▼
//        │                                                    │             Completed/Completed
//        ├──────────────► Failed/Failed ◄─────────────────────┤  (any host exits non-zero or is
//        │                (FailureReason)                     │   lost; a channel cannot be
//        │                                                    │   staged; the model cannot be
//        ▼                                                    ▼   uploaded)
//   Stopping/Stopping  (StopTrainingJob, or MaxRuntimeInSeconds elapsed)
//        │   SIGTERM to every host; SIGKILL after the stop grace (120 s); artifacts are still
//        ▼   uploaded
//   Stopped/Stopped  or  Stopped/MaxRuntimeExceeded
//
// Completed, Failed and Stopped are terminal. A job in Stopping never returns to InProgress.
// Every transition is one MetadataStore transaction that also appends to the job's history
// and to SecondaryStatusTransitions (closing the previous entry's EndTime).
//
// Who drives what: the API thread validates and records the job (Create), or records the
// Stopping transition (Stop). One monitor thread per live job does everything else: stages
// data, launches one supervised process per host (runtime/host_process.h), ingests their
// output into the LogStore (and MetricDefinitions matches into metric series), enforces
// MaxRuntime, and finishes the job. The phase it has reached is kept in the record's
// `internal` document, so after a crash Recover() resumes every unfinished job from its phase:
// hosts that kept running under their supervisors are re-adopted; a job that had not launched
// is prepared again; a host whose supervisor vanished fails the job with a reason that says so.
//
// Thread safety: thread safe.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

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

struct TrainingJobOptions {
  std::filesystem::path jobs_dir;       // per-job working directories live here
  std::filesystem::path hearth_binary;  // runs built-in algorithms: `hearth algo <name> train`
  AccountContext account;
  std::chrono::milliseconds stop_grace{120000};
  std::chrono::milliseconds poll_interval{20};
  // How often a running job's checkpoints/ is copied to CheckpointConfig.S3Uri (changed files
  // only), as SageMaker syncs them while training, not just at the end.
  std::chrono::milliseconds checkpoint_sync_interval{5000};
  int num_cpus = 0;  // SM_NUM_CPUS; 0 = the machine's
  // At most this many training hosts run at once, over all jobs: SageMaker's per-account
  // instance quota, here a guard against forking a machine to death. Over it, Create answers
  // ResourceLimitExceeded.
  int max_running_instances = 64;
};

class TrainingJobController {
 public:
  // The stores, runtime and registry are not owned and must outlive this object.
  TrainingJobController(TrainingJobOptions options, metadata::MetadataStore& store,
                        metadata::LogStore& logs, storage::ObjectStore& objects,
                        runtime::HostProcessRuntime& runtime, const ImageRegistry& images);
  // Stops monitoring without touching the jobs: their processes keep running under their
  // supervisors, and the next Recover() re-adopts them (the same path as after a crash).
  ~TrainingJobController();

  // Each takes the operation's input (already validated against the service model) and
  // returns its output document.
  Result<nlohmann::json> Create(const nlohmann::json& request);
  // A training job launched by a hyperparameter tuning job: as Create, and its Describe shows
  // `tuning_job_arn` as TuningJobArn (not a member of the public request).
  Result<nlohmann::json> CreateForTuningJob(const nlohmann::json& request,
                                            const std::string& tuning_job_arn);
  Result<nlohmann::json> Describe(const nlohmann::json& request);
  Result<nlohmann::json> List(const nlohmann::json& request);
  Result<nlohmann::json> Stop(const nlohmann::json& request);

  // Resumes every job that is InProgress or Stopping in the store. Call once at start-up.
  Status Recover();

  // Jobs with a monitor thread right now (diagnostics, tests). Finished jobs have none.
  std::size_t MonitoredJobs();

  static constexpr std::string_view kKind = "TrainingJob";
  static constexpr std::string_view kLogGroup = "/aws/sagemaker/TrainingJobs";

 private:
  class JobRunner;

  void StartRunner(const std::string& name);

  TrainingJobOptions options_;
  metadata::MetadataStore& store_;
  metadata::LogStore& logs_;
  storage::ObjectStore& objects_;
  runtime::HostProcessRuntime& runtime_;
  const ImageRegistry& images_;

  std::mutex create_mu_;  // serializes the instance-quota check with the record it admits
  MonitorThreads monitors_{"training job"};
};

}  // namespace hearth::control
