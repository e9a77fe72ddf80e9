#include "algorithms/linear_learner/dense_kernels.h"

#include <algorithm>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define HEARTH_LL_AVX2 1
#endif

namespace hearth::algorithms::linear_learner {
namespace {

// Rows handled together: enough independent FMA chains (latency 4-5 cycles) and shared
// loads, without running out of the 16 vector registers.
constexpr int RowsPerStep(int columns) { return columns <= 2 ? 4 : columns <= 4 ? 2 : 1; }

#ifdef HEARTH_LL_AVX2

// The horizontal sums of four accumulators, in order.
inline __m128 Sum4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d);
  const __m256 abcd = _mm256_hadd_ps(ab, cd);
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

template <int C, int R>
inline void ForwardStep(const float* x, std::size_t ld, std::size_t dim, const float* wt,
                        std::size_t r, float* z) {
  __m256 acc[R][C];
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < C; ++j) acc[i][j] = _mm256_setzero_ps();
  }
  std::size_t d = 0;
  for (; d + 8 <= dim; d += 8) {
    __m256 xv[R];
    for (int i = 0; i < R; ++i) xv[i] = _mm256_loadu_ps(x + (r + i) * dim + d);
    for (int j = 0; j < C; ++j) {
      const __m256 w = _mm256_loadu_ps(wt + j * dim + d);
      for (int i = 0; i < R; ++i) acc[i][j] = _mm256_fmadd_ps(xv[i], w, acc[i][j]);
    }
  }
  if (d + 4 <= dim) {  // a half chunk, in the low lanes
    __m256 xv[R];
    for (int i = 0; i < R; ++i) {
      xv[i] = _mm256_insertf128_ps(_mm256_setzero_ps(), _mm_loadu_ps(x + (r + i) * dim + d), 0);
    }
    for (int j = 0; j < C; ++j) {
      const __m256 w =
          _mm256_insertf128_ps(_mm256_setzero_ps(), _mm_loadu_ps(wt + j * dim + d), 0);
      for (int i = 0; i < R; ++i) acc[i][j] = _mm256_fmadd_ps(xv[i], w, acc[i][j]);
    }
    d += 4;
  }
  // The scalar tail (dim % 4 values) is added to the vector sum one term at a time in every
  // branch, so an output's sum does not depend on R or C.
  if constexpr (R == 4) {  // four rows of one output: contiguous in z
    for (int j = 0; j < C; ++j) {
      __m128 sums = Sum4(acc[0][j], acc[1][j], acc[2][j], acc[3][j]);
      if (d < dim) {
        alignas(16) float lanes[4];
        _mm_store_ps(lanes, sums);
        for (int i = 0; i < 4; ++i) {
          for (std::size_t e = d; e < dim; ++e) lanes[i] += x[(r + i) * dim + e] * wt[j * dim + e];
        }
        sums = _mm_load_ps(lanes);
      }
      _mm_storeu_ps(z + j * ld + r, sums);
    }
  } else {
    // Four (row, output) sums at a time, in row-major order of (i, j).
    constexpr int kSums = R * C;
    float sums[((kSums + 3) / 4) * 4];
    const __m256* flat = &acc[0][0];
    int k = 0;
    for (; k + 4 <= kSums; k += 4) {
      _mm_storeu_ps(sums + k, Sum4(flat[k], flat[k + 1], flat[k + 2], flat[k + 3]));
    }
    for (; k < kSums; ++k) {
      const __m256 zero = _mm256_setzero_ps();
      sums[k] = _mm_cvtss_f32(Sum4(flat[k], zero, zero, zero));
    }
    for (int i = 0; i < R; ++i) {
      for (int j = 0; j < C; ++j) {
        float sum = sums[i * C + j];
        for (std::size_t e = d; e < dim; ++e) sum += x[(r + i) * dim + e] * wt[j * dim + e];
        z[j * ld + r + i] = sum;
      }
    }
  }
}

template <int C, int R>
inline void BackwardStep(const float* x, std::size_t ld, std::size_t dim, const float* g,
                         std::size_t r, float* pt) {
  __m256 gb[R][C];
  bool any = false;
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < C; ++j) {
      const float gv = g[j * ld + r + i];
      any = any || gv != 0.0f;
      gb[i][j] = _mm256_set1_ps(gv);
    }
  }
  if (!any) return;  // hinge and insensitive losses leave many rows without a gradient
  std::size_t d = 0;
  for (; d + 8 <= dim; d += 8) {
    __m256 xv[R];
    for (int i = 0; i < R; ++i) xv[i] = _mm256_loadu_ps(x + (r + i) * dim + d);
    for (int j = 0; j < C; ++j) {
      __m256 p = _mm256_loadu_ps(pt + j * dim + d);
      for (int i = 0; i < R; ++i) p = _mm256_fmadd_ps(gb[i][j], xv[i], p);
      _mm256_storeu_ps(pt + j * dim + d, p);
    }
  }
  if (d + 4 <= dim) {  // a half chunk
    __m128 xv[R];
    for (int i = 0; i < R; ++i) xv[i] = _mm_loadu_ps(x + (r + i) * dim + d);
    for (int j = 0; j < C; ++j) {
      __m128 p = _mm_loadu_ps(pt + j * dim + d);
      for (int i = 0; i < R; ++i) p = _mm_fmadd_ps(_mm256_castps256_ps128(gb[i][j]), xv[i], p);
      _mm_storeu_ps(pt + j * dim + d, p);
    }
    d += 4;
  }
  for (; d < dim; ++d) {
    for (int j = 0; j < C; ++j) {
      float p = pt[j * dim + d];
      for (int i = 0; i < R; ++i) p += g[j * ld + r + i] * x[(r + i) * dim + d];
      pt[j * dim + d] = p;
    }
  }
}

