// HyperParameterTuningJobController: SageMaker automatic model tuning —
// CreateHyperParameterTuningJob, DescribeHyperParameterTuningJob, ListHyperParameterTuningJobs,
// ListTrainingJobsForHyperParameterTuningJob, StopHyperParameterTuningJob — and the reconciler
// that runs each tuning job's training jobs ("children") as its strategy (tuning/strategy.h)
// chooses them.
//
// State machine (HyperParameterTuningJobStatus), enforced only in this controller:
//
//   InProgress ──────────────► Completed   every child ended and one reported the objective;
//       │  │                               or a completion criterion was met (the children
//       │  │                               still running are stopped first, the job staying
//       │  │                               InProgress until they have ended)
//       │  └─────────────────► Failed      (FailureReason) no child reported the objective;
//       │                                  the first failures were all client errors; a child
//       ▼                                  could not be created
//   Stopping ────────────────► Stopped     (StopHyperParameterTuningJob: every running child is
//                                          stopped; the job ends when the last one has ended)
//
// Completed, Failed and Stopped are terminal. A job in Stopping never returns to InProgress and
// ends Stopped even if it was about to complete. Every transition is one MetadataStore
// transaction with a history row.
//
// Who drives what: the API thread validates and records the job (Create) or records Stopping
// (Stop). One monitor thread per live job does the rest, polling: it creates children through
// TrainingJobController::CreateForTuningJob (so their Describe shows TuningJobArn), reads them
// back from the store, feeds the strategy, stops the children the strategy stops, and keeps
// TrainingJobStatusCounters, ObjectiveStatusCounters, BestTrainingJob (and
// OverallBestTrainingJob), TuningJobCompletionDetails and ConsumedResources current.
//
// Children. Up to MaxParallelTrainingJobs at once and MaxNumberOfTrainingJobs in all (Grid: at
// most the number of combinations; without MaxNumberOfTrainingJobs, every combination for Grid
// and TuningJobOptions::max_training_jobs otherwise). Child k (from 1) is named
// `<tuning job>-<k as 3 digits or more>-<8 hex>` and gets the definition's StaticHyperParameters,
// its tuned ones, and `_tuning_objective_metric` (also shown among the StaticHyperParameters
// of Describe). A CheckpointConfig.S3Uri gets `/<child>` appended, so parallel children do not
// share checkpoints. With TrainingJobDefinitions (several algorithms) each definition has its
// own strategy, and the next child goes to the definition with the fewest children so far.
// A child whose creation is refused with ResourceLimitExceeded (training instances busy) or an
// internal error is created again later; any other refusal fails the tuning job with the
// child's message.
//
// Outcomes. A child's objective is the last value of the objective metric it reported
// (FinalMetricDataList), whatever way it ended — completed, or stopped early, by the strategy or
// by a stop — and then its ObjectiveStatus is Succeeded; without one it is Failed. A Failed
// child counts as RetryableError when its FailureReason is an InternalServerError (Hearth's
// own fault) and as NonRetryableError otherwise. When the first max(3, MaxParallelTrainingJobs)
// children to fail all failed with NonRetryableError and none has reported the objective yet,
// the tuning job fails (its definition is most likely wrong) rather than launching the rest.
//
// Per-epoch values. With TrainingJobEarlyStoppingType Auto (median rule) or the Hyperband
// strategy, each value of the objective metric in a running child's metric series (LogStore,
// fed by its MetricDefinitions) is reported to the strategy as the next epoch; a stop decision
// stops the child (StopTrainingJob) and its reason is recorded with the trial.
//
// Completion criteria (TuningJobCompletionCriteria), checked as each child's objective arrives:
//   TargetObjectiveMetricValue    an objective at least as good as the target;
//   BestObjectiveNotImproving     MaxNumberOfTrainingJobsNotImproving children in a row that did
//                                 not improve the best objective by 1% of it or more;
//   ConvergenceDetected           Hearth's reading of "convergence": max(5, ceil(N / 10))
//                                 children in a row without such an improvement, N the job's
//                                 number of children; ConvergenceDetectedTime is set when it
//                                 is detected, and the job completes only with
//                                 CompleteOnConvergence Enabled;
// and ResourceLimits.MaxRuntimeInSeconds, from CreationTime. Each ends the job Completed; the
// criterion met is the message of its terminal transition. TuningJobCompletionDetails shows
// NumberOfTrainingJobsObjectiveNotImproving as it stands.
//
// Warm start. Parents must exist, have ended, and have the same objective and the same number
// of static plus tunable hyperparameters; IdenticalDataAndAlgorithm also needs the same
// training image and input data. The children of the parents that reported the objective
// become the strategy's prior observations (recorded at create, so a restart replays the same
// ones); OverallBestTrainingJob (IdenticalDataAndAlgorithm) is the best of this job's and the
// parents' best.
//
// RandomSeed: when the request has none, one is chosen; either way it is shown in Describe's
// HyperParameterTuningJobConfig, so a job can be repeated.
//
// Restart safety. The record's `internal` document holds every trial (its child's name, tuned
// hyperparameters, whether the child was created, its outcome) and every event the strategy was
// given (intermediate values, completions, failures), in order. A trial is recorded before its
// child is created, so a child whose creation was cut short is found again (or created then) and
// never duplicated. Recover() resumes every InProgress or Stopping job: its strategies are
// rebuilt by replaying the record (tuning/strategy.h's deterministic rebuild), finished trials
// are kept, and the children that kept running are followed on. Stop decisions are recorded
// before they are acted on and acted on again after a restart.
//
// Names are compared without case (ARNs are lower case). Describe, ListTrainingJobsFor... and
// Stop of an unknown job answer ResourceNotFound; stopping an ended job is a ValidationException.
//
// Thread safety: thread safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/ids.h"
#include "common/status.h"
#include "control/image_registry.h"
#include "control/monitor_threads.h"
#include "control/training_jobs.h"
#include "metadata/log_store.h"
#include "metadata/metadata_store.h"

