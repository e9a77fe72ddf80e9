// FlatForest: a trained XGBoost tree ensemble laid out for fast inference.
//
// XGBoost's own predict path costs tens of microseconds for one row (a DMatrix, a predictor
// dispatch, thread set-up) before any tree is walked. Serving answers one row at a time more
// often than not, so the model is read once from XGBoost's JSON document into one array of
// 12-byte nodes, each tree laid out breadth-first so that a node's right child sits next to
// its left child, and rows are walked through it directly, several trees in lockstep.
//
// The result equals XGBoosterPredict: leaves are summed in float, tree by tree, starting from
// the base margin, then the objective's transform is applied (sigmoid, softmax, argmax,
// exp, ...). A missing value (NaN, or a feature beyond the row's width) takes the split's
// default direction. Models this layout does not cover (gblinear, dart, categorical splits,
// vector leaves, an objective not listed in flat_forest.cc) are refused with Unimplemented,
// a document it cannot read with InvalidArgument; either way callers fall back to XGBoost.
//
// Thread safety: immutable after FromJson; Predict* may be called concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace hearth::algorithms::xgb {

// What a model is, read from XGBoost's JSON document.
struct ModelSummary {
  std::string booster;      // "gbtree", "dart", "gblinear"
  std::string objective;    // "binary:logistic", ...
  std::size_t num_class = 0;
  std::size_t num_features = 0;
  std::size_t num_parallel_tree = 1;
};
Result<ModelSummary> ReadModelSummary(std::string_view model_json);

class FlatForest {
 public:
  // `iteration_end` > 0 keeps the trees of the first `iteration_end` boosting rounds only
  // (XGBoost's iteration_range (0, iteration_end)); 0 keeps all.
  static Result<FlatForest> FromJson(std::string_view model_json, int iteration_end = 0);

  std::size_t num_features() const { return num_features_; }
  // Values per row: num_class for multi:softprob, else 1.
  std::size_t output_width() const { return output_width_; }
  std::size_t num_trees() const { return tree_roots_.size(); }
  const std::string& objective() const { return objective_; }

  // `row` holds num_features() values (NaN = missing); writes output_width() values.
  void PredictRow(const float* row, float* out) const;
  // `rows` dense rows of `cols` <= num_features() values each (the rest are missing), `cols`
  // apart; writes rows * output_width() values. Splits the rows over `threads` threads.
  void PredictDense(const float* rows, std::size_t n, std::size_t cols, float* out,
                    int threads) const;

 private:
  enum class Transform { kIdentity, kSigmoid, kSoftmax, kArgmax, kExp, kHinge };

  // Bits of Node::feature_flags.
  static constexpr std::uint32_t kLeaf = 1u << 31;
  static constexpr std::uint32_t kDefaultLeft = 1u << 30;
  static constexpr std::uint32_t kFeatureMask = kDefaultLeft - 1;

  struct Node {
    float value;                 // split threshold; the leaf value at a leaf
    std::uint32_t feature_flags; // split feature | kDefaultLeft | kLeaf
    std::uint32_t left;          // index of the left child; the right child is left + 1
  };

  // Sums the margins of one complete row (num_features() values) into margins[0..groups).
  void AccumulateMargins(const float* row, float* margins) const;
  void ApplyTransform(float* margins, float* out) const;

  std::vector<Node> nodes_;
  std::vector<std::uint32_t> tree_roots_;
  std::vector<std::uint32_t> tree_groups_;  // output group (class) of each tree
  // Trees are walked kLanes at a time; the deepest leaf of each such group of trees.
  static constexpr std::size_t kLanes = 8;
  std::vector<int> group_depths_;
  std::size_t num_features_ = 0;
  std::size_t num_groups_ = 1;
  std::size_t output_width_ = 1;
  float base_margin_ = 0;
  Transform transform_ = Transform::kIdentity;
  std::string objective_;
};

}  // namespace hearth::algorithms::xgb
