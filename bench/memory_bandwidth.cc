// hearth_memory_bandwidth: read bandwidth of this machine, the floor for any kernel that streams
// its data (one pass over n bytes takes at least n / bandwidth). Sums a 1 GiB float32 array
// (far past the caches) with 8 independent accumulators, so that the loop is bound by memory,
// not by the add latency, on 1 thread and on every core; best of 5 passes each.
//
//   hearth_memory_bandwidth [MiB=1024]
//
// Prints {"bytes":..,"threads":{"1":GB/s,"2":GB/s,...},"checksum":..}.
//
// Thread safety: single program; the parallel loop is an OpenMP reduction.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <omp.h>

namespace {

// The sum over [data, data + n), vectorised by the compiler (-O3 -march=native).
float Sum(const float* __restrict data, std::size_t n) {
  constexpr std::size_t kLanes = 64;  // 8 accumulators of 8 floats: hides the add latency
  float acc[kLanes] = {};
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
#pragma omp simd
    for (std::size_t j = 0; j < kLanes; ++j) acc[j] += data[i + j];
  }
  float total = 0;
  for (; i < n; ++i) total += data[i];
  for (float v : acc) total += v;
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1024;
  const std::size_t n = mib * (1u << 20) / sizeof(float);
  std::vector<float> data(n);
  for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<float>(i & 7) * 0.125f;

  const int max_threads = omp_get_max_threads();
  double checksum = 0;
  std::printf(R"({"bytes":%zu,"threads":{)", n * sizeof(float));
  for (int threads = 1; threads <= max_threads; ++threads) {
    double best = 1e30;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      float total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
      {
        const std::size_t chunk = (n + threads - 1) / threads;
        const std::size_t begin = std::min(n, chunk * omp_get_thread_num());
        const std::size_t end = std::min(n, begin + chunk);
        total += Sum(data.data() + begin, end - begin);
      }
      const auto t1 = std::chrono::steady_clock::now();
      best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
      checksum += total;
    }
    std::printf(R"(%s"%d":%.2f)", threads > 1 ? "," : "", threads,
                static_cast<double>(n * sizeof(float)) / best / 1e9);
  }
  std::printf(R"(},"checksum":%g})"
              "\n",
              checksum);
  return 0;
}
