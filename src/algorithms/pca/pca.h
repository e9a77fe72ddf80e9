// SageMaker's PCA built-in ("pca"): hyperparameters, training from the train channel (and
// the optional test channel), the `model_algo-1` artifact and the served model.
//
//   train   feature_dim, mini_batch_size, num_components required; algorithm_mode
//           regular|randomized, subtract_mean, extra_components (pca_solver.h). Channels
//           `train` (required) and `test` (optional: its explained variance is logged).
//           text/csv follows SageMaker's rule: the first column is a label and is dropped
//           unless the ContentType says `label_size=0`; a channel without a ContentType is
//           RecordIO-protobuf (the sagemaker SDK's record_set()).
//   model   `model_algo-1` (model_<host>), an MXNet NDArray list as SageMaker writes it:
//           `s` (num_components singular values of the centred data), `v` (feature_dim ×
//           num_components components) and, with subtract_mean, `mean` (1 × feature_dim).
//           Components come in SageMaker's order, smallest variance first: the last column is
//           the first principal component.
//   serve   {"projections":[{"projection":[...]}]}: (x − mean)·v per row, same order as `v`.
//
// Thread safety: the Algorithm is immutable; a loaded model allows concurrent Predict calls.
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "algorithms/algorithm.h"
#include "algorithms/pca/pca_solver.h"

namespace hearth::algorithms {

const Algorithm& PcaAlgorithm();

namespace pca {

// Writes `fit` as model_dir/model_<host> (model_algo-1 on the first host).
Status WriteModel(const PcaFit& fit, const std::filesystem::path& model_dir,
                  std::string_view host = "algo-1");

// Reads model_dir/model_algo-1 (or the first model_* file). InvalidArgument for a missing
// file or one that is not a PCA model.
Result<std::unique_ptr<Model>> LoadModel(const std::filesystem::path& model_dir);

}  // namespace pca

}  // namespace hearth::algorithms
