// `hearth`: the one binary.
//   hearth server [--listen 127.0.0.1:7070] [--data-dir DIR] [--max-training-instances N]
//                 [--sdk-path DIR]
//                                                               the platform
//   hearth image register NAME DIR [--data-dir DIR]            register a bring-your-own image
//   hearth image list [--data-dir DIR]
//   hearth algo NAME train|serve                               a built-in algorithm's entry
//                                                               point (what a host runs)
//   hearth algo list
// This is the only place that picks concrete backends (SQLite, the local object store,
// bubblewrap processes).
#include <csignal>
#include <filesystem>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <signal.h>
#include <unistd.h>

#include "algorithms/algorithm.h"
#include "algorithms/run_training.h"
#include "api/logs_api.h"
#include "api/runtime_api.h"
#include "api/sagemaker_api.h"
#include "common/status.h"
#include "control/endpoint_configs.h"
#include "control/endpoints.h"
#include "control/image_registry.h"
#include "control/models.h"
#include "control/notebook_instances.h"
#include "control/training_jobs.h"
#include "control/transform_jobs.h"
#include "control/tuning_jobs.h"
#include "http/http_server.h"
#include "metadata/sqlite_metadata_store.h"
#include "runtime/host_process.h"
#include "s3api/s3_api.h"
#include "serving/endpoint_router.h"
#include "serving/model_server.h"
#include "server/router.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"
#include "storage/local_object_store.h"

namespace fs = std::filesystem;
using namespace hearth;

namespace {

// Set by SIGINT/SIGTERM; the main thread polls it. (Blocking the signals and sigwait()ing would
// leave them blocked in every training host the server spawns.)
volatile std::sig_atomic_t g_stop = 0;

void OnSignal(int) { g_stop = 1; }

fs::path SelfDir() { return fs::read_symlink("/proc/self/exe").parent_path(); }

// Built-in algorithms as the image registry sees them: the ECR repository names each answers
// to and the metric definitions its image carries.
std::map<std::string, control::BuiltinImage> BuiltinAlgorithms() {
  std::map<std::string, control::BuiltinImage> out;
  for (const algorithms::Algorithm* algo : algorithms::Registry()) {
    control::BuiltinImage& image = out[std::string(algo->name())];
    image.repositories = algo->repositories();
    for (const auto& def : algo->metric_definitions()) {
      image.metric_definitions.push_back({def.name, def.regex});
    }
  }
  return out;
}

int RunAlgorithm(const std::string& name, const std::string& mode) {
  const algorithms::Algorithm* algo = algorithms::FindAlgorithm(name);
  if (algo == nullptr) {
    std::string known;
    for (const auto* a : algorithms::Registry()) known += " " + std::string(a->name());
    std::cerr << "hearth: no built-in algorithm '" << name << "'; there are:" << known << "\n";
    return 2;
  }
  if (mode == "train") return algorithms::RunTraining(*algo);
  return serving::Serve(*algo, {});
}

int Fail(const Status& s) {
  std::cerr << "hearth: " << s.message() << "\n";
  return 1;
}

struct Stores {
  std::unique_ptr<metadata::MetadataStore> metadata;
  std::unique_ptr<metadata::LogStore> logs;
};

Result<Stores> OpenStores(const fs::path& data_dir) {
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec)
    return InvalidArgument("cannot create --data-dir " + data_dir.string() + ": " + ec.message());
  Stores s;
  ASSIGN_OR_RETURN(s.metadata,
                   metadata::OpenSqliteMetadataStore({.path = data_dir / "metadata.db"}));
  ASSIGN_OR_RETURN(s.logs, metadata::OpenSqliteLogStore({.path = data_dir / "metadata.db"}));
  return s;
}

struct ServerFlags {
  std::string listen = "127.0.0.1:7070";
  fs::path data_dir = "data";
  int max_training_instances = 64;
  // Put on notebook instances' PYTHONPATH: where the `hearth` Python SDK is.
  fs::path sdk_dir = control::DefaultSdkDir();
};

