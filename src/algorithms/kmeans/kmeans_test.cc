#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "algorithms/kmeans/kmeans.h"
#include "algorithms/kmeans/kmeans_core.h"
#include "algorithms/kmeans/kmeans_model.h"
#include "algorithms/kmeans/kmeans_trainer.h"
#include "algorithms/mxnet_ndarray.h"
#include "algorithms/training_context.h"

namespace hearth::algorithms::kmeans {
namespace {

namespace fs = std::filesystem;

// Gaussian blobs: `per_blob` rows around each of `means` with standard deviation `sigma`.
RowStore Blobs(const Matrix& means, std::size_t per_blob, float sigma, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> noise(0.0f, sigma);
  const std::size_t dim = means.cols();
  std::vector<float> values;
  for (std::size_t i = 0; i < per_blob; ++i) {
    for (Eigen::Index b = 0; b < means.rows(); ++b) {  // interleaved, as a shuffled file would be
      for (std::size_t d = 0; d < dim; ++d) values.push_back(means(b, d) + noise(gen));
    }
  }
  RowStore rows(dim);
  rows.AppendChunk(std::move(values));
  return rows;
}

Matrix FourMeans() {
  Matrix means(4, 3);
  means << 0, 0, 0,  //
      10, 0, 0,      //
      0, 10, 0,      //
      0, 0, 10;
  return means;
}

RowStore Uniform(std::size_t n, std::size_t dim, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> values(n * dim);
  for (float& v : values) v = u(gen);
  RowStore rows(dim);
  // Several chunks, as mini-batches arrive.
  for (std::size_t first = 0; first < n; first += 700) {
    const std::size_t count = std::min<std::size_t>(700, n - first);
    rows.Append(values.data() + first * dim, count);
  }
  return rows;
}

// Plain Lloyd in double, the reference the fast path must reproduce.
struct Reference {
  std::vector<std::vector<double>> centers;
  std::vector<int> labels;
  double inertia = 0;
};

Reference Assign(const RowStore& rows, std::vector<std::vector<double>> centers) {
  Reference ref;
  ref.centers = std::move(centers);
  for (std::size_t i = 0; i < rows.rows(); ++i) {
    const float* x = rows.row(i);
    double best = std::numeric_limits<double>::infinity();
    int label = 0;
    for (std::size_t j = 0; j < ref.centers.size(); ++j) {
      double d = 0;
      for (std::size_t t = 0; t < rows.dim(); ++t) d += (x[t] - ref.centers[j][t]) * (x[t] - ref.centers[j][t]);
      if (d < best) best = d, label = static_cast<int>(j);
    }
    ref.labels.push_back(label);
    ref.inertia += best;
  }
  return ref;
}

std::vector<std::vector<double>> ToVectors(const Matrix& m) {
  std::vector<std::vector<double>> out(m.rows(), std::vector<double>(m.cols()));
  for (Eigen::Index j = 0; j < m.rows(); ++j) {
    for (Eigen::Index d = 0; d < m.cols(); ++d) out[j][d] = m(j, d);
  }
  return out;
}

std::vector<std::vector<double>> Means(const RowStore& rows, const Reference& ref) {
  std::vector<std::vector<double>> sums(ref.centers.size(), std::vector<double>(rows.dim(), 0.0));
  std::vector<double> counts(ref.centers.size(), 0.0);
  for (std::size_t i = 0; i < rows.rows(); ++i) {
    for (std::size_t t = 0; t < rows.dim(); ++t) sums[ref.labels[i]][t] += rows.row(i)[t];
    counts[ref.labels[i]] += 1;
  }
  for (std::size_t j = 0; j < sums.size(); ++j) {
    for (double& v : sums[j]) v = counts[j] > 0 ? v / counts[j] : 0;
    if (counts[j] == 0) sums[j] = ref.centers[j];
  }
  return sums;
}

// Distance from `expected` to the nearest row of `centers`.
double NearestGap(const Matrix& centers, const Eigen::RowVectorXf& expected) {
  double best = std::numeric_limits<double>::infinity();
  for (Eigen::Index j = 0; j < centers.rows(); ++j) {
    best = std::min<double>(best, (centers.row(j) - expected).norm());
  }
  return best;
}

TEST(KMeansLloyd, RecoversTheMeansOfWellSeparatedBlobs) {
  const Matrix means = FourMeans();
  const RowStore rows = Blobs(means, 500, 0.5f, 1);
  Rng rng(7);
  LloydResult result = Lloyd(rows, {}, InitKMeansPlusPlus(rows, {}, 4, rng), {.max_iter = 100, .tol = 0});
  ASSERT_EQ(result.centers.rows(), 4);
  EXPECT_TRUE(result.converged);
  for (Eigen::Index b = 0; b < means.rows(); ++b) {
    EXPECT_LT(NearestGap(result.centers, means.row(b)), 0.1) << "blob " << b;
  }
  // Each blob contributes about n * dim * sigma^2.
  EXPECT_NEAR(result.inertia / (2000 * 3 * 0.25), 1.0, 0.1);
}

TEST(KMeansLloyd, ReproducesPlainLloydIterationByIteration) {
  // Overlapping data, so that many rows change cluster in every early iteration and the
  // bounds that skip rows are exercised.
  const RowStore rows = Uniform(3000, 6, 3);
  Rng rng(11);
  const Matrix init = InitRandom(rows, {}, 7, rng);
  for (int iterations : {1, 2, 3, 5, 8}) {
    const LloydResult fast = Lloyd(rows, {}, init, {.max_iter = iterations, .tol = 0});
    Reference ref = Assign(rows, ToVectors(init));
    for (int i = 1; i < iterations; ++i) ref = Assign(rows, Means(rows, ref));
    EXPECT_EQ(fast.iterations, iterations);
    EXPECT_NEAR(fast.inertia, ref.inertia, 1e-4 * ref.inertia) << iterations << " iterations";
    for (std::size_t j = 0; j < ref.centers.size(); ++j) {
      for (std::size_t d = 0; d < rows.dim(); ++d) {
        EXPECT_NEAR(fast.centers(j, d), ref.centers[j][d], 1e-4) << iterations << " iterations";
      }
    }
  }
}

TEST(KMeansLloyd, ConvergesToAFixedPointWhereEveryCenterIsTheMeanOfItsRows) {
  const RowStore rows = Uniform(4000, 5, 4);
  Rng rng(2);
  const LloydResult result =
      Lloyd(rows, {}, InitKMeansPlusPlus(rows, {}, 9, rng), {.max_iter = 500, .tol = 0});
  ASSERT_TRUE(result.converged);
  const Reference ref = Assign(rows, ToVectors(result.centers));
  const auto means = Means(rows, ref);
  for (std::size_t j = 0; j < means.size(); ++j) {
    for (std::size_t d = 0; d < rows.dim(); ++d) EXPECT_NEAR(result.centers(j, d), means[j][d], 1e-5);
  }
  EXPECT_NEAR(result.inertia, ref.inertia, 1e-6 * ref.inertia);
  EXPECT_NEAR(Inertia(rows, {}, result.centers), ref.inertia, 1e-5 * ref.inertia);
}

TEST(KMeansLloyd, ToleranceStopsEarlyAndMaxIterCaps) {
  const RowStore rows = Uniform(3000, 4, 5);
  Rng rng(3);
  const Matrix init = InitRandom(rows, {}, 6, rng);
  const LloydResult exact = Lloyd(rows, {}, init, {.max_iter = 1000, .tol = 0});
  const LloydResult loose = Lloyd(rows, {}, init, {.max_iter = 1000, .tol = 0.05});
  const LloydResult capped = Lloyd(rows, {}, init, {.max_iter = 2, .tol = 0});
  EXPECT_TRUE(exact.converged);
  EXPECT_TRUE(loose.converged);
  EXPECT_LT(loose.iterations, exact.iterations);
  EXPECT_GE(loose.inertia, exact.inertia);
  EXPECT_EQ(capped.iterations, 2);
  EXPECT_FALSE(capped.converged);
  EXPECT_GT(capped.inertia, exact.inertia);
}

TEST(KMeansLloyd, MovesAnEmptyCenterToTheFarthestRow) {
  const Matrix means = FourMeans();
  const RowStore rows = Blobs(means, 200, 0.3f, 9);
  // Two centers on the same spot: one of them gets no row on the first pass.
  Matrix init(4, 3);
  init << 0, 0, 0,  //
      0, 0, 0,      //
      10, 0, 0,     //
      0, 10, 0;
  const LloydResult result = Lloyd(rows, {}, init, {.max_iter = 100, .tol = 0});
  for (Eigen::Index b = 0; b < means.rows(); ++b) {
    EXPECT_LT(NearestGap(result.centers, means.row(b)), 0.1) << "blob " << b;
  }
}

TEST(KMeansLloyd, AWeightCountsAsThatManyCopiesOfTheRow) {
  const RowStore rows = Uniform(200, 3, 6);
  std::vector<float> weights(rows.rows());
  RowStore repeated(3);
  for (std::size_t i = 0; i < rows.rows(); ++i) {
    weights[i] = static_cast<float>(1 + i % 3);
    for (std::size_t c = 0; c < weights[i]; ++c) repeated.Append(rows.row(i), 1);
  }
  Rng rng(1);
  const Matrix init = InitRandom(rows, {}, 4, rng);
  const LloydResult weighted = Lloyd(rows, weights, init, {.max_iter = 100, .tol = 0});
  const LloydResult copies = Lloyd(repeated, {}, init, {.max_iter = 100, .tol = 0});
  EXPECT_NEAR(weighted.inertia, copies.inertia, 1e-4 * copies.inertia);
  EXPECT_LT((weighted.centers - copies.centers).cwiseAbs().maxCoeff(), 1e-5);
}

TEST(KMeansInit, RandomPicksDistinctRowsOfTheData) {
  const RowStore rows = Uniform(50, 2, 8);
  Rng rng(5);
  const Matrix centers = InitRandom(rows, {}, 50, rng);
  std::vector<std::size_t> picked;
  for (Eigen::Index c = 0; c < centers.rows(); ++c) {
    for (std::size_t i = 0; i < rows.rows(); ++i) {
      if (std::memcmp(rows.row(i), centers.row(c).data(), 2 * sizeof(float)) == 0) picked.push_back(i);
    }
  }
  std::sort(picked.begin(), picked.end());
  EXPECT_EQ(picked.size(), 50u);
  EXPECT_EQ(std::unique(picked.begin(), picked.end()), picked.end());
}

TEST(KMeansInit, KMeansPlusPlusSeedsFarBetterThanRandomOnSkewedBlobs) {
  // One big blob and seven small far-away ones: uniform seeding mostly lands in the big blob.
  Matrix means(8, 2);
  for (int b = 0; b < 8; ++b) means.row(b) << 20.0f * b, 0.0f;
  RowStore rows = Blobs(means.topRows(1), 3000, 1.0f, 1);
  const RowStore small = Blobs(means.bottomRows(7), 30, 1.0f, 2);
  for (const RowSpan& span : small.Blocks(1000)) rows.Append(span.data, span.rows);
  double plus_plus = 0, random = 0;
  for (std::uint64_t seed = 0; seed < 10; ++seed) {
    Rng a(seed), b(seed);
    plus_plus += Inertia(rows, {}, InitKMeansPlusPlus(rows, {}, 8, a));
    random += Inertia(rows, {}, InitRandom(rows, {}, 8, b));
  }
  EXPECT_LT(plus_plus * 5, random);
}

TEST(KMeansInit, SameSeedSameCenters) {
  const RowStore rows = Uniform(1000, 4, 9);
  Rng a(42), b(42), c(43);
  const Matrix first = InitKMeansPlusPlus(rows, {}, 5, a);
  EXPECT_EQ(first, InitKMeansPlusPlus(rows, {}, 5, b));
  EXPECT_NE(first, InitKMeansPlusPlus(rows, {}, 5, c));
}

TEST(StreamingKMeans, RunningMeanWithoutDecayAndRecentMeanWithHalfLife) {
  std::vector<float> low(1000, 0.0f), high(1000, 10.0f);
  for (std::int64_t half_life : {0, 50}) {
    Rng rng(1);
    StreamingKMeans stream(1, 1, InitMethod::kRandom, half_life, rng);
    for (std::size_t i = 0; i < 1000; i += 100) stream.Update(low.data() + i, 100);
    for (std::size_t i = 0; i < 1000; i += 100) stream.Update(high.data() + i, 100);
    if (half_life == 0) {
      EXPECT_NEAR(stream.centers()(0, 0), 5.0f, 1e-4);
      EXPECT_DOUBLE_EQ(stream.counts()[0], 2000.0);
    } else {
      EXPECT_GT(stream.centers()(0, 0), 9.9f);
      EXPECT_LT(stream.counts()[0], 200.0);
    }
  }
}

TEST(StreamingKMeans, ReportsSquaredDistancesBeforeEachUpdate) {
  std::vector<float> rows = {0, 0, 2, 0, 4, 0};  // three 2-D rows
  Rng rng(1);
  StreamingKMeans stream(1, 2, InitMethod::kRandom, 0, rng);
  stream.Update(rows.data(), 1);  // seeds on (0, 0): distance 0
  EXPECT_TRUE(stream.seeded());
  EXPECT_DOUBLE_EQ(stream.Update(rows.data() + 2, 2), 4.0 + 16.0);
  EXPECT_NEAR(stream.centers()(0, 0), 2.0f, 1e-6);  // mean of 0, 2, 4
}

TEST(StreamingKMeans, FewerRowsThanCentersMakesEachRowACenter) {
  std::vector<float> rows = {1, 2, 3};
  Rng rng(1);
  StreamingKMeans stream(10, 1, InitMethod::kKMeansPlusPlus, 0, rng);
  EXPECT_EQ(stream.Update(rows.data(), 3), 0.0);
  EXPECT_FALSE(stream.seeded());
  stream.Finish();
  ASSERT_EQ(stream.centers().rows(), 3);
  EXPECT_EQ(stream.counts(), (std::vector<double>{1, 1, 1}));
}

TEST(ReduceCenters, KeepsTheBestOfTheTrials) {
  const RowStore rows = Uniform(300, 2, 12);
  Matrix candidates(rows.rows(), 2);
  for (std::size_t i = 0; i < rows.rows(); ++i) candidates.row(i) << rows.row(i)[0], rows.row(i)[1];
  std::vector<double> counts(rows.rows(), 2.0);
  counts[0] = 0;  // a center that never absorbed a row is left out
  Rng rng(4);
  const ReduceResult reduced =
      ReduceCenters(candidates, counts, 5, 6, InitMethod::kRandom, {.max_iter = 100, .tol = 0}, rng);
  ASSERT_EQ(reduced.trials.size(), 6u);
  for (const LloydResult& trial : reduced.trials) {
    EXPECT_LE(reduced.trials[reduced.best].inertia, trial.inertia);
    EXPECT_EQ(trial.centers.rows(), 5);
  }
  EXPECT_DOUBLE_EQ(reduced.total_weight, 2.0 * 299);
}

// A channel backed by rows in memory, served in the batch size the trainer asks for.
class MemorySource final : public RowSource {
 public:
  MemorySource(std::vector<float> values, std::size_t cols, bool sparse = false)
      : values_(std::move(values)), cols_(cols), sparse_(sparse) {}
  Result<std::unique_ptr<data::RecordReader>> Open(int epoch) override {
    ++opens;
    return std::unique_ptr<data::RecordReader>(new Reader(*this));
  }
  std::string_view name() const override { return "train"; }
  bool csv_label_column() const override { return csv_label; }

