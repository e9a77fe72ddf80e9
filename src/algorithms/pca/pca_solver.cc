#include "algorithms/pca/pca_solver.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>

#include <Eigen/Eigenvalues>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "algorithms/host_memory.h"
#include "algorithms/pca/block_products.h"
#include "fmt/format.h"

namespace hearth::algorithms::pca {

namespace {

using Eigen::Index;
using Eigen::MatrixXd;
using Eigen::VectorXd;
using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Rows handed to an accumulator at once: enough chunks for every thread, so that one OpenMP
// synchronisation covers a lot of work even when the source delivers small mini-batches.
constexpr std::size_t kStageRows = 4096;

// Krylov residual ‖S·u − θ·u‖ accepted, relative to the largest eigenvalue: about the relative
// precision of a scatter matrix summed from float32 products.
constexpr double kResidualTolerance = 1e-7;

// Gathers rows from the source into blocks of kStageRows before passing them on.
class Stager {
 public:
  Stager(std::size_t dim, std::function<void(const float*, std::size_t)> sink)
      : dim_(dim), sink_(std::move(sink)) {}

  void Push(const float* rows, std::size_t n) {
    if (staged_ == 0 && n >= kStageRows) {
      sink_(rows, n);
      return;
    }
    if (buffer_.empty()) buffer_.resize(kStageRows * dim_);
    while (n > 0) {
      const std::size_t take = std::min(n, kStageRows - staged_);
      std::memcpy(&buffer_[staged_ * dim_], rows, take * dim_ * sizeof(float));
      staged_ += take;
      rows += take * dim_;
      n -= take;
      if (staged_ == kStageRows) Flush();
    }
  }

  void Flush() {
    if (staged_ > 0) sink_(buffer_.data(), staged_);
    staged_ = 0;
  }

