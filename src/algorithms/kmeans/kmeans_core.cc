#include "algorithms/kmeans/kmeans_core.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <omp.h>

namespace hearth::algorithms::kmeans {
namespace {

using ConstRowsMap = Eigen::Map<const Matrix>;
constexpr float kInfinity = std::numeric_limits<float>::infinity();

float Weight(std::span<const float> weights, std::size_t i) {
  return weights.empty() ? 1.0f : weights[i];
}

double UniformDouble(Rng& rng) {  // [0, 1), the same sequence on every platform
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// Index of the first element of the non-decreasing `cumulative` that reaches `value`.
std::size_t SearchCumulative(const std::vector<double>& cumulative, double value) {
  auto it = std::lower_bound(cumulative.begin(), cumulative.end(), value);
  return std::min<std::size_t>(it - cumulative.begin(), cumulative.size() - 1);
}

// Per-thread partial results of a parallel pass, merged in thread order afterwards so that a
// sum does not depend on which thread finished first.
template <typename T>
class PerThread {
 public:
  explicit PerThread(const T& init) : parts_(omp_get_max_threads(), init) {}
  T& local() { return parts_[omp_get_thread_num()]; }
  std::vector<T>& parts() { return parts_; }

 private:
  std::vector<T> parts_;
};

// Whether a pass over `blocks` blocks is worth waking the other threads: a team costs
// microseconds on an idle machine and far more on a busy one, more than a lone block's work.
bool Parallel(std::size_t blocks) { return blocks > 1; }

// The dot-product kernel. Explicit SIMD packets (Eigen's, so SSE, AVX2 and AVX-512 builds all
// work) because the compiler will not reorder a float reduction on its own. A tile of R rows
// by J centers keeps R * J accumulators in registers; per step it loads R row packets and J
// center packets for R * J fused multiply-adds. R = 2, J = 4 fits AVX2's 16 registers.
using Packet = Eigen::internal::packet_traits<float>::type;
constexpr std::size_t kLanes = sizeof(Packet) / sizeof(float);
constexpr int kTileRows = 2;
constexpr int kTileCenters = 4;

template <int R, int J>
void DotTile(const float* const* x, const float* c, std::size_t dim, float* out,
             std::size_t out_stride) {
  Packet acc[R][J];
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < J; ++j) acc[r][j] = Eigen::internal::pset1<Packet>(0.0f);
  }
  std::size_t d = 0;
  for (; d + kLanes <= dim; d += kLanes) {
    Packet xs[R];
    for (int r = 0; r < R; ++r) xs[r] = Eigen::internal::ploadu<Packet>(x[r] + d);
    for (int j = 0; j < J; ++j) {
      const Packet cj = Eigen::internal::ploadu<Packet>(c + j * dim + d);
      for (int r = 0; r < R; ++r) acc[r][j] = Eigen::internal::pmadd(xs[r], cj, acc[r][j]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < J; ++j) {
      float sum = Eigen::internal::predux(acc[r][j]);
      for (std::size_t t = d; t < dim; ++t) sum += x[r][t] * c[j * dim + t];
      out[r * out_stride + j] = sum;
    }
  }
}

template <int R>
void DotRowTile(const float* const* x, const float* centers, std::size_t k, std::size_t dim,
                float* out) {
  std::size_t j = 0;
  for (; j + kTileCenters <= k; j += kTileCenters) {
    DotTile<R, kTileCenters>(x, centers + j * dim, dim, out + j, k);
  }
  const float* c = centers + j * dim;
  switch (k - j) {
    case 3: DotTile<R, 3>(x, c, dim, out + j, k); break;
    case 2: DotTile<R, 2>(x, c, dim, out + j, k); break;
    case 1: DotTile<R, 1>(x, c, dim, out + j, k); break;
    default: break;
  }
}

// out[i * k + j] = rows[i] . centers[j] for n rows and k row-major centers, `dim` wide.
void Dots(const float* const* rows, std::size_t n, const float* centers, std::size_t k,
          std::size_t dim, float* out) {
  std::size_t i = 0;
  for (; i + kTileRows <= n; i += kTileRows) {
    DotRowTile<kTileRows>(rows + i, centers, k, dim, out + i * k);
  }
  if (i < n) DotRowTile<1>(rows + i, centers, k, dim, out + i * k);
}

}  // namespace

float SquaredDistance(const float* a, const float* b, std::size_t dim) {
  Packet acc = Eigen::internal::pset1<Packet>(0.0f);
  std::size_t d = 0;
  for (; d + kLanes <= dim; d += kLanes) {
    const Packet diff = Eigen::internal::psub(Eigen::internal::ploadu<Packet>(a + d),
                                              Eigen::internal::ploadu<Packet>(b + d));
    acc = Eigen::internal::pmadd(diff, diff, acc);
  }
  float sum = Eigen::internal::predux(acc);
  for (; d < dim; ++d) sum += (a[d] - b[d]) * (a[d] - b[d]);
  return sum;
}

namespace {

// sum[d] += scale * x[d]
void AddScaled(float* sum, const float* x, float scale, std::size_t dim) {
  const Packet s = Eigen::internal::pset1<Packet>(scale);
  std::size_t d = 0;
  for (; d + kLanes <= dim; d += kLanes) {
    Eigen::internal::pstoreu(sum + d,
                             Eigen::internal::pmadd(Eigen::internal::ploadu<Packet>(x + d), s,
                                                    Eigen::internal::ploadu<Packet>(sum + d)));
  }
  for (; d < dim; ++d) sum[d] += scale * x[d];
}

void RowPointers(const float* rows, std::size_t n, std::size_t dim,
                 std::vector<const float*>& out) {
  out.resize(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = rows + i * dim;
}

// For each row: the nearest center (ties: the lowest index) and the squared distances to the
// nearest and, when `second_sq` is not null, the second nearest (infinity with one center).
void NearestTwo(const float* const* rows, std::size_t n, const float* row_norms,
                const Matrix& centers, const float* center_norms, std::int32_t* labels,
                float* best_sq, float* second_sq, float* dots) {
  const std::size_t k = centers.rows();
  Dots(rows, n, centers.data(), k, centers.cols(), dots);
  for (std::size_t i = 0; i < n; ++i) {
    const float* p = dots + i * k;
    std::int32_t best = 0;
    float best_value = center_norms[0] - 2.0f * p[0], second_value = kInfinity;
    for (std::size_t j = 1; j < k; ++j) {
      const float value = center_norms[j] - 2.0f * p[j];
      if (value < best_value) {
        second_value = best_value;
        best_value = value;
        best = static_cast<std::int32_t>(j);
      } else if (value < second_value) {
        second_value = value;
      }
    }
    labels[i] = best;
    best_sq[i] = std::max(0.0f, row_norms[i] + best_value);
    if (second_sq != nullptr) second_sq[i] = std::max(0.0f, row_norms[i] + second_value);
  }
}

std::vector<float> AllRowNorms(const RowStore& rows, const std::vector<RowSpan>& blocks) {
  std::vector<float> norms(rows.rows());
#pragma omp parallel for schedule(static) if (Parallel(blocks.size()))
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    SquaredNorms(blocks[b].data, blocks[b].rows, rows.dim(), norms.data() + blocks[b].first);
  }
  return norms;
}

// Squared distances from every row to each of `candidates` (out[t * n + row]), lowered to
// floor[row] when `floor` is not empty, and their weighted sums per candidate.
std::vector<double> DistancesToCandidates(const RowStore& rows, const std::vector<RowSpan>& blocks,
                                          const std::vector<float>& row_norms,
                                          std::span<const float> weights, const Matrix& candidates,
                                          const std::vector<float>& floor, std::vector<float>& out) {
  const std::size_t n = rows.rows(), m = candidates.rows();
  const Eigen::VectorXf candidate_norms = CenterNorms(candidates);
  PerThread<std::vector<double>> potentials(std::vector<double>(m, 0.0));
#pragma omp parallel if (Parallel(blocks.size()))
  {
    std::vector<double>& local = potentials.local();
    std::vector<float> dots(kBlockRows * m);
    std::vector<const float*> pointers;
#pragma omp for schedule(static)
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const RowSpan& block = blocks[b];
      RowPointers(block.data, block.rows, rows.dim(), pointers);
      Dots(pointers.data(), block.rows, candidates.data(), m, rows.dim(), dots.data());
      for (std::size_t i = 0; i < block.rows; ++i) {
        const std::size_t row = block.first + i;
        for (std::size_t t = 0; t < m; ++t) {
          float d = std::max(0.0f, row_norms[row] - 2.0f * dots[i * m + t] + candidate_norms[t]);
          if (!floor.empty()) d = std::min(d, floor[row]);
          out[t * n + row] = d;
          local[t] += static_cast<double>(Weight(weights, row)) * d;
        }
      }
    }
  }
  std::vector<double> total(m, 0.0);
  for (const auto& part : potentials.parts()) {
    for (std::size_t t = 0; t < m; ++t) total[t] += part[t];
  }
  return total;
}

}  // namespace

