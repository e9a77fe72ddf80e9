// The adapter over libxgboost's C API (<xgboost/c_api.h>): owning handles for XGBoost's
// DMatrix and Booster, and calls that return Status. XGBoost reports a failure as a non-zero
// return code plus XGBGetLastError(); this file is the one place that turns those into
// hearth::Status (InvalidArgument: XGBoost's checks are about the user's data and parameters),
// so no other file includes c_api.h.
//
// Thread safety: a DMatrix is immutable once built. A Booster is not synchronised; trainers
// use it from one thread, and the serving model serialises its calls (xgboost_model.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "data/batch.h"

namespace hearth::algorithms::xgb {

// XGBoost's version as "1.7.4".
std::string LibraryVersion();

class DMatrix {
 public:
  // Copies the features of `batch` (dense: NaN is missing; sparse: an absent entry is
  // missing) and its labels and weights, if any. `nthread` <= 0: all cores.
  static Result<DMatrix> FromBatch(const data::Batch& batch, int nthread);

  std::uint64_t rows() const { return rows_; }
  std::uint64_t cols() const { return cols_; }
  const std::vector<float>& labels() const { return labels_; }
  // The instance weights; empty when the batch had none (every row weighs 1).
  const std::vector<float>& weights() const { return weights_; }
  void* handle() const { return handle_.get(); }

 private:
  struct Free {
    void operator()(void* handle) const;
  };
  std::unique_ptr<void, Free> handle_;
  std::uint64_t rows_ = 0, cols_ = 0;
  // Kept for the metrics computed here (eval_metrics.h, accuracy, f1, mse).
  std::vector<float> labels_;
  std::vector<float> weights_;
};

// Prediction output: `values` holds rows * width floats, row-major.
struct PredictionMatrix {
  std::size_t rows = 0;
  std::size_t width = 1;
  std::vector<float> values;
};

class Booster {
 public:
  // A booster that caches predictions for `cache` (the training set and every evaluation
  // set), as xgb.train does. The matrices must outlive the booster.
  static Result<Booster> Create(std::span<const DMatrix* const> cache);
  // Reads a model file in any format XGBoost writes (binary, JSON, UBJSON).
  static Result<Booster> Load(const std::filesystem::path& file);

  Status SetParam(std::string_view name, std::string_view value);
  Status UpdateOneIter(int iteration, const DMatrix& train);
  // XGBoost's evaluation line: "[<iteration>]\t<name>-<metric>:<value>...".
  Result<std::string> EvalOneIter(int iteration, std::span<const DMatrix* const> sets,
                                  std::span<const std::string> names);
  // Transformed predictions (probabilities for binary:logistic, ...) from the first
  // `iteration_end` boosting rounds (0: all); with `output_margin`, the untransformed sums.
  // With all rounds, a matrix in the booster's cache is answered from XGBoost's prediction
  // cache (no tree is walked).
  Result<PredictionMatrix> Predict(const DMatrix& matrix, int iteration_end = 0,
                                   bool output_margin = false) const;

  Status SetAttr(std::string_view name, std::string_view value);
  Result<std::optional<std::string>> GetAttr(std::string_view name) const;
  Result<int> BoostedRounds() const;
  Result<std::uint64_t> NumFeatures() const;
  // The learner's configuration as JSON (objective, num_class, ...).
  Result<std::string> ConfigJson() const;
  // The model as XGBoost's JSON document.
  Result<std::string> ModelJson() const;
  // Writes the model in XGBoost's binary format (readable by every XGBoost since 1.0).
  Status Save(const std::filesystem::path& file) const;

  void* handle() const { return handle_.get(); }

 private:
  struct Free {
    void operator()(void* handle) const;
  };
  std::unique_ptr<void, Free> handle_;
};

}  // namespace hearth::algorithms::xgb
