// NotebookInstanceController: SageMaker notebook instances — CreateNotebookInstance,
// DescribeNotebookInstance, ListNotebookInstances, StopNotebookInstance, StartNotebookInstance,
// DeleteNotebookInstance, CreatePresignedNotebookInstanceUrl. An instance is a Jupyter server
// (Debian's jupyter-notebook, `<python> -m notebook`) on a loopback port, guarded by a token.
//
// State machine (NotebookInstanceStatus), enforced only in this controller:
//
//   Pending         ─► InService  Jupyter answered GET /api/status with 200       (monitor)
//   Pending         ─► Failed     Jupyter exited, or did not answer within
//                                 startup_timeout (then it is killed)            (monitor)
//   InService       ─► Stopping   StopNotebookInstance                            (API)
//   InService       ─► Failed     Jupyter exited on its own                       (monitor)
//   InService       ─► Pending    its process was lost (its supervisor died without
//                                 recording an exit: the machine rebooted, say); it is
//                                 launched again                                  (monitor)
//   Stopping        ─► Stopped    SIGTERM, SIGKILL after stop_grace; it ended     (monitor)
//   Stopped, Failed ─► Pending    StartNotebookInstance                           (API)
//   Stopped, Failed ─► Deleting   DeleteNotebookInstance                          (API)
//   Deleting        ─► (removed)  the instance's directory, then its record       (monitor)
// CreateNotebookInstance records Pending. Updating is never entered (UpdateNotebookInstance is
// not served). No other transition exists: Stop is refused unless InService, Start and Delete
// unless Stopped or Failed, as SageMaker refuses them. Every transition is one MetadataStore
// transaction with a history row. A Failed instance runs nothing; FailureReason holds why,
// with the tail of Jupyter's output.
//
// The instance, under <notebooks_dir>/<name>/:
//   SageMaker/  the notebook directory (Jupyter's root). It is kept across stop and start, as
//               SageMaker keeps the ML storage volume, and removed on delete.
//   instance/   everything else the instance writes (HOME: Jupyter's and IPython's files),
//               made anew at every launch, as an instance's root volume is.
//   state/      the supervisor's (runtime/host_process.h), made anew at every launch.
// Jupyter runs through HostProcessRuntime, so it outlives a crash of the server, under the
// runtime's bubblewrap sandbox when usable: the host is read-only, instance/ is /opt/ml (HOME
// is /opt/ml/home), SageMaker/ is bound read-write at /opt/ml/home/SageMaker (so
// ~/SageMaker is the notebook directory, as on SageMaker), the SDK directory is bound
// read-only at /opt/hearth-sdk, /tmp is private, and /opt/ml/metadata/resource-metadata.json
// names the instance as SageMaker's does (the sagemaker SDK reads it). It has its own PID
// namespace, so stopping Jupyter ends every kernel it started, and shares the host's network:
// the notebook must reach the server on loopback, and the user must reach Jupyter. Without
// bwrap it runs as a plain child process, with the host paths.
//
// The environment makes the server the notebook's default endpoint: HEARTH_ENDPOINT_URL and
// AWS_ENDPOINT_URL are the server's URL (SetServerUrl), AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION are placeholders (Hearth accepts any
// credentials), and PYTHONPATH holds `sdk_dir` (the directory of the `hearth` Python package),
// so `import hearth; hearth.Session()` works in a new notebook. PATH is the system's, so
// python3 is /usr/bin/python3, which runs Jupyter's kernels too.
//
// Every launch (create, start, relaunch) takes a new token (128 random bits); Jupyter reads it
// from JUPYTER_TOKEN, so it is not on a command line. The port is kept across launches while
// it is free. DescribeNotebookInstance's Url is "127.0.0.1:<port>" (a host without scheme, as
// SageMaker gives one); CreatePresignedNotebookInstanceUrl's AuthorizedUrl is
// "http://127.0.0.1:<port>/?token=<token>", which logs a browser in. It is valid while that
// launch runs: SessionExpirationDurationInSeconds is accepted and not enforced. Without the
// token Jupyter answers 403 (its API) or redirects to its login page.
//
// Jupyter's output goes to the LogStore, group /aws/sagemaker/NotebookInstances, stream
// "<name>/jupyter.log", one stream across launches (SageMaker's naming); lines are stored
// exactly once across restarts of the server.
//
// Who drives what: the API threads validate and record requests; one monitor thread per
// instance that is Pending, InService, Stopping or Deleting does the rest (launch, health,
// output, stop, removal). The port, token and the launch's log position are recorded before
// Jupyter is launched, so Recover() after a crash finds them: an instance whose Jupyter still
// runs is adopted (same URL, same token), one whose process was lost is launched again, one
// that exited meanwhile fails; Stopping and Deleting finish.
//
// Not supported, refused with a ValidationException naming the field (rather than recorded and
// ignored): LifecycleConfigName, DefaultCodeRepository, AdditionalCodeRepositories,
// AcceleratorTypes, KmsKeyId, SubnetId, SecurityGroupIds, DirectInternetAccess=Disabled and
// RootAccess=Disabled. Recorded and shown by Describe, with no effect here: InstanceType,
// RoleArn, VolumeSizeInGB (default 5), PlatformIdentifier (default notebook-al2-v2),
// IpAddressType, InstanceMetadataServiceConfiguration, Tags.
//
// Names are compared without case. Errors are SageMaker's, which boto3's waiters
// (notebook_instance_in_service / _stopped / _deleted) and scripts match on:
//   missing          -> ValidationException `RecordNotFound`
//   duplicate name   -> ValidationException `Cannot create a duplicate Notebook Instance (<arn>)`
//   wrong status     -> ValidationException `Status (<status>) not in ([Stopped, Failed]).
//                       Unable to transition to (Deleting) for Notebook Instance (<arn>)`
//                       (Stop: `not in ([InService])` ... `(Stopping)`; Start: `not in
//                       ([Stopped, Failed])` ... `(Pending)`)
//
// Thread safety: thread safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/ids.h"
#include "common/status.h"
#include "control/monitor_threads.h"
#include "metadata/log_store.h"
#include "metadata/metadata_store.h"
#include "runtime/host_process.h"

