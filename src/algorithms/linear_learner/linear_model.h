// LinearModel: a trained linear learner — what Train writes to the model directory and what
// `serve` answers /invocations with.
//
// The model is z = x·W + b over the raw features (K outputs; the trainer folds feature and
// label normalisation into W and b, so serving needs no statistics), then a link:
//   logistic     score = sigmoid(z)  (binary: one output; multiclass: one-vs-all per class)
//   softmax_loss score = softmax(z)
//   hinge_loss   score = z
//   regression   score = z
// Binary: predicted_label = score > threshold. Multiclass: predicted_label = argmax score.
//
// The artifact is one JSON file, `linear_learner_model.json`:
//   {"format": "hearth-linear-learner", "version": 1,
//    "predictor_type": "binary_classifier" | "multiclass_classifier" | "regressor",
//    "loss": "<loss name>", "feature_dim": D, "num_outputs": K,
//    "weights": [D*K floats, feature-major: weights[d*K + k]], "bias": [K floats],
//    "threshold": t (binary only), "training": {"learning_rate": .., "wd": .., ...}}
//
// Thread safety: Predict and Scores may be called concurrently.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "algorithms/algorithm.h"
#include "algorithms/linear_learner/options.h"
#include "common/status.h"
#include "data/batch.h"
#include "data/predictions.h"

namespace hearth::algorithms::linear_learner {

inline constexpr std::string_view kModelFileName = "linear_learner_model.json";

class LinearModel final : public Model {
 public:
  LinearModel() = default;
  LinearModel(PredictorType type, Loss loss, std::size_t dim, int outputs);

  PredictorType predictor_type() const { return predictor_type_; }
  Loss loss() const { return loss_; }
  int num_outputs() const { return outputs_; }
  std::size_t feature_dim() const override { return dim_; }

  // weights()[d * num_outputs() + k].
  std::vector<float>& weights() { return weights_; }
  const std::vector<float>& weights() const { return weights_; }
  std::vector<float>& bias() { return bias_; }
  const std::vector<float>& bias() const { return bias_; }
  float threshold() const { return threshold_; }
  void set_threshold(float threshold) { threshold_ = threshold; }
  // Facts about how the model was chosen (learning rate, wd, ...), stored with it.
  std::map<std::string, double>& training_info() { return training_info_; }
  const std::map<std::string, double>& training_info() const { return training_info_; }

  // Raw outputs z = x W + b, rows * num_outputs() row-major. Errors as Scores.
  Status Outputs(const data::Batch& rows, std::vector<float>* z) const;
  // Linked scores (see the link table above), rows * num_outputs() row-major. InvalidArgument
  // naming the expected and actual width for a dense row of the wrong width or a sparse index
  // past feature_dim().
  Status Scores(const data::Batch& rows, std::vector<float>* scores) const;
  // Scores -> predicted labels (binary / multiclass only).
  void Labels(const std::vector<float>& scores, std::size_t rows, std::vector<float>* labels) const;

  Result<data::Predictions> Predict(const data::Batch& rows) const override;

  std::string ToJson() const;
  static Result<LinearModel> FromJson(std::string_view text);
  // Writes / reads `dir`/linear_learner_model.json.
  Status Save(const std::filesystem::path& dir) const;
  static Result<std::unique_ptr<LinearModel>> Load(const std::filesystem::path& dir);

 private:
  PredictorType predictor_type_ = PredictorType::kBinaryClassifier;
  Loss loss_ = Loss::kLogistic;
  std::size_t dim_ = 0;
  int outputs_ = 1;
  std::vector<float> weights_;
  std::vector<float> bias_;
  float threshold_ = 0.5f;
  std::map<std::string, double> training_info_;
};

// OK when every dense row has `dim` values and every sparse index is below `dim`; else
// InvalidArgument naming the expected and actual width.
Status CheckFeatureWidth(const data::Batch& rows, std::size_t dim);

// The link of `loss` applied in place to rows of `outputs` raw values.
void ApplyLink(Loss loss, int outputs, float* values, std::size_t rows);

}  // namespace hearth::algorithms::linear_learner