void RowStore::Append(const float* data, std::size_t rows) {
  if (rows == 0) return;
  AppendChunk(std::vector<float>(data, data + rows * dim_));
}

void RowStore::AppendChunk(std::vector<float> chunk) {
  if (chunk.empty()) return;
  chunk_first_.push_back(rows_);
  rows_ += chunk.size() / dim_;
  chunks_.push_back(std::move(chunk));
}

void RowStore::Clear() {
  chunks_.clear();
  chunk_first_.clear();
  rows_ = 0;
}

std::vector<RowSpan> RowStore::Blocks(std::size_t max_rows) const {
  std::vector<RowSpan> blocks;
  for (std::size_t c = 0; c < chunks_.size(); ++c) {
    const std::size_t chunk_rows = chunks_[c].size() / dim_;
    for (std::size_t r = 0; r < chunk_rows; r += max_rows) {
      blocks.push_back({chunks_[c].data() + r * dim_, std::min(max_rows, chunk_rows - r),
                        chunk_first_[c] + r});
    }
  }
  return blocks;
}

const float* RowStore::row(std::size_t index) const {
  auto it = std::upper_bound(chunk_first_.begin(), chunk_first_.end(), index);
  const std::size_t c = (it - chunk_first_.begin()) - 1;
  return chunks_[c].data() + (index - chunk_first_[c]) * dim_;
}

