// k-means' core on an IDX image file (Fashion-MNIST: 60000 × 784 uint8, scaled to [0, 1]):
// k-means++ seeding over all rows, then Lloyd to a stable assignment (tol = 0), each timed.
// The seeding's centers are written to <out-prefix>.init.f32 and the result to
// <out-prefix>.centers.f32 (k × d float32, row-major), so that bench/algorithms.py can run
// scikit-learn's Lloyd from the same initial centers. Prints one JSON object.
//
//   hearth_kmeans_core <train-images-idx3-ubyte.gz> <k> <out-prefix> [seed]
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <zlib.h>

#include "algorithms/kmeans/kmeans_core.h"
#include "common/clock.h"

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
  while ((got = gzread(f, buffer, sizeof buffer)) > 0) {
    bytes.insert(bytes.end(), buffer, buffer + got);
  }
  gzclose(f);
  return bytes;
}

std::uint32_t BigEndian(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}

void WriteMatrix(const std::string& path, const km::Matrix& m) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(m.data()), m.size() * sizeof(float));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s <idx3.gz> <k> <out-prefix> [seed]\n", argv[0]);
    return 2;
  }
  const auto bytes = ReadGz(argv[1]);
  if (bytes.size() < 16 || BigEndian(bytes.data()) != 0x803) {
    std::fprintf(stderr, "%s is not an IDX3 image file\n", argv[1]);
    return 1;
  }
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
  const double init_s = hearth::SecondsSince(start);
  start = std::chrono::steady_clock::now();
  km::LloydResult result = km::Lloyd(rows, {}, init, {.max_iter = 300, .tol = 0});
  const double lloyd_s = hearth::SecondsSince(start);
  WriteMatrix(prefix + ".init.f32", init);
  WriteMatrix(prefix + ".centers.f32", result.centers);
  std::printf(
      "{\"n\": %zu, \"dim\": %zu, \"k\": %zu, \"init_s\": %.4f, \"lloyd_s\": %.4f, "
      "\"iterations\": %d, \"converged\": %s, \"inertia\": %.3f}\n",
      n, dim, k, init_s, lloyd_s, result.iterations, result.converged ? "true" : "false",
      result.inertia);
  return 0;
}
