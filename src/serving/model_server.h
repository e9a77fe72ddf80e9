// ModelServer: the inference side of a built-in algorithm, `hearth algo <name> serve`, under
// SageMaker's inference container contract (reference/sagemaker-api.md §4):
//
//   GET  /ping                  200, empty body, once the model is loaded
//   POST /invocations           Content-Type -> data::RecordReader (features only), the model's
//                               Predict, Accept -> data::Encode
//   GET  /execution-parameters  {"MaxConcurrentTransforms":<cpus>,"BatchStrategy":
//                               "MULTI_RECORD","MaxPayloadInMB":6}
//
// Errors, as SageMaker's built-in containers answer them: 415 for an unsupported
// Content-Type, 406 for an unsupported Accept, 400 for a payload that does not parse or has
// the wrong number of features, 413 over the payload limit, 204 for an empty body. The message
// says which. Never a crash: a bad payload is a value.
//
// Listens on 0.0.0.0:$SAGEMAKER_BIND_TO_PORT, default 8080 (ServeOptions lets tests pick).
//
// Thread safety: Handle may be called concurrently; the model is shared read-only.
#pragma once

#include <memory>
#include <string>

#include "algorithms/algorithm.h"
#include "common/status.h"
#include "http/http_message.h"

namespace hearth::serving {

class InvocationHandler {
 public:
  InvocationHandler(const algorithms::Algorithm& algorithm,
                    std::shared_ptr<const algorithms::Model> model,
                    std::size_t max_payload_bytes = 6 << 20);
  http::Response Handle(http::Request& request) const;

 private:
  http::Response Invoke(http::Request& request) const;
  const algorithms::Algorithm& algorithm_;
  std::shared_ptr<const algorithms::Model> model_;
  std::size_t max_payload_bytes_;
};

struct ServeOptions {
  std::string listen;  // empty: 0.0.0.0:$SAGEMAKER_BIND_TO_PORT or 0.0.0.0:8080
  std::filesystem::path model_dir;  // empty: $SM_MODEL_DIR or /opt/ml/model
};

// Loads the model and serves until SIGTERM/SIGINT. Returns the process exit code.
int Serve(const algorithms::Algorithm& algorithm, const ServeOptions& options);

}  // namespace hearth::serving