void SquaredNorms(const float* rows, std::size_t n, std::size_t dim, float* out) {
  Eigen::Map<Eigen::VectorXf>(out, n) = ConstRowsMap(rows, n, dim).rowwise().squaredNorm();
}

Eigen::VectorXf CenterNorms(const Matrix& centers) { return centers.rowwise().squaredNorm(); }

void NearestCenters(const float* rows, std::size_t n, const float* row_norms,
                    const Matrix& centers, const float* center_norms, std::int32_t* labels,
                    float* sq_dist, float* dots) {
  std::vector<const float*> pointers;
  RowPointers(rows, n, centers.cols(), pointers);
  std::vector<float> norms;
  if (row_norms == nullptr) {
    norms.resize(n);
    SquaredNorms(rows, n, centers.cols(), norms.data());
    row_norms = norms.data();
  }
  NearestTwo(pointers.data(), n, row_norms, centers, center_norms, labels, sq_dist, nullptr,
             dots);
}

double Inertia(const RowStore& rows, std::span<const float> weights, const Matrix& centers,
               std::vector<std::int32_t>* labels) {
  const auto blocks = rows.Blocks(kBlockRows);
  const Eigen::VectorXf center_norms = CenterNorms(centers);
  if (labels != nullptr) labels->assign(rows.rows(), 0);
  PerThread<double> totals(0.0);
#pragma omp parallel if (Parallel(blocks.size()))
  {
    double& total = totals.local();
    std::vector<float> dots(kBlockRows * centers.rows()), dist(kBlockRows);
    std::vector<std::int32_t> block_labels(kBlockRows);
#pragma omp for schedule(static)
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const RowSpan& block = blocks[b];
      NearestCenters(block.data, block.rows, nullptr, centers, center_norms.data(),
                     block_labels.data(), dist.data(), dots.data());
      for (std::size_t i = 0; i < block.rows; ++i) {
        total += static_cast<double>(Weight(weights, block.first + i)) * dist[i];
      }
      if (labels != nullptr) {
        std::copy_n(block_labels.begin(), block.rows, labels->begin() + block.first);
      }
    }
  }
  double total = 0;
  for (double part : totals.parts()) total += part;
  return total;
}

Matrix InitRandom(const RowStore& rows, std::span<const float> weights, std::size_t k, Rng& rng) {
  // Efraimidis-Spirakis: the k largest keys log(u) / w are a weighted sample without
  // replacement (a uniform one when all weights are equal).
  const std::size_t n = rows.rows();
  std::vector<std::pair<double, std::size_t>> keys(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double w = Weight(weights, i);
    const double u = std::max(UniformDouble(rng), std::numeric_limits<double>::min());
    keys[i] = {w > 0 ? std::log(u) / w : -std::numeric_limits<double>::infinity(), i};
  }
  k = std::min(k, n);
  std::partial_sort(keys.begin(), keys.begin() + k, keys.end(), std::greater<>());
  Matrix centers(k, rows.dim());
  for (std::size_t c = 0; c < k; ++c) {
    centers.row(c) = ConstRowsMap(rows.row(keys[c].second), 1, rows.dim());
  }
  return centers;
}

