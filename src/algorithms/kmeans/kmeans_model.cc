#include "algorithms/kmeans/kmeans_model.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/fs.h"

namespace hearth::algorithms::kmeans {
namespace {

static_assert(std::endian::native == std::endian::little, "the artifact is little-endian");

constexpr std::uint64_t kListMagic = 0x112;
constexpr std::uint32_t kNdarrayV1Magic = 0xF993FAC8;  // int64 shape, no storage type
constexpr std::uint32_t kNdarrayV2Magic = 0xF993FAC9;  // + storage type
constexpr std::uint32_t kNdarrayV3Magic = 0xF993FACA;  // v2 layout, numpy shape semantics
constexpr std::int32_t kDefaultStorage = 0;
constexpr std::int32_t kCpu = 1;
constexpr std::int32_t kFloat32 = 0;
constexpr std::int32_t kFloat64 = 1;
constexpr std::string_view kModelFilePrefix = "model_algo-";

// Rows per parallel chunk of a large Predict; small requests stay on the calling thread.
constexpr std::size_t kParallelPredictRows = 4096;

template <typename T>
void Put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}

  template <typename T>
  Result<T> Get(std::string_view what) {
    if (bytes_.size() - pos_ < sizeof(T)) {
      return InvalidArgument("Invalid k-means model file: it ends inside the " + std::string(what) +
                             " (offset " + std::to_string(pos_) + ").");
    }
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string_view Take(std::size_t n) {
    std::string_view out = bytes_.substr(pos_, n);
    pos_ += out.size();
    return out;
  }
  std::size_t remaining() const { return bytes_.size() - pos_; }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

Status Invalid(std::string what) {
  return InvalidArgument("Invalid k-means model file: " + std::move(what));
}

}  // namespace

std::string EncodeCenters(const Matrix& centers) {
  std::string out;
  out.reserve(80 + centers.size() * sizeof(float));
  Put<std::uint64_t>(out, kListMagic);
  Put<std::uint64_t>(out, 0);
  Put<std::uint64_t>(out, 1);
  Put<std::uint32_t>(out, kNdarrayV2Magic);
  Put<std::int32_t>(out, kDefaultStorage);
  Put<std::uint32_t>(out, 2);
  Put<std::int64_t>(out, centers.rows());
  Put<std::int64_t>(out, centers.cols());
  Put<std::int32_t>(out, kCpu);
  Put<std::int32_t>(out, 0);
  Put<std::int32_t>(out, kFloat32);
  out.append(reinterpret_cast<const char*>(centers.data()), centers.size() * sizeof(float));
  Put<std::uint64_t>(out, 0);
  return out;
}

Result<Matrix> DecodeCenters(std::string_view bytes) {
  Reader in(bytes);
  ASSIGN_OR_RETURN(const auto list_magic, in.Get<std::uint64_t>("header"));
  if (list_magic != kListMagic) return Invalid("not an MXNet NDArray file (bad magic).");
  ASSIGN_OR_RETURN(const auto reserved, in.Get<std::uint64_t>("header"));
  (void)reserved;
  ASSIGN_OR_RETURN(const auto count, in.Get<std::uint64_t>("array count"));
  if (count == 0) return Invalid("it holds no array.");
  ASSIGN_OR_RETURN(const auto magic, in.Get<std::uint32_t>("array header"));
  if (magic != kNdarrayV1Magic && magic != kNdarrayV2Magic && magic != kNdarrayV3Magic) {
    return Invalid("unsupported NDArray format version.");
  }
  if (magic != kNdarrayV1Magic) {
    ASSIGN_OR_RETURN(const auto storage, in.Get<std::int32_t>("storage type"));
    if (storage != kDefaultStorage) return Invalid("the centers array is sparse.");
  }
  ASSIGN_OR_RETURN(const auto ndim, in.Get<std::uint32_t>("shape"));
  if (ndim != 2) return Invalid("the centers array has " + std::to_string(ndim) + " dimensions, not 2.");
  ASSIGN_OR_RETURN(const auto k, in.Get<std::int64_t>("shape"));
  ASSIGN_OR_RETURN(const auto dim, in.Get<std::int64_t>("shape"));
  if (k <= 0 || dim <= 0) return Invalid("the centers array is empty.");
  ASSIGN_OR_RETURN(const auto device_type, in.Get<std::int32_t>("context"));
  ASSIGN_OR_RETURN(const auto device_id, in.Get<std::int32_t>("context"));
  (void)device_type;
  (void)device_id;
  ASSIGN_OR_RETURN(const auto dtype, in.Get<std::int32_t>("data type"));
  if (dtype != kFloat32 && dtype != kFloat64) return Invalid("the centers are not float32 or float64.");
  const std::size_t values = static_cast<std::size_t>(k) * static_cast<std::size_t>(dim);
  const std::size_t width = dtype == kFloat32 ? sizeof(float) : sizeof(double);
  if (values > in.remaining() / width) return Invalid("it ends inside the centers.");
  const std::string_view data = in.Take(values * width);
  Matrix centers(k, dim);
  if (dtype == kFloat32) {
    std::memcpy(centers.data(), data.data(), data.size());
  } else {
    std::vector<double> wide(values);
    std::memcpy(wide.data(), data.data(), data.size());
    for (std::size_t i = 0; i < values; ++i) centers.data()[i] = static_cast<float>(wide[i]);
  }
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