int RunServer(const ServerFlags& flags) {
  const std::string& listen = flags.listen;
  const fs::path& data_dir = flags.data_dir;
  auto stores = OpenStores(data_dir);
  if (!stores.ok()) return Fail(stores.status());
  auto objects = storage::OpenLocalObjectStore({.root = data_dir / "objects"});
  if (!objects.ok()) return Fail(objects.status());
  // Request bodies spooled by a server that was killed mid-upload: never acknowledged, so
  // nothing refers to them. (The object store's LOCK, taken above, keeps a second server on
  // this directory from getting here.)
  std::error_code ec;
  fs::remove_all(data_dir / "tmp", ec);
  fs::create_directories(data_dir / "tmp", ec);
  fs::create_directories(data_dir / "jobs", ec);

  runtime::HostProcessRuntime runtime({.supervisor_path = SelfDir() / "hearth-supervisor"});
  if (!runtime.sandboxed()) {
    spdlog::warn("bubblewrap is not usable here: training hosts run as plain child processes");
  }
  control::ImageRegistry images(*stores->metadata, BuiltinAlgorithms());
  control::TrainingJobController training({.jobs_dir = data_dir / "jobs",
                                           .hearth_binary = fs::read_symlink("/proc/self/exe"),
                                           .max_running_instances = flags.max_training_instances},
                                          *stores->metadata, *stores->logs, **objects, runtime,
                                          images);

  // InvokeEndpoint's data plane: the endpoint controller publishes fleets to it.
  serving::EndpointRouter endpoint_router;
  control::ModelController models({}, *stores->metadata, **objects, images);
  control::EndpointConfigController endpoint_configs({}, *stores->metadata);
  fs::create_directories(data_dir / "endpoints", ec);
  control::EndpointController endpoints({.endpoints_dir = data_dir / "endpoints",
                                         .hearth_binary = fs::read_symlink("/proc/self/exe")},
                                        *stores->metadata, *stores->logs, **objects, runtime,
                                        images, endpoint_router);

  fs::create_directories(data_dir / "transforms", ec);
  control::TransformJobController transforms({.transforms_dir = data_dir / "transforms",
                                              .hearth_binary = fs::read_symlink("/proc/self/exe")},
                                             *stores->metadata, *stores->logs, **objects, runtime,
                                             images);

  // Notebook instances: Jupyter servers whose notebooks call this server (SetServerUrl below).
  fs::create_directories(data_dir / "notebooks", ec);
  if (!fs::is_directory(flags.sdk_dir, ec)) {
    spdlog::warn("--sdk-path {} is not a directory: `import hearth` will fail in notebooks",
                 flags.sdk_dir.string());
  }
  control::NotebookInstanceController notebooks(
      {.notebooks_dir = data_dir / "notebooks", .sdk_dir = flags.sdk_dir}, *stores->metadata,
      *stores->logs, runtime);

  // Hyperparameter tuning jobs run their children through the training controller.
  control::HyperParameterTuningJobController tuning({}, *stores->metadata, *stores->logs, images,
                                                    training);

  auto sagemaker = api::MakeSageMakerService(training, models, endpoint_configs, endpoints,
                                             transforms, notebooks, tuning);
  metadata::LogStore& log_store = *stores->logs;
  std::map<std::string, api::OperationHandler> log_ops;
  for (const char* op :
       {"DescribeLogGroups", "DescribeLogStreams", "GetLogEvents", "FilterLogEvents"}) {
    log_ops[op] = [&log_store, op](const nlohmann::json& in) {
      return api::HandleLogsOperation(log_store, op, in);
    };
  }
  api::JsonProtocolService logs("Logs_20140328", api::ServiceModel::Logs(), std::move(log_ops));
  s3api::S3Api s3(**objects);
  api::RuntimeApi runtime_api({}, [&endpoint_router](const serving::Invocation& invocation) {
    return endpoint_router.Invoke(invocation);
  });
  server::Router router(*sagemaker, logs, runtime_api, s3,
                        [](const http::Request&) { return Status::Ok(); });

  if (Status s = training.Recover(); !s.ok()) return Fail(s);
  if (Status s = tuning.Recover(); !s.ok()) return Fail(s);
  if (Status s = endpoints.Recover(); !s.ok()) return Fail(s);
  if (Status s = transforms.Recover(); !s.ok()) return Fail(s);
  if (Status s = notebooks.Recover(); !s.ok()) return Fail(s);

  auto http_server = http::HttpServer::Start(
      {.listen = listen, .spool_dir = data_dir / "tmp"},
      {.precheck = [&router](const http::Request& r) { return router.Precheck(r); },
       .handle = [&router](http::Request& r) { return router.Handle(r); }});
  if (!http_server.ok()) return Fail(http_server.status());
  notebooks.SetServerUrl("http://" + (*http_server)->address());

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::cout << "hearth: serving on http://" << (*http_server)->address() << " (data in "
            << fs::absolute(data_dir).string() << ")" << std::endl;
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("stopping; running jobs keep running and are re-adopted at the next start");
  (*http_server)->Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  // Diagnostics go to stderr; stdout carries only what a script may parse (the address).
  spdlog::set_default_logger(spdlog::stderr_color_mt("hearth"));
  CLI::App app{"Hearth: SageMaker's API on your own machine"};
  app.require_subcommand(1);
  std::string data_dir = "data";

  auto* server = app.add_subcommand("server", "Run the platform");
  std::string listen = "127.0.0.1:7070";
  server->add_option("--listen", listen, "host:port to serve on (port 0 picks a free one)");
  server->add_option("--data-dir", data_dir, "where metadata, objects and jobs are kept");
  int max_training_instances = ServerFlags{}.max_training_instances;
  server
      ->add_option("--max-training-instances", max_training_instances,
                   "training hosts that may run at once, over all jobs")
      ->check(CLI::PositiveNumber);
  std::string sdk_path = ServerFlags{}.sdk_dir.string();
  server->add_option("--sdk-path", sdk_path,
                     "directory of the `hearth` Python SDK, put on notebook instances' "
                     "PYTHONPATH (default: this source tree's python/)");

  auto* image = app.add_subcommand("image", "Manage bring-your-own images");
  image->require_subcommand(1);
  auto* reg =
      image->add_subcommand("register", "Register a directory with train/serve as an image");
  std::string image_name, image_dir;
  reg->add_option("name", image_name, "image name, as TrainingImage will give it")->required();
  reg->add_option("dir", image_dir, "directory holding executable train and/or serve")->required();
  reg->add_option("--data-dir", data_dir, "the server's data directory");
  auto* list = image->add_subcommand("list", "List registered images");
  list->add_option("--data-dir", data_dir, "the server's data directory");

  auto* algo = app.add_subcommand("algo", "Run a built-in algorithm (as a training host or "
                                          "an inference server does)");
  algo->require_subcommand(0, 1);
  std::string algo_name, algo_mode;
  algo->add_option("name", algo_name, "algorithm (hearth algo list)");
  algo->add_option("mode", algo_mode, "train or serve")->check(CLI::IsMember({"train", "serve"}));

  CLI11_PARSE(app, argc, argv);

  if (algo->parsed()) {
    if (algo_name == "list" || algo_name.empty()) {
      for (const auto* a : algorithms::Registry()) std::cout << a->name() << "\n";
      return 0;
    }
    if (algo_mode.empty()) {
      std::cerr << "hearth algo " << algo_name << ": say train or serve\n";
      return 2;
    }
    return RunAlgorithm(algo_name, algo_mode);
  }

  if (server->parsed()) {
    return RunServer({.listen = listen,
                      .data_dir = data_dir,
                      .max_training_instances = max_training_instances,
                      .sdk_dir = sdk_path});
  }
  auto stores = OpenStores(data_dir);
  if (!stores.ok()) return Fail(stores.status());
  control::ImageRegistry registry(*stores->metadata, BuiltinAlgorithms());
  if (reg->parsed()) {
    if (Status s = registry.RegisterDirectory(image_name, image_dir); !s.ok()) return Fail(s);
    std::cout << "registered image " << image_name << " -> " << fs::absolute(image_dir).string()
              << "\n";
    return 0;
  }
  auto images = registry.ListRegistered();
  if (!images.ok()) return Fail(images.status());
  for (const auto& [name, path] : *images) std::cout << name << "\t" << path << "\n";
  return 0;
}