Matrix InitKMeansPlusPlus(const RowStore& rows, std::span<const float> weights, std::size_t k,
                          Rng& rng) {
  const std::size_t n = rows.rows(), dim = rows.dim();
  k = std::min(k, n);
  Matrix centers(k, dim);
  if (k == 0) return centers;
  const auto blocks = rows.Blocks(kBlockRows);
  const std::vector<float> row_norms = AllRowNorms(rows, blocks);
  const std::size_t trials = 2 + static_cast<std::size_t>(std::log(static_cast<double>(k)));

  // `cumulative` holds the running sum of the sampling weights; draw() picks a row by it.
  std::vector<double> cumulative(n);
  auto draw = [&](double total) {
    return SearchCumulative(cumulative, UniformDouble(rng) * total);
  };
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) cumulative[i] = total += Weight(weights, i);
  centers.row(0) = ConstRowsMap(rows.row(draw(total)), 1, dim);

  // closest[row]: squared distance from the row to the nearest center chosen so far.
  std::vector<float> closest(n), candidate_dist(trials * n);
  DistancesToCandidates(rows, blocks, row_norms, weights, centers.topRows(1), {}, closest);
  for (std::size_t c = 1; c < k; ++c) {
    double potential = 0;
    for (std::size_t i = 0; i < n; ++i) {
      cumulative[i] = potential += static_cast<double>(Weight(weights, i)) * closest[i];
    }
    Matrix candidates(trials, dim);
    for (std::size_t t = 0; t < trials; ++t) {
      candidates.row(t) = ConstRowsMap(rows.row(draw(potential)), 1, dim);
    }
    const std::vector<double> potentials = DistancesToCandidates(
        rows, blocks, row_norms, weights, candidates, closest, candidate_dist);
    const std::size_t best =
        std::min_element(potentials.begin(), potentials.end()) - potentials.begin();
    std::copy_n(candidate_dist.begin() + best * n, n, closest.begin());
    centers.row(c) = candidates.row(best);
  }
  return centers;
}

Matrix InitCenters(InitMethod method, const RowStore& rows, std::span<const float> weights,
                   std::size_t k, Rng& rng) {
  return method == InitMethod::kKMeansPlusPlus ? InitKMeansPlusPlus(rows, weights, k, rng)
                                               : InitRandom(rows, weights, k, rng);
}

namespace {

// Lloyd's iterations with Hamerly's bounds (Hamerly 2010, "Making k-means even faster"): each
// row keeps an upper bound on the distance to its center and a lower bound on the distance to
// every other center. After the centers move by p[j], the bounds loosen by p; a row whose
// upper bound stays below max(lower bound, half the gap from its center to the nearest other
// one) cannot change center, so it is skipped without reading it. The assignments are those of
// plain Lloyd; only rows that might move are read, and the center sums are updated by the
// rows that did move.
class HamerlyLloyd {
 public:
  // `rows`, `weights` and the per-row data are borrowed from a LloydSolver.
  HamerlyLloyd(const RowStore& rows, std::span<const float> weights,
               const std::vector<RowSpan>& blocks, const std::vector<float>& row_norms,
               const std::vector<double>& exact_norms, std::size_t k)
      : rows_(rows),
        weights_(weights),
        n_(rows.rows()),
        dim_(rows.dim()),
        k_(k),
        blocks_(blocks),
        row_norms_(row_norms),
        exact_norms_(exact_norms),
        labels_(n_, -1),
        upper_(n_),
        lower_(n_),
        sums_(k * dim_),
        counts_(k),
        norm_sums_(k),
        moved_(k, 0.0f) {}

  // Assigns every row to its nearest center in `centers`; returns how many rows changed.
  std::size_t Assign(const Matrix& centers) {
    const Eigen::VectorXf center_norms = CenterNorms(centers);
    const std::size_t changed = bounds_valid_ ? AssignWithBounds(centers, center_norms)
                                              : AssignAll(centers, center_norms);
    bounds_valid_ = true;
    return changed;
  }

  // The weighted sum of squared distances of the rows to `centers` under the current
  // assignment: sum_j (sum |x|^2 - 2 c_j . sum x + n_j |c_j|^2), in double.
  double Inertia(const Matrix& centers) const {
    double total = 0;
    for (std::size_t j = 0; j < k_; ++j) {
      double dot = 0, norm = 0;
      for (std::size_t d = 0; d < dim_; ++d) {
        const double c = centers(j, d);
        dot += c * sums_[j * dim_ + d];
        norm += c * c;
      }
      total += norm_sums_[j] - 2 * dot + counts_[j] * norm;
    }
    return std::max(0.0, total);
  }

