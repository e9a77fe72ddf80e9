#include "algorithms/pca/block_products.h"

#include <algorithm>
#include <cstring>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define HEARTH_PCA_AVX2 1
#endif

namespace hearth::algorithms::pca {

namespace {

// Micro-tile: kRows rows of the left operand times kCols columns of the right one. 6×16 keeps
// 12 accumulators, 2 loads and a broadcast in the 16 AVX2 registers.
constexpr std::size_t kRows = 6;
constexpr std::size_t kCols = 16;
// Rows of data per chunk: the k extent of one packed product. Its panels stay in L1/L2, and
// float32 sums never run longer than this before they reach float64.
constexpr std::size_t kChunk = 256;

std::size_t Panels(std::size_t count, std::size_t width) { return (count + width - 1) / width; }

// acc[r][c] = Σ_k a[k][r] · b[k][c], a packed K × kRows, b packed K × kCols.
void MicroKernel(const float* a, const float* b, std::size_t depth, float* acc) {
#ifdef HEARTH_PCA_AVX2
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (std::size_t k = 0; k < depth; ++k, a += kRows, b += kCols) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
    __m256 x = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(x, b0, c00);
    c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(x, b0, c10);
    c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(x, b0, c20);
    c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(x, b0, c30);
    c31 = _mm256_fmadd_ps(x, b1, c31);
    x = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(x, b0, c40);
    c41 = _mm256_fmadd_ps(x, b1, c41);
    x = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(x, b0, c50);
    c51 = _mm256_fmadd_ps(x, b1, c51);
  }
  _mm256_storeu_ps(acc + 0, c00);
  _mm256_storeu_ps(acc + 8, c01);
  _mm256_storeu_ps(acc + 16, c10);
  _mm256_storeu_ps(acc + 24, c11);
  _mm256_storeu_ps(acc + 32, c20);
  _mm256_storeu_ps(acc + 40, c21);
  _mm256_storeu_ps(acc + 48, c30);
  _mm256_storeu_ps(acc + 56, c31);
  _mm256_storeu_ps(acc + 64, c40);
  _mm256_storeu_ps(acc + 72, c41);
  _mm256_storeu_ps(acc + 80, c50);
  _mm256_storeu_ps(acc + 88, c51);
#else
  std::fill(acc, acc + kRows * kCols, 0.0f);
  for (std::size_t k = 0; k < depth; ++k, a += kRows, b += kCols) {
    for (std::size_t r = 0; r < kRows; ++r) {
      for (std::size_t c = 0; c < kCols; ++c) acc[r * kCols + c] += a[r] * b[c];
    }
  }
#endif
}

void AddTile(const float* acc, double* out, std::size_t ld, std::size_t row0, std::size_t col0,
             std::size_t rows, std::size_t cols) {
  for (std::size_t r = 0; r < rows; ++r) {
    double* dst = out + (row0 + r) * ld + col0;
    const float* src = acc + r * kCols;
    for (std::size_t c = 0; c < cols; ++c) dst[c] += src[c];
  }
}

void StoreTile(const float* acc, float* out, std::size_t ld, std::size_t row0, std::size_t col0,
               std::size_t rows, std::size_t cols) {
  for (std::size_t r = 0; r < rows; ++r) {
    std::memcpy(out + (row0 + r) * ld + col0, acc + r * kCols, cols * sizeof(float));
  }
}

// Packs columns [panel·W, panel·W + W) of the depth × cols row-major block `src` (minus
// `shift`, when given) as depth rows of W floats, zero-padded past `cols`. Adds each column's
// sum and sum of squares to `sums` / `squares` when given.
template <std::size_t W>
void PackColumns(const float* src, std::size_t ld, std::size_t depth, std::size_t cols,
                 std::size_t panel, const float* shift, float* out, double* sums, double* squares) {
  const std::size_t col0 = panel * W;
  const std::size_t valid = std::min(W, cols - col0);
  float offset[W] = {};
  if (shift) std::copy(shift + col0, shift + col0 + valid, offset);
  double sum[W] = {};
  double square[W] = {};
  for (std::size_t k = 0; k < depth; ++k) {
    const float* row = src + k * ld + col0;
    float* dst = out + k * W;
    if (valid == W) {
      for (std::size_t c = 0; c < W; ++c) dst[c] = row[c] - offset[c];
    } else {
      for (std::size_t c = 0; c < W; ++c) dst[c] = c < valid ? row[c] - offset[c] : 0.0f;
    }
    if (sums) {
      for (std::size_t c = 0; c < W; ++c) sum[c] += dst[c];
    }
    if (squares) {
      for (std::size_t c = 0; c < W; ++c) square[c] += double(dst[c]) * dst[c];
    }
  }
  for (std::size_t c = 0; c < valid; ++c) {
    if (sums) sums[col0 + c] += sum[c];
    if (squares) squares[col0 + c] += square[c];
  }
}

// Packs rows [panel·kRows, panel·kRows + kRows) of the n × dim row-major block `src`, minus
// `shift`, transposed: dim rows of kRows floats, zero-padded past n.
void PackRows(const float* src, std::size_t dim, std::size_t n, std::size_t panel,
              const float* shift, float* out) {
  const std::size_t row0 = panel * kRows;
  const std::size_t valid = std::min(kRows, n - row0);
  const float* rows[kRows];
  for (std::size_t r = 0; r < kRows; ++r) rows[r] = src + (row0 + std::min(r, valid - 1)) * dim;
  for (std::size_t k = 0; k < dim; ++k) {
    float* dst = out + k * kRows;
    for (std::size_t r = 0; r < kRows; ++r) dst[r] = r < valid ? rows[r][k] - shift[k] : 0.0f;
  }
}

// Adds one packed chunk's tiles of row panel `panel` of G, on and below the diagonal.
void GramTiles(const float* left, const float* right, std::size_t depth, std::size_t dim,
               std::size_t panel, double* gram) {
  alignas(32) float acc[kRows * kCols];
  const std::size_t row0 = panel * kRows;
  const std::size_t panel_rows = std::min(kRows, dim - row0);
  const std::size_t tiles = (row0 + panel_rows - 1) / kCols + 1;
  for (std::size_t t = 0; t < tiles; ++t) {
    MicroKernel(left + panel * kRows * depth, right + t * kCols * depth, depth, acc);
    AddTile(acc, gram, dim, row0, t * kCols, panel_rows, std::min(kCols, dim - t * kCols));
  }
}

// Per-thread partial sums above this many bytes in all make the threads share one Gram matrix.
constexpr std::size_t kPrivateGramBytes = std::size_t{256} << 20;

int MaxThreads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace

namespace internal {
struct ThreadBuffers {
  std::vector<float> left, right, rows, projection, projection_pack;
  std::vector<double> out, sums, squares;
};
}  // namespace internal

GramAccumulator::GramAccumulator(std::size_t dim, std::vector<float> shift)
    : dim_(dim), shift_(std::move(shift)) {
  const std::size_t threads = static_cast<std::size_t>(MaxThreads());
  shared_ = threads > 1 && threads * dim * dim * sizeof(double) > kPrivateGramBytes;
  const std::size_t left_size = Panels(dim, kRows) * kRows * kChunk;
  const std::size_t right_size = Panels(dim, kCols) * kCols * kChunk;
  if (shared_) {
    shared_gram_.assign(dim * dim, 0.0);
    shared_sums_.assign(dim, 0.0);
    shared_left_.resize(left_size);
    shared_right_.resize(right_size);
    return;
  }
  threads_.resize(threads);
  for (auto& t : threads_) {
    t.left.resize(left_size);
    t.right.resize(right_size);
    t.out.assign(dim * dim, 0.0);
    t.sums.assign(dim, 0.0);
  }
}

GramAccumulator::~GramAccumulator() = default;

void GramAccumulator::Add(const float* rows, std::size_t n) {
  const std::size_t left_panels = Panels(dim_, kRows);
  const std::size_t right_panels = Panels(dim_, kCols);
  const std::size_t chunks = Panels(n, kChunk);
  if (!shared_) {
#pragma omp parallel num_threads(static_cast <int>(threads_.size()))
    {
      std::size_t thread = 0, team = 1;
#ifdef _OPENMP
      thread = static_cast<std::size_t>(omp_get_thread_num());
      team = static_cast<std::size_t>(omp_get_num_threads());
#endif
      internal::ThreadBuffers& buf = threads_[thread];
      for (std::size_t c = thread; c < chunks; c += team) {
        const std::size_t depth = std::min(kChunk, n - c * kChunk);
        const float* chunk = rows + c * kChunk * dim_;
        for (std::size_t p = 0; p < right_panels; ++p) {
          PackColumns<kCols>(chunk, dim_, depth, dim_, p, shift_.data(),
                             &buf.right[p * kCols * depth], buf.sums.data(), nullptr);
        }
        for (std::size_t p = 0; p < left_panels; ++p) {
          PackColumns<kRows>(chunk, dim_, depth, dim_, p, shift_.data(),
                             &buf.left[p * kRows * depth], nullptr, nullptr);
          GramTiles(buf.left.data(), buf.right.data(), depth, dim_, p, buf.out.data());
        }
      }
    }
    return;
  }
  // Shared: the team packs each chunk together, then splits its row panels.
#pragma omp parallel
  {
    for (std::size_t c = 0; c < chunks; ++c) {
      const std::size_t depth = std::min(kChunk, n - c * kChunk);
      const float* chunk = rows + c * kChunk * dim_;
#pragma omp for schedule(static)
      for (std::size_t p = 0; p < right_panels; ++p) {
        PackColumns<kCols>(chunk, dim_, depth, dim_, p, shift_.data(),
                           &shared_right_[p * kCols * depth], shared_sums_.data(), nullptr);
      }
#pragma omp for schedule(static)
      for (std::size_t p = 0; p < left_panels; ++p) {
        PackColumns<kRows>(chunk, dim_, depth, dim_, p, shift_.data(),
                           &shared_left_[p * kRows * depth], nullptr, nullptr);
      }
      // Panels low in the triangle carry the most tiles: hand them out first.
#pragma omp for schedule(dynamic, 1)
      for (std::size_t q = 0; q < left_panels; ++q) {
        GramTiles(shared_left_.data(), shared_right_.data(), depth, dim_, left_panels - 1 - q,
                  shared_gram_.data());
      }
    }
  }
}

void GramAccumulator::Finish(std::vector<double>* gram, std::vector<double>* col_sums) const {
  if (shared_) {
    *gram = shared_gram_;
    *col_sums = shared_sums_;
    return;
  }
  *gram = threads_[0].out;
  *col_sums = threads_[0].sums;
  for (std::size_t t = 1; t < threads_.size(); ++t) {
    for (std::size_t i = 0; i < dim_; ++i) {
      const double* src = &threads_[t].out[i * dim_];
      double* dst = &(*gram)[i * dim_];
      for (std::size_t j = 0; j <= i; ++j) dst[j] += src[j];
      (*col_sums)[i] += threads_[t].sums[i];
    }
  }
}

GramTimesAccumulator::GramTimesAccumulator(std::size_t dim, std::vector<float> shift,
                                           const float* q, std::size_t width)
    : dim_(dim), width_(width), shift_(std::move(shift)) {
  const std::size_t width_panels = Panels(width, kCols);
  q_pack_.assign(width_panels * kCols * dim, 0.0f);
  for (std::size_t p = 0; p < width_panels; ++p) {
    PackColumns<kCols>(q, width, dim, width, p, nullptr, &q_pack_[p * kCols * dim], nullptr,
                       nullptr);
  }
  threads_.resize(static_cast<std::size_t>(MaxThreads()));
  for (auto& t : threads_) {
    t.rows.resize(Panels(kChunk, kRows) * kRows * dim);
    t.left.resize(Panels(dim, kRows) * kRows * kChunk);
    t.projection.resize(kChunk * width);
    t.projection_pack.resize(width_panels * kCols * kChunk);
    t.out.assign(dim * width, 0.0);
    t.sums.assign(dim, 0.0);
    t.squares.assign(dim, 0.0);
  }
}

GramTimesAccumulator::~GramTimesAccumulator() = default;

void GramTimesAccumulator::Add(const float* rows, std::size_t n) {
  const std::size_t feature_panels = Panels(dim_, kRows);
  const std::size_t width_panels = Panels(width_, kCols);
  const std::size_t chunks = Panels(n, kChunk);
#pragma omp parallel num_threads(static_cast <int>(threads_.size()))
  {
    std::size_t thread = 0, team = 1;
#ifdef _OPENMP
    thread = static_cast<std::size_t>(omp_get_thread_num());
    team = static_cast<std::size_t>(omp_get_num_threads());
#endif
    internal::ThreadBuffers& buf = threads_[thread];
    alignas(32) float acc[kRows * kCols];
    for (std::size_t c = thread; c < chunks; c += team) {
      const std::size_t depth = std::min(kChunk, n - c * kChunk);
      const std::size_t row_panels = Panels(depth, kRows);
      const float* chunk = rows + c * kChunk * dim_;
      // projection = Xs Q (depth × width)
      for (std::size_t p = 0; p < row_panels; ++p) {
        float* packed = &buf.rows[p * kRows * dim_];
        PackRows(chunk, dim_, depth, p, shift_.data(), packed);
        for (std::size_t t = 0; t < width_panels; ++t) {
          MicroKernel(packed, &q_pack_[t * kCols * dim_], dim_, acc);
          StoreTile(acc, buf.projection.data(), width_, p * kRows, t * kCols,
                    std::min(kRows, depth - p * kRows), std::min(kCols, width_ - t * kCols));
        }
      }
      for (std::size_t t = 0; t < width_panels; ++t) {
        PackColumns<kCols>(buf.projection.data(), width_, depth, width_, t, nullptr,
                           &buf.projection_pack[t * kCols * depth], nullptr, nullptr);
      }
      // Z += Xsᵀ projection (dim × width)
      for (std::size_t p = 0; p < feature_panels; ++p) {
        float* packed = &buf.left[p * kRows * depth];
        PackColumns<kRows>(chunk, dim_, depth, dim_, p, shift_.data(), packed, buf.sums.data(),
                           buf.squares.data());
        for (std::size_t t = 0; t < width_panels; ++t) {
          MicroKernel(packed, &buf.projection_pack[t * kCols * depth], depth, acc);
          AddTile(acc, buf.out.data(), width_, p * kRows, t * kCols,
                  std::min(kRows, dim_ - p * kRows), std::min(kCols, width_ - t * kCols));
        }
      }
    }
  }
}

void GramTimesAccumulator::Finish(std::vector<double>* z, std::vector<double>* col_sums,
                                  std::vector<double>* col_squares) const {
  *z = threads_[0].out;
  *col_sums = threads_[0].sums;
  *col_squares = threads_[0].squares;
  for (std::size_t t = 1; t < threads_.size(); ++t) {
    for (std::size_t i = 0; i < z->size(); ++i) (*z)[i] += threads_[t].out[i];
    for (std::size_t i = 0; i < dim_; ++i) {
      (*col_sums)[i] += threads_[t].sums[i];
      (*col_squares)[i] += threads_[t].squares[i];
    }
  }
}

}  // namespace hearth::algorithms::pca
