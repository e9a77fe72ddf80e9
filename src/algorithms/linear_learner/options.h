// Linear learner options: SageMaker's hyperparameter table for `linear-learner` (names,
// defaults and ranges as the SageMaker developer guide gives them) and the typed options the
// trainer runs on, resolved from a parsed Hyperparameters.
//
// Values that SageMaker leaves to "auto" and that depend on the data (learning rate, weight
// decay, number of models, class weights, scheduler step) stay unset here: the trainer fills
// them in once the first pass over the training data has counted it (see trainer.h).
//
// Thread safety: value types and pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "algorithms/hyperparameters.h"
#include "common/status.h"

namespace hearth::algorithms::linear_learner {

enum class PredictorType { kBinaryClassifier, kMulticlassClassifier, kRegressor };

enum class Loss {
  kLogistic,
  kSquared,
  kAbsolute,
  kHinge,
  kEpsInsensitiveSquared,
  kEpsInsensitiveAbsolute,
  kQuantile,
  kHuber,
  kSoftmax,
};

enum class Optimizer { kSgd, kAdam, kRmsprop };

enum class SelectionCriterion {
  kAccuracy,
  kFBeta,
  kPrecisionAtTargetRecall,
  kRecallAtTargetPrecision,
  kLossFunction,
};

enum class PositiveWeight { kFixed, kBalanced, kAuto };

std::string_view PredictorTypeName(PredictorType type);
std::string_view LossName(Loss loss);
Result<PredictorType> ParsePredictorType(std::string_view name);
Result<Loss> ParseLoss(std::string_view name);

struct Options {
  PredictorType predictor_type = PredictorType::kBinaryClassifier;
  // Outputs per model: 1 for binary and regression, num_classes for multiclass.
  int num_classes = 2;
  Loss loss = Loss::kLogistic;
  Optimizer optimizer = Optimizer::kAdam;

  int epochs = 15;
  std::size_t mini_batch_size = 1000;
  std::optional<std::size_t> feature_dim;  // nullopt = from the data

  // Unset = "auto" (trainer.h says how each is chosen).
  std::optional<float> learning_rate;
  std::optional<float> wd;
  std::optional<float> l1;
  std::optional<int> num_models;
  std::optional<std::size_t> num_calibration_samples;

  float beta_1 = 0.9f;
  float beta_2 = 0.999f;
  std::optional<float> momentum;  // SGD; unset = "auto"
  float bias_lr_mult = 1.0f;
  float bias_wd_mult = 0.0f;

  bool use_lr_scheduler = true;
  std::optional<int> lr_scheduler_step;
  float lr_scheduler_factor = 0.8f;
  std::optional<float> lr_scheduler_minimum_lr;

  bool use_bias = true;
  bool normalize_data = true;
  bool normalize_label = false;
  bool unbias_data = true;
  bool unbias_label = false;
  std::size_t num_point_for_scaler = 10000;

  bool init_normal = false;  // init_method: normal (else uniform)
  float init_scale = 0.07f;
  float init_sigma = 0.01f;
  float init_bias = 0.0f;

  int early_stopping_patience = 3;
  float early_stopping_tolerance = 0.001f;

  SelectionCriterion selection = SelectionCriterion::kAccuracy;
  float target_recall = 0.8f;
  float target_precision = 0.8f;
  float f_beta = 1.0f;

  PositiveWeight positive_weight = PositiveWeight::kFixed;
  float positive_example_weight_mult = 1.0f;
  bool balance_multiclass_weights = false;

  float margin = 1.0f;
  float quantile = 0.5f;
  float loss_insensitivity = 0.01f;
  float huber_delta = 1.0f;
  int accuracy_top_k = 3;

  std::uint64_t seed = 42;
  int threads = 0;  // 0 = chosen by the trainer (trainer.cc); > 0 = that many
};

// Every hyperparameter SageMaker's linear learner accepts, with its default and range.
const std::vector<HyperparameterSpec>& HyperparameterSpecs();

// Resolves parsed hyperparameters into Options. InvalidArgument, in the FailureReason format
// of hyperparameters.h, for a combination the table cannot express: num_classes missing for
// a multiclass classifier, a loss the predictor type does not support, beta_1 of 1, ...
Result<Options> OptionsFromHyperparameters(const Hyperparameters& hps);

}  // namespace hearth::algorithms::linear_learner