namespace hearth::control {

struct TuningJobOptions {
  AccountContext account;
  std::chrono::milliseconds poll_interval{200};
  // SageMaker's quotas, answered with ResourceLimitExceeded at create.
  int max_parallel_training_jobs = 100;
  int max_training_jobs = 750;           // per tuning job; also the default when none is given
  int max_training_jobs_random = 10000;  // the Random strategy's higher limit
  int max_running_tuning_jobs = 100;     // InProgress or Stopping at once
  // How many earlier children must have reached an epoch before the median rule decides
  // (tuning/early_stopping.h). Recorded with each job when it is created.
  int early_stopping_min_peers = 5;
};

class HyperParameterTuningJobController {
 public:
  // The stores, the registry and the training controller are not owned and must outlive this
  // object.
  HyperParameterTuningJobController(TuningJobOptions options, metadata::MetadataStore& store,
                                    metadata::LogStore& logs, const ImageRegistry& images,
                                    TrainingJobController& training);
  // Stops monitoring without touching the jobs or their children; the next Recover() resumes
  // them.
  ~HyperParameterTuningJobController();

  // Each takes the operation's input (already validated against the service model) and
  // returns its output document.
  Result<nlohmann::json> Create(const nlohmann::json& request);
  Result<nlohmann::json> Describe(const nlohmann::json& request);
  Result<nlohmann::json> List(const nlohmann::json& request);
  // ListTrainingJobsForHyperParameterTuningJob: HyperParameterTrainingJobSummary entries of the
  // children created so far, the training status read live. StatusEquals; SortBy Name (the
  // default), CreationTime, Status or FinalObjectiveMetricValue (children without an objective
  // left out); SortOrder Ascending by default; ties by name; MaxResults (default 10) and
  // NextToken.
  Result<nlohmann::json> ListTrainingJobs(const nlohmann::json& request);
  Result<nlohmann::json> Stop(const nlohmann::json& request);

  // Resumes every job that is InProgress or Stopping in the store. Call once at start-up,
  // after TrainingJobController::Recover().
  Status Recover();

  // Jobs with a monitor thread right now (diagnostics, tests).
  std::size_t MonitoredJobs();

  static constexpr std::string_view kKind = "HyperParameterTuningJob";

 private:
  class Runner;

  void StartRunner(const std::string& name);
  Result<metadata::Resource> Find(const nlohmann::json& request);

  TuningJobOptions options_;
  metadata::MetadataStore& store_;
  metadata::LogStore& logs_;
  const ImageRegistry& images_;
  TrainingJobController& training_;

  // Serializes the case-insensitive duplicate check and the running-jobs quota with the create.
  std::mutex create_mu_;
  MonitorThreads monitors_{"tuning job"};
};

}  // namespace hearth::control