  int opens = 0;
  bool csv_label = false;

 private:
  class Reader final : public data::RecordReader {
   public:
    explicit Reader(const MemorySource& source) : source_(source) {}
    Result<bool> Next(std::size_t max_rows, data::Batch* out) override {
      out->Clear();
      const std::size_t total = source_.values_.size() / source_.cols_;
      const std::size_t n = std::min(max_rows, total - next_);
      out->cols = source_.cols_;
      out->rows = n;
      out->sparse = source_.sparse_;
      const float* first = source_.values_.data() + next_ * source_.cols_;
      if (source_.sparse_) {
        out->row_offsets.assign(1, 0);
        for (std::size_t r = 0; r < n; ++r) {
          for (std::size_t c = 0; c < source_.cols_; ++c) {
            if (first[r * source_.cols_ + c] != 0) {
              out->indices.push_back(static_cast<std::uint32_t>(c));
              out->values.push_back(first[r * source_.cols_ + c]);
            }
          }
          out->row_offsets.push_back(out->values.size());
        }
      } else {
        out->dense.assign(first, first + n * source_.cols_);
      }
      next_ += n;
      return n > 0;
    }

   private:
    const MemorySource& source_;
    std::size_t next_ = 0;
  };

  std::vector<float> values_;
  std::size_t cols_;
  bool sparse_;
};

std::vector<float> Flatten(const RowStore& rows) {
  std::vector<float> out;
  for (const RowSpan& span : rows.Blocks(1 << 20)) out.insert(out.end(), span.data, span.data + span.rows * rows.dim());
  return out;
}

KMeansConfig BlobConfig() {
  KMeansConfig config;
  config.feature_dim = 3;
  config.k = 4;
  config.mini_batch_size = 300;
  config.init_method = InitMethod::kKMeansPlusPlus;
  config.memory_budget_bytes = 1 << 30;
  return config;
}

TEST(TrainKMeans, InMemoryRunEndsAtTheFullLloydOptimum) {
  const Matrix means = FourMeans();
  const RowStore rows = Blobs(means, 500, 0.5f, 21);
  MemorySource source(Flatten(rows), 3);
  std::vector<std::pair<double, std::optional<int>>> reported;
  TrainEvents events;
  events.train_msd = [&](double msd, std::optional<int> epoch) { reported.push_back({msd, epoch}); };
  KMeansConfig config = BlobConfig();
  config.epochs = 3;
  config.local_lloyd.tol = 0;
  auto result = TrainKMeans(config, source, events);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_TRUE(result->in_memory);
  EXPECT_EQ(result->rows, 2000u);
  EXPECT_EQ(source.opens, 1);  // later passes read the rows kept in memory
  for (Eigen::Index b = 0; b < means.rows(); ++b) {
    EXPECT_LT(NearestGap(result->centers, means.row(b)), 0.1);
  }
  const Reference ref = Assign(rows, ToVectors(result->centers));
  EXPECT_NEAR(result->train_msd, ref.inertia / 2000, 1e-6 * ref.inertia);
  ASSERT_EQ(reported.size(), 4u);  // one per pass, then the final value
  EXPECT_EQ(reported[2].second, 2);
  EXPECT_FALSE(reported[3].second.has_value());
  EXPECT_DOUBLE_EQ(reported[3].first, result->train_msd);
}

TEST(TrainKMeans, StreamsWhenTheDataDoesNotFitTheBudget) {
  const Matrix means = FourMeans();
  const RowStore rows = Blobs(means, 500, 0.5f, 22);
  MemorySource source(Flatten(rows), 3);
  KMeansConfig config = BlobConfig();
  config.epochs = 2;
  config.memory_budget_bytes = 1000;  // not even one batch
  auto result = TrainKMeans(config, source, {});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_FALSE(result->in_memory);
  EXPECT_EQ(source.opens, 2);
  for (Eigen::Index b = 0; b < means.rows(); ++b) {
    EXPECT_LT(NearestGap(result->centers, means.row(b)), 0.2);
  }
  EXPECT_NEAR(result->train_msd, 3 * 0.25, 0.1);
}

TEST(TrainKMeans, SparseRowsAreDensifiedToFeatureDim) {
  const RowStore rows = Blobs(FourMeans(), 100, 0.5f, 23);
  MemorySource dense(Flatten(rows), 3), sparse(Flatten(rows), 3, /*sparse=*/true);
  auto a = TrainKMeans(BlobConfig(), dense, {});
  auto b = TrainKMeans(BlobConfig(), sparse, {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->centers, b->centers);
}

TEST(TrainKMeans, RejectsRowsOfTheWrongWidthNamingBothWidths) {
  MemorySource source(std::vector<float>(40, 1.0f), 4);
  source.csv_label = true;
  auto result = TrainKMeans(BlobConfig(), source, {});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("train channel's records have 4 features but feature_dim is 3"),
            std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find("text/csv;label_size=0"), std::string::npos);
}

TEST(TrainKMeans, RejectsFewerRowsThanK) {
  MemorySource source(std::vector<float>(9, 1.0f), 3);
  auto result = TrainKMeans(BlobConfig(), source, {});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().message(), "The train channel has 3 records, fewer than k = 4.");
}

TEST(EvaluateCenters, SumsAndAveragesSquaredDistances) {
  Matrix centers(2, 2);
  centers << 0, 0,  //
      10, 0;
  MemorySource source({1, 0, 0, 2, 9, 0, 13, 4}, 2);  // distances^2: 1, 4, 1, 25
  auto evaluation = EvaluateCenters(centers, source, 3);
  ASSERT_TRUE(evaluation.ok());
  EXPECT_EQ(evaluation->rows, 4u);
  EXPECT_NEAR(evaluation->ssd, 31.0, 1e-5);
  EXPECT_NEAR(evaluation->msd(), 7.75, 1e-6);
}

template <typename T>
T At(const std::string& bytes, std::size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

TEST(KMeansModel, WritesTheMxnetNdarrayListLayout) {
  Matrix centers(2, 3);
  centers << 1, 2, 3,  //
      4, 5, 6;
  const std::string bytes = EncodeCenters(centers);
  ASSERT_EQ(bytes.size(), 24u + 8 + 4 + 16 + 8 + 4 + 6 * 4 + 8);
  EXPECT_EQ(At<std::uint64_t>(bytes, 0), 0x112u);       // list magic
  EXPECT_EQ(At<std::uint64_t>(bytes, 8), 0u);           // reserved
  EXPECT_EQ(At<std::uint64_t>(bytes, 16), 1u);          // one array
  EXPECT_EQ(At<std::uint32_t>(bytes, 24), 0xF993FAC9u);  // NDArray v2
  EXPECT_EQ(At<std::int32_t>(bytes, 28), 0);            // dense storage
  EXPECT_EQ(At<std::uint32_t>(bytes, 32), 2u);          // ndim
  EXPECT_EQ(At<std::int64_t>(bytes, 36), 2);
  EXPECT_EQ(At<std::int64_t>(bytes, 44), 3);
  EXPECT_EQ(At<std::int32_t>(bytes, 52), 1);  // cpu
  EXPECT_EQ(At<std::int32_t>(bytes, 56), 0);  // device 0
  EXPECT_EQ(At<std::int32_t>(bytes, 60), 0);  // float32
  EXPECT_EQ(At<float>(bytes, 64), 1.0f);
  EXPECT_EQ(At<float>(bytes, 64 + 5 * 4), 6.0f);
  EXPECT_EQ(At<std::uint64_t>(bytes, 88), 0u);  // no names
}

TEST(KMeansModel, SavesAndLoadsModelAlgo1) {
  const fs::path dir = fs::path(::testing::TempDir()) / "kmeans_model_round_trip";
  fs::remove_all(dir);
  fs::create_directories(dir);
  Matrix centers = Matrix::Random(5, 7);
  ASSERT_TRUE(KMeansModel(centers).Save(dir, "algo-1").ok());
  EXPECT_TRUE(fs::exists(dir / "model_algo-1"));
  auto loaded = KMeansModel::Load(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->centers(), centers);
  EXPECT_EQ((*loaded)->feature_dim(), 7u);

  fs::remove(dir / "model_algo-1");
  EXPECT_EQ(KMeansModel::Load(dir).status().code(), StatusCode::kNotFound);
}

TEST(KMeansModel, DecodesFloat64AndVersion1Arrays) {
  // MXNet's v1 layout (no storage type) with float64 values, as older MXNet wrote it.
  std::string bytes;
  auto put = [&](auto v) { bytes.append(reinterpret_cast<const char*>(&v), sizeof v); };
  put(std::uint64_t{0x112});
  put(std::uint64_t{0});
  put(std::uint64_t{1});
  put(std::uint32_t{0xF993FAC8});
  put(std::uint32_t{2});
  put(std::int64_t{1});
  put(std::int64_t{2});
  put(std::int32_t{1});
  put(std::int32_t{0});
  put(std::int32_t{1});  // float64
  put(2.5);
  put(-1.0);
  put(std::uint64_t{0});
  auto centers = DecodeCenters(bytes);
  ASSERT_TRUE(centers.ok()) << centers.status().ToString();
  EXPECT_EQ((*centers)(0, 0), 2.5f);
  EXPECT_EQ((*centers)(0, 1), -1.0f);
}

TEST(KMeansModel, RejectsMalformedFiles) {
  Matrix centers = Matrix::Ones(2, 2);
  const std::string good = EncodeCenters(centers);
  EXPECT_FALSE(DecodeCenters(good.substr(0, 70)).ok());  // truncated inside the values
  EXPECT_FALSE(DecodeCenters("").ok());
  std::string wrong_magic = good;
  wrong_magic[0] = 0x13;
  EXPECT_NE(DecodeCenters(wrong_magic).status().message().find("not an MXNet NDArray file"),
            std::string::npos);
  const std::string three_d = EncodeNDArrayList({{"", {1, 2, 2}, {1, 2, 3, 4}}});
  EXPECT_NE(DecodeCenters(three_d).status().message().find("3 dimensions"), std::string::npos);
}

TEST(KMeansModel, PredictsClosestClusterAndEuclideanDistance) {
  Matrix centers(3, 2);
  centers << 0, 0,  //
      10, 0,        //
      0, 10;
  const KMeansModel model(centers);
  data::Batch rows;
  rows.rows = 3;
  rows.cols = 2;
  rows.dense = {1, 1, 13, 4, 0.5f, 9};
  auto predictions = model.Predict(rows);
  ASSERT_TRUE(predictions.ok()) << predictions.status().ToString();
  ASSERT_EQ(predictions->columns.size(), 2u);
  const auto& cluster = predictions->columns[0];
  const auto& distance = predictions->columns[1];
  EXPECT_EQ(predictions->envelope, "predictions");
  EXPECT_EQ(cluster.name, "closest_cluster");
  EXPECT_TRUE(cluster.integral);
  EXPECT_EQ(distance.name, "distance_to_cluster");
  EXPECT_EQ(cluster.values, (std::vector<float>{0, 1, 2}));
  EXPECT_NEAR(distance.values[0], std::sqrt(2.0f), 1e-6);
  EXPECT_NEAR(distance.values[1], 5.0f, 1e-6);
  EXPECT_NEAR(distance.values[2], std::sqrt(1.25f), 1e-6);

  data::Batch sparse;  // row (13, 4) given sparsely, with a shorter declared width
  sparse.sparse = true;
  sparse.rows = 1;
  sparse.cols = 1;
  sparse.row_offsets = {0, 1};
  sparse.indices = {0};
  sparse.values = {13};
  auto from_sparse = model.Predict(sparse);
  ASSERT_TRUE(from_sparse.ok());
  EXPECT_EQ(from_sparse->columns[0].values[0], 1.0f);
  EXPECT_NEAR(from_sparse->columns[1].values[0], 3.0f, 1e-6);

  data::Batch wide;
  wide.rows = 1;
  wide.cols = 3;
  wide.dense = {1, 2, 3};
  const auto status = model.Predict(wide).status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("3 features but the model's feature_dim is 2"), std::string::npos);
}

TEST(KMeansModel, LargeBatchesMatchTheBruteForceAnswer) {
  const RowStore rows = Uniform(10000, 8, 30);
  Rng rng(3);
  const Matrix centers = InitRandom(rows, {}, 12, rng);
  data::Batch batch;
  batch.rows = rows.rows();
  batch.cols = 8;
  batch.dense = Flatten(rows);
  auto predictions = KMeansModel(centers).Predict(batch);
  ASSERT_TRUE(predictions.ok());
  const Reference ref = Assign(rows, ToVectors(centers));
  for (std::size_t i = 0; i < rows.rows(); ++i) {
    ASSERT_EQ(predictions->columns[0].values[i], static_cast<float>(ref.labels[i])) << i;
  }
}

// Training through the Algorithm and a TrainingContext over an /opt/ml-style directory.
class KMeansAlgorithmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ml_ = fs::path(::testing::TempDir()) /
          ("kmeans_algo_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(ml_);
    fs::create_directories(ml_ / "input" / "config");
    fs::create_directories(ml_ / "model");
    fs::create_directories(ml_ / "output");
  }