  // Moves every center to the mean of its rows; a center without rows takes over the row
  // farthest from its own center (then every bound is recomputed on the next pass).
  void Update(Matrix& centers) {
    Matrix next = centers;
    std::vector<std::size_t> empty;
    for (std::size_t j = 0; j < k_; ++j) {
      if (counts_[j] <= 0) {
        empty.push_back(j);
        continue;
      }
      for (std::size_t d = 0; d < dim_; ++d) {
        next(j, d) = static_cast<float>(sums_[j * dim_ + d] / counts_[j]);
      }
    }
    if (!empty.empty()) {
      std::vector<float> own(n_);
#pragma omp parallel for schedule(static) if (Parallel(blocks_.size()))
      for (std::size_t i = 0; i < n_; ++i) {
        own[i] = SquaredDistance(rows_.row(i), centers.row(labels_[i]).data(), dim_);
      }
      std::vector<std::size_t> order(n_);
      std::iota(order.begin(), order.end(), 0);
      const std::size_t take = std::min(empty.size(), n_);
      std::partial_sort(order.begin(), order.begin() + take, order.end(),
                        [&](std::size_t a, std::size_t b) {
                          return own[a] != own[b] ? own[a] > own[b] : a < b;
                        });
      for (std::size_t e = 0; e < take; ++e) {
        next.row(empty[e]) = ConstRowsMap(rows_.row(order[e]), 1, dim_);
      }
      bounds_valid_ = false;
    }
    for (std::size_t j = 0; j < k_; ++j) {
      moved_[j] = std::sqrt(SquaredDistance(next.row(j).data(), centers.row(j).data(), dim_));
    }
    centers = std::move(next);
  }

 private:
  // Slack on the bound test, far above float rounding in distances of ordinary magnitude.
  static constexpr float kBoundSlack = 1.0f + 1e-5f;

  struct Move {
    const float* x;
    std::size_t row;
    std::int32_t from, to;
  };

  std::size_t AssignAll(const Matrix& centers, const Eigen::VectorXf& center_norms) {
    struct Partial {
      std::vector<double> sums, counts, norm_sums;
      std::size_t changed = 0;
    };
    PerThread<Partial> partials(Partial{std::vector<double>(k_ * dim_), std::vector<double>(k_),
                                        std::vector<double>(k_)});
#pragma omp parallel if (Parallel(blocks_.size()))
    {
      Partial& part = partials.local();
      // A block's rows are summed per center in float while the block is in cache, then added
      // to the double totals once per block and center.
      std::vector<float> dots(kBlockRows * k_), best(kBlockRows), second(kBlockRows);
      std::vector<float> block_sums(k_ * dim_, 0.0f);
      std::vector<std::int32_t> block_labels(kBlockRows), touched;
      std::vector<char> is_touched(k_, 0);
      std::vector<const float*> pointers;
#pragma omp for schedule(static)
      for (std::size_t b = 0; b < blocks_.size(); ++b) {
        const RowSpan& block = blocks_[b];
        RowPointers(block.data, block.rows, dim_, pointers);
        NearestTwo(pointers.data(), block.rows, row_norms_.data() + block.first, centers,
                   center_norms.data(), block_labels.data(), best.data(), second.data(),
                   dots.data());
        for (std::size_t i = 0; i < block.rows; ++i) {
          const std::size_t row = block.first + i;
          const std::int32_t j = block_labels[i];
          const float w = Weight(weights_, row);
          if (labels_[row] != j) ++part.changed;
          labels_[row] = j;
          upper_[row] = std::sqrt(best[i]);
          lower_[row] = std::sqrt(second[i]);
          part.counts[j] += w;
          part.norm_sums[j] += w * exact_norms_[row];
          if (!is_touched[j]) {
            is_touched[j] = 1;
            touched.push_back(j);
          }
          AddScaled(block_sums.data() + j * dim_, block.data + i * dim_, w, dim_);
        }
        for (std::int32_t j : touched) {
          double* total = part.sums.data() + j * dim_;
          float* sum = block_sums.data() + j * dim_;
          for (std::size_t d = 0; d < dim_; ++d) total[d] += sum[d];
          std::fill_n(sum, dim_, 0.0f);
          is_touched[j] = 0;
        }
        touched.clear();
      }
    }
    std::fill(sums_.begin(), sums_.end(), 0.0);
    std::fill(counts_.begin(), counts_.end(), 0.0);
    std::fill(norm_sums_.begin(), norm_sums_.end(), 0.0);
    std::size_t changed = 0;
    for (const Partial& part : partials.parts()) {
      for (std::size_t i = 0; i < sums_.size(); ++i) sums_[i] += part.sums[i];
      for (std::size_t j = 0; j < k_; ++j) {
        counts_[j] += part.counts[j];
        norm_sums_[j] += part.norm_sums[j];
      }
      changed += part.changed;
    }
    return changed;
  }

