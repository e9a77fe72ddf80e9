// The numeric core of k-means, free of any I/O: a chunked in-memory row store, the blocked
// nearest-center kernel, k-means++ and random seeding, weighted Lloyd iterations, and the
// streaming mini-batch update SageMaker's "web-scale" k-means uses.
//
// Distances are computed as ||x||^2 - 2 x.c + ||c||^2, the x.c products by a register-tiled
// SIMD kernel over blocks of rows that stay in cache while their nearest centers and their
// share of the new centers are computed. Lloyd skips rows that provably keep their center
// (Hamerly's bounds). Blocks run in parallel over OpenMP threads; per-thread partial sums are
// merged in thread order, so a run with the same thread count is bit-for-bit repeatable.
//
// Thread safety: the functions are reentrant. A RowStore may be read from any number of
// threads while none writes it; a StreamingKMeans is used from one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include <Eigen/Core>

namespace hearth::algorithms::kmeans {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Rng = std::mt19937_64;

// Consecutive rows of a dense row-major float32 matrix.
struct RowSpan {
  const float* data = nullptr;
  std::size_t rows = 0;
  std::size_t first = 0;  // index of the first row in the whole store
};

// Dense rows held as the chunks they arrived in (one per mini-batch), so caching a channel
// never reallocates and copies what it already holds.
class RowStore {
 public:
  explicit RowStore(std::size_t dim) : dim_(dim) {}

  // Copies `rows` rows of `dim()` floats.
  void Append(const float* data, std::size_t rows);
  // Takes a chunk of rows * dim() floats.
  void AppendChunk(std::vector<float> chunk);
  void Clear();

  std::size_t dim() const { return dim_; }
  std::size_t rows() const { return rows_; }
  std::size_t bytes() const { return rows_ * dim_ * sizeof(float); }
  // Blocks of at most `max_rows` consecutive rows that together cover the store, in order.
  std::vector<RowSpan> Blocks(std::size_t max_rows) const;
  const float* row(std::size_t index) const;

 private:
  std::size_t dim_;
  std::size_t rows_ = 0;
  std::vector<std::vector<float>> chunks_;
  std::vector<std::size_t> chunk_first_;  // first row index of each chunk
};

// Rows per block of the distance kernel: a block of X stays in L2 while its distances, its
// argmin and its contribution to the new centers are computed.
inline constexpr std::size_t kBlockRows = 256;

// ||row||^2 of each row of a block.
void SquaredNorms(const float* rows, std::size_t n, std::size_t dim, float* out);

// For each of the `n` rows: the nearest of `centers` (ties: the lowest index) and the squared
// distance to it, clamped at 0. `center_norms` holds ||c||^2; `row_norms` may be null (then
// computed here). `dots` is scratch space of n * centers.rows() floats.
void NearestCenters(const float* rows, std::size_t n, const float* row_norms,
                    const Matrix& centers, const float* center_norms, std::int32_t* labels,
                    float* sq_dist, float* dots);

Eigen::VectorXf CenterNorms(const Matrix& centers);

// ||a - b||^2 summed directly (no cancellation, unlike the expansion above).
float SquaredDistance(const float* a, const float* b, std::size_t dim);

// The weighted sum of squared distances from every row to its nearest center (weights empty =
// all 1); `labels`, when not null, receives the nearest center of each row.
double Inertia(const RowStore& rows, std::span<const float> weights, const Matrix& centers,
               std::vector<std::int32_t>* labels = nullptr);

enum class InitMethod { kRandom, kKMeansPlusPlus };

// `k` distinct rows drawn at random, with probability proportional to weight (weights empty =
// uniform), without replacement.
Matrix InitRandom(const RowStore& rows, std::span<const float> weights, std::size_t k, Rng& rng);

// Greedy k-means++ (Arthur & Vassilvitskii 2007, with the 2 + floor(ln k) local trials per
// step that scikit-learn uses): the first center is a row drawn with probability proportional
// to its weight; each next one is the best of the trials, drawn with probability proportional
// to weight * D(x)^2, that most lowers the potential.
Matrix InitKMeansPlusPlus(const RowStore& rows, std::span<const float> weights, std::size_t k,
                          Rng& rng);

Matrix InitCenters(InitMethod method, const RowStore& rows, std::span<const float> weights,
                   std::size_t k, Rng& rng);

struct LloydOptions {
  int max_iter = 300;
  // Stop when the inertia falls by no more than tol * inertia between two assignments; 0 runs
  // until no row changes cluster (or max_iter).
  double tol = 1e-4;
};

struct LloydResult {
  Matrix centers;
  double inertia = 0;    // weighted, of `centers` (the last assignment)
  int iterations = 0;    // assignment passes
  bool converged = false;  // stopped by tol or by a stable assignment, not by max_iter
};

// Lloyd's algorithm from `init`: assign every row to its nearest center, move each center to
// the weighted mean of its rows, repeat. A center left without rows is moved to the row
// farthest from its own center (as scikit-learn does), so k centers survive. The returned
// centers are those the last assignment was measured against, so `inertia` is exact for them.
LloydResult Lloyd(const RowStore& rows, std::span<const float> weights, Matrix init,
                  const LloydOptions& options);

// Lloyd runs from several inits over the same rows, sharing the per-row work (squared norms,
// blocking) that does not depend on the centers. `rows` and `weights` are borrowed and must
// outlive the solver. Run may be called concurrently.
class LloydSolver {
 public:
  LloydSolver(const RowStore& rows, std::span<const float> weights);
  LloydResult Run(Matrix init, const LloydOptions& options) const;

