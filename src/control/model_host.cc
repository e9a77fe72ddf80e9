#include "control/model_host.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>

#include "common/ids.h"
#include "runtime/model_archive.h"
#include "runtime/training_contract.h"

namespace hearth::control {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Where a sandboxed built-in model server finds the `hearth` binary.
constexpr std::string_view kSandboxHearthPath = "/opt/.hearth/hearth";
constexpr std::string_view kSandboxModelDir = "/opt/ml/model";

}  // namespace

std::string NewInstanceId() {
  std::string hex;
  for (char c : NewUuid()) {
    if (std::isxdigit(static_cast<unsigned char>(c))) hex.push_back(c);
  }
  return "i-" + hex.substr(0, 17);
}

Result<std::uint16_t> FreeLoopbackPort(std::set<std::uint16_t>& taken) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Internal("socket: cannot pick a port for a model server");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
              ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
    ::close(fd);
    if (!ok) return Internal("bind: cannot pick a port for a model server");
    std::uint16_t port = ntohs(addr.sin_port);
    if (taken.insert(port).second) return port;
  }
  return Internal("cannot pick a free port for a model server");
}

const json& ModelContainer(const json& model) {
  if (model.contains("PrimaryContainer")) return model["PrimaryContainer"];
  return model["Containers"][0];
}

Status PrepareModelDir(storage::ObjectStore& objects, const json& container,
                       const fs::path& model_dir) {
  std::error_code ec;
  fs::remove_all(model_dir, ec);
  fs::create_directories(model_dir, ec);
  if (ec) return Internal("cannot create " + model_dir.string() + ": " + ec.message());
  if (container.contains("ModelDataUrl")) {
    const std::string uri = container["ModelDataUrl"].get<std::string>();
    ASSIGN_OR_RETURN(storage::S3Location loc, storage::ParseS3Uri(uri));
    Status s = runtime::ExtractArchiveObject(objects, loc, model_dir);
    if (!s.ok()) return InvalidArgument("Failed to extract model data archive from URL \"" + uri +
                                        "\": " + s.message());
    return Status::Ok();
  }
  if (container.contains("ModelDataSource")) {
    const json s3 = container["ModelDataSource"].value("S3DataSource", json::object());
    const std::string uri = s3.value("S3Uri", "");
    ASSIGN_OR_RETURN(storage::S3Location loc, storage::ParseS3Uri(uri));
    Status s;
    if (s3.value("CompressionType", "None") == "Gzip") {
      s = runtime::ExtractArchiveObject(objects, loc, model_dir);
    } else if (s3.value("S3DataType", "S3Object") == "S3Prefix") {
      s = runtime::DownloadPrefix(objects, loc, model_dir);
    } else {
      auto reader = objects.OpenForRead(loc.bucket, loc.key);
      s = reader.ok() ? (*reader)->CopyTo(model_dir / fs::path(loc.key).filename())
                      : reader.status();
    }
    if (!s.ok()) return InvalidArgument("Failed to download model data from \"" + uri +
                                        "\": " + s.message());
  }
  return Status::Ok();
}

Status LaunchModelServer(runtime::HostProcessRuntime& runtime, const ImageRegistry& images,
                         const fs::path& hearth_binary, const ModelServerSpec& spec) {
  const json& container = spec.container;
  ASSIGN_OR_RETURN(ResolvedImage image,
                   images.Resolve(container.value("Image", ""), "primaryContainer.image"));
  const bool sandboxed = runtime.sandboxed();
  const fs::path ml_dir = spec.dir / "ml";
  const fs::path state_dir = spec.dir / "state";
  std::error_code ec;
  fs::remove_all(spec.dir, ec);
  fs::create_directories(ml_dir / "model", ec);
  fs::create_directories(state_dir, ec);
  if (ec) return Internal("cannot create " + spec.dir.string() + ": " + ec.message());

  const std::string program_inside = sandboxed ? "/opt/program" : image.program_dir.string();
  std::vector<std::string> argv;
  if (image.builtin) {
    argv = {sandboxed ? std::string(kSandboxHearthPath) : hearth_binary.string(), "algo",
            image.algorithm, "serve"};
  } else {
    argv = {program_inside + "/serve"};
  }
  std::map<std::string, std::string> env = spec.env;
  env["PATH"] = (image.builtin ? "" : program_inside + ":") +
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  env["HOME"] = "/root";
  env["LANG"] = "C.UTF-8";
  env["PYTHONUNBUFFERED"] = "1";
  env["SAGEMAKER_BIND_TO_PORT"] = std::to_string(spec.port);
  env["SM_MODEL_DIR"] = sandboxed ? std::string(kSandboxModelDir) : spec.model_dir.string();
  env["SAGEMAKER_BASE_DIR"] = runtime.MlPathInside(ml_dir);
  const json environment = container.value("Environment", json::object());
  for (const auto& [k, v] : environment.items()) {
    if (v.is_string()) env[k] = v.get<std::string>();
  }
  for (const auto& [k, v] : spec.env_overrides) env[k] = v;

  runtime::HostSpec host;
  host.ml_dir = ml_dir;
  host.argv = std::move(argv);
  host.env = std::move(env);
  host.extra_binds.push_back({spec.model_dir, std::string(kSandboxModelDir), true});
  if (image.builtin) {
    // The binary is bound at a fixed path: where it was built (/tmp, say) may be hidden.
    host.extra_binds.push_back({hearth_binary, std::string(kSandboxHearthPath), true});
  } else {
    host.extra_binds.push_back({image.program_dir, "/opt/program", true});
    host.working_dir = program_inside;
  }
  return runtime.Launch(host, state_dir);
}

std::string DescribeHostEnd(const Result<runtime::HostStatus>& status) {
  if (!status.ok() || status->state == runtime::HostState::kLost) {
    return "its process ended without recording an exit status";
  }
  if (status->signal != 0) return "it was killed by signal " + std::to_string(status->signal);
  return "it exited with code " + std::to_string(status->exit_code);
}

}  // namespace hearth::control
