#include "algorithms/kmeans/kmeans_model.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "algorithms/mxnet_ndarray.h"
#include "common/fs.h"

namespace hearth::algorithms::kmeans {
namespace {

constexpr std::string_view kModelFilePrefix = "model_algo-";

// Rows per parallel chunk of a large Predict; small requests stay on the calling thread.
constexpr std::size_t kParallelPredictRows = 4096;

Status Invalid(std::string what) {
  return InvalidArgument("Invalid k-means model file: " + std::move(what));
}

}  // namespace

std::string EncodeCenters(const Matrix& centers) {
  NamedArray array{"", {centers.rows(), centers.cols()}, {}};
  array.values.assign(centers.data(), centers.data() + centers.size());
  return EncodeNDArrayList({array});
}

Result<Matrix> DecodeCenters(std::string_view bytes) {
  auto arrays = DecodeNDArrayList(bytes);
  if (!arrays.ok()) return Invalid(std::string(arrays.status().message()) + ".");
  if (arrays->empty()) return Invalid("it holds no array.");
  const NamedArray& array = arrays->front();
  if (array.shape.size() != 2) {
    return Invalid("the centers array has " + std::to_string(array.shape.size()) +
                   " dimensions, not 2.");
  }
  if (array.shape[0] <= 0 || array.shape[1] <= 0) return Invalid("the centers array is empty.");
  Matrix centers(array.shape[0], array.shape[1]);
  std::copy(array.values.begin(), array.values.end(), centers.data());
  if (!centers.allFinite()) return Invalid("a center has a value that is not finite.");
  return centers;
}

KMeansModel::KMeansModel(Matrix centers)
    : centers_(std::move(centers)), center_norms_(CenterNorms(centers_)) {}

Result<std::unique_ptr<KMeansModel>> KMeansModel::Load(const std::filesystem::path& model_dir) {
  std::vector<std::filesystem::path> candidates;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(model_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && name.starts_with(kModelFilePrefix)) {
      candidates.push_back(entry.path());
    }
  }
  if (ec) return NotFound("Cannot read the model directory " + model_dir.string() + ": " + ec.message());
  if (candidates.empty()) {
    return NotFound("No k-means model (model_algo-1) in " + model_dir.string() + ".");
  }
  std::sort(candidates.begin(), candidates.end());  // model_algo-1 first
  ASSIGN_OR_RETURN(const std::string bytes, ReadFile(candidates.front()));
  ASSIGN_OR_RETURN(Matrix centers, DecodeCenters(bytes));
  return std::make_unique<KMeansModel>(std::move(centers));
}

Status KMeansModel::Save(const std::filesystem::path& model_dir, std::string_view host) const {
  return WriteFileAtomic(model_dir / ("model_" + std::string(host)), EncodeCenters(centers_));
}

Result<data::Predictions> KMeansModel::Predict(const data::Batch& rows) const {
  const std::size_t dim = centers_.cols(), k = centers_.rows(), n = rows.rows;
  const data::Batch* dense = &rows;
  data::Batch densified;
  if (rows.sparse) {
    if (rows.cols > dim) {
      return InvalidArgument("A record has feature index " + std::to_string(rows.cols - 1) +
                             ", out of range for the model's feature_dim " +
                             std::to_string(dim) + ".");
    }
    densified = rows;
    densified.cols = dim;
    densified.Densify();
    dense = &densified;
  } else if (n > 0 && rows.cols != dim) {
    return InvalidArgument("The records have " + std::to_string(rows.cols) +
                           " features but the model's feature_dim is " + std::to_string(dim) +
                           ".");
  }

  data::Predictions out;
  out.rows = n;
  out.envelope = "predictions";
  out.columns.resize(2);
  data::PredictionColumn& cluster = out.columns[0];
  data::PredictionColumn& distance = out.columns[1];
  cluster.name = "closest_cluster";
  cluster.integral = true;
  cluster.values.resize(n);
  distance.name = "distance_to_cluster";
  distance.values.resize(n);

  auto score = [&](std::size_t first, std::size_t count, std::vector<float>& dots,
                   std::vector<float>& sq, std::vector<std::int32_t>& labels) {
    const float* x = dense->dense.data() + first * dim;
    dots.resize(count * k);
    sq.resize(count);
    labels.resize(count);
    NearestCenters(x, count, nullptr, centers_, center_norms_.data(), labels.data(), sq.data(),
                   dots.data());
    for (std::size_t i = 0; i < count; ++i) {
      // The reported distance is recomputed directly: the expansion used for the argmin
      // loses digits when a row lies close to its center.
      const float exact = SquaredDistance(x + i * dim, centers_.row(labels[i]).data(), dim);
      cluster.values[first + i] = static_cast<float>(labels[i]);
      distance.values[first + i] = std::sqrt(exact);
    }
  };
  if (n < kParallelPredictRows) {
    std::vector<float> dots, sq;
    std::vector<std::int32_t> labels;
    score(0, n, dots, sq, labels);
    return out;
  }
  const std::size_t chunks = (n + kBlockRows - 1) / kBlockRows;
#pragma omp parallel
  {
    std::vector<float> dots, sq;
    std::vector<std::int32_t> labels;
#pragma omp for schedule(static)
    for (std::size_t c = 0; c < chunks; ++c) {
      const std::size_t first = c * kBlockRows;
      score(first, std::min(kBlockRows, n - first), dots, sq, labels);
    }
  }
  return out;
}

}  // namespace hearth::algorithms::kmeans
