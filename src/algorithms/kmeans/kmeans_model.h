// KMeansModel: trained k-means centers, the artifact they are stored in, and the answers they
// give at /invocations.
//
// The artifact is SageMaker's: model.tar.gz holds `model_algo-1` (`model_<host>`), an MXNet
// NDArray list file with one unnamed float32 array of shape (k, feature_dim), so
// `mx.nd.load('model_algo-1')[0].asnumpy()` gives the centers, and a model trained by SageMaker
// loads here (format: algorithms/mxnet_ndarray.h; the list is unnamed). Decoding takes the
// first array.
//
// Predict answers, per row, `closest_cluster` (the index of the nearest center) and
// `distance_to_cluster` (the Euclidean distance to it), SageMaker's k-means response.
//
// Thread safety: a loaded model is immutable; Predict may be called concurrently.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <Eigen/Core>

#include "algorithms/algorithm.h"
#include "algorithms/kmeans/kmeans_core.h"
#include "common/status.h"

namespace hearth::algorithms::kmeans {

std::string EncodeCenters(const Matrix& centers);
// InvalidArgument naming what is wrong for anything but a dense 2-D float array list.
Result<Matrix> DecodeCenters(std::string_view bytes);

class KMeansModel final : public Model {
 public:
  explicit KMeansModel(Matrix centers);

  // Reads model_algo-1 (or the first model_algo-* file) from `model_dir`.
  static Result<std::unique_ptr<KMeansModel>> Load(const std::filesystem::path& model_dir);
  // Writes model_<host> into `model_dir`, atomically.
  Status Save(const std::filesystem::path& model_dir, std::string_view host) const;

  std::size_t feature_dim() const override { return centers_.cols(); }
  Result<data::Predictions> Predict(const data::Batch& rows) const override;

  const Matrix& centers() const { return centers_; }

 private:
  Matrix centers_;
  Eigen::VectorXf center_norms_;
};

}  // namespace hearth::algorithms::kmeans
