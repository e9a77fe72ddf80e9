// The PCA training core: principal components of rows that arrive in blocks, in the two modes
// of SageMaker's PCA ("How PCA Works"):
//
//   regular     one pass accumulating the scatter matrix S = Σ (x−μ)ᵀ(x−μ) (Σ xᵀx without
//               subtract_mean) in float64 (block_products.h), then its top eigenpairs: exact.
//               Memory O(d²).
//   randomized  randomized block Krylov iteration (the range finder of Halko, Martinsson and
//               Tropp 2011, keeping every power iterate as Musco and Musco 2015 do): `passes`
//               data passes, each multiplying S by one block of sketch_width =
//               num_components + extra_components columns, then Rayleigh–Ritz on the whole
//               basis. Memory O(d · passes · sketch_width); approximate.
//               When forming S costs fewer flops than those passes (d²/2 per row against
//               4·d·sketch_width per row and pass, so d < 8 · passes · sketch_width) and S fits
//               in memory, randomized mode forms S in one pass and runs the Krylov iteration on
//               it instead: the result is regular mode's, exact, and sooner. Randomized mode
//               pays off for wide data, which is what it is for.
//
// Results use the scatter matrix itself: eigenvalues are the squared singular values of the
// centred data matrix (SageMaker's `s` holds their square roots), and the explained variance
// ratio of component j is eigenvalues[j] / total_variance. Components are ordered by
// decreasing eigenvalue; each is signed so that its largest-magnitude entry is positive.
//
// Thread safety: the functions are reentrant and use OpenMP threads internally.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include <Eigen/Core>

#include "common/status.h"

namespace hearth::algorithms::pca {

enum class Mode { kRegular, kRandomized };

struct PcaOptions {
  std::size_t num_components = 1;
  bool subtract_mean = true;
  Mode mode = Mode::kRegular;
  // Randomized mode: columns per Krylov block (num_components + extra components) and data
  // passes (2 power iterations + the first product).
  std::size_t sketch_width = 0;
  int passes = 3;
  // Randomized mode: false always streams the Krylov passes, even where forming S is cheaper.
  bool allow_scatter_matrix = true;
  std::uint64_t seed = 0;
};

// A source of training rows that can be read more than once.
class RowBlocks {
 public:
  using Visitor = std::function<Status(const float* rows, std::size_t n)>;
  virtual ~RowBlocks() = default;
  virtual std::size_t dim() const = 0;
  // Calls `visit` for the dense row-major blocks (n × dim) of pass `pass` (0, 1, ...), in
  // order, and stops at the first error.
  virtual Status ForEachBlock(int pass, const Visitor& visit) = 0;
};

// Rows held in memory (tests, benchmarks). `rows` (n × dim, row-major) is not owned and must
// outlive this object.
class MatrixRowBlocks : public RowBlocks {
 public:
  MatrixRowBlocks(const float* rows, std::size_t n, std::size_t dim, std::size_t block_rows)
      : rows_(rows), n_(n), dim_(dim), block_rows_(block_rows) {}
  std::size_t dim() const override { return dim_; }
  Status ForEachBlock(int pass, const Visitor& visit) override;

 private:
  const float* rows_;
  std::size_t n_, dim_, block_rows_;
};

struct PcaFit {
  std::size_t rows = 0;
  std::vector<double> mean;     // dim entries; empty without subtract_mean
  Eigen::VectorXd eigenvalues;  // of S, largest first
  Eigen::MatrixXd components;   // dim × num_components; column j belongs to eigenvalues[j]
  double total_variance = 0;    // trace(S)

  Eigen::VectorXd ExplainedVarianceRatio() const;
};

// Whether randomized mode forms the scatter matrix (see the top of this file) for `dim`
// features.
bool RandomizedFormsScatterMatrix(std::size_t dim, const PcaOptions& options);

// InvalidArgument when there are too few rows (1 without subtract_mean, else 2) or the options
// do not fit the data; ResourceExhausted when regular mode's d × d matrix would not fit in
// memory.
Result<PcaFit> FitPca(RowBlocks& rows, const PcaOptions& options);

struct Eigenpairs {
  Eigen::VectorXd values;   // largest first
  Eigen::MatrixXd vectors;  // one column per value
};

// The k largest eigenpairs of the symmetric positive semi-definite matrix `s` (both triangles
// filled). A block Krylov iteration with Rayleigh–Ritz when k < d/16, converged to a residual
// of 1e-7·λ₁ (the precision of a float32-accumulated S); else, or if it does not converge,
// Householder tridiagonalisation with inverse iteration for the k vectors.
Eigenpairs TopEigenpairs(const Eigen::MatrixXd& s, std::size_t k, std::uint64_t seed);

// Σ‖(x−μ)V‖² / Σ‖x−μ‖² over `rows`: the fraction of their variance (about the training mean)
// that the fitted components keep.
Result<double> HeldOutExplainedVariance(RowBlocks& rows, const PcaFit& fit);

}  // namespace hearth::algorithms::pca