 private:
  std::size_t dim_;
  std::function<void(const float*, std::size_t)> sink_;
  std::vector<float> buffer_;
  std::size_t staged_ = 0;
};

std::vector<float> ColumnMeans(const float* rows, std::size_t n, std::size_t dim) {
  std::vector<double> sums(dim, 0.0);
  for (std::size_t r = 0; r < n; ++r) {
    for (std::size_t j = 0; j < dim; ++j) sums[j] += rows[r * dim + j];
  }
  std::vector<float> means(dim);
  for (std::size_t j = 0; j < dim; ++j) means[j] = static_cast<float>(sums[j] / n);
  return means;
}

// Runs `work` on one thread of an active two-thread OpenMP team, which keeps Eigen's GEMM
// from starting threads of its own (it checks omp_get_num_threads()): Eigen's threads
// busy-wait on each other, which made the Krylov and Rayleigh–Ritz products 20× slower on a
// loaded 2-core host (and splitting them over two threads ourselves, as OpenMP tasks, made them
// slower still there).
template <typename Work>
void WithoutEigenThreads(Work&& work) {
#ifdef _OPENMP
  if (omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel num_threads(2)
    {
#pragma omp single
      work();
    }
    return;
  }
#endif
  work();
}

MatrixXd Gaussian(Index rows, Index cols, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  MatrixXd m(rows, cols);
  for (Index j = 0; j < cols; ++j) {
    for (Index i = 0; i < rows; ++i) m(i, j) = normal(rng);
  }
  return m;
}

// Appends the columns of `block`, orthonormalised against basis->leftCols(*size) and each
// other, to the basis; a direction already spanned is replaced by a random one. Block
// Gram–Schmidt twice against the old basis, then column by column within the block. Returns
// the number of columns added (fewer than block.cols() once the basis spans the space).
Index AppendOrthonormal(MatrixXd* basis, Index* size, MatrixXd block, std::mt19937_64& rng) {
  const Index dim = basis->rows();
  const VectorXd original = block.colwise().norm();
  for (int round = 0; round < 2 && *size > 0; ++round) {
    const auto old = basis->leftCols(*size);
    block -= old * (old.transpose() * block);
  }
  Index added = 0;
  for (Index j = 0; j < block.cols() && *size + added < dim; ++j) {
    VectorXd w = block.col(j);
    double norm = 0;
    for (int attempt = 0; attempt < 3; ++attempt) {
      for (int round = 0; round < 2; ++round) {
        if (attempt == 0) {
          auto fresh = basis->middleCols(*size, added);
          w.noalias() -= fresh * (fresh.transpose() * w);
        } else {
          auto all = basis->leftCols(*size + added);
          w.noalias() -= all * (all.transpose() * w);
        }
      }
      norm = w.norm();
      const double reference = attempt == 0 ? original(j) : 1.0;
      if (norm > 1e-10 * reference && norm > 0) break;
      w = Gaussian(dim, 1, rng);
      w /= w.norm();
      norm = 0;
    }
    if (norm == 0) continue;
    basis->col(*size + added) = w / norm;
    ++added;
  }
  *size += added;
  return added;
}

// Largest-magnitude entry of each column positive: a deterministic sign, so that refits and
// the two modes agree.
void FixSigns(MatrixXd* vectors) {
  for (Index j = 0; j < vectors->cols(); ++j) {
    Index arg;
    vectors->col(j).cwiseAbs().maxCoeff(&arg);
    if ((*vectors)(arg, j) < 0) vectors->col(j) *= -1;
  }
}

// Top-k Ritz pairs of S on span(basis), given image = S·basis.
// Eigenvectors of the symmetric tridiagonal matrix T (diagonal `a`, sub-diagonal `b`) for its
// eigenvalues `lambda` (accurate, descending), by inverse iteration: a few solves with the
// pivoted LU of T − λI each (LAPACK's dgttrf/dgttrs), Gram–Schmidt against the vectors
// already found for eigenvalues within 1e-3·‖T‖ (LAPACK dstein's cluster rule), and equal
// eigenvalues shifted apart by a few ulps. O(n) per vector instead of the O(n²) per vector
// that accumulating the QR iteration's rotations costs: that accumulation was 80% of a dense
// symmetric eigensolve here.
MatrixXd TridiagonalEigenvectors(const VectorXd& a, const VectorXd& b, const VectorXd& lambda,
                                 std::mt19937_64& rng) {
  const Index n = a.size(), k = lambda.size();
  const double eps = std::numeric_limits<double>::epsilon();
  double norm = 0;
  for (Index i = 0; i < n; ++i) {
    norm = std::max(norm, std::abs(a(i)) + (i > 0 ? std::abs(b(i - 1)) : 0.0) +
                              (i + 1 < n ? std::abs(b(i)) : 0.0));
  }
  norm = std::max(norm, std::numeric_limits<double>::min());
  const double tiny = eps * norm;
  MatrixXd vectors(n, k);
  std::vector<double> d(n), du(n), du2(n), dl(n);
  std::vector<bool> swapped(n);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  Index cluster = 0;
  double shift = 0;
  for (Index j = 0; j < k; ++j) {
    double previous = shift;
    shift = lambda(j);
    if (j > 0 && lambda(j - 1) - lambda(j) > 1e-3 * norm) cluster = j;
    if (j > cluster && previous - shift < 10 * eps * std::abs(shift) + tiny) {
      shift = previous - (10 * eps * std::abs(previous) + tiny);
    }
    // LU of T − shift·I with partial pivoting: U has two super-diagonals (du, du2).
    for (Index i = 0; i < n; ++i) d[i] = a(i) - shift;
    for (Index i = 0; i + 1 < n; ++i) du[i] = dl[i] = b(i);
    for (Index i = 0; i + 1 < n; ++i) {
      du2[i] = 0;
      if (std::abs(d[i]) >= std::abs(dl[i])) {
        swapped[i] = false;
        if (d[i] == 0) d[i] = tiny;
        dl[i] /= d[i];
        d[i + 1] -= dl[i] * du[i];
      } else {
        swapped[i] = true;
        const double factor = d[i] / dl[i];
        d[i] = dl[i];
        dl[i] = factor;
        const double upper = du[i];
        du[i] = d[i + 1];
        d[i + 1] = upper - factor * d[i + 1];
        if (i + 2 < n) {
          du2[i] = du[i + 1];
          du[i + 1] = -factor * du[i + 1];
        }
      }
    }
    if (d[n - 1] == 0) d[n - 1] = tiny;

    VectorXd x(n);
    for (Index i = 0; i < n; ++i) x(i) = uniform(rng);
    x.normalize();
    int settled = 0;
    for (int iteration = 0; iteration < 8 && settled < 2; ++iteration) {
      VectorXd y = x;
      for (Index i = 0; i + 1 < n; ++i) {
        if (!swapped[i]) {
          y(i + 1) -= dl[i] * y(i);
        } else {
          const double top = y(i);
          y(i) = y(i + 1);
          y(i + 1) = top - dl[i] * y(i);
        }
      }
      y(n - 1) /= d[n - 1];
      if (n > 1) y(n - 2) = (y(n - 2) - du[n - 2] * y(n - 1)) / d[n - 2];
      for (Index i = n - 3; i >= 0; --i) {
        y(i) = (y(i) - du[i] * y(i + 1) - du2[i] * y(i + 2)) / d[i];
      }
      for (int round = 0; round < 2 && j > cluster; ++round) {
        const auto found = vectors.middleCols(cluster, j - cluster);
        y -= found * (found.transpose() * y);
      }
      const double growth = y.norm();
      if (!(growth > 0) || !std::isfinite(growth)) {
        for (Index i = 0; i < n; ++i) x(i) = uniform(rng);
        x.normalize();
        continue;
      }
      x = y / growth;
      // ‖(T − shift)·x‖ = 1/growth before the cluster projection: a residual near rounding
      // level means converged; one more solve polishes.
      if (1.0 / growth <= 1e3 * n * tiny) ++settled;
    }
    vectors.col(j) = x;
  }
  return vectors;
}

// The k largest eigenpairs of the symmetric matrix m: Householder tridiagonalisation (Eigen),
// eigenvalues by implicit QR without vectors, eigenvectors by inverse iteration, back to m's
// basis by the Householder reflectors.
Eigenpairs SymmetricTopEigenpairs(const MatrixXd& m, std::size_t k, std::mt19937_64& rng) {
  const Index take = std::min<Index>(static_cast<Index>(k), m.rows());
  Eigenpairs out;
  if (2 * take > m.rows()) {
    // Most of the vectors: accumulating the QR rotations is then the cheaper way.
    Eigen::SelfAdjointEigenSolver<MatrixXd> solver(m);
    out.values = solver.eigenvalues().tail(take).reverse();
    out.vectors = solver.eigenvectors().rightCols(take).rowwise().reverse();
    return out;
  }
  Eigen::Tridiagonalization<MatrixXd> tridiagonal(m);
  const VectorXd a = tridiagonal.diagonal();
  const VectorXd b = tridiagonal.subDiagonal();
  Eigen::SelfAdjointEigenSolver<MatrixXd> values;
  values.computeFromTridiagonal(a, b, Eigen::EigenvaluesOnly);
  out.values = values.eigenvalues().tail(take).reverse();
  out.vectors = tridiagonal.matrixQ() * TridiagonalEigenvectors(a, b, out.values, rng);
  return out;
}

// Top-k Ritz pairs of S on span(basis), given image = S·basis; also the Ritz vectors'
// coordinates in the basis when `coordinates` is given.
Eigenpairs RayleighRitz(const MatrixXd& basis, const MatrixXd& image, std::size_t k,
                        std::mt19937_64& rng, MatrixXd* coordinates = nullptr) {
  MatrixXd m = basis.transpose() * image;
  m = 0.5 * (m + m.transpose()).eval();
  Eigenpairs small = SymmetricTopEigenpairs(m, k, rng);
  Eigenpairs out{std::move(small.values), basis * small.vectors};
  if (coordinates) *coordinates = std::move(small.vectors);
  return out;
}

int Threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

Status TooFewRows(std::size_t rows, const PcaOptions& options) {
  const std::size_t needed = options.subtract_mean ? 2 : 1;
  if (rows >= needed) return Status::Ok();
  return InvalidArgument(fmt::format("the train channel holds {} row(s); PCA needs at least {}{}",
                                     rows, needed,
                                     options.subtract_mean ? " with subtract_mean=true" : ""));
}

// Block Krylov with Rayleigh–Ritz, or the tridiagonal route below 256 dimensions or for many
// components.
Eigenpairs KrylovTopEigenpairs(const MatrixXd& s, std::size_t k, std::uint64_t seed) {
  const Index dim = s.rows();
  const Index want = static_cast<Index>(k);
  std::mt19937_64 rng(seed);
  // Krylov needs about 6k vectors, each costing O(d²), against O(d³) for the tridiagonal
  // reduction: on Fashion-MNIST (d = 784, k = 50) the two cost the same.
  if (dim <= 256 || 16 * want >= dim) return SymmetricTopEigenpairs(s, k, rng);

  const Index block = std::clamp<Index>(want / 2, 8, 32);
  const Index capacity = dim / 2;  // past this, the tridiagonal route is cheaper
  MatrixXd basis(dim, capacity), image(dim, capacity), projected(capacity, capacity);
  Index size = 0, applied = 0;
  AppendOrthonormal(&basis, &size, Gaussian(dim, block, rng), rng);
  VectorXd previous;
  Index next_check = 2 * want;
  while (true) {
    const Index begin = applied, cols = size - applied;
    image.middleCols(begin, cols).noalias() = s * basis.middleCols(begin, cols);
    projected.block(0, begin, size, cols).noalias() =
        basis.leftCols(size).transpose() * image.middleCols(begin, cols);
    projected.block(begin, 0, cols, begin) = projected.block(0, begin, begin, cols).transpose();
    applied = size;

    // Checks cost O(size³): space them geometrically.
    if (size >= next_check) {
      next_check = size + size / 4;
      const MatrixXd m = 0.5 * (projected.topLeftCorner(size, size) +
                                projected.topLeftCorner(size, size).transpose());
      // Ritz values settle long before the vectors; check residuals only once they have.
      Eigen::SelfAdjointEigenSolver<MatrixXd> values(m, Eigen::EigenvaluesOnly);
      const VectorXd theta = values.eigenvalues().tail(want).reverse();
      if (previous.size() == want && (theta - previous).cwiseAbs().maxCoeff() <= 1e-11 * theta(0)) {
        MatrixXd y;
        Eigenpairs ritz = RayleighRitz(basis.leftCols(size), image.leftCols(size), k, rng, &y);
        // ‖S·u − θ·u‖ for each Ritz pair, with S·u from the stored image.
        const MatrixXd residual =
            image.leftCols(size) * y - ritz.vectors * ritz.values.asDiagonal();
        if (residual.colwise().norm().maxCoeff() <= kResidualTolerance * ritz.values(0)) {
          return ritz;
        }
      }
      previous = theta;
    }
    if (size == dim) return RayleighRitz(basis.leftCols(size), image.leftCols(size), k, rng);
    if (size + block > capacity) break;
    AppendOrthonormal(&basis, &size, image.middleCols(begin, cols), rng);
    if (size == applied) break;
  }
  return SymmetricTopEigenpairs(s, k, rng);
}

// Memory regular mode needs: G per thread (or one shared), its sum, S and the eigensolver's
// working copy.
std::size_t ScatterMatrixBytes(std::size_t dim) {
  return dim * dim * sizeof(double) * (Threads() + 3);
}

Result<PcaFit> FitRegular(RowBlocks& source, const PcaOptions& options) {
  const std::size_t dim = source.dim();
  const std::size_t bytes = ScatterMatrixBytes(dim);
  const std::size_t available = AvailableMemoryBytes();
  if (available > 0 && bytes > available) {
    return ResourceExhausted(
        fmt::format("algorithm_mode=regular needs about {} MB for the {}×{} covariance matrix of "
                    "feature_dim={}, more than the {} MB available; use algorithm_mode=randomized",
                    bytes >> 20, dim, dim, dim, available >> 20));
  }
  std::unique_ptr<GramAccumulator> gram;
  std::vector<float> shift;
  std::size_t rows = 0;
  Stager stager(dim, [&](const float* block, std::size_t n) { gram->Add(block, n); });
  RETURN_IF_ERROR(source.ForEachBlock(0, [&](const float* block, std::size_t n) {
    if (n == 0) return Status::Ok();
    if (!gram) {
      shift = options.subtract_mean ? ColumnMeans(block, n, dim) : std::vector<float>(dim, 0);
      gram = std::make_unique<GramAccumulator>(dim, shift);
    }
    rows += n;
    stager.Push(block, n);
    return Status::Ok();
  }));
  RETURN_IF_ERROR(TooFewRows(rows, options));
  stager.Flush();

  std::vector<double> g, sums;
  gram->Finish(&g, &sums);
  MatrixXd s(dim, dim);
  VectorXd delta = VectorXd::Zero(dim);
  if (options.subtract_mean) {
    for (std::size_t j = 0; j < dim; ++j) delta(j) = sums[j] / rows;
  }
  for (std::size_t i = 0; i < dim; ++i) {
    for (std::size_t j = 0; j <= i; ++j) {
      s(i, j) = s(j, i) = g[i * dim + j] - rows * delta(i) * delta(j);
    }
  }
  PcaFit fit;
  fit.rows = rows;
  if (options.subtract_mean) {
    fit.mean.resize(dim);
    for (std::size_t j = 0; j < dim; ++j) fit.mean[j] = shift[j] + delta(j);
  }
  fit.total_variance = s.trace();
  Eigenpairs top = TopEigenpairs(s, options.num_components, options.seed);
  fit.eigenvalues = top.values.cwiseMax(0.0);
  fit.components = std::move(top.vectors);
  return fit;
}

Result<PcaFit> FitRandomized(RowBlocks& source, const PcaOptions& options) {
  const std::size_t dim = source.dim();
  const Index width =
      static_cast<Index>(std::min(std::max(options.sketch_width, options.num_components), dim));
  const int passes = std::max(options.passes, 1);
  std::mt19937_64 rng(options.seed);
  MatrixXd basis(dim, width * passes), image(dim, width * passes);
  Index size = 0;
  WithoutEigenThreads([&] { AppendOrthonormal(&basis, &size, Gaussian(dim, width, rng), rng); });

  std::vector<float> shift;
  std::size_t rows = 0;
  VectorXd delta = VectorXd::Zero(dim);
  PcaFit fit;
  Index applied = 0;  // basis columns whose image S·q is known
  for (int pass = 0; pass < passes && applied < size; ++pass) {
    const Index begin = applied, cols = size - applied;
    const RowMajorF q = basis.middleCols(begin, cols).cast<float>();
    std::unique_ptr<GramTimesAccumulator> product;
    std::size_t pass_rows = 0;
    Stager stager(dim, [&](const float* block, std::size_t n) { product->Add(block, n); });
    RETURN_IF_ERROR(source.ForEachBlock(pass, [&](const float* block, std::size_t n) {
      if (n == 0) return Status::Ok();
      if (shift.empty()) {
        shift = options.subtract_mean ? ColumnMeans(block, n, dim) : std::vector<float>(dim, 0);
      }
      if (!product) {
        product = std::make_unique<GramTimesAccumulator>(dim, shift, q.data(), cols);
      }
      pass_rows += n;
      stager.Push(block, n);
      return Status::Ok();
    }));
    if (pass == 0) {
      RETURN_IF_ERROR(TooFewRows(pass_rows, options));
      rows = pass_rows;
    } else if (pass_rows != rows) {
      return FailedPrecondition(fmt::format(
          "the train channel gave {} rows in data pass 1 and {} in pass {}: randomized mode "
          "reads the same data several times",
          rows, pass_rows, pass + 1));
    }
    stager.Flush();
    std::vector<double> z, sums, squares;
    product->Finish(&z, &sums, &squares);
    if (pass == 0) {
      double total = 0;
      for (std::size_t j = 0; j < dim; ++j) {
        if (options.subtract_mean) delta(j) = sums[j] / rows;
        total += squares[j] - rows * delta(j) * delta(j);
      }
      fit.total_variance = total;
      if (options.subtract_mean) {
        fit.mean.resize(dim);
        for (std::size_t j = 0; j < dim; ++j) fit.mean[j] = shift[j] + delta(j);
      }
    }
    MatrixXd block =
        Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
            z.data(), dim, cols);
    if (options.subtract_mean) {
      // Xcᵀ Xc q = Xsᵀ Xs q − n·δ(δᵀq)
      block.noalias() -=
          (static_cast<double>(rows) * delta) * (delta.transpose() * basis.middleCols(begin, cols));
    }
    image.middleCols(begin, cols) = block;
    applied = size;
    if (pass + 1 < passes) {
      WithoutEigenThreads([&] { AppendOrthonormal(&basis, &size, std::move(block), rng); });
    }
  }
  Eigenpairs top;
  WithoutEigenThreads([&] {
    top =
        RayleighRitz(basis.leftCols(applied), image.leftCols(applied), options.num_components, rng);
  });
  fit.rows = rows;
  fit.eigenvalues = top.values.cwiseMax(0.0);
  fit.components = std::move(top.vectors);
  return fit;
}

}  // namespace

