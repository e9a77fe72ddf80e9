// Times the PCA training core on an MNIST-format image file (Fashion-MNIST:
// train-images-idx3-ubyte.gz, 60000 × 784, scaled to [0, 1]) held in memory, in both modes.
//
//   pca_bench <images-idx3-ubyte.gz> [num_components=50] [repeats=5]
//
// Prints the median wall time of each mode (randomized both as chosen for the shape and
// forced through its Krylov data passes) and its explained variance ratio (the sum over
// the components, and the largest per-component gap from regular mode).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <zlib.h>

#include "algorithms/pca/block_products.h"
#include "algorithms/pca/pca_solver.h"

namespace {

using hearth::algorithms::pca::FitPca;
using hearth::algorithms::pca::MatrixRowBlocks;
using hearth::algorithms::pca::Mode;
using hearth::algorithms::pca::PcaFit;
using hearth::algorithms::pca::PcaOptions;

std::uint32_t BigEndian(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         p[3];
}

bool ReadImages(const char* path, std::vector<float>* rows, std::size_t* n, std::size_t* dim) {
  gzFile file = gzopen(path, "rb");
  if (!file) return false;
  unsigned char header[16];
  bool ok = gzread(file, header, 16) == 16 && BigEndian(header) == 0x803;
  if (ok) {
    *n = BigEndian(header + 4);
    *dim = std::size_t{BigEndian(header + 8)} * BigEndian(header + 12);
    std::vector<unsigned char> pixels(*n * *dim);
    ok = gzread(file, pixels.data(), static_cast<unsigned>(pixels.size())) ==
         static_cast<int>(pixels.size());
    rows->resize(pixels.size());
    for (std::size_t i = 0; i < pixels.size(); ++i) (*rows)[i] = pixels[i] / 255.0f;
  }
  gzclose(file);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <images-idx3-ubyte.gz> [num_components] [repeats]\n", argv[0]);
    return 2;
  }
  const std::size_t k = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 50;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 5;
  std::vector<float> rows;
  std::size_t n = 0, dim = 0;
  if (!ReadImages(argv[1], &rows, &n, &dim)) {
    std::fprintf(stderr, "cannot read %s\n", argv[1]);
    return 1;
  }
  std::printf("%zu rows x %zu features, %zu components\n", n, dim, k);

  // Regular mode's two phases on their own: the scatter matrix, then its top eigenpairs.
  {
    const auto start = std::chrono::steady_clock::now();
    hearth::algorithms::pca::GramAccumulator gram(
        dim, std::vector<float>(rows.begin(), rows.begin() + dim));
    for (std::size_t r = 0; r < n; r += 4096)
      gram.Add(&rows[r * dim], std::min<std::size_t>(4096, n - r));
    std::vector<double> g, sums;
    gram.Finish(&g, &sums);
    const auto middle = std::chrono::steady_clock::now();
    Eigen::MatrixXd s(dim, dim);
    for (std::size_t i = 0; i < dim; ++i) {
      for (std::size_t j = 0; j <= i; ++j) {
        s(i, j) = s(j, i) = g[i * dim + j] - sums[i] * sums[j] / n;
      }
    }
    const auto top = hearth::algorithms::pca::TopEigenpairs(s, k, 0);
    const auto end = std::chrono::steady_clock::now();
    std::printf("phases: scatter matrix %.3f s, top %zu eigenpairs %.3f s\n",
                std::chrono::duration<double>(middle - start).count(), k,
                std::chrono::duration<double>(end - middle).count());
  }

  Eigen::VectorXd regular_ratio;
  // Randomized twice: as chosen for this shape, then forced through the Krylov data passes.
  for (int variant = 0; variant < 3; ++variant) {
    const Mode mode = variant == 0 ? Mode::kRegular : Mode::kRandomized;
    PcaOptions options;
    options.num_components = k;
    options.mode = mode;
    options.allow_scatter_matrix = variant != 2;
    options.sketch_width = k + std::max<std::size_t>(10, k);
    std::vector<double> seconds;
    PcaFit fit;
    for (int r = 0; r < repeats; ++r) {
      MatrixRowBlocks blocks(rows.data(), n, dim, 4096);
      const auto start = std::chrono::steady_clock::now();
      auto result = FitPca(blocks, options);
      seconds.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      if (!result.ok()) {
        std::fprintf(stderr, "%s\n", result.status().ToString().c_str());
        return 1;
      }
      fit = std::move(result).value();
    }
    std::sort(seconds.begin(), seconds.end());
    const Eigen::VectorXd ratio = fit.ExplainedVarianceRatio();
    if (mode == Mode::kRegular) regular_ratio = ratio;
    std::printf(
        "%-18s median %.3f s (min %.3f, max %.3f)  EVR sum %.6f  max |EVR - regular| %.2e\n",
        variant == 0 ? "regular" : variant == 1 ? "randomized" : "randomized-krylov", seconds[seconds.size() / 2],
        seconds.front(), seconds.back(), ratio.sum(),
        (ratio - regular_ratio).cwiseAbs().maxCoeff());
  }
  return 0;
}
