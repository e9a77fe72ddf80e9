#include "algorithms/xgboost/flat_forest.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <limits>
#include <tuple>
#include <type_traits>

#include "fmt/format.h"
#include "simdjson.h"

namespace hearth::algorithms::xgb {

namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// XGBoost keeps hyperparameter-like fields as strings ("num_feature": "28").
double NumberOrString(element e) {
  if (e.is_string()) {
    std::string text{std::string_view(e)};
    return std::strtod(text.c_str(), nullptr);
  }
  return e.is_double() ? double(e) : e.is_int64() ? double(int64_t(e)) : double(uint64_t(e));
}

float AsFloat(element e) {
  return e.is_double() ? static_cast<float>(double(e))
                       : e.is_int64() ? static_cast<float>(int64_t(e))
                                      : static_cast<float>(uint64_t(e));
}

template <typename T>
std::vector<T> NumberArray(element e) {
  std::vector<T> out;
  for (element v : array(e)) {
    if constexpr (std::is_floating_point_v<T>) {
      out.push_back(AsFloat(v));
    } else {
      out.push_back(static_cast<T>(v.is_int64() ? int64_t(v) : static_cast<int64_t>(uint64_t(v))));
    }
  }
  return out;
}

}  // namespace

Result<ModelSummary> ReadModelSummary(std::string_view model_json) {
  ModelSummary summary;
  try {
    simdjson::dom::parser parser;
    element doc = parser.parse(model_json.data(), model_json.size());
    object learner = doc["learner"];
    object booster = learner["gradient_booster"];
    summary.booster = std::string(std::string_view(booster["name"]));
    summary.objective = std::string(std::string_view(learner["objective"]["name"]));
    object params = learner["learner_model_param"];
    summary.num_class = static_cast<std::size_t>(NumberOrString(params["num_class"]));
    summary.num_features = static_cast<std::size_t>(NumberOrString(params["num_feature"]));
    // gbtree: model.gbtree_model_param; dart wraps a gbtree: gbtree.model.gbtree_model_param.
    element tree_params;
    if (booster["model"]["gbtree_model_param"].get(tree_params) == simdjson::SUCCESS ||
        booster["gbtree"]["model"]["gbtree_model_param"].get(tree_params) == simdjson::SUCCESS) {
      element parallel;
      if (tree_params["num_parallel_tree"].get(parallel) == simdjson::SUCCESS) {
        summary.num_parallel_tree =
            std::max<std::size_t>(1, static_cast<std::size_t>(NumberOrString(parallel)));
      }
    }
  } catch (const simdjson::simdjson_error& e) {
    return InvalidArgument(fmt::format("cannot read the XGBoost model JSON: {}", e.what()));
  }
  return summary;
}

