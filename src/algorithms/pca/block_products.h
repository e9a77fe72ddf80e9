// Accumulators for the float32 matrix products over training rows that dominate PCA training
// time, summed in float64:
//
//   GramAccumulator       G = Σ Xsᵀ Xs          (regular mode: the scatter matrix)
//   GramTimesAccumulator  Z = Σ Xsᵀ (Xs Q)      (randomized mode: one Krylov block per pass)
//
// over every block X of rows added, where Xs = X − 1·shiftᵀ. A shift close to the column
// means keeps the float32 products accurate for data far from the origin; the centred result
// follows exactly from Xcᵀ Xc = Xsᵀ Xs − n·δδᵀ, δ the mean of Xs (pca_solver.cc does that).
//
// The products are packed GEMM with a 6×16 AVX2/FMA micro-kernel (a portable loop elsewhere):
// Eigen's float GEMM reaches about half of OpenBLAS's speed on the AVX2 machines Hearth
// targets. Rows go through in chunks of 256: the micro-kernel sums one chunk in float32
// registers and adds the tile into float64, so precision does not degrade with the number of
// rows. Each OpenMP thread takes whole chunks into its own partial sums, so a block costs one
// synchronisation however many chunks it holds; only a Gram matrix too large to copy per
// thread (see GramAccumulator) is shared, and then the threads split each chunk's tiles.
//
// Thread safety: Add uses all OpenMP threads; an accumulator must not be shared between
// concurrent callers.
#pragma once

#include <cstddef>
#include <vector>

namespace hearth::algorithms::pca {

namespace internal {
struct ThreadBuffers;
}  // namespace internal

class GramAccumulator {
 public:
  // `shift` has dim entries.
  GramAccumulator(std::size_t dim, std::vector<float> shift);
  ~GramAccumulator();

  // Adds the n × dim row-major block `rows`.
  void Add(const float* rows, std::size_t n);

  // Lower triangle and diagonal of G (dim × dim, row-major; entries above the diagonal are
  // unspecified) and the column sums of Xs.
  void Finish(std::vector<double>* gram, std::vector<double>* col_sums) const;

 private:
  std::size_t dim_;
  std::vector<float> shift_;
  bool shared_;  // one G for all threads (dim too large for a copy per thread)
  std::vector<internal::ThreadBuffers> threads_;
  std::vector<double> shared_gram_, shared_sums_;
  std::vector<float> shared_left_, shared_right_;
};

class GramTimesAccumulator {
 public:
  // `q` is dim × width, row-major; `shift` has dim entries.
  GramTimesAccumulator(std::size_t dim, std::vector<float> shift, const float* q,
                       std::size_t width);
  ~GramTimesAccumulator();

  void Add(const float* rows, std::size_t n);

  // Z (dim × width, row-major) and the column sums and sums of squares of Xs.
  void Finish(std::vector<double>* z, std::vector<double>* col_sums,
              std::vector<double>* col_squares) const;

 private:
  std::size_t dim_, width_;
  std::vector<float> shift_;
  std::vector<float> q_pack_;
  std::vector<internal::ThreadBuffers> threads_;
};

}  // namespace hearth::algorithms::pca
