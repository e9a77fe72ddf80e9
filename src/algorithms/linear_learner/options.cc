#include "algorithms/linear_learner/options.h"

#include <cstdlib>

namespace hearth::algorithms::linear_learner {
namespace {

HyperparameterSpec Spec(std::string name, HpType type, std::optional<std::string> default_value) {
  HyperparameterSpec spec;
  spec.name = std::move(name);
  spec.type = type;
  spec.default_value = std::move(default_value);
  return spec;
}

HyperparameterSpec Categorical(std::string name, std::vector<std::string> choices,
                               std::optional<std::string> default_value) {
  HyperparameterSpec spec = Spec(std::move(name), HpType::kCategorical, std::move(default_value));
  spec.choices = std::move(choices);
  return spec;
}

HyperparameterSpec Int(std::string name, std::optional<std::string> default_value, double min,
                       std::optional<double> max = std::nullopt, bool allow_auto = false) {
  HyperparameterSpec spec = Spec(std::move(name), HpType::kInt, std::move(default_value));
  spec.min = min;
  spec.max = max;
  spec.allow_auto = allow_auto;
  return spec;
}

HyperparameterSpec Float(std::string name, std::optional<std::string> default_value,
                         std::optional<double> min, bool min_exclusive,
                         std::optional<double> max = std::nullopt, bool allow_auto = false) {
  HyperparameterSpec spec = Spec(std::move(name), HpType::kFloat, std::move(default_value));
  spec.min = min;
  spec.max = max;
  spec.min_exclusive = min_exclusive;
  spec.allow_auto = allow_auto;
  return spec;
}

HyperparameterSpec Bool(std::string name, std::string default_value, bool allow_auto) {
  HyperparameterSpec spec = Spec(std::move(name), HpType::kBool, std::move(default_value));
  spec.allow_auto = allow_auto;
  return spec;
}

Status Invalid(std::string_view name, std::string_view rule, std::string_view value) {
  return InvalidArgument("Hyperparameter '" + std::string(name) + "' " + std::string(rule) +
                         ", got '" + std::string(value) + "'.");
}

std::optional<float> OptionalFloat(const Hyperparameters& hps, std::string_view name) {
  if (hps.IsAuto(name)) return std::nullopt;
  return static_cast<float>(hps.Float(name));
}

std::optional<std::int64_t> OptionalInt(const Hyperparameters& hps, std::string_view name) {
  if (!hps.Has(name) || hps.IsAuto(name)) return std::nullopt;
  return hps.Int(name);
}

// "auto" -> `if_auto`, else the boolean.
bool AutoBool(const Hyperparameters& hps, std::string_view name, bool if_auto) {
  return hps.IsAuto(name) ? if_auto : hps.Bool(name);
}

}  // namespace

std::string_view PredictorTypeName(PredictorType type) {
  switch (type) {
    case PredictorType::kBinaryClassifier: return "binary_classifier";
    case PredictorType::kMulticlassClassifier: return "multiclass_classifier";
    case PredictorType::kRegressor: return "regressor";
  }
  return "";
}

std::string_view LossName(Loss loss) {
  switch (loss) {
    case Loss::kLogistic: return "logistic";
    case Loss::kSquared: return "squared_loss";
    case Loss::kAbsolute: return "absolute_loss";
    case Loss::kHinge: return "hinge_loss";
    case Loss::kEpsInsensitiveSquared: return "eps_insensitive_squared_loss";
    case Loss::kEpsInsensitiveAbsolute: return "eps_insensitive_absolute_loss";
    case Loss::kQuantile: return "quantile_loss";
    case Loss::kHuber: return "huber_loss";
    case Loss::kSoftmax: return "softmax_loss";
  }
  return "";
}

Result<PredictorType> ParsePredictorType(std::string_view name) {
  for (auto type : {PredictorType::kBinaryClassifier, PredictorType::kMulticlassClassifier,
                    PredictorType::kRegressor}) {
    if (PredictorTypeName(type) == name) return type;
  }
  return InvalidArgument("unknown predictor_type '" + std::string(name) + "'");
}

Result<Loss> ParseLoss(std::string_view name) {
  for (auto loss : {Loss::kLogistic, Loss::kSquared, Loss::kAbsolute, Loss::kHinge,
                    Loss::kEpsInsensitiveSquared, Loss::kEpsInsensitiveAbsolute, Loss::kQuantile,
                    Loss::kHuber, Loss::kSoftmax}) {
    if (LossName(loss) == name) return loss;
  }
  return InvalidArgument("unknown loss '" + std::string(name) + "'");
}

const std::vector<HyperparameterSpec>& HyperparameterSpecs() {
  static const std::vector<HyperparameterSpec> specs = [] {
    std::vector<HyperparameterSpec> s;
    HyperparameterSpec predictor_type = Categorical(
        "predictor_type", {"binary_classifier", "multiclass_classifier", "regressor"},
        std::nullopt);
    predictor_type.required = true;
    s.push_back(predictor_type);
    s.push_back(Int("num_classes", std::nullopt, 3, 1000000));
    s.push_back(Int("accuracy_top_k", "3", 1));
    s.push_back(Bool("balance_multiclass_weights", "false", false));
    s.push_back(Float("beta_1", "auto", 0, false, 1, true));
    s.push_back(Float("beta_2", "auto", 0, false, 1, true));
    s.push_back(Float("bias_lr_mult", "auto", 0, true, std::nullopt, true));
    s.push_back(Float("bias_wd_mult", "auto", 0, false, std::nullopt, true));
    // "f1" and "cross_entropy_loss" are what the SageMaker Python SDK v1 also lets through.
    s.push_back(Categorical("binary_classifier_model_selection_criteria",
                            {"accuracy", "f_beta", "precision_at_target_recall",
                             "recall_at_target_precision", "loss_function", "f1",
                             "cross_entropy_loss"},
                            "accuracy"));
    s.push_back(Int("early_stopping_patience", "3", 1));
    s.push_back(Float("early_stopping_tolerance", "0.001", 0, true));
    s.push_back(Int("epochs", "15", 1));
    s.push_back(Float("f_beta", "1.0", 0, true));
    s.push_back(Int("feature_dim", "auto", 1, std::nullopt, true));
    s.push_back(Float("huber_delta", "1.0", 0, true));
    s.push_back(Float("init_bias", "0", std::nullopt, false));
    s.push_back(Categorical("init_method", {"uniform", "normal"}, "uniform"));
    s.push_back(Float("init_scale", "0.07", 0, true));
    s.push_back(Float("init_sigma", "0.01", 0, true));
    s.push_back(Float("l1", "auto", 0, false, std::nullopt, true));
    s.push_back(Float("learning_rate", "auto", 0, true, std::nullopt, true));
    s.push_back(Categorical("loss",
                            {"auto", "logistic", "squared_loss", "absolute_loss", "hinge_loss",
                             "eps_insensitive_squared_loss", "eps_insensitive_absolute_loss",
                             "quantile_loss", "huber_loss", "softmax_loss"},
                            "auto"));
    s.push_back(Float("loss_insensitivity", "0.01", 0, true));
    s.push_back(Float("lr_scheduler_factor", "auto", 0, true, 1, true));
    s.push_back(Float("lr_scheduler_minimum_lr", "auto", 0, true, std::nullopt, true));
    s.push_back(Int("lr_scheduler_step", "auto", 1, std::nullopt, true));
    s.push_back(Float("margin", "1.0", 0, true));
    s.push_back(Int("mini_batch_size", "1000", 1));
    s.push_back(Float("momentum", "auto", 0, false, 1, true));
    s.push_back(Bool("normalize_data", "true", true));
    s.push_back(Bool("normalize_label", "auto", true));
    s.push_back(Int("num_calibration_samples", "auto", 1, std::nullopt, true));
    s.push_back(Int("num_models", "auto", 1, std::nullopt, true));
    s.push_back(Int("num_point_for_scaler", "10000", 1));
    s.push_back(Categorical("optimizer", {"auto", "sgd", "adam", "rmsprop"}, "auto"));
    // A float, "balanced" or "auto": checked in OptionsFromHyperparameters.
    s.push_back(Spec("positive_example_weight_mult", HpType::kString, "1.0"));
    s.push_back(Float("quantile", "0.5", 0, true, 1));
    s.push_back(Float("target_precision", "0.8", 0, true, 1));
    s.push_back(Float("target_recall", "0.8", 0, true, 1));
    s.push_back(Bool("unbias_data", "auto", true));
    s.push_back(Bool("unbias_label", "auto", true));
    s.push_back(Bool("use_bias", "true", false));
    s.push_back(Bool("use_lr_scheduler", "true", false));
    s.push_back(Float("wd", "auto", 0, false, std::nullopt, true));
    return s;
  }();
  return specs;
}

Result<Options> OptionsFromHyperparameters(const Hyperparameters& hps) {
  Options o;
  ASSIGN_OR_RETURN(o.predictor_type, ParsePredictorType(hps.String("predictor_type")));
  const bool regressor = o.predictor_type == PredictorType::kRegressor;

  if (o.predictor_type == PredictorType::kMulticlassClassifier) {
    if (!hps.Has("num_classes")) {
      return InvalidArgument(
          "Hyperparameter 'num_classes' is required when predictor_type is "
          "multiclass_classifier.");
    }
    o.num_classes = static_cast<int>(hps.Int("num_classes"));
  } else {
    o.num_classes = regressor ? 1 : 2;
  }

  const std::string& loss = hps.String("loss");
  if (loss == "auto") {
    o.loss = regressor ? Loss::kSquared
             : o.predictor_type == PredictorType::kBinaryClassifier ? Loss::kLogistic
                                                                    : Loss::kSoftmax;
  } else {
    ASSIGN_OR_RETURN(o.loss, ParseLoss(loss));
    bool classifier_loss =
        o.loss == Loss::kLogistic || o.loss == Loss::kHinge || o.loss == Loss::kSoftmax;
    std::string_view allowed;
    if (regressor && classifier_loss) {
      allowed = "squared_loss, absolute_loss, eps_insensitive_squared_loss, "
                "eps_insensitive_absolute_loss, quantile_loss or huber_loss";
    } else if (o.predictor_type == PredictorType::kBinaryClassifier &&
               o.loss != Loss::kLogistic && o.loss != Loss::kHinge) {
      allowed = "logistic or hinge_loss";
    } else if (o.predictor_type == PredictorType::kMulticlassClassifier && !classifier_loss) {
      allowed = "softmax_loss, logistic or hinge_loss";
    }
    if (!allowed.empty()) {
      return Invalid("loss",
                     "must be auto, " + std::string(allowed) + " when predictor_type is " +
                         std::string(PredictorTypeName(o.predictor_type)),
                     loss);
    }
  }

  const std::string& optimizer = hps.String("optimizer");
  o.optimizer = optimizer == "sgd"       ? Optimizer::kSgd
                : optimizer == "rmsprop" ? Optimizer::kRmsprop
                                         : Optimizer::kAdam;

  o.epochs = static_cast<int>(hps.Int("epochs"));
  o.mini_batch_size = static_cast<std::size_t>(hps.Int("mini_batch_size"));
  if (auto dim = OptionalInt(hps, "feature_dim")) o.feature_dim = static_cast<std::size_t>(*dim);
  o.learning_rate = OptionalFloat(hps, "learning_rate");
  o.wd = OptionalFloat(hps, "wd");
  o.l1 = OptionalFloat(hps, "l1");
  if (auto n = OptionalInt(hps, "num_models")) o.num_models = static_cast<int>(*n);
  if (auto n = OptionalInt(hps, "num_calibration_samples")) {
    o.num_calibration_samples = static_cast<std::size_t>(*n);
  }

  for (const char* name : {"beta_1", "beta_2", "momentum"}) {
    if (!hps.IsAuto(name) && hps.Float(name) >= 1.0) {
      return Invalid(name, "must be 'auto' or a float in [0, 1)", hps.values().find(name)->second);
    }
  }
  if (!hps.IsAuto("beta_1")) o.beta_1 = static_cast<float>(hps.Float("beta_1"));
  if (!hps.IsAuto("beta_2")) o.beta_2 = static_cast<float>(hps.Float("beta_2"));
  o.momentum = OptionalFloat(hps, "momentum");
  if (!hps.IsAuto("bias_lr_mult")) o.bias_lr_mult = static_cast<float>(hps.Float("bias_lr_mult"));
  if (!hps.IsAuto("bias_wd_mult")) o.bias_wd_mult = static_cast<float>(hps.Float("bias_wd_mult"));

  o.use_lr_scheduler = hps.Bool("use_lr_scheduler");
  if (auto step = OptionalInt(hps, "lr_scheduler_step")) o.lr_scheduler_step = static_cast<int>(*step);
  if (!hps.IsAuto("lr_scheduler_factor")) {
    o.lr_scheduler_factor = static_cast<float>(hps.Float("lr_scheduler_factor"));
  }
  o.lr_scheduler_minimum_lr = OptionalFloat(hps, "lr_scheduler_minimum_lr");

  o.use_bias = hps.Bool("use_bias");
  o.normalize_data = AutoBool(hps, "normalize_data", true);
  // Labels are normalised for regression only; SageMaker ignores `true` for classifiers.
  o.normalize_label = regressor && AutoBool(hps, "normalize_label", true);
  // Shifting without a bias term would smuggle one in: only with use_bias.
  o.unbias_data = o.use_bias && AutoBool(hps, "unbias_data", true);
  o.unbias_label = regressor && o.use_bias && AutoBool(hps, "unbias_label", true);
  o.num_point_for_scaler = static_cast<std::size_t>(hps.Int("num_point_for_scaler"));

  o.init_normal = hps.String("init_method") == "normal";
  o.init_scale = static_cast<float>(hps.Float("init_scale"));
  o.init_sigma = static_cast<float>(hps.Float("init_sigma"));
  o.init_bias = static_cast<float>(hps.Float("init_bias"));

  o.early_stopping_patience = static_cast<int>(hps.Int("early_stopping_patience"));
  o.early_stopping_tolerance = static_cast<float>(hps.Float("early_stopping_tolerance"));

  const std::string& criterion = hps.String("binary_classifier_model_selection_criteria");
  if (criterion == "accuracy") {
    o.selection = SelectionCriterion::kAccuracy;
  } else if (criterion == "f_beta") {
    o.selection = SelectionCriterion::kFBeta;
  } else if (criterion == "f1") {
    o.selection = SelectionCriterion::kFBeta;
  } else if (criterion == "precision_at_target_recall") {
    o.selection = SelectionCriterion::kPrecisionAtTargetRecall;
  } else if (criterion == "recall_at_target_precision") {
    o.selection = SelectionCriterion::kRecallAtTargetPrecision;
  } else {
    o.selection = SelectionCriterion::kLossFunction;
  }
  o.target_recall = static_cast<float>(hps.Float("target_recall"));
  o.target_precision = static_cast<float>(hps.Float("target_precision"));
  o.f_beta = criterion == "f1" ? 1.0f : static_cast<float>(hps.Float("f_beta"));

  const std::string& weight = hps.String("positive_example_weight_mult");
  if (weight == "balanced") {
    o.positive_weight = PositiveWeight::kBalanced;
  } else if (weight == "auto") {
    o.positive_weight = PositiveWeight::kAuto;
  } else {
    char* end = nullptr;
    double value = std::strtod(weight.c_str(), &end);
    if (weight.empty() || end != weight.c_str() + weight.size() || !(value > 0)) {
      return Invalid("positive_example_weight_mult",
                     "must be 'balanced', 'auto' or a float > 0", weight);
    }
    o.positive_weight = PositiveWeight::kFixed;
    o.positive_example_weight_mult = static_cast<float>(value);
  }
  o.balance_multiclass_weights = hps.Bool("balance_multiclass_weights");

  o.margin = static_cast<float>(hps.Float("margin"));
  o.quantile = static_cast<float>(hps.Float("quantile"));
  if (o.quantile >= 1.0f) return Invalid("quantile", "must be a float in (0, 1)", hps.values().find("quantile")->second);
  o.loss_insensitivity = static_cast<float>(hps.Float("loss_insensitivity"));
  o.huber_delta = static_cast<float>(hps.Float("huber_delta"));
  o.accuracy_top_k = static_cast<int>(hps.Int("accuracy_top_k"));
  return o;
}

}  // namespace hearth::algorithms::linear_learner
