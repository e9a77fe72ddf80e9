#include "algorithms/pca/pca.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Dense>
#include <Eigen/SVD>
#include <gtest/gtest.h>

#include "algorithms/hyperparameters.h"
#include "algorithms/mxnet_ndarray.h"
#include "algorithms/pca/block_products.h"
#include "algorithms/pca/pca_solver.h"
#include "algorithms/training_context.h"
#include "data/batch.h"
#include "data/recordio_protobuf.h"

namespace hearth::algorithms::pca {
namespace {

namespace fs = std::filesystem;
using Eigen::MatrixXd;
using Eigen::VectorXd;
using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Rows x = mean + z·diag(scales)·Rᵀ + noise: principal axes are R's columns, variances
// scales², a spectrum we choose.
struct Synthetic {
  RowMajorF rows;
  MatrixXd axes;  // dim × dim orthogonal
  VectorXd mean;
};

Synthetic MakeSynthetic(std::size_t n, const VectorXd& scales, double offset, unsigned seed) {
  const Eigen::Index dim = scales.size();
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  MatrixXd g(dim, dim);
  for (Eigen::Index i = 0; i < g.size(); ++i) g.data()[i] = normal(rng);
  Synthetic s;
  s.axes = Eigen::HouseholderQR<MatrixXd>(g).householderQ();
  s.mean = VectorXd::Constant(dim, offset) + VectorXd::LinSpaced(dim, 0, 1);
  s.rows.resize(n, dim);
  VectorXd z(dim);
  for (std::size_t r = 0; r < n; ++r) {
    for (Eigen::Index j = 0; j < dim; ++j) z(j) = normal(rng) * scales(j);
    s.rows.row(r) = (s.mean + s.axes * z).cast<float>().transpose();
  }
  return s;
}

// Exact reference: SVD of the (centred) data in float64.
struct Reference {
  VectorXd eigenvalues;  // squared singular values, largest first
  MatrixXd components;   // right singular vectors
  double total = 0;
};

Reference ExactPca(const RowMajorF& rows, bool subtract_mean) {
  MatrixXd x = rows.cast<double>();
  if (subtract_mean) x.rowwise() -= x.colwise().mean();
  Eigen::BDCSVD<MatrixXd> svd(x, Eigen::ComputeThinV);
  return {svd.singularValues().array().square(), svd.matrixV(), x.squaredNorm()};
}

double AbsCosine(const VectorXd& a, const VectorXd& b) {
  return std::abs(a.dot(b)) / (a.norm() * b.norm());
}

PcaFit Fit(const RowMajorF& rows, PcaOptions options, std::size_t block_rows = 500) {
  MatrixRowBlocks blocks(rows.data(), rows.rows(), rows.cols(), block_rows);
  auto fit = FitPca(blocks, options);
  EXPECT_TRUE(fit.ok()) << fit.status().ToString();
  return std::move(fit).value();
}

VectorXd Spectrum(Eigen::Index dim, double decay) {
  VectorXd scales(dim);
  for (Eigen::Index j = 0; j < dim; ++j) scales(j) = 10.0 * std::pow(decay, static_cast<double>(j));
  return scales;
}

TEST(GramAccumulatorTest, MatchesFloat64ProductForOddShapesAndFarOffsets) {
  // 37 columns and 1000 rows exercise every partial tile and a partial chunk; the offset of
  // 1e4 would ruin a float32 Gram matrix without the shift.
  const Synthetic data = MakeSynthetic(1000, Spectrum(37, 0.9), 1e4, 1);
  const std::vector<float> shift(data.rows.row(0).data(), data.rows.row(0).data() + 37);
  GramAccumulator gram(37, shift);
  gram.Add(data.rows.data(), 300);
  gram.Add(data.rows.data() + 300 * 37, 700);
  std::vector<double> g, sums;
  gram.Finish(&g, &sums);

  MatrixXd xs = data.rows.cast<double>();
  for (int j = 0; j < 37; ++j) xs.col(j).array() -= shift[j];
  const MatrixXd expected = xs.transpose() * xs;
  for (int i = 0; i < 37; ++i) {
    EXPECT_NEAR(sums[i], xs.col(i).sum(), 1e-6 * xs.col(i).cwiseAbs().sum()) << i;
    for (int j = 0; j <= i; ++j) {
      EXPECT_NEAR(g[i * 37 + j], expected(i, j), 1e-5 * std::sqrt(expected(i, i) * expected(j, j)))
          << i << "," << j;
    }
  }
}

TEST(GramTimesAccumulatorTest, MatchesFloat64Product) {
  const Synthetic data = MakeSynthetic(777, Spectrum(29, 0.8), 50, 2);
  const std::vector<float> shift(29, 50.0f);
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal;
  RowMajorF q(29, 19);
  for (Eigen::Index i = 0; i < q.size(); ++i) q.data()[i] = normal(rng);
  GramTimesAccumulator product(29, shift, q.data(), 19);
  product.Add(data.rows.data(), 777);
  std::vector<double> z, sums, squares;
  product.Finish(&z, &sums, &squares);

  MatrixXd xs = data.rows.cast<double>().array() - 50.0;
  const MatrixXd expected = xs.transpose() * (xs * q.cast<double>());
  const double scale = expected.cwiseAbs().maxCoeff();
  for (int i = 0; i < 29; ++i) {
    EXPECT_NEAR(squares[i], xs.col(i).squaredNorm(), 1e-6 * xs.col(i).squaredNorm());
    for (int j = 0; j < 19; ++j) EXPECT_NEAR(z[i * 19 + j], expected(i, j), 1e-5 * scale);
  }
}

TEST(NDArrayFileTest, WritesMxnetLayoutAndReadsItBack) {
  const std::vector<NamedArray> arrays = {{"s", {2}, {1.5f, 2.5f}}, {"v", {2, 1}, {0.25f, -1.0f}}};
  const std::string bytes = EncodeNDArrayList(arrays);
  // Header, count, then the first array's v2 magic, dense storage and 1-d shape [2].
  std::uint64_t magic, count;
  std::uint32_t array_magic, ndim;
  std::int32_t storage;
  std::int64_t dim0;
  std::memcpy(&magic, bytes.data(), 8);
  std::memcpy(&count, bytes.data() + 16, 8);
  std::memcpy(&array_magic, bytes.data() + 24, 4);
  std::memcpy(&storage, bytes.data() + 28, 4);
  std::memcpy(&ndim, bytes.data() + 32, 4);
  std::memcpy(&dim0, bytes.data() + 36, 8);
  EXPECT_EQ(magic, 0x112u);
  EXPECT_EQ(count, 2u);
  EXPECT_EQ(array_magic, 0xF993FAC9u);
  EXPECT_EQ(storage, 0);
  EXPECT_EQ(ndim, 1u);
  EXPECT_EQ(dim0, 2);
  // Header, count, the arrays (4+4+4 + 8 per dimension + 4+4+4, then the data), name count,
  // names (8 + 1 each).
  EXPECT_EQ(bytes.size(), 16u + 8 + (32 + 8) + (40 + 8) + 8 + 18);

  auto decoded = DecodeNDArrayList(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_EQ(decoded->size(), 2u);
  EXPECT_EQ((*decoded)[1].name, "v");
  EXPECT_EQ((*decoded)[1].shape, (std::vector<std::int64_t>{2, 1}));
  EXPECT_EQ((*decoded)[1].values, (std::vector<float>{0.25f, -1.0f}));
}

TEST(NDArrayFileTest, RejectsTruncatedAndForeignFiles) {
  const std::string bytes = EncodeNDArrayList({{"s", {3}, {1, 2, 3}}});
  EXPECT_EQ(DecodeNDArrayList(bytes.substr(0, bytes.size() - 20)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeNDArrayList("PK\x03\x04 not an ndarray file").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(PcaSolverTest, RegularRecoversKnownAxesAndExactSpectrum) {
  VectorXd scales(5);
  scales << 5, 3, 2, 1, 0.5;
  const Synthetic data = MakeSynthetic(4000, scales, 100, 4);
  PcaOptions options;
  options.num_components = 3;
  const PcaFit fit = Fit(data.rows, options);
  const Reference exact = ExactPca(data.rows, true);

  ASSERT_EQ(fit.components.cols(), 3);
  EXPECT_EQ(fit.rows, 4000u);
  for (int j = 0; j < 3; ++j) {
    EXPECT_NEAR(fit.eigenvalues(j), exact.eigenvalues(j), 1e-5 * exact.eigenvalues(0));
    EXPECT_GT(AbsCosine(fit.components.col(j), exact.components.col(j)), 1 - 1e-8);
    // Sampling noise aside, the generating axes.
    EXPECT_GT(AbsCosine(fit.components.col(j), data.axes.col(j)), 0.995);
  }
  EXPECT_NEAR(fit.total_variance, exact.total, 1e-5 * exact.total);
  for (int j = 0; j < 5; ++j)
    EXPECT_NEAR(fit.mean[j], data.rows.col(j).cast<double>().mean(), 1e-4);
  // Sign convention: largest-magnitude entry positive.
  for (int j = 0; j < 3; ++j) {
    Eigen::Index arg;
    fit.components.col(j).cwiseAbs().maxCoeff(&arg);
    EXPECT_GT(fit.components(arg, j), 0);
  }
}

TEST(PcaSolverTest, ExplainedVarianceMatchesSvdOnHighDimensionalData) {
  // 300 features, 15 components: the Krylov eigensolver (k < d/16).
  const Synthetic data = MakeSynthetic(3000, Spectrum(300, 0.97), 5, 5);
  PcaOptions options;
  options.num_components = 15;
  const PcaFit fit = Fit(data.rows, options, 256);
  const Reference exact = ExactPca(data.rows, true);
  const VectorXd ratio = fit.ExplainedVarianceRatio();
  for (int j = 0; j < 15; ++j) {
    EXPECT_NEAR(ratio(j), exact.eigenvalues(j) / exact.total, 1e-6) << j;
    EXPECT_GT(AbsCosine(fit.components.col(j), exact.components.col(j)), 1 - 1e-6) << j;
  }
}

TEST(PcaSolverTest, KrylovEigenpairsMatchDenseSolver) {
  std::mt19937_64 rng(6);
  std::normal_distribution<double> normal;
  MatrixXd g(400, 400);
  for (Eigen::Index i = 0; i < g.size(); ++i) g.data()[i] = normal(rng);
  const MatrixXd q = Eigen::HouseholderQR<MatrixXd>(g).householderQ();
  VectorXd lambda(400);
  for (int j = 0; j < 400; ++j) lambda(j) = std::pow(0.985, j);
  const MatrixXd s = q * lambda.asDiagonal() * q.transpose();
  const Eigenpairs top = TopEigenpairs(s, 12, 0);
  ASSERT_EQ(top.values.size(), 12);
  for (int j = 0; j < 12; ++j) {
    EXPECT_NEAR(top.values(j), lambda(j), 1e-10) << j;
    EXPECT_GT(AbsCosine(top.vectors.col(j), q.col(j)), 1 - 1e-8) << j;
  }
}

// S = Q·diag(λ)·Qᵀ with λ = 1, 0.97, 0.97², ... and some exact repeats.
MatrixXd SymmetricWithSpectrum(const VectorXd& lambda, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  MatrixXd g(lambda.size(), lambda.size());
  for (Eigen::Index i = 0; i < g.size(); ++i) g.data()[i] = normal(rng);
  const MatrixXd q = Eigen::HouseholderQR<MatrixXd>(g).householderQ();
  return q * lambda.asDiagonal() * q.transpose();
}

TEST(PcaSolverTest, RepeatedEigenvaluesGetOrthonormalEigenvectors) {
  // The tridiagonal path (d <= 256): inverse iteration must separate equal eigenvalues.
  VectorXd lambda(120);
  for (int j = 0; j < 120; ++j) lambda(j) = std::pow(0.97, j);
  lambda.head(3).setConstant(4.0);
  lambda.segment(3, 2).setConstant(2.0);
  const MatrixXd s = SymmetricWithSpectrum(lambda, 14);
  const Eigenpairs top = TopEigenpairs(s, 8, 0);
  ASSERT_EQ(top.vectors.cols(), 8);
  const MatrixXd gram = top.vectors.transpose() * top.vectors;
  EXPECT_LT((gram - MatrixXd::Identity(8, 8)).cwiseAbs().maxCoeff(), 1e-12);
  const MatrixXd residual = s * top.vectors - top.vectors * top.values.asDiagonal();
  EXPECT_LT(residual.colwise().norm().maxCoeff(), 1e-12);
  EXPECT_NEAR(top.values(0), 4.0, 1e-12);
  EXPECT_NEAR(top.values(2), 4.0, 1e-12);
  EXPECT_NEAR(top.values(4), 2.0, 1e-12);
  EXPECT_NEAR(top.values(7), std::pow(0.97, 7), 1e-12);
}

TEST(PcaSolverTest, RandomizedAgreesWithRegular) {
  const Synthetic data = MakeSynthetic(5000, Spectrum(120, 0.9), 20, 7);
  PcaOptions options;
  options.num_components = 10;
  const PcaFit regular = Fit(data.rows, options);
  options.mode = Mode::kRandomized;
  options.sketch_width = 20;
  options.allow_scatter_matrix = false;
  const PcaFit randomized = Fit(data.rows, options);
  const VectorXd a = regular.ExplainedVarianceRatio(), b = randomized.ExplainedVarianceRatio();
  EXPECT_NEAR(a.sum(), b.sum(), 1e-5);
  EXPECT_NEAR(regular.total_variance, randomized.total_variance, 1e-6 * regular.total_variance);
  for (int j = 0; j < 10; ++j) {
    EXPECT_NEAR(a(j), b(j), 1e-5) << j;
    EXPECT_GT(AbsCosine(regular.components.col(j), randomized.components.col(j)), 0.999) << j;
    EXPECT_NEAR(regular.mean[j], randomized.mean[j], 1e-9);
  }
}

TEST(PcaSolverTest, RandomizedFormsTheScatterMatrixOnlyWhenThatCostsLess) {
  PcaOptions options;
  options.mode = Mode::kRandomized;
  options.num_components = 50;
  options.sketch_width = 100;  // SageMaker's default extra_components: max(10, k)
  options.passes = 3;
  // d²/2 flops per row against 4·d·100 per pass: Fashion-MNIST's 784 features form S; 5000
  // features (a d×d matrix of 200 MB per thread) stream the Krylov passes.
  EXPECT_TRUE(RandomizedFormsScatterMatrix(784, options));
  EXPECT_FALSE(RandomizedFormsScatterMatrix(2400, options));
  options.sketch_width = 10;
  options.num_components = 5;
  EXPECT_FALSE(RandomizedFormsScatterMatrix(784, options));
  options.allow_scatter_matrix = false;
  EXPECT_FALSE(RandomizedFormsScatterMatrix(20, options));

  // Formed, the result is regular mode's to the last bit.
  const Synthetic data = MakeSynthetic(3000, Spectrum(40, 0.85), 10, 21);
  PcaOptions regular_options;
  regular_options.num_components = 5;
  const PcaFit regular = Fit(data.rows, regular_options);
  options.allow_scatter_matrix = true;
  ASSERT_TRUE(RandomizedFormsScatterMatrix(40, options));
  const PcaFit randomized = Fit(data.rows, options);
  EXPECT_EQ(regular.eigenvalues, randomized.eigenvalues);
  EXPECT_EQ(regular.components, randomized.components);
}

TEST(PcaSolverTest, WithoutSubtractMeanUsesUncentredData) {
  const Synthetic data = MakeSynthetic(2000, Spectrum(8, 0.7), 3, 8);
  PcaOptions options;
  options.num_components = 4;
  options.subtract_mean = false;
  const Reference exact = ExactPca(data.rows, false);
  options.allow_scatter_matrix = false;
  for (Mode mode : {Mode::kRegular, Mode::kRandomized}) {
    options.mode = mode;
    options.sketch_width = 8;
    const PcaFit fit = Fit(data.rows, options);
    EXPECT_TRUE(fit.mean.empty());
    EXPECT_NEAR(fit.total_variance, exact.total, 1e-6 * exact.total);
    for (int j = 0; j < 4; ++j) {
      EXPECT_NEAR(fit.eigenvalues(j), exact.eigenvalues(j), 1e-5 * exact.eigenvalues(0));
      EXPECT_GT(AbsCosine(fit.components.col(j), exact.components.col(j)), 1 - 1e-6);
    }
  }
}

// A source whose passes disagree, as a channel rewritten between passes would.
class ShrinkingRows : public RowBlocks {
 public:
  explicit ShrinkingRows(const RowMajorF& rows) : rows_(rows) {}
  std::size_t dim() const override { return rows_.cols(); }
  Status ForEachBlock(int pass, const Visitor& visit) override {
    return visit(rows_.data(), rows_.rows() - pass);
  }

 private:
  const RowMajorF& rows_;
};

TEST(PcaSolverTest, ReportsBadInputs) {
  const Synthetic data = MakeSynthetic(50, Spectrum(6, 0.8), 0, 9);
  PcaOptions options;
  options.num_components = 7;
  MatrixRowBlocks blocks(data.rows.data(), 50, 6, 10);
  auto too_many = FitPca(blocks, options);
  EXPECT_EQ(too_many.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_many.status().message().find("feature_dim (6)"), std::string::npos);

  options.num_components = 2;
  MatrixRowBlocks one_row(data.rows.data(), 1, 6, 10);
  EXPECT_EQ(FitPca(one_row, options).status().code(), StatusCode::kInvalidArgument);

  options.mode = Mode::kRandomized;
  options.allow_scatter_matrix = false;
  ShrinkingRows shrinking(data.rows);
  EXPECT_EQ(FitPca(shrinking, options).status().code(), StatusCode::kFailedPrecondition);
}

class PcaModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pca_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(PcaModelTest, RoundTripPredictsProjectionsInSageMakerOrder) {
  const Synthetic data = MakeSynthetic(1000, Spectrum(6, 0.6), 7, 10);
  PcaOptions options;
  options.num_components = 3;
  const PcaFit fit = Fit(data.rows, options);
  ASSERT_TRUE(WriteModel(fit, dir_).ok());

  // The file is SageMaker's: mean (1×d), s ascending, v (d×k) in the same order.
  std::ifstream in(dir_ / "model_algo-1", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto arrays = DecodeNDArrayList(bytes);
  ASSERT_TRUE(arrays.ok());
  ASSERT_EQ(arrays->size(), 3u);
  EXPECT_EQ((*arrays)[0].name, "mean");
  EXPECT_EQ((*arrays)[0].shape, (std::vector<std::int64_t>{1, 6}));
  EXPECT_EQ((*arrays)[1].name, "s");
  EXPECT_NEAR((*arrays)[1].values[2], std::sqrt(fit.eigenvalues(0)), 1e-4);
  EXPECT_LT((*arrays)[1].values[0], (*arrays)[1].values[1]);
  EXPECT_EQ((*arrays)[2].shape, (std::vector<std::int64_t>{6, 3}));

  auto model = LoadModel(dir_);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ((*model)->feature_dim(), 6u);
  data::Batch rows;
  rows.rows = 4;
  rows.cols = 6;
  rows.dense.assign(data.rows.data(), data.rows.data() + 24);
  auto predictions = (*model)->Predict(rows);
  ASSERT_TRUE(predictions.ok()) << predictions.status().ToString();
  EXPECT_EQ(predictions->envelope, "projections");
  ASSERT_EQ(predictions->columns.size(), 1u);
  const data::PredictionColumn& column = predictions->columns[0];
  EXPECT_EQ(column.name, "projection");
  EXPECT_EQ(column.width, 3u);
  EXPECT_TRUE(column.always_vector);
  ASSERT_EQ(column.values.size(), 12u);
  const Eigen::Map<const VectorXd> mean(fit.mean.data(), 6);
  for (int r = 0; r < 4; ++r) {
    const VectorXd centred = data.rows.row(r).cast<double>().transpose() - mean;
    for (int j = 0; j < 3; ++j) {
      // Served column j is component 3 - j: the largest variance comes last.
      EXPECT_NEAR(column.values[r * 3 + j], centred.dot(fit.components.col(2 - j)), 1e-4);
    }
  }
}

TEST_F(PcaModelTest, SparseRowsProjectLikeDenseOnesAndWrongWidthsFail) {
  const Synthetic data = MakeSynthetic(500, Spectrum(5, 0.5), 2, 11);
  PcaOptions options;
  options.num_components = 2;
  ASSERT_TRUE(WriteModel(Fit(data.rows, options), dir_).ok());
  auto model = LoadModel(dir_);
  ASSERT_TRUE(model.ok());

  data::Batch dense;
  dense.rows = 1;
  dense.cols = 5;
  dense.dense = {0, 1.5f, 0, 0, -2};
  data::Batch sparse;
  sparse.sparse = true;
  sparse.rows = 1;
  sparse.cols = 5;
  sparse.row_offsets = {0, 2};
  sparse.indices = {1, 4};
  sparse.values = {1.5f, -2};
  auto a = (*model)->Predict(dense);
  auto b = (*model)->Predict(sparse);
  ASSERT_TRUE(a.ok() && b.ok());
  for (int j = 0; j < 2; ++j) EXPECT_NEAR(a->columns[0].values[j], b->columns[0].values[j], 1e-5);

  dense.cols = 4;
  dense.dense.resize(4);
  EXPECT_EQ((*model)->Predict(dense).status().code(), StatusCode::kInvalidArgument);
  sparse.indices = {1, 7};
  EXPECT_EQ((*model)->Predict(sparse).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(PcaModelTest, LoadRejectsMissingAndForeignArtifacts) {
  EXPECT_EQ(LoadModel(dir_).status().code(), StatusCode::kInvalidArgument);
  std::ofstream(dir_ / "model_algo-1", std::ios::binary)
      << EncodeNDArrayList({{"weight", {2, 2}, {1, 2, 3, 4}}});
  EXPECT_EQ(LoadModel(dir_).status().code(), StatusCode::kInvalidArgument);
}

// A training job directory: config files and one channel file per channel.
class PcaTrainTest : public PcaModelTest {
 protected:
  void WriteJob(const std::string& hyperparameters, const std::string& input_config) {
    fs::create_directories(dir_ / "input" / "config");
    std::ofstream(dir_ / "input" / "config" / "hyperparameters.json") << hyperparameters;
    std::ofstream(dir_ / "input" / "config" / "inputdataconfig.json") << input_config;
  }
  void WriteChannel(const std::string& channel, const std::string& name, const std::string& bytes) {
    fs::create_directories(dir_ / "input" / "data" / channel);
    std::ofstream(dir_ / "input" / "data" / channel / name, std::ios::binary) << bytes;
  }
  Status Train() {
    auto ctx = TrainingContext::LoadFrom(dir_, PcaAlgorithm().default_content_type());
    if (!ctx.ok()) return ctx.status();
    auto hps = Hyperparameters::Parse(PcaAlgorithm().hyperparameter_specs(),
                                      (*ctx)->raw_hyperparameters());
    if (!hps.ok()) return hps.status();
    return PcaAlgorithm().Train(**ctx, *hps);
  }
  static std::string Csv(const RowMajorF& rows) {
    std::string out;
    for (Eigen::Index r = 0; r < rows.rows(); ++r) {
      for (Eigen::Index c = 0; c < rows.cols(); ++c) {
        if (c > 0) out += ',';
        out += std::to_string(rows(r, c));
      }
      out += "\n";
    }
    return out;
  }
};

TEST_F(PcaTrainTest, DescribesItselfAsSageMakersPca) {
  const Algorithm& algorithm = PcaAlgorithm();
  EXPECT_EQ(algorithm.name(), "pca");
  EXPECT_EQ(algorithm.repositories(), std::vector<std::string>{"pca"});
  EXPECT_TRUE(algorithm.metric_definitions().empty());
  auto hps = Hyperparameters::Parse(
      algorithm.hyperparameter_specs(),
      {{"feature_dim", "4"}, {"mini_batch_size", "10"}, {"num_components", "2"}});
  ASSERT_TRUE(hps.ok());
  EXPECT_EQ(hps->String("algorithm_mode"), "regular");
  EXPECT_TRUE(hps->Bool("subtract_mean"));
  EXPECT_EQ(hps->Int("extra_components"), -1);
  auto bad = Hyperparameters::Parse(algorithm.hyperparameter_specs(), {{"feature_dim", "4"},
                                                                       {"mini_batch_size", "10"},
                                                                       {"num_components", "2"},
                                                                       {"algorithm_mode", "fast"}});
  EXPECT_NE(bad.status().message().find("algorithm_mode"), std::string::npos);
}

TEST_F(PcaTrainTest, TrainsFromCsvAndRecordIOAndLogsTestVariance) {
  const Synthetic data = MakeSynthetic(600, Spectrum(4, 0.5), 1, 12);
  data::Batch batch;
  batch.rows = 600;
  batch.cols = 4;
  batch.dense.assign(data.rows.data(), data.rows.data() + data.rows.size());
  WriteJob(R"({"feature_dim":"4","mini_batch_size":"64","num_components":"2",
               "algorithm_mode":"randomized"})",
           R"({"train":{"ContentType":"text/csv;label_size=0"},
               "test":{"ContentType":"application/x-recordio-protobuf"}})");
  WriteChannel("train", "part-0.csv", Csv(data.rows));
  WriteChannel("test", "part-0.rec", data::EncodeRecordIOProtobuf(batch));
  testing::internal::CaptureStdout();
  const Status status = Train();
  const std::string log = testing::internal::GetCapturedStdout();
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_NE(log.find("test: explained variance ratio of 2 components"), std::string::npos) << log;

  auto model = LoadModel(dir_ / "model");
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ((*model)->feature_dim(), 4u);
}

TEST_F(PcaTrainTest, ErrorsNameTheHyperparameterOrTheContentType) {
  const Synthetic data = MakeSynthetic(100, Spectrum(4, 0.5), 1, 13);
  WriteChannel("train", "part-0.csv", Csv(data.rows));

  WriteJob(R"({"feature_dim":"4","mini_batch_size":"64","num_components":"5"})",
           R"({"train":{"ContentType":"text/csv;label_size=0"}})");
  Status status = Train();
  EXPECT_NE(status.message().find("'num_components' (5)"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("'feature_dim' (4)"), std::string::npos);

  // Plain text/csv: the first column is a label, so only 3 features remain.
  WriteJob(R"({"feature_dim":"4","mini_batch_size":"64","num_components":"2"})",
           R"({"train":{"ContentType":"text/csv"}})");
  status = Train();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("label_size=0"), std::string::npos) << status.message();
}

}  // namespace
}  // namespace hearth::algorithms::pca
