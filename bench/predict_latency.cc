// hearth_predict_latency: what one single-row /invocations costs inside `hearth algo <name>
// serve`, without the socket: the model dir is loaded through the algorithm's LoadModel, as the
// server loads it, and one text/csv row (Accept text/csv) goes through
// InvocationHandler::Handle again and again (decode + predict + encode). Model::Predict on a
// one-row dense Batch is timed too, so the table can split the cost.
//
//   hearth_predict_latency <algorithm> <model-dir> <csv-row> [iterations=20000]
//
// Prints one JSON object: median, p99, mean and min µs of each loop, and the response body.
// bench/algorithms.py runs it beside xgboost's own single-row predict on the same model.
//
// Thread safety: single-threaded program.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "algorithms/algorithm.h"
#include "data/batch.h"
#include "http/http_message.h"
#include "serving/model_server.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Summary {
  double median_us = 0, p99_us = 0, mean_us = 0, min_us = 0;
};

Summary Summarize(std::vector<double> samples_us) {
  std::sort(samples_us.begin(), samples_us.end());
  Summary s;
  const std::size_t n = samples_us.size();
  s.median_us = samples_us[n / 2];
  s.p99_us = samples_us[std::min(n - 1, n * 99 / 100)];
  s.min_us = samples_us.front();
  double total = 0;
  for (double v : samples_us) total += v;
  s.mean_us = total / static_cast<double>(n);
  return s;
}

std::string SummaryJson(const Summary& s) {
  char buf[256];
  std::snprintf(buf, sizeof buf, R"({"median_us":%.3f,"p99_us":%.3f,"mean_us":%.3f,"min_us":%.3f})",
                s.median_us, s.p99_us, s.mean_us, s.min_us);
  return buf;
}

std::string JsonEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

hearth::http::Request InvocationRequest(const std::string& csv_row) {
  hearth::http::Request request;
  request.method = "POST";
  request.target = request.path = request.raw_path = "/invocations";
  request.headers.Add("Content-Type", "text/csv");
  request.headers.Add("Accept", "text/csv");
  request.body = hearth::http::RequestBody::InMemory(csv_row);
  return request;
}

// The row as the model sees it after decoding (dense float32).
hearth::data::Batch DenseRow(const std::string& csv_row) {
  hearth::data::Batch batch;
  batch.rows = 1;
  const char* p = csv_row.c_str();
  while (*p) {
    char* end = nullptr;
    batch.dense.push_back(std::strtof(p, &end));
    p = end;
    while (*p == ',' || *p == ' ' || *p == '\n' || *p == '\r') ++p;
  }
  batch.cols = batch.dense.size();
  return batch;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s <algorithm> <model-dir> <csv-row> [iterations]\n", argv[0]);
    return 2;
  }
  const std::string name = argv[1];
  const std::string row = argv[3];
  const int iterations = argc > 4 ? std::max(100, std::atoi(argv[4])) : 20000;

  const hearth::algorithms::Algorithm* algorithm = hearth::algorithms::FindAlgorithm(name);
  if (algorithm == nullptr) {
    std::fprintf(stderr, "no built-in algorithm '%s'\n", name.c_str());
    return 1;
  }
  auto model = algorithm->LoadModel(argv[2]);
  if (!model.ok()) {
    std::fprintf(stderr, "cannot load %s: %s\n", argv[2], model.status().ToString().c_str());
    return 1;
  }
  std::shared_ptr<const hearth::algorithms::Model> shared(std::move(model).value());
  const hearth::serving::InvocationHandler handler(*algorithm, shared);

  // Handle(): the request is built outside the timed region (the HTTP server's share).
  std::string response_body;
  int status = 0;
  std::vector<double> handle_us;
  handle_us.reserve(iterations);
  const int warmup = iterations / 10;
  for (int i = 0; i < warmup + iterations; ++i) {
    hearth::http::Request request = InvocationRequest(row);
    const auto t0 = Clock::now();
    hearth::http::Response response = handler.Handle(request);
    const auto t1 = Clock::now();
    if (i >= warmup)
      handle_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    if (i == 0) {
      status = response.status;
      response_body = response.body;
      if (status != 200) break;
    }
  }
  if (status != 200) {
    std::fprintf(stderr, "/invocations answered %d: %s\n", status, response_body.c_str());
    return 1;
  }

  // Model::Predict alone on the decoded row.
  const hearth::data::Batch batch = DenseRow(row);
  std::vector<double> predict_us;
  predict_us.reserve(iterations);
  double sink = 0;
  for (int i = 0; i < warmup + iterations; ++i) {
    const auto t0 = Clock::now();
    auto predictions = shared->Predict(batch);
    const auto t1 = Clock::now();
    if (!predictions.ok()) {
      std::fprintf(stderr, "Predict: %s\n", predictions.status().ToString().c_str());
      return 1;
    }
    sink += predictions->columns.empty() || predictions->columns[0].values.empty()
                ? 0
                : predictions->columns[0].values[0];
    if (i >= warmup)
      predict_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }

  std::printf(R"({"algorithm":"%s","iterations":%d,"handle":%s,"predict":%s,)"
              R"("response":"%s","checksum":%g})"
              "\n",
              name.c_str(), iterations, SummaryJson(Summarize(handle_us)).c_str(),
              SummaryJson(Summarize(predict_us)).c_str(), JsonEscape(response_body).c_str(), sink);
  return 0;
}