Status MatrixRowBlocks::ForEachBlock(int /*pass*/, const Visitor& visit) {
  for (std::size_t start = 0; start < n_; start += block_rows_) {
    RETURN_IF_ERROR(visit(rows_ + start * dim_, std::min(block_rows_, n_ - start)));
  }
  return Status::Ok();
}

Eigen::VectorXd PcaFit::ExplainedVarianceRatio() const {
  if (total_variance <= 0) return VectorXd::Zero(eigenvalues.size());
  return eigenvalues / total_variance;
}

Eigenpairs TopEigenpairs(const MatrixXd& s, std::size_t k, std::uint64_t seed) {
  Eigenpairs out;
  WithoutEigenThreads([&] { out = KrylovTopEigenpairs(s, k, seed); });
  return out;
}

bool RandomizedFormsScatterMatrix(std::size_t dim, const PcaOptions& options) {
  const std::size_t width = std::min(std::max(options.sketch_width, options.num_components), dim);
  const std::size_t passes = static_cast<std::size_t>(std::max(options.passes, 1));
  if (!options.allow_scatter_matrix || dim >= 8 * passes * width) return false;
  const std::size_t available = AvailableMemoryBytes();
  return available == 0 || ScatterMatrixBytes(dim) <= available / 2;
}

Result<PcaFit> FitPca(RowBlocks& rows, const PcaOptions& options) {
  const std::size_t dim = rows.dim();
  if (dim == 0) return InvalidArgument("feature_dim must be at least 1");
  if (options.num_components < 1 || options.num_components > dim) {
    return InvalidArgument(fmt::format("num_components ({}) must be between 1 and feature_dim ({})",
                                       options.num_components, dim));
  }
  const bool regular =
      options.mode == Mode::kRegular || RandomizedFormsScatterMatrix(dim, options);
  Result<PcaFit> fit = regular ? FitRegular(rows, options) : FitRandomized(rows, options);
  if (fit.ok()) FixSigns(&fit->components);
  return fit;
}

Result<double> HeldOutExplainedVariance(RowBlocks& rows, const PcaFit& fit) {
  const std::size_t dim = rows.dim();
  if (static_cast<Index>(dim) != fit.components.rows()) {
    return InvalidArgument(
        fmt::format("rows have {} features, the components {}", dim, fit.components.rows()));
  }
  VectorXd mean = VectorXd::Zero(dim);
  for (std::size_t j = 0; j < fit.mean.size(); ++j) mean(j) = fit.mean[j];
  double kept = 0, total = 0;
  RETURN_IF_ERROR(rows.ForEachBlock(0, [&](const float* block, std::size_t n) {
    WithoutEigenThreads([&] {
      const MatrixXd centred =
          Eigen::Map<const RowMajorF>(block, n, dim).cast<double>().rowwise() - mean.transpose();
      kept += (centred * fit.components).squaredNorm();
      total += centred.squaredNorm();
    });
    return Status::Ok();
  }));
  return total > 0 ? kept / total : 0.0;
}

}  // namespace hearth::algorithms::pca