namespace hearth::control {

struct NotebookOptions {
  std::filesystem::path notebooks_dir;  // one directory per instance (see above)
  // The directory holding the `hearth` Python package, put on PYTHONPATH. Not checked: a
  // missing one only makes `import hearth` fail inside notebooks.
  std::filesystem::path sdk_dir;
  // Runs Jupyter (`<python> -m notebook`) and, through Debian's kernelspec, its kernels.
  std::filesystem::path python = "/usr/bin/python3";
  AccountContext account{};
  // How long Jupyter may take to answer GET /api/status after a launch (or an adoption)
  // before the instance fails.
  std::chrono::milliseconds startup_timeout{300000};
  // Stop: SIGTERM (Jupyter shuts its kernels down), then SIGKILL this much later.
  std::chrono::milliseconds stop_grace{30000};
  std::chrono::milliseconds poll_interval{100};
  std::chrono::milliseconds status_timeout{2000};  // one GET /api/status
};

// The `python/` directory of the source tree this binary was built from: where the `hearth`
// SDK lives in a checkout. The server's default for NotebookOptions::sdk_dir.
std::filesystem::path DefaultSdkDir();

class NotebookInstanceController {
 public:
  // The stores and runtime are not owned and must outlive this object.
  NotebookInstanceController(NotebookOptions options, metadata::MetadataStore& store,
                             metadata::LogStore& logs, runtime::HostProcessRuntime& runtime);
  // Stops monitoring without touching the instances: Jupyter keeps running under its
  // supervisor, and the next Recover() adopts it (the same path as after a crash).
  ~NotebookInstanceController();
  NotebookInstanceController(const NotebookInstanceController&) = delete;
  NotebookInstanceController& operator=(const NotebookInstanceController&) = delete;

  // The server's own URL ("http://127.0.0.1:7070"), given to notebooks as their endpoint; a
  // wildcard host (0.0.0.0, [::]) becomes loopback. Known only once the server listens (its
  // port may be picked then): until it is set, launches wait for it and instances stay
  // Pending.
  void SetServerUrl(std::string url);

  // Each takes the operation's input (already validated against the service model) and
  // returns its output document.
  Result<nlohmann::json> Create(const nlohmann::json& request);
  Result<nlohmann::json> Describe(const nlohmann::json& request);
  Result<nlohmann::json> List(const nlohmann::json& request);
  Result<nlohmann::json> Stop(const nlohmann::json& request);
  Result<nlohmann::json> Start(const nlohmann::json& request);
  Result<nlohmann::json> Delete(const nlohmann::json& request);
  Result<nlohmann::json> CreatePresignedUrl(const nlohmann::json& request);

  // Resumes every instance that is Pending, InService, Stopping or Deleting. Call once at
  // start-up.
  Status Recover();

  // Instances with a monitor thread right now (diagnostics, tests).
  std::size_t MonitoredInstances();

  static constexpr std::string_view kKind = "NotebookInstance";
  static constexpr std::string_view kLogGroup = "/aws/sagemaker/NotebookInstances";
  static std::string LogStream(std::string_view name) { return std::string(name) + "/jupyter.log"; }
  // Where an instance's notebook directory is on this machine.
  std::filesystem::path NotebookDir(std::string_view name) const;

 private:
  class Runner;

  // Wakes the instance's monitor thread to re-read its record, or starts one.
  void Kick(const std::string& name);
  Result<metadata::Resource> Find(const std::string& name);
  // Records `to` (with `extra` applied) if the instance's status is one of `from`; SageMaker's
  // ValidationException otherwise.
  Result<metadata::Resource> RequestTransition(
      const std::string& name, const std::vector<std::string>& from, const std::string& to,
      const std::string& why, const std::function<void(metadata::Resource&)>& extra);
  // A loopback port for `name`: `preferred` while it is free and no other instance holds it,
  // else a new one.
  Result<std::uint16_t> PickPort(const std::string& name, std::uint16_t preferred);
  void ForgetPort(const std::string& name);
  // Empty until SetServerUrl.
  std::string ServerUrl();

  NotebookOptions options_;
  metadata::MetadataStore& store_;
  metadata::LogStore& logs_;
  runtime::HostProcessRuntime& runtime_;

  std::mutex url_mu_;
  std::string server_url_;  // GUARDED_BY(url_mu_)
  std::mutex create_mu_;    // serializes the case-insensitive duplicate check with the create
  std::mutex kick_mu_;      // one Kick at a time: never two monitor threads for one instance
  std::mutex ports_mu_;
  // Ports picked and maybe not yet recorded, by instance name.
  std::map<std::string, std::uint16_t> picked_ports_;  // GUARDED_BY(ports_mu_)
  MonitorThreads monitors_{"notebook instance"};
};

}  // namespace hearth::control
