// Times k-means on an IDX image file (Fashion-MNIST: 60000 x 784 uint8, scaled to [0, 1]):
//   core:     k-means++ seeding over all rows, then Lloyd to a stable assignment; the seeding
//             centers and the result are written so that scikit-learn can be run from the same
//             init (kmeans_bench.py);
//   pipeline: what a training job runs (kmeans_trainer.h) with init_method=kmeans++ and the
//             other hyperparameters at SageMaker's defaults, from rows already parsed.
//
//   kmeans_bench <train-images-idx3-ubyte.gz> <k> <out-prefix> [seed]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

#include <zlib.h>

#include "algorithms/kmeans/kmeans_core.h"
#include "algorithms/kmeans/kmeans_trainer.h"

namespace km = hearth::algorithms::kmeans;

namespace {

std::vector<unsigned char> ReadGz(const char* path) {
  gzFile f = gzopen(path, "rb");
  if (f == nullptr) {
    std::perror(path);
    std::exit(1);
  }
  std::vector<unsigned char> bytes;
  unsigned char buffer[1 << 16];
  int got;
  while ((got = gzread(f, buffer, sizeof buffer)) > 0) bytes.insert(bytes.end(), buffer, buffer + got);
  gzclose(f);
  return bytes;
}

std::uint32_t BigEndian(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

void WriteMatrix(const std::string& path, const km::Matrix& m) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(m.data()), m.size() * sizeof(float));
}

// The parsed rows as a channel, in mini-batches.
class RowsSource final : public km::RowSource {
 public:
  explicit RowsSource(const km::RowStore& rows) : rows_(rows) {}
  hearth::Result<std::unique_ptr<hearth::data::RecordReader>> Open(int) override {
    return std::unique_ptr<hearth::data::RecordReader>(new Reader(rows_));
  }
  std::string_view name() const override { return "train"; }

 private:
  class Reader final : public hearth::data::RecordReader {
   public:
    explicit Reader(const km::RowStore& rows) : rows_(rows) {}
    hearth::Result<bool> Next(std::size_t max_rows, hearth::data::Batch* out) override {
      const std::size_t n = std::min(max_rows, rows_.rows() - next_);
      out->Clear();
      out->rows = n;
      out->cols = rows_.dim();
      out->dense.assign(rows_.row(0) + next_ * rows_.dim(), rows_.row(0) + (next_ + n) * rows_.dim());
      next_ += n;
      return n > 0;
    }

   private:
    const km::RowStore& rows_;
    std::size_t next_ = 0;
  };
  const km::RowStore& rows_;
};

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s <idx3.gz> <k> <out-prefix> [seed]\n", argv[0]);
    return 2;
  }
  const auto bytes = ReadGz(argv[1]);
  const std::size_t n = BigEndian(&bytes[4]), dim = BigEndian(&bytes[8]) * BigEndian(&bytes[12]);
  const std::size_t k = std::strtoul(argv[2], nullptr, 10);
  const std::string prefix = argv[3];
  const std::uint64_t seed = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 0;

  std::vector<float> values(n * dim);
  for (std::size_t i = 0; i < n * dim; ++i) values[i] = bytes[16 + i] / 255.0f;
  km::RowStore rows(dim);
  rows.AppendChunk(std::move(values));

  km::Rng rng(seed);
  auto start = std::chrono::steady_clock::now();
  km::Matrix init = km::InitKMeansPlusPlus(rows, {}, k, rng);
  const double init_s = Seconds(start);
  start = std::chrono::steady_clock::now();
  km::LloydResult result = km::Lloyd(rows, {}, init, {.max_iter = 300, .tol = 0});
  const double lloyd_s = Seconds(start);
  WriteMatrix(prefix + ".init.f32", init);
  WriteMatrix(prefix + ".centers.f32", result.centers);

  km::KMeansConfig config;
  config.feature_dim = dim;
  config.k = k;
  config.init_method = km::InitMethod::kKMeansPlusPlus;
  config.memory_budget_bytes = std::size_t{1} << 34;
  config.seed = seed;
  RowsSource source(rows);
  start = std::chrono::steady_clock::now();
  km::TrainEvents events;
  events.log = [&](std::string_view line) {
    std::fprintf(stderr, "[%7.3f s] %.*s\n", Seconds(start), static_cast<int>(line.size()), line.data());
  };
  events.train_msd = [&](double msd, std::optional<int> epoch) {
    std::fprintf(stderr, "[%7.3f s] train msd %.6f\n", Seconds(start), msd);
  };
  auto pipeline = km::TrainKMeans(config, source, events);
  const double pipeline_s = Seconds(start);
  if (!pipeline.ok()) {
    std::fprintf(stderr, "%s\n", pipeline.status().ToString().c_str());
    return 1;
  }
  WriteMatrix(prefix + ".pipeline.f32", pipeline->centers);
  std::printf(
      "{\"n\": %zu, \"dim\": %zu, \"k\": %zu, \"core\": {\"init_s\": %.4f, \"lloyd_s\": %.4f, "
      "\"total_s\": %.4f, \"iterations\": %d, \"converged\": %s, \"inertia\": %.3f}, "
      "\"pipeline\": {\"seconds\": %.4f, \"refine_iterations\": %d, \"inertia\": %.3f}}\n",
      n, dim, k, init_s, lloyd_s, init_s + lloyd_s, result.iterations,
      result.converged ? "true" : "false", result.inertia, pipeline_s,
      pipeline->refine_iterations, pipeline->train_msd * static_cast<double>(n));
  return 0;
}