Result<FlatForest> FlatForest::FromJson(std::string_view model_json, int iteration_end) {
  FlatForest forest;
  try {
    simdjson::dom::parser parser;
    element doc = parser.parse(model_json.data(), model_json.size());
    object learner = doc["learner"];

    object booster = learner["gradient_booster"];
    std::string_view booster_name = booster["name"];
    if (booster_name != "gbtree") {
      return Unimplemented(fmt::format("booster '{}' is predicted by XGBoost", booster_name));
    }
    forest.objective_ = std::string(std::string_view(learner["objective"]["name"]));
    const std::string& obj = forest.objective_;

    object params = learner["learner_model_param"];
    std::string base_text{std::string_view(params["base_score"])};
    float base_score = std::strtof(base_text.c_str(), nullptr);
    auto num_class = static_cast<std::size_t>(NumberOrString(params["num_class"]));
    forest.num_features_ = static_cast<std::size_t>(NumberOrString(params["num_feature"]));
    element num_target;
    if (params["num_target"].get(num_target) == simdjson::SUCCESS &&
        NumberOrString(num_target) > 1) {
      return Unimplemented("multi-target models are predicted by XGBoost");
    }
    forest.num_groups_ = std::max<std::size_t>(num_class, 1);

    // The objective's link: the base score becomes a margin through its inverse
    // (ProbToMargin), and predictions go back through it (PredTransform).
    if (obj == "binary:logistic" || obj == "reg:logistic") {
      forest.transform_ = Transform::kSigmoid;
      forest.base_margin_ = -std::log(1.0f / base_score - 1.0f);
    } else if (obj == "binary:hinge") {
      forest.transform_ = Transform::kHinge;
      forest.base_margin_ = base_score;
    } else if (obj == "count:poisson" || obj == "reg:gamma" || obj == "reg:tweedie" ||
               obj == "survival:cox" || obj == "survival:aft") {
      forest.transform_ = Transform::kExp;
      forest.base_margin_ = std::log(base_score);
    } else if (obj == "multi:softprob") {
      forest.transform_ = Transform::kSoftmax;
      forest.base_margin_ = base_score;
      forest.output_width_ = forest.num_groups_;
    } else if (obj == "multi:softmax") {
      forest.transform_ = Transform::kArgmax;
      forest.base_margin_ = base_score;
    } else if (obj == "binary:logitraw" || obj == "reg:squarederror" || obj == "reg:linear" ||
               obj == "reg:pseudohubererror" || obj == "reg:squaredlogerror" ||
               obj == "reg:absoluteerror" || obj.starts_with("rank:")) {
      forest.base_margin_ = base_score;
    } else {
      return Unimplemented(fmt::format("objective '{}' is predicted by XGBoost", obj));
    }
    if (forest.num_groups_ > 1 && forest.transform_ != Transform::kSoftmax &&
        forest.transform_ != Transform::kArgmax) {
      return Unimplemented("a multi-output model of a single-output objective");
    }

    object model = booster["model"];
    std::vector<std::uint32_t> tree_info = NumberArray<std::uint32_t>(model["tree_info"]);
    std::size_t parallel = 1;
    element parallel_e;
    if (model["gbtree_model_param"]["num_parallel_tree"].get(parallel_e) == simdjson::SUCCESS) {
      parallel = std::max<std::size_t>(1, static_cast<std::size_t>(NumberOrString(parallel_e)));
    }
    array trees = model["trees"];
    std::size_t keep = tree_info.size();
    if (iteration_end > 0) {
      keep = std::min(keep, static_cast<std::size_t>(iteration_end) * parallel *
                                forest.num_groups_);
    }

    std::size_t t = 0;
    for (element tree : trees) {
      if (t == keep) break;
      std::vector<int> left = NumberArray<int>(tree["left_children"]);
      std::vector<int> right = NumberArray<int>(tree["right_children"]);
      std::vector<float> cond = NumberArray<float>(tree["split_conditions"]);
      std::vector<std::int64_t> feature = NumberArray<std::int64_t>(tree["split_indices"]);
      std::vector<int> default_left = NumberArray<int>(tree["default_left"]);
      std::vector<int> split_type;
      element split_type_e;
      if (tree["split_type"].get(split_type_e) == simdjson::SUCCESS) {
        split_type = NumberArray<int>(split_type_e);
      }
      element leaf_vector;
      if (tree["tree_param"]["size_leaf_vector"].get(leaf_vector) == simdjson::SUCCESS &&
          NumberOrString(leaf_vector) > 0) {
        return Unimplemented("vector leaves are predicted by XGBoost");
      }
      std::size_t n = left.size();
      if (n == 0 || right.size() != n || cond.size() != n || feature.size() != n ||
          default_left.size() != n) {
        return InvalidArgument(fmt::format("tree {} of the model is malformed", t));
      }
      if (t >= tree_info.size() || tree_info[t] >= forest.num_groups_) {
        return InvalidArgument(fmt::format("tree {} has no valid output group", t));
      }

      // Breadth-first from the root; both children of a split are placed side by side.
      std::uint32_t root = static_cast<std::uint32_t>(forest.nodes_.size());
      forest.tree_roots_.push_back(root);
      forest.tree_groups_.push_back(tree_info[t]);
      forest.nodes_.push_back({});
      // (source node id, slot in nodes_, depth)
      std::deque<std::tuple<int, std::uint32_t, int>> queue = {{0, root, 0}};
      std::size_t visited = 0;
      int tree_depth = 0;
      while (!queue.empty()) {
        auto [id, slot, depth] = queue.front();
        queue.pop_front();
        tree_depth = std::max(tree_depth, depth);
        if (id < 0 || static_cast<std::size_t>(id) >= n || ++visited > n) {
          return InvalidArgument(fmt::format("tree {} of the model is malformed", t));
        }
        Node node{};
        node.value = cond[id];
        if (left[id] == -1) {
          node.feature_flags = kLeaf;
        } else {
          if (!split_type.empty() && split_type[id] != 0) {
            return Unimplemented("categorical splits are predicted by XGBoost");
          }
          if (feature[id] < 0 || static_cast<std::size_t>(feature[id]) > kFeatureMask) {
            return InvalidArgument(fmt::format("tree {} splits on feature {}", t, feature[id]));
          }
          node.feature_flags = static_cast<std::uint32_t>(feature[id]) |
                               (default_left[id] ? kDefaultLeft : 0u);
          node.left = static_cast<std::uint32_t>(forest.nodes_.size());
          forest.nodes_.push_back({});
          forest.nodes_.push_back({});
          queue.emplace_back(left[id], node.left, depth + 1);
          queue.emplace_back(right[id], node.left + 1, depth + 1);
          // A model from another XGBoost may split on a feature past num_feature.
          forest.num_features_ =
              std::max(forest.num_features_, static_cast<std::size_t>(feature[id]) + 1);
        }
        forest.nodes_[slot] = node;
      }
      if (t % kLanes == 0) forest.group_depths_.push_back(0);
      forest.group_depths_.back() = std::max(forest.group_depths_.back(), tree_depth);
      ++t;
    }
  } catch (const simdjson::simdjson_error& e) {
    return InvalidArgument(fmt::format("cannot read the XGBoost model JSON: {}", e.what()));
  }
  // A leaf reads row[0] while other lanes of its group descend: a row has at least one value.
  forest.num_features_ = std::max<std::size_t>(forest.num_features_, 1);
  return forest;
}