  void WriteConfig(const std::string& hyperparameters, const std::string& channels) {
    std::ofstream(ml_ / "input" / "config" / "hyperparameters.json") << hyperparameters;
    std::ofstream(ml_ / "input" / "config" / "inputdataconfig.json") << channels;
    std::ofstream(ml_ / "input" / "config" / "resourceconfig.json")
        << R"({"current_host": "algo-1", "hosts": ["algo-1"]})";
  }

  void WriteCsv(const std::string& channel, const RowStore& rows) {
    fs::create_directories(ml_ / "input" / "data" / channel);
    std::ofstream out(ml_ / "input" / "data" / channel / "part-0.csv");
    for (std::size_t i = 0; i < rows.rows(); ++i) {
      for (std::size_t d = 0; d < rows.dim(); ++d) out << (d ? "," : "") << rows.row(i)[d];
      out << "\n";
    }
  }

  // Runs Train; returns its status and what it printed.
  std::pair<Status, std::string> Train() {
    const Algorithm& algorithm = KMeansAlgorithm();
    auto ctx = TrainingContext::LoadFrom(ml_, algorithm.default_content_type());
    if (!ctx.ok()) return {ctx.status(), ""};
    auto hps = Hyperparameters::Parse(algorithm.hyperparameter_specs(), (*ctx)->raw_hyperparameters());
    if (!hps.ok()) return {hps.status(), ""};
    ::testing::internal::CaptureStdout();
    Status status = algorithm.Train(**ctx, *hps);
    return {status, ::testing::internal::GetCapturedStdout()};
  }

