// XGBoostModel: a trained XGBoost model answering /invocations as SageMaker's XGBoost
// container does.
//
// The artifact is `xgboost-model` (any format XGBoost reads). Predictions use the trees of
// the first best_ntree_limit / num_parallel_tree rounds when the model carries that
// attribute (xgb.train sets it; after early stopping it excludes the rounds past the best),
// as the container predicts with ntree_limit=best_ntree_limit. Tree models go through
// FlatForest; gblinear, dart and anything FlatForest refuses go through XGBoost's predictor.
//
// Response: one "score" per row (multi:softprob: a list of num_class probabilities;
// multi:softmax: the class), envelope "predictions", and text/csv on one line as the
// container's realtime answer.
//
// Thread safety: Predict may be called concurrently.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "algorithms/algorithm.h"
#include "algorithms/xgboost/flat_forest.h"
#include "algorithms/xgboost/xgboost_api.h"

namespace hearth::algorithms::xgb {

inline constexpr const char* kModelFileName = "xgboost-model";

class XGBoostModel final : public Model {
 public:
  // Loads `model_dir`/xgboost-model, or the only regular file in `model_dir`.
  static Result<std::unique_ptr<XGBoostModel>> Load(const std::filesystem::path& model_dir);
  // Takes over an in-memory booster (tests, benchmarks).
  static Result<std::unique_ptr<XGBoostModel>> FromBooster(Booster booster);

  // Rows may be narrower than the model (the rest are missing) but not wider; that is
  // checked in Predict, so any width is accepted here.
  std::size_t feature_dim() const override { return 0; }
  Result<data::Predictions> Predict(const data::Batch& rows) const override;

  // Scores from XGBoost's own predictor, for comparison with Predict.
  Result<PredictionMatrix> PredictWithXGBoost(const data::Batch& rows) const;
  // Scores from the fast path or XGBoost, whichever Predict uses.
  Result<PredictionMatrix> Scores(const data::Batch& rows) const;

  bool uses_flat_forest() const { return forest_.has_value(); }
  std::size_t num_features() const { return num_features_; }
  std::size_t output_width() const { return output_width_; }

 private:
  XGBoostModel(Booster booster) : booster_(std::move(booster)) {}
  Status Init();
  Result<PredictionMatrix> SparseWithForest(const data::Batch& rows) const;

  mutable std::mutex booster_mu_;  // XGBoost's predictor keeps per-booster state
  Booster booster_;
  std::optional<FlatForest> forest_;
  int iteration_end_ = 0;  // 0: all rounds
  std::size_t num_features_ = 0;
  std::size_t output_width_ = 1;
  int threads_ = 1;
};

}  // namespace hearth::algorithms::xgb
