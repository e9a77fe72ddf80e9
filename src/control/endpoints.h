// EndpointController: SageMaker real-time endpoints — CreateEndpoint, DescribeEndpoint,
// ListEndpoints, DeleteEndpoint — and the reconciler that runs their instances.
//
// State machine (EndpointStatus), enforced only in this controller:
//
//   Creating ──► InService ──► Deleting ──► (record removed)
//      │  ▲          │            ▲
//      │  └──────────┘            │
//      │  (after a restart an InService endpoint re-adopts or relaunches its instances and
//      │   stays InService; if they cannot turn healthy it fails)
//      ▼                          │
//    Failed ──────────────────────┘   (FailureReason; only DeleteEndpoint is accepted)
//
// Creating/InService → Deleting is DeleteEndpoint, from any state; Deleting is sticky: no
// progress recorded by the monitor thread undoes it. Every transition is one MetadataStore
// transaction with a history row.
//
// Who drives what: the API thread validates and records the endpoint (Create) with a snapshot
// of its config and models (deploying reads them once, as SageMaker does: deleting the config
// afterwards changes nothing), or records Deleting (Delete). One monitor thread per live
// endpoint does the rest:
//   deploy   per variant: resolve the model's image; fetch ModelDataUrl and unpack it once
//            (runtime/model_archive.h) into <endpoints_dir>/<endpoint>-<created>/<variant>/
//            model; per instance, an ml dir whose model/ is that directory (read-only bind in
//            the sandbox; SM_MODEL_DIR names it without one), a free loopback port in
//            SAGEMAKER_BIND_TO_PORT, the container's Environment, argv `serve` (a BYO image's
//            /opt/program/serve; a built-in's `hearth algo <name> serve`), launched through
//            HostProcessRuntime. Each instance must answer GET /ping with 200 within the
//            variant's ContainerStartupHealthCheckTimeoutInSeconds (default
//            EndpointOptions::health_check_timeout); one that exits or never turns healthy
//            fails the endpoint with a FailureReason naming the variant, the instance and the
//            tail of its output. All healthy: the fleet is published to the EndpointRouter,
//            then InService is recorded (a client that sees InService can invoke).
//   serve    ingests every instance's output into the LogStore (group
//            /aws/sagemaker/Endpoints/<endpoint>, stream <variant>/<instance-id>) and repairs
//            the fleet, as SageMaker does: an instance whose process ends, or that fails GET
//            /ping 3 checks in a row (1 s apart, ping_timeout each), is SIGKILLed, taken out of
//            the published fleet and replaced by a new instance (new id and port, same variant
//            and model) launched as deploy launches one — recorded before it is launched — and
//            published once it answers /ping. The endpoint stays InService meanwhile;
//            CurrentInstanceCount counts the healthy instances (DesiredInstanceCount does not
//            change). A replacement that does not turn healthy is retried with a growing delay.
//            Each replacement is logged to the instances' streams.
//   delete   the fleet leaves the router, instances get SIGTERM, SIGKILL after stop_grace;
//            then the directory and the record are removed.
// The instances (variant, id, port, directory) are recorded in the record's `internal`
// document before they are launched, so Recover() after a crash finds them: an instance whose
// supervisor is alive is re-adopted (and must still answer /ping), one that is gone is
// replaced by a new instance; Creating continues deploying, Deleting finishes.
//
// Names are compared without case (models.h). Errors are SageMaker's, which boto3 waiters and
// the sagemaker SDK match on:
//   duplicate name  -> ValidationException `Cannot create already existing endpoint "<arn>".`
//   missing         -> ValidationException `Could not find endpoint "<arn>".`
//   missing config  -> ValidationException `Could not find endpoint configuration "<arn>".`
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
#include "metadata/log_store.h"
#include "metadata/metadata_store.h"
#include "runtime/host_process.h"
#include "serving/endpoint_router.h"
#include "storage/object_store.h"

namespace hearth::control {

struct EndpointOptions {
  std::filesystem::path endpoints_dir;  // per-endpoint directories (models, instances)
  std::filesystem::path hearth_binary;  // serves built-in algorithms: `hearth algo <name> serve`
  AccountContext account;
  // SageMaker's container contract: SIGTERM, then SIGKILL 30 s later.
  std::chrono::milliseconds stop_grace{30000};
  std::chrono::milliseconds poll_interval{100};
  // When a variant does not set ContainerStartupHealthCheckTimeoutInSeconds.
  std::chrono::milliseconds health_check_timeout{600000};
  std::chrono::milliseconds ping_timeout{2000};  // one GET /ping, as SageMaker's 2 s
};

class EndpointController {
 public:
  // The stores, runtime, registry and router are not owned and must outlive this object.
  EndpointController(EndpointOptions options, metadata::MetadataStore& store,
                     metadata::LogStore& logs, storage::ObjectStore& objects,
                     runtime::HostProcessRuntime& runtime, const ImageRegistry& images,
                     serving::EndpointRouter& router);
  // Stops monitoring without touching the instances: they keep serving under their
  // supervisors, and the next Recover() re-adopts them (the same path as after a crash).
  ~EndpointController();

  // Each takes the operation's input (already validated against the service model) and
  // returns its output document.
  Result<nlohmann::json> Create(const nlohmann::json& request);
  Result<nlohmann::json> Describe(const nlohmann::json& request);
  Result<nlohmann::json> List(const nlohmann::json& request);
  Result<nlohmann::json> Delete(const nlohmann::json& request);

  // Resumes every endpoint that is Creating, InService or Deleting. Call once at start-up.
  Status Recover();

  // Endpoints with a monitor thread right now (diagnostics, tests).
  std::size_t MonitoredEndpoints();

  static constexpr std::string_view kKind = "Endpoint";
  static constexpr std::string_view kLogGroupPrefix = "/aws/sagemaker/Endpoints/";

 private:
  struct Run;
  class Runner;

  void StartRunner(const std::string& name);
  Result<metadata::Resource> Find(const std::string& name);

  EndpointOptions options_;
  metadata::MetadataStore& store_;
  metadata::LogStore& logs_;
  storage::ObjectStore& objects_;
  runtime::HostProcessRuntime& runtime_;
  const ImageRegistry& images_;
  serving::EndpointRouter& router_;

  std::mutex create_mu_;  // serializes the case-insensitive duplicate check with the create
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Run>> runs_;  // GUARDED_BY(mu_)
  std::atomic<bool> shutting_down_{false};
};

}  // namespace hearth::control