 private:
  const RowStore& rows_;
  std::span<const float> weights_;
  std::vector<RowSpan> blocks_;
  std::vector<float> row_norms_;     // float, for the distance kernel
  std::vector<double> exact_norms_;  // double, for the center statistics
};

// SageMaker's streaming mini-batch k-means (Sculley 2010, "Web-scale k-means clustering"): each
// mini-batch is assigned to the current centers, then every center moves to the running mean
// of the rows it was given, where the weight of what it saw before decays by 2^(-m / half_life)
// after m more rows (half_life = 0: no decay). The first `num_centers` rows seed the centers
// with `init` (random or k-means++ over those rows).
class StreamingKMeans {
 public:
  StreamingKMeans(std::size_t num_centers, std::size_t dim, InitMethod init,
                  std::int64_t half_life_rows, Rng& rng);

  // Feeds rows (n * dim floats). Returns the sum of squared distances of the rows it moved the
  // centers with, each measured before its update. Rows that arrive before the centers are
  // seeded are held and counted when seeding happens.
  double Update(const float* rows, std::size_t n);
  // Seeds from the held rows if fewer than num_centers rows were ever seen: every row is then
  // a center of weight 1.
  double Finish();

  bool seeded() const { return seeded_; }
  const Matrix& centers() const { return centers_; }
  // Decayed number of rows each center has absorbed: the weights for the final reduction.
  const std::vector<double>& counts() const { return counts_; }

 private:
  double Seed();
  double Step(const float* rows, std::size_t n);

  std::size_t num_centers_, dim_;
  InitMethod init_;
  double decay_per_row_;  // 1 = no decay
  Rng& rng_;
  bool seeded_ = false;
  RowStore seed_rows_;
  Matrix centers_;
  std::vector<double> counts_;
  std::vector<std::int32_t> labels_;  // per-batch scratch
  std::vector<float> sq_dist_;
};

struct ReduceResult {
  std::vector<LloydResult> trials;  // in the order they ran
  std::size_t best = 0;             // index of the lowest weighted inertia
  double total_weight = 0;
};

// SageMaker's final step: `trials` runs of weighted Lloyd over the candidate centers (weights
// = their counts; zero-weight candidates dropped), each seeded with `init`; the best wins.
ReduceResult ReduceCenters(const Matrix& candidates, const std::vector<double>& counts,
                           std::size_t k, int trials, InitMethod init,
                           const LloydOptions& options, Rng& rng);

}  // namespace hearth::algorithms::kmeans