  fs::path ml_;
};

TEST_F(KMeansAlgorithmTest, TrainsFromCsvWritesModelAlgo1AndReportsTestMetrics) {
  const Matrix means = FourMeans();
  WriteCsv("train", Blobs(means, 250, 0.5f, 40));
  WriteCsv("test", Blobs(means, 50, 0.5f, 41));
  WriteConfig(R"({"feature_dim": "3", "k": "4", "mini_batch_size": "200", "init_method": "kmeans++",
                  "eval_metrics": "[\"msd\", \"ssd\"]", "force_dense": "True"})",
              R"({"train": {"ContentType": "text/csv;label_size=0"},
                  "test": {"ContentType": "text/csv;label_size=0"}})");
  auto [status, output] = Train();
  ASSERT_TRUE(status.ok()) << status.ToString();
  auto model = KMeansAlgorithm().LoadModel(ml_ / "model");
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ((*model)->feature_dim(), 3u);
  EXPECT_TRUE(fs::exists(ml_ / "model" / "model_algo-1"));
  EXPECT_NE(output.find("#quality_metric: host=algo-1, test msd <score>="), std::string::npos) << output;
  EXPECT_NE(output.find("#quality_metric: host=algo-1, test ssd <score>="), std::string::npos);
  EXPECT_NE(output.find("#quality_metric: host=algo-1, epoch=0, train msd <score>="), std::string::npos);
  EXPECT_NE(output.find("'extra_center_factor' was set to 'auto', evaluated to 10."), std::string::npos);
  // test msd of blobs with sigma 0.5 in 3-D: about 3 * 0.25.
  const std::size_t at = output.find("test msd <score>=");
  EXPECT_NEAR(std::stod(output.substr(at + 17)), 0.75, 0.15);
}