  std::size_t AssignWithBounds(const Matrix& centers, const Eigen::VectorXf& center_norms) {
    // Half the distance from each center to its nearest other center: a row closer than that
    // to its own center is closer to it than to any other.
    std::vector<float> half_gap(k_, kInfinity);
    {
      std::vector<const float*> pointers;
      RowPointers(centers.data(), k_, dim_, pointers);
      std::vector<float> dots(k_ * k_);
      Dots(pointers.data(), k_, centers.data(), k_, dim_, dots.data());
      for (std::size_t a = 0; a < k_; ++a) {
        for (std::size_t b = 0; b < k_; ++b) {
          if (a == b) continue;
          const float sq = std::max(0.0f, center_norms[a] + center_norms[b] - 2 * dots[a * k_ + b]);
          half_gap[a] = std::min(half_gap[a], 0.5f * std::sqrt(sq));
        }
      }
    }
    // Every lower bound loosens by the largest move of a center other than the row's own.
    std::size_t top = 0;
    float second_move = 0;
    for (std::size_t j = 1; j < k_; ++j) {
      if (moved_[j] > moved_[top]) top = j;
    }
    for (std::size_t j = 0; j < k_; ++j) {
      if (j != top) second_move = std::max(second_move, moved_[j]);
    }
    const float top_move = moved_[top];

    PerThread<std::vector<Move>> moves({});
#pragma omp parallel if (Parallel(blocks_.size()))
    {
      std::vector<Move>& local = moves.local();
      std::vector<std::size_t> pending;
      std::vector<const float*> pointers;
      std::vector<float> norms, dots, best, second;
      std::vector<std::int32_t> nearest;
#pragma omp for schedule(static)
      for (std::size_t b = 0; b < blocks_.size(); ++b) {
        const RowSpan& block = blocks_[b];
        pending.clear();
        pointers.clear();
        norms.clear();
        for (std::size_t i = 0; i < block.rows; ++i) {
          const std::size_t row = block.first + i;
          const std::int32_t a = labels_[row];
          const float lower = lower_[row] - (static_cast<std::size_t>(a) == top ? second_move
                                                                                 : top_move);
          const float bound = std::max(half_gap[a], lower);
          lower_[row] = lower;
          upper_[row] += moved_[a];
          if (upper_[row] * kBoundSlack <= bound) continue;
          const float* x = block.data + i * dim_;
          upper_[row] = std::sqrt(SquaredDistance(x, centers.row(a).data(), dim_));
          if (upper_[row] * kBoundSlack <= bound) continue;
          pending.push_back(row);
          pointers.push_back(x);
          norms.push_back(row_norms_[row]);
        }
        if (pending.empty()) continue;
        const std::size_t m = pending.size();
        dots.resize(m * k_);
        best.resize(m);
        second.resize(m);
        nearest.resize(m);
        NearestTwo(pointers.data(), m, norms.data(), centers, center_norms.data(),
                   nearest.data(), best.data(), second.data(), dots.data());
        for (std::size_t p = 0; p < m; ++p) {
          const std::size_t row = pending[p];
          upper_[row] = std::sqrt(best[p]);
          lower_[row] = std::sqrt(second[p]);
          if (nearest[p] != labels_[row]) {
            local.push_back({pointers[p], row, labels_[row], nearest[p]});
            labels_[row] = nearest[p];
          }
        }
      }
    }
    std::vector<Move> all;
    for (auto& part : moves.parts()) all.insert(all.end(), part.begin(), part.end());
    ApplyMoves(all);
    return all.size();
  }

