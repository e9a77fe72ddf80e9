// EndpointController: SageMaker real-time endpoints — CreateEndpoint, DescribeEndpoint,
// ListEndpoints, UpdateEndpoint, DeleteEndpoint — and the reconciler that runs their instances.
//
// State machine (EndpointStatus), enforced only in this controller:
//
//   Creating ──► InService ◄──► Updating        (every state) ──► Deleting ──► (record removed)
//      │  ▲          │
//      │  └──────────┘  (after a restart an InService endpoint re-adopts or relaunches its
//      │                 instances and stays InService; if they cannot turn healthy it fails)
//      ▼
//    Failed   (FailureReason; only DeleteEndpoint is accepted)
//
// Deleting is sticky: no progress recorded by the monitor thread undoes it. Every transition
// is one MetadataStore transaction with a history row.
//
// Who drives what: the API thread validates and records the endpoint (Create) with a snapshot
// of its config and models (deploying reads them once, as SageMaker does: deleting the config
// afterwards changes nothing), records an update (Update) or records Deleting (Delete). One
// monitor thread per live endpoint does the rest:
//   deploy   per variant: resolve the model's image; fetch ModelDataUrl and unpack it once
//            (control/model_host.h) into <endpoints_dir>/<endpoint>-<created>/<variant>/
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
//   update   blue/green, all at once: the new configuration is deployed as a new generation
//            (models under "gen.<n>/" in the endpoint's directory) next to the live fleet,
//            which keeps serving (and being repaired). Once every new instance answers /ping,
//            the router switches to the new fleet in one step and InService is recorded with
//            the new EndpointConfigName; each old instance gets SIGTERM once no request can
//            reach it any more (EndpointRouter::Reachable; or after drain_timeout), SIGKILL after stop_grace. A new instance
//            that fails to start rolls the update back: the new instances are killed and the
//            endpoint returns to InService on the old fleet with a FailureReason, as
//            SageMaker's rollback does. While Updating, DescribeEndpoint shows the new
//            configuration under PendingDeploymentSummary.
//   delete   the fleet leaves the router, instances get SIGTERM, SIGKILL after stop_grace;
//            then the directory and the record are removed.
// The instances (variant, generation, id, port, directory) are recorded in the record's
// `internal` document before they are launched, so Recover() after a crash finds them: a live
// instance whose supervisor is alive is re-adopted (and must still answer /ping), one that is
// gone is replaced by a new instance; instances of another generation are stopped (an
// interrupted update starts over); Creating continues deploying, Deleting finishes.
//
// Names are compared without case (models.h). Errors are SageMaker's, which boto3 waiters and
// the sagemaker SDK match on:
//   duplicate name  -> ValidationException `Cannot create already existing endpoint "<arn>".`
//   missing         -> ValidationException `Could not find endpoint "<arn>".`
//   missing config  -> ValidationException `Could not find endpoint configuration "<arn>".`
//   update while Creating/Updating/Deleting
//                   -> ValidationException `Cannot update in-progress endpoint "<arn>".`
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
  // After an update, how long the old fleet may take to finish the requests it has before it
  // is stopped regardless (InvokeEndpoint's own limit is 60 s).
  std::chrono::milliseconds drain_timeout{60000};
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
  Result<nlohmann::json> Update(const nlohmann::json& request);
  Result<nlohmann::json> Delete(const nlohmann::json& request);

  // Resumes every endpoint that is Creating, InService or Deleting. Call once at start-up.
  Status Recover();

  // Endpoints with a monitor thread right now (diagnostics, tests).
  std::size_t MonitoredEndpoints();

  static constexpr std::string_view kKind = "Endpoint";
  static constexpr std::string_view kLogGroupPrefix = "/aws/sagemaker/Endpoints/";

 private:
  class Runner;
  // What deploying an endpoint configuration means: per variant, what the monitor thread
  // deploys (`variants`) and what DescribeEndpoint shows (`doc_variants`).
  struct Plan {
    std::string config_name;  // as stored
    nlohmann::json variants = nlohmann::json::array();
    nlohmann::json doc_variants = nlohmann::json::array();
  };
  // Reads the configuration and its models once (as SageMaker does: deleting them later
  // changes nothing deployed); ValidationException for what cannot be deployed.
  Result<Plan> PlanDeployment(const std::string& config_name, std::int64_t now);

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
  MonitorThreads monitors_{"endpoint"};
};

}  // namespace hearth::control