#else  // portable

template <int C, int R>
inline void ForwardStep(const float* x, std::size_t ld, std::size_t dim, const float* wt,
                        std::size_t r, float* z) {
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < C; ++j) {
      float s = 0;
      for (std::size_t d = 0; d < dim; ++d) s += x[(r + i) * dim + d] * wt[j * dim + d];
      z[j * ld + r + i] = s;
    }
  }
}

template <int C, int R>
inline void BackwardStep(const float* x, std::size_t ld, std::size_t dim, const float* g,
                         std::size_t r, float* pt) {
  for (int i = 0; i < R; ++i) {
    for (int j = 0; j < C; ++j) {
      const float gv = g[j * ld + r + i];
      if (gv == 0.0f) continue;
      for (std::size_t d = 0; d < dim; ++d) pt[j * dim + d] += gv * x[(r + i) * dim + d];
    }
  }
}

#endif

template <int C>
void Forward(const float* x, std::size_t n, std::size_t dim, const float* wt, float* z,
             std::size_t ld) {
  constexpr int R = RowsPerStep(C);
  std::size_t r = 0;
  for (; r + R <= n; r += R) ForwardStep<C, R>(x, ld, dim, wt, r, z);
  for (; r < n; ++r) ForwardStep<C, 1>(x, ld, dim, wt, r, z);
}

template <int C>
void Backward(const float* x, std::size_t n, std::size_t dim, const float* g, std::size_t ld,
              float* pt, const char* prefetch, std::size_t prefetch_bytes) {
  constexpr int R = RowsPerStep(C);
  constexpr std::size_t kLine = 64;
  std::fill(pt, pt + C * dim, 0.0f);
  // Cache lines to request per step, so that the requests spread over the whole pass.
  const std::size_t steps = std::max<std::size_t>(1, n / R);
  const std::size_t lines = (prefetch_bytes + kLine - 1) / kLine;
  const std::size_t per_step = prefetch ? (lines + steps - 1) / steps : 0;
  std::size_t next_line = 0;
  std::size_t r = 0;
  for (; r + R <= n; r += R) {
    for (std::size_t k = 0; k < per_step && next_line < lines; ++k, ++next_line) {
      __builtin_prefetch(prefetch + next_line * kLine);
    }
    BackwardStep<C, R>(x, ld, dim, g, r, pt);
  }
  for (; r < n; ++r) BackwardStep<C, 1>(x, ld, dim, g, r, pt);
}

}  // namespace

void DenseForward(const float* x, std::size_t n, std::size_t dim, const float* wt, int columns,
                  float* z, std::size_t ld) {
  switch (columns) {
    case 1: return Forward<1>(x, n, dim, wt, z, ld);
    case 2: return Forward<2>(x, n, dim, wt, z, ld);
    case 3: return Forward<3>(x, n, dim, wt, z, ld);
    case 4: return Forward<4>(x, n, dim, wt, z, ld);
    case 5: return Forward<5>(x, n, dim, wt, z, ld);
    case 6: return Forward<6>(x, n, dim, wt, z, ld);
    case 7: return Forward<7>(x, n, dim, wt, z, ld);
    case 8: return Forward<8>(x, n, dim, wt, z, ld);
    default: return;
  }
}

void DenseBackward(const float* x, std::size_t n, std::size_t dim, const float* g,
                   std::size_t ld, int columns, float* pt, const void* prefetch,
                   std::size_t prefetch_bytes) {
  const char* ahead = static_cast<const char*>(prefetch);
  switch (columns) {
    case 1: return Backward<1>(x, n, dim, g, ld, pt, ahead, prefetch_bytes);
    case 2: return Backward<2>(x, n, dim, g, ld, pt, ahead, prefetch_bytes);
    case 3: return Backward<3>(x, n, dim, g, ld, pt, ahead, prefetch_bytes);
    case 4: return Backward<4>(x, n, dim, g, ld, pt, ahead, prefetch_bytes);
    default: return;
  }
}

}  // namespace hearth::algorithms::linear_learner