  // Moves each moved row's weight, sum and squared norm from its old center to its new one.
  // The sums are split by feature range over the threads, so each thread writes its own part.
  void ApplyMoves(const std::vector<Move>& moves) {
    for (const Move& move : moves) {
      const double w = Weight(weights_, move.row);
      counts_[move.from] -= w;
      counts_[move.to] += w;
      norm_sums_[move.from] -= w * exact_norms_[move.row];
      norm_sums_[move.to] += w * exact_norms_[move.row];
    }
    if (moves.empty()) return;
#pragma omp parallel if (Parallel(moves.size() / kBlockRows))
    {
      const std::size_t threads = omp_get_num_threads(), t = omp_get_thread_num();
      const std::size_t begin = dim_ * t / threads, end = dim_ * (t + 1) / threads;
      for (const Move& move : moves) {
        const double w = Weight(weights_, move.row);
        double* from = sums_.data() + move.from * dim_;
        double* to = sums_.data() + move.to * dim_;
        for (std::size_t d = begin; d < end; ++d) {
          from[d] -= w * move.x[d];
          to[d] += w * move.x[d];
        }
      }
    }
  }

  const RowStore& rows_;
  std::span<const float> weights_;
  const std::size_t n_, dim_, k_;
  const std::vector<RowSpan>& blocks_;
  const std::vector<float>& row_norms_;     // for the distance kernel
  const std::vector<double>& exact_norms_;  // for the center statistics
  std::vector<std::int32_t> labels_;
  std::vector<float> upper_, lower_;
  std::vector<double> sums_, counts_, norm_sums_;  // per center, under the current assignment
  std::vector<float> moved_;                       // how far each center moved last update
  bool bounds_valid_ = false;
};

}  // namespace

LloydSolver::LloydSolver(const RowStore& rows, std::span<const float> weights)
    : rows_(rows),
      weights_(weights),
      blocks_(rows.Blocks(kBlockRows)),
      row_norms_(AllRowNorms(rows, blocks_)),
      exact_norms_(rows.rows()) {
  // The center statistics use the squared norms in double: the inertia is their difference
  // with the other terms, and float norms would limit it to float precision.
#pragma omp parallel for schedule(static) if (Parallel(blocks_.size()))
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    const RowSpan& block = blocks_[b];
    Eigen::Map<Eigen::VectorXd>(exact_norms_.data() + block.first, block.rows) =
        ConstRowsMap(block.data, block.rows, rows.dim()).cast<double>().rowwise().squaredNorm();
  }
}

LloydResult LloydSolver::Run(Matrix init, const LloydOptions& options) const {
  LloydResult result;
  result.centers = std::move(init);
  if (rows_.rows() == 0 || result.centers.rows() == 0) return result;
  HamerlyLloyd lloyd(rows_, weights_, blocks_, row_norms_, exact_norms_, result.centers.rows());
  double previous = std::numeric_limits<double>::infinity();
  for (int iteration = 1;; ++iteration) {
    const std::size_t changed = lloyd.Assign(result.centers);
    result.inertia = lloyd.Inertia(result.centers);
    result.iterations = iteration;
    if (changed == 0 || (options.tol > 0 && iteration > 1 &&
                         previous - result.inertia <= options.tol * previous)) {
      result.converged = true;
      break;
    }
    if (iteration >= options.max_iter) break;
    previous = result.inertia;
    lloyd.Update(result.centers);
  }
  return result;
}

LloydResult Lloyd(const RowStore& rows, std::span<const float> weights, Matrix init,
                  const LloydOptions& options) {
  return LloydSolver(rows, weights).Run(std::move(init), options);
}

StreamingKMeans::StreamingKMeans(std::size_t num_centers, std::size_t dim, InitMethod init,
                                 std::int64_t half_life_rows, Rng& rng)
    : num_centers_(num_centers),
      dim_(dim),
      init_(init),
      decay_per_row_(half_life_rows > 0 ? std::exp2(-1.0 / static_cast<double>(half_life_rows))
                                        : 1.0),
      rng_(rng),
      seed_rows_(dim) {}

double StreamingKMeans::Update(const float* rows, std::size_t n) {
  if (seeded_) return Step(rows, n);
  seed_rows_.Append(rows, n);
  return seed_rows_.rows() >= num_centers_ ? Seed() : 0.0;
}

double StreamingKMeans::Finish() { return !seeded_ && seed_rows_.rows() > 0 ? Seed() : 0.0; }

double StreamingKMeans::Seed() {
  seeded_ = true;
  if (seed_rows_.rows() <= num_centers_) {
    // Too few rows for the requested number of centers: each row is a center of weight 1.
    num_centers_ = seed_rows_.rows();
    centers_.resize(num_centers_, dim_);
    for (std::size_t r = 0; r < num_centers_; ++r) {
      centers_.row(r) = ConstRowsMap(seed_rows_.row(r), 1, dim_);
    }
    counts_.assign(num_centers_, 1.0);
    seed_rows_.Clear();
    return 0.0;
  }
  centers_ = InitCenters(init_, seed_rows_, {}, num_centers_, rng_);
  counts_.assign(num_centers_, 0.0);
  double total = 0;
  for (const RowSpan& span : seed_rows_.Blocks(std::numeric_limits<std::size_t>::max())) {
    total += Step(span.data, span.rows);
  }
  seed_rows_.Clear();
  return total;
}

