// Model hosts: what an endpoint's instances and a transform job's instances share — a model's
// one container, unpacked into a directory and served under SageMaker's inference contract
// (GET /ping, POST /invocations) by a process on a loopback port, launched through
// HostProcessRuntime.
//
//   built-in image   `hearth algo <name> serve` (the binary bound read-only at a fixed path
//                    inside the sandbox)
//   BYO image        its /opt/program/serve, working directory /opt/program
// The model directory is bound read-only at /opt/ml/model (SM_MODEL_DIR names it when there is
// no sandbox), the port is in SAGEMAKER_BIND_TO_PORT, and the container's Environment applies
// over the contract's variables.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "control/image_registry.h"
#include "runtime/host_process.h"
#include "storage/object_store.h"

namespace hearth::control {

// An EC2-style instance id: "i-" and 17 hex digits.
std::string NewInstanceId();

// A loopback port nothing listens on right now. The instance binds it a moment later; `taken`
// keeps two instances launched together from drawing the same one.
Result<std::uint16_t> FreeLoopbackPort(std::set<std::uint16_t>& taken);

// The one container of a model document (PrimaryContainer, or the single Containers entry).
// Callers refuse models of several containers (inference pipelines) before they get here.
const nlohmann::json& ModelContainer(const nlohmann::json& model);

// Empties `model_dir` and fills it from the container's ModelDataUrl (a tar.gz, unpacked) or
// ModelDataSource.S3DataSource (Gzip archive, S3Prefix or one object). Nothing to fetch: left
// empty. InvalidArgument naming the URI when it cannot be fetched or unpacked.
Status PrepareModelDir(storage::ObjectStore& objects, const nlohmann::json& container,
                       const std::filesystem::path& model_dir);

struct ModelServerSpec {
  nlohmann::json container;  // ContainerDefinition: Image, Environment
  std::filesystem::path model_dir;  // prepared by PrepareModelDir; shared, read-only
  std::filesystem::path dir;        // the instance's own: ml/ and state/ are made under it
  std::uint16_t port = 0;
  // Set before the container's Environment (which may override them) ...
  std::map<std::string, std::string> env;
  // ... and after it (a transform job's Environment and batch settings).
  std::map<std::string, std::string> env_overrides;
};

// Launches the model server of `spec` (state in spec.dir / "state", output in its output.log).
// InvalidArgument when the image does not resolve.
Status LaunchModelServer(runtime::HostProcessRuntime& runtime, const ImageRegistry& images,
                         const std::filesystem::path& hearth_binary, const ModelServerSpec& spec);

// "it exited with code 3", "it was killed by signal 9", "its process ended without recording
// an exit status": how a host that is no longer running ended, for FailureReasons and logs.
std::string DescribeHostEnd(const Result<runtime::HostStatus>& status);

}  // namespace hearth::control
