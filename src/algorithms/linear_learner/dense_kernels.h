// Dense kernels for the linear learner's two products when the models have few outputs in
// all (C = models x outputs <= 8, the common case): a general GEMM packs the whole
// mini-batch for a handful of columns and runs an order of magnitude below the FMA units
// there. These stream each row once, keep the C accumulators in registers and need no
// packing. Wider problems go to Eigen's GEMM, which is good at them.
//
//   Forward:  z[j * ld + r] = sum_d x[r * dim + d] * wt[j * dim + d]  (z column-major n x C)
//   Backward: pt[j * dim + d] = sum_r g[j * ld + r] * x[r * dim + d]  (pt = G^T X, C x dim)
// where ld >= n is the column stride of z and g. Each output's sum runs in the same order
// whatever C is, so a result does not depend on which outputs are computed together.
//
// Thread safety: pure functions on caller-owned memory.
#pragma once

#include <cstddef>

namespace hearth::algorithms::linear_learner {

// Outputs per call: DenseForward takes up to 8, DenseBackward up to 4 (past that its
// per-row read-modify-write of pt stalls; callers split wider problems).
inline constexpr int kMaxForwardColumns = 8;
inline constexpr int kMaxBackwardColumns = 4;

// `x`: n rows of `dim` floats (row-major); `wt`: C x dim (row-major).
void DenseForward(const float* x, std::size_t n, std::size_t dim, const float* wt, int columns,
                  float* z, std::size_t ld);
// `prefetch` (may be null): `prefetch_bytes` of memory the caller reads next (the next
// mini-batch), pulled towards the cache while this one computes from the cache it is in.
void DenseBackward(const float* x, std::size_t n, std::size_t dim, const float* g,
                   std::size_t ld, int columns, float* pt, const void* prefetch = nullptr,
                   std::size_t prefetch_bytes = 0);

}  // namespace hearth::algorithms::linear_learner