double StreamingKMeans::Step(const float* rows, std::size_t n) {
  const std::size_t k = num_centers_;
  labels_.resize(n);
  sq_dist_.resize(n);
  const Eigen::VectorXf center_norms = CenterNorms(centers_);
  const std::size_t num_blocks = (n + kBlockRows - 1) / kBlockRows;
#pragma omp parallel if (Parallel(num_blocks))
  {
    std::vector<float> dots(kBlockRows * k);
#pragma omp for schedule(static)
    for (std::size_t b = 0; b < num_blocks; ++b) {
      const std::size_t first = b * kBlockRows, count = std::min(kBlockRows, n - first);
      NearestCenters(rows + first * dim_, count, nullptr, centers_, center_norms.data(),
                     labels_.data() + first, sq_dist_.data() + first, dots.data());
    }
  }
  double total = 0;
  for (float d : sq_dist_) total += d;

  if (decay_per_row_ < 1.0) {
    const double factor = std::pow(decay_per_row_, static_cast<double>(n));
    for (double& count : counts_) count *= factor;
  }
  // Rows grouped by center (a counting sort), then each center moves to the running mean.
  std::vector<std::size_t> start(k + 1, 0), order(n);
  for (std::int32_t j : labels_) ++start[j + 1];
  for (std::size_t j = 0; j < k; ++j) start[j + 1] += start[j];
  {
    std::vector<std::size_t> next(start.begin(), start.end() - 1);
    for (std::size_t i = 0; i < n; ++i) order[next[labels_[i]]++] = i;
  }
#pragma omp parallel if (Parallel(num_blocks))
  {
    std::vector<double> sum(dim_);
#pragma omp for schedule(dynamic, 4)
    for (std::size_t j = 0; j < k; ++j) {
      if (start[j + 1] == start[j]) continue;
      std::fill(sum.begin(), sum.end(), 0.0);
      for (std::size_t p = start[j]; p < start[j + 1]; ++p) {
        const float* x = rows + order[p] * dim_;
        for (std::size_t d = 0; d < dim_; ++d) sum[d] += x[d];
      }
      const double before = counts_[j];
      const double after = before + static_cast<double>(start[j + 1] - start[j]);
      for (std::size_t d = 0; d < dim_; ++d) {
        centers_(j, d) = static_cast<float>((before * centers_(j, d) + sum[d]) / after);
      }
      counts_[j] = after;
    }
  }
  return total;
}

ReduceResult ReduceCenters(const Matrix& candidates, const std::vector<double>& counts,
                           std::size_t k, int trials, InitMethod init,
                           const LloydOptions& options, Rng& rng) {
  RowStore points(candidates.cols());
  std::vector<float> weights;
  std::vector<Eigen::Index> unused;
  for (Eigen::Index j = 0; j < candidates.rows(); ++j) {
    if (counts[j] > 0) {
      points.Append(candidates.row(j).data(), 1);
      weights.push_back(static_cast<float>(counts[j]));
    } else {
      unused.push_back(j);
    }
  }
  ReduceResult reduced;
  reduced.total_weight = std::accumulate(weights.begin(), weights.end(), 0.0);
  if (points.rows() <= k) {
    // No more distinct centers than asked for: they are the answer, padded with unused
    // candidates (rows of the data themselves) up to k.
    LloydResult all;
    all.centers.resize(k, candidates.cols());
    std::size_t c = 0;
    for (; c < points.rows(); ++c) {
      all.centers.row(c) = Eigen::Map<const Matrix>(points.row(c), 1, candidates.cols());
    }
    for (std::size_t u = 0; c < k && u < unused.size(); ++u, ++c) {
      all.centers.row(c) = candidates.row(unused[u]);
    }
    all.centers.conservativeResize(c, Eigen::NoChange);
    all.converged = true;
    reduced.trials.push_back(std::move(all));
    return reduced;
  }
  for (int t = 0; t < trials; ++t) {
    reduced.trials.push_back(
        Lloyd(points, weights, InitCenters(init, points, weights, k, rng), options));
    if (reduced.trials[t].inertia < reduced.trials[reduced.best].inertia) reduced.best = t;
  }
  return reduced;
}

}  // namespace hearth::algorithms::kmeans