TEST_F(KMeansAlgorithmTest, PlainCsvReadsALabelColumnAndExplainsTheMismatch) {
  WriteCsv("train", Blobs(FourMeans(), 10, 0.5f, 42));
  WriteConfig(R"({"feature_dim": "3", "k": "2"})", R"({"train": {"ContentType": "text/csv"}})");
  auto [status, output] = Train();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("records have 2 features but feature_dim is 3"), std::string::npos)
      << status.message();
  EXPECT_NE(status.message().find("label_size=0"), std::string::npos);
}

TEST_F(KMeansAlgorithmTest, RejectsAChannelOtherThanTrainAndTest) {
  WriteCsv("train", Blobs(FourMeans(), 10, 0.5f, 43));
  WriteConfig(R"({"feature_dim": "3", "k": "2"})",
              R"({"train": {"ContentType": "text/csv;label_size=0"}, "validation": {}})");
  auto [status, output] = Train();
  EXPECT_NE(status.message().find("got a channel 'validation'"), std::string::npos) << status.message();
}

TEST_F(KMeansAlgorithmTest, RejectsABadEvalMetricsList) {
  WriteCsv("train", Blobs(FourMeans(), 10, 0.5f, 44));
  WriteConfig(R"({"feature_dim": "3", "k": "2", "eval_metrics": "[\"msd\", \"rmse\"]"})",
              R"({"train": {"ContentType": "text/csv;label_size=0"}})");
  auto [status, output] = Train();
  EXPECT_NE(status.message().find("Hyperparameter 'eval_metrics'"), std::string::npos) << status.message();
}

