#include "serving/model_server.h"

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <pthread.h>
#include <signal.h>

#include "data/record_reader.h"
#include "fmt/format.h"
#include "http/http_server.h"

namespace hearth::serving {

namespace fs = std::filesystem;

namespace {

http::Response Text(int status, std::string_view message) {
  http::Response r;
  r.status = status;
  r.SetHeader("Content-Type", "text/plain");
  r.body = std::string(message);
  if (!r.body.empty() && r.body.back() != '\n') r.body += '\n';
  return r;
}

std::string EnvOr(const char* name, std::string_view fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::string(fallback);
}

// Under batch transform (SAGEMAKER_BATCH=true) answers keep one line per record so that the
// platform can split them back, whatever the realtime shape is.
// Read once: the environment is the process's, fixed at its start.
bool InBatchTransform() {
  static const bool batch = EnvOr("SAGEMAKER_BATCH", "") == "true";
  return batch;
}

std::size_t PayloadLimitBytes() {
  std::string mb = EnvOr("SAGEMAKER_MAX_PAYLOAD_IN_MB", "");
  char* end = nullptr;
  long v = mb.empty() ? 0 : std::strtol(mb.c_str(), &end, 10);
  if (v <= 0 || (end && *end)) return 6u << 20;
  return static_cast<std::size_t>(v) << 20;
}

}  // namespace

InvocationHandler::InvocationHandler(const algorithms::Algorithm& algorithm,
                                     std::shared_ptr<const algorithms::Model> model,
                                     std::size_t max_payload_bytes)
    : algorithm_(algorithm), model_(std::move(model)), max_payload_bytes_(max_payload_bytes) {}

http::Response InvocationHandler::Handle(http::Request& request) const {
  if (request.path == "/ping") {
    if (request.method != "GET") return Text(405, "use GET /ping");
    return http::Response{};
  }
  if (request.path == "/invocations") {
    if (request.method != "POST") return Text(405, "use POST /invocations");
    return Invoke(request);
  }
  if (request.path == "/execution-parameters" && request.method == "GET") {
    http::Response r;
    r.SetHeader("Content-Type", "application/json");
    r.body = fmt::format(
        R"({{"MaxConcurrentTransforms":{},"BatchStrategy":"MULTI_RECORD","MaxPayloadInMB":6}})",
        std::max(1u, std::thread::hardware_concurrency()));
    return r;
  }
  return Text(404, fmt::format("no route for {} {}", request.method, request.path));
}

http::Response InvocationHandler::Invoke(http::Request& request) const {
  if (request.body.size() == 0) return Text(204, "");
  if (request.body.size() > max_payload_bytes_) {
    return Text(413, fmt::format("payload of {} bytes exceeds the limit of {} bytes",
                                 request.body.size(), max_payload_bytes_));
  }
  std::string content_type = request.headers.GetOr("content-type", "");
  auto type = data::ParseContentType(content_type, "Content-Type");
  if (!type.ok()) {
    return Text(415, fmt::format("Content-Type '{}' is not supported by {}: {}", content_type,
                                 algorithm_.name(), type.status().message()));
  }
  type->label_size = 0;  // requests carry features only
  auto format =
      data::ParseAccept(request.headers.GetOr("accept", ""), algorithm_.default_accept());
  if (!format.ok()) return Text(406, format.status().message());

  // An in-memory body is parsed where it lies; a spooled one is read first.
  std::string_view payload = request.body.in_memory();
  std::string spooled;
  if (request.body.spooled()) {
    auto all = request.body.ReadAll();
    if (!all.ok()) return Text(500, all.status().message());
    spooled = std::move(all).value();
    payload = spooled;
  }
  auto reader = data::OpenMemoryReader(payload, *type);
  if (!reader.ok()) return Text(400, reader.status().message());
  auto rows = data::ReadAll(**reader);
  if (!rows.ok()) return Text(400, rows.status().message());
  if (rows->rows == 0) return Text(400, "the request holds no records");

  auto predictions = model_->Predict(*rows);
  if (!predictions.ok()) {
    return Text(predictions.status().code() == StatusCode::kInvalidArgument ? 400 : 500,
                predictions.status().message());
  }
  if (InBatchTransform()) predictions->csv_one_line = false;
  http::Response r;
  r.SetHeader("Content-Type", data::MimeType(*format));
  r.body = data::Encode(*predictions, *format);
  return r;
}

int Serve(const algorithms::Algorithm& algorithm, const ServeOptions& options) {
  fs::path model_dir =
      options.model_dir.empty() ? fs::path(EnvOr("SM_MODEL_DIR", "/opt/ml/model")) : options.model_dir;
  auto model = algorithm.LoadModel(model_dir);
  if (!model.ok()) {
    fmt::print(stderr, "[{}] cannot load the model from {}: {}\n", algorithm.name(),
               model_dir.string(), model.status().message());
    return 1;
  }
  auto handler = std::make_shared<InvocationHandler>(
      algorithm, std::shared_ptr<const algorithms::Model>(std::move(model).value()),
      PayloadLimitBytes());

  http::HttpServerOptions http_options;
  http_options.listen = options.listen.empty()
                            ? "0.0.0.0:" + EnvOr("SAGEMAKER_BIND_TO_PORT", "8080")
                            : options.listen;
  http_options.spool_dir = fs::temp_directory_path();
  http_options.in_memory_body_limit = PayloadLimitBytes() + 1;
  http_options.max_body_bytes = PayloadLimitBytes() + 1;  // one over: Invoke answers 413

  // Blocked before the server's threads start, so that they inherit the mask and the main
  // thread alone takes the stop signal in sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  auto server = http::HttpServer::Start(
      http_options, {.precheck = nullptr,
                     .handle = [handler](http::Request& r) { return handler->Handle(r); }});
  if (!server.ok()) {
    fmt::print(stderr, "[{}] cannot listen on {}: {}\n", algorithm.name(), http_options.listen,
               server.status().message());
    return 1;
  }
  fmt::print("[{}] serving {} on {}\n", algorithm.name(), model_dir.string(),
             (*server)->address());
  std::fflush(stdout);
  int signal = 0;
  sigwait(&stop_signals, &signal);
  (*server)->Stop();
  return 0;
}

}  // namespace hearth::serving
