// Times the linear learner's training core on in-memory float32 data, the way Train runs it
// after the first pass has parsed a channel: scan (checks + statistics), Fit (epochs, early
// stopping, selection), then test accuracy through LinearModel::Predict.
//
//   linear_learner_bench                       1M x 100 synthetic binary problem
//   linear_learner_bench X y Xtest ytest D [binary_classifier|regressor]
//                                              raw little-endian float32 files, D features
//   env: HEARTH_LL_HP="name=value,..."         options to override (epochs, num_models, ...)
#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "algorithms/linear_learner/fit.h"
#include "algorithms/linear_learner/trainer.h"

namespace ll = hearth::algorithms::linear_learner;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<float> ReadFloats(const char* path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::vector<float> out(static_cast<std::size_t>(in.tellg()) / 4);
  in.seekg(0);
  in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size() * 4));
  return out;
}

std::vector<hearth::data::Batch> ToBatches(const std::vector<float>& x, const std::vector<float>& y,
                                           std::size_t dim, std::size_t batch_rows) {
  std::vector<hearth::data::Batch> out;
  const std::size_t rows = y.size();
  for (std::size_t r0 = 0; r0 < rows; r0 += batch_rows) {
    const std::size_t n = std::min(batch_rows, rows - r0);
    hearth::data::Batch b;
    b.rows = n;
    b.cols = dim;
    b.dense.assign(x.begin() + r0 * dim, x.begin() + (r0 + n) * dim);
    b.labels.assign(y.begin() + r0, y.begin() + r0 + n);
    out.push_back(std::move(b));
  }
  return out;
}

double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t dim = 100;
  std::vector<float> x, y, xt, yt;
  if (argc >= 6) {
    x = ReadFloats(argv[1]);
    y = ReadFloats(argv[2]);
    xt = ReadFloats(argv[3]);
    yt = ReadFloats(argv[4]);
    dim = std::strtoul(argv[5], nullptr, 10);
  } else {
    const std::size_t rows = 1'000'000, test_rows = 200'000;
    std::mt19937_64 rng(1);
    std::normal_distribution<float> normal;
    std::vector<float> w(dim);
    for (float& v : w) v = normal(rng);
    auto make = [&](std::size_t n, std::vector<float>* xs, std::vector<float>* ys) {
      xs->resize(n * dim);
      ys->resize(n);
      for (std::size_t r = 0; r < n; ++r) {
        float z = 0;
        for (std::size_t d = 0; d < dim; ++d) z += ((*xs)[r * dim + d] = normal(rng)) * w[d];
        (*ys)[r] = z + 0.5f * normal(rng) > 0 ? 1.0f : 0.0f;
      }
    };
    make(rows, &x, &y);
    make(test_rows, &xt, &yt);
  }

  ll::Options options;
  options.predictor_type = ll::PredictorType::kBinaryClassifier;
  if (argc >= 7 && std::string(argv[6]) == "regressor") {
    options.predictor_type = ll::PredictorType::kRegressor;
    options.num_classes = 1;
    options.loss = ll::Loss::kSquared;
    options.normalize_label = true;
    options.unbias_label = true;
  }
  const bool regressor = options.predictor_type == ll::PredictorType::kRegressor;
  if (const char* env = std::getenv("HEARTH_LL_HP")) {
    std::string spec = env;
    std::size_t pos = 0;
    while (pos < spec.size()) {
      std::size_t end = spec.find(',', pos);
      if (end == std::string::npos) end = spec.size();
      const std::string item = spec.substr(pos, end - pos);
      const std::size_t eq = item.find('=');
      const std::string key = item.substr(0, eq);
      const double value = std::strtod(item.c_str() + eq + 1, nullptr);
      if (key == "epochs") options.epochs = static_cast<int>(value);
      if (key == "num_models") options.num_models = static_cast<int>(value);
      if (key == "learning_rate") options.learning_rate = static_cast<float>(value);
      if (key == "mini_batch_size") options.mini_batch_size = static_cast<std::size_t>(value);
      if (key == "threads") options.threads = static_cast<int>(value);
      if (key == "lr_scheduler_step") options.lr_scheduler_step = static_cast<int>(value);
      if (key == "lr_scheduler_factor") options.lr_scheduler_factor = static_cast<float>(value);
      if (key == "min_lr") options.lr_scheduler_minimum_lr = static_cast<float>(value);
      if (key == "wd") options.wd = static_cast<float>(value);
      if (key == "patience") options.early_stopping_patience = static_cast<int>(value);
      pos = end + 1;
    }
  }

  std::vector<hearth::data::Batch> batches = ToBatches(x, y, dim, options.mini_batch_size);
  const double data_mb = double(x.size()) * 4 / 1e6;
  x.clear();
  x.shrink_to_fit();

  const auto t0 = Clock::now();
  ll::DataScanner scanner(options);
  for (const auto& b : batches) {
    if (auto s = scanner.Add(b); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
  }
  auto summary = scanner.Summary();
  const ll::FeatureStats stats = scanner.Stats();
  const auto t1 = Clock::now();
  const double cpu1 = CpuSeconds();
  ll::InMemorySource source(std::move(batches));
  ll::FitCallbacks callbacks{.log = [](std::string_view line) {
    std::printf("  %.*s\n", static_cast<int>(line.size()), line.data());
  }};
  auto fit = ll::Fit(options, *summary, stats, source, nullptr, callbacks);
  const auto t2 = Clock::now();
  const double cpu2 = CpuSeconds();
  if (!fit.ok()) {
    std::fprintf(stderr, "%s\n", fit.status().ToString().c_str());
    return 1;
  }

  hearth::data::Batch test;
  test.rows = yt.size();
  test.cols = dim;
  test.dense = xt;
  auto predictions = fit->model.Predict(test);
  double quality = 0;
  const auto& labels = predictions->columns.back().values;
  for (std::size_t r = 0; r < yt.size(); ++r) {
    quality += regressor ? (labels[r] - yt[r]) * double(labels[r] - yt[r]) : labels[r] == yt[r];
  }
  quality = regressor ? std::sqrt(quality / yt.size()) : quality / yt.size();

  // Single-row latency.
  hearth::data::Batch one;
  one.rows = 1;
  one.cols = dim;
  one.dense.assign(xt.begin(), xt.begin() + dim);
  const int reps = 200000;
  const auto t3 = Clock::now();
  double sink = 0;
  for (int i = 0; i < reps; ++i) sink += fit->model.Predict(one)->columns[0].values[0];
  const auto t4 = Clock::now();

  std::printf("data %.0f MB; scan %.3f s; fit %.3f s, cpu %.3f s (%d epochs, %d updates); total %.3f s\n",
              data_mb, Seconds(t0, t1), Seconds(t1, t2), cpu2 - cpu1, fit->epochs_run,
              static_cast<int>(fit->model.training_info()["updates"]), Seconds(t0, t2));
  std::printf("test %s %.5f (threshold %.4f); predict 1 row %.3f us (%g)\n",
              regressor ? "rmse" : "accuracy", quality, fit->model.threshold(),
              Seconds(t3, t4) / reps * 1e6,
              sink > 0 ? 1.0 : 0.0);
  return 0;
}