TEST(KMeansHyperparameters, DefaultsAndRangesAreSageMakers) {
  const auto& specs = KMeansAlgorithm().hyperparameter_specs();
  auto hps = Hyperparameters::Parse(specs, {{"feature_dim", "784"}, {"k", "10"}, {"_kvstore", "dist"}});
  ASSERT_TRUE(hps.ok()) << hps.status().ToString();
  EXPECT_EQ(hps->Int("mini_batch_size"), 5000);
  EXPECT_EQ(hps->Int("epochs"), 1);
  EXPECT_EQ(hps->String("init_method"), "random");
  EXPECT_TRUE(hps->IsAuto("extra_center_factor"));
  EXPECT_EQ(hps->Int("local_lloyd_max_iter"), 300);
  EXPECT_DOUBLE_EQ(hps->Float("local_lloyd_tol"), 0.0001);
  EXPECT_TRUE(hps->IsAuto("local_lloyd_num_trials"));
  EXPECT_EQ(hps->String("local_lloyd_init_method"), "kmeans++");
  EXPECT_EQ(hps->Int("half_life_time_size"), 0);
  EXPECT_EQ(hps->String("eval_metrics"), R"(["msd"])");

  auto missing_k = Hyperparameters::Parse(specs, {{"feature_dim", "3"}});
  EXPECT_NE(missing_k.status().message().find("'k'"), std::string::npos);
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"k", "0"}, {"local_lloyd_tol", "1.5"}, {"init_method", "kmeans||"},
           {"half_life_time_size", "-1"}, {"extra_center_factor", "0"}}) {
    std::map<std::string, std::string> raw = {{"feature_dim", "3"}, {"k", "2"}};
    raw[name] = value;
    auto bad = Hyperparameters::Parse(specs, raw);
    ASSERT_FALSE(bad.ok()) << name;
    EXPECT_NE(bad.status().message().find("'" + name + "'"), std::string::npos) << bad.status().message();
  }
}

TEST(KMeansAlgorithm, DescribesItselfAsSageMakersKMeans) {
  const Algorithm& algorithm = KMeansAlgorithm();
  EXPECT_EQ(algorithm.name(), "kmeans");
  EXPECT_EQ(algorithm.repositories(), std::vector<std::string>{"kmeans"});
  std::vector<std::string> names;
  for (const auto& metric : algorithm.metric_definitions()) names.push_back(metric.name);
  EXPECT_EQ(names, (std::vector<std::string>{"test:msd", "test:ssd", "train:msd"}));
  EXPECT_EQ(algorithm.default_content_type(), "application/x-recordio-protobuf");
}

}  // namespace
}  // namespace hearth::algorithms::kmeans