void FlatForest::AccumulateMargins(const float* row, float* margins) const {
  const Node* nodes = nodes_.data();
  for (std::size_t g = 0; g < num_groups_; ++g) margins[g] = base_margin_;
  const std::size_t trees = tree_roots_.size();
  // kLanes consecutive trees are walked in lockstep: their node loads are independent, so
  // the CPU overlaps them instead of waiting on one chain of dependent loads. A lane that
  // reached its leaf stays there for the group's remaining levels.
  std::size_t t = 0;
  for (; t + kLanes <= trees; t += kLanes) {
    std::uint32_t at[kLanes];
    for (std::size_t k = 0; k < kLanes; ++k) at[k] = tree_roots_[t + k];
    const int depth = group_depths_[t / kLanes];
    for (int level = 0; level < depth; ++level) {
      for (std::size_t k = 0; k < kLanes; ++k) {
        const Node& node = nodes[at[k]];
        // A leaf's feature bits are 0, so this reads row[0] harmlessly.
        float x = row[node.feature_flags & kFeatureMask];
        // Default left: NaN fails `x >= value` and goes left. Default right: NaN fails
        // `x < value` and goes right. Either way one comparison, as XGBoost's `!(x < value)`.
        bool go_right =
            (node.feature_flags & kDefaultLeft) ? (x >= node.value) : !(x < node.value);
        std::uint32_t child = node.left + go_right;
        at[k] = (node.feature_flags & kLeaf) ? at[k] : child;
      }
    }
    // Summed in float in tree order, as XGBoost's CPU predictor does, for equal results.
    for (std::size_t k = 0; k < kLanes; ++k) margins[tree_groups_[t + k]] += nodes[at[k]].value;
  }
  for (; t < trees; ++t) {
    const Node* node = nodes + tree_roots_[t];
    while (!(node->feature_flags & kLeaf)) {
      float x = row[node->feature_flags & kFeatureMask];
      bool go_right = (node->feature_flags & kDefaultLeft) ? (x >= node->value)
                                                           : !(x < node->value);
      node = nodes + node->left + go_right;
    }
    margins[tree_groups_[t]] += node->value;
  }
}

void FlatForest::ApplyTransform(float* margins, float* out) const {
  switch (transform_) {
    case Transform::kIdentity:
      out[0] = margins[0];
      return;
    case Transform::kSigmoid:
      out[0] = 1.0f / (1.0f + std::exp(-margins[0]));
      return;
    case Transform::kExp:
      out[0] = std::exp(margins[0]);
      return;
    case Transform::kHinge:
      out[0] = margins[0] > 0.0f ? 1.0f : 0.0f;
      return;
    case Transform::kArgmax: {
      std::size_t best = 0;
      for (std::size_t g = 1; g < num_groups_; ++g) {
        if (margins[g] > margins[best]) best = g;
      }
      out[0] = static_cast<float>(best);
      return;
    }
    case Transform::kSoftmax: {
      float max = margins[0];
      for (std::size_t g = 1; g < num_groups_; ++g) max = std::fmax(margins[g], max);
      double sum = 0;  // XGBoost sums in double, divides in float
      for (std::size_t g = 0; g < num_groups_; ++g) {
        out[g] = std::exp(margins[g] - max);
        sum += out[g];
      }
      for (std::size_t g = 0; g < num_groups_; ++g) out[g] /= static_cast<float>(sum);
      return;
    }
  }
}

void FlatForest::PredictRow(const float* row, float* out) const {
  constexpr std::size_t kStackGroups = 64;
  if (num_groups_ <= kStackGroups) {
    float margins[kStackGroups];
    AccumulateMargins(row, margins);
    ApplyTransform(margins, out);
  } else {
    std::vector<float> margins(num_groups_);
    AccumulateMargins(row, margins.data());
    ApplyTransform(margins.data(), out);
  }
}

void FlatForest::PredictDense(const float* rows, std::size_t n, std::size_t cols, float* out,
                              int threads) const {
  // Rows narrower than the model are padded with NaN (missing), as XGBoost treats them.
  const bool padded = cols < num_features_;
  // Below this many rows a parallel region costs more than it saves.
  constexpr std::size_t kRowsPerThread = 64;
  int team = static_cast<int>(std::min<std::size_t>(std::max(threads, 1),
                                                    std::max<std::size_t>(n / kRowsPerThread, 1)));
#pragma omp parallel num_threads(team) if (team > 1)
  {
    std::vector<float> row(padded ? num_features_ : 0, std::numeric_limits<float>::quiet_NaN());
#pragma omp for schedule(static)
    for (std::int64_t r = 0; r < static_cast<std::int64_t>(n); ++r) {
      const float* src = rows + static_cast<std::size_t>(r) * cols;
      if (padded) {
        std::copy(src, src + cols, row.begin());
        src = row.data();
      }
      PredictRow(src, out + static_cast<std::size_t>(r) * output_width_);
    }
  }
}

}  // namespace hearth::algorithms::xgb
