// Algorithm and Model: the contract every built-in (one folder each under algorithms/)
// implements, and the registry the `hearth algo <name> train|serve` entry point, the image
// registry and the model server read.
//
//   train: Train(ctx) reads channels through the TrainingContext, prints metrics with
//          ctx.EmitMetric, writes the artifact into ctx.model_dir(). A returned error becomes
//          /opt/ml/output/failure (-> FailureReason) and a non-zero exit (algo_main.cc).
//   serve: LoadModel(model_dir) loads what Train wrote; Model::Predict answers
//          /invocations (serving/).
//
// Thread safety: Algorithm objects are immutable singletons. A loaded Model must allow
// concurrent Predict calls (the model server calls it from one thread per connection).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "algorithms/hyperparameters.h"
#include "algorithms/training_context.h"
#include "common/status.h"
#include "data/batch.h"
#include "data/predictions.h"

namespace hearth::algorithms {

struct MetricDefinition {
  std::string name;   // "validation:binary_classification_accuracy"
  std::string regex;  // one capture group: the value
};

// The regex matching the line TrainingContext::EmitMetric prints for `channel` / `metric`,
// and the MetricDefinition named "<channel>:<metric>" built from it.
std::string MetricLineRegex(std::string_view channel, std::string_view metric);
MetricDefinition QualityMetric(std::string_view channel, std::string_view metric);

class Model {
 public:
  virtual ~Model() = default;
  // Number of features a row must have (0 = any).
  virtual std::size_t feature_dim() const = 0;
  // `rows` holds features only (no labels), dense or sparse. InvalidArgument (-> 400) for a
  // row of the wrong width.
  virtual Result<data::Predictions> Predict(const data::Batch& rows) const = 0;
};

class Algorithm {
 public:
  virtual ~Algorithm() = default;
  virtual std::string_view name() const = 0;  // "linear-learner"
  // ECR repository names the image answers to ("linear-learner"; xgboost: "sagemaker-xgboost",
  // "xgboost").
  virtual std::vector<std::string> repositories() const = 0;
  virtual std::vector<MetricDefinition> metric_definitions() const = 0;
  virtual const std::vector<HyperparameterSpec>& hyperparameter_specs() const = 0;
  // ContentType assumed for a channel that gives none.
  virtual std::string_view default_content_type() const { return "text/csv"; }
  // Default Accept for /invocations.
  virtual data::ResponseFormat default_accept() const { return data::ResponseFormat::kJson; }

  virtual Status Train(const TrainingContext& ctx, const Hyperparameters& hps) const = 0;
  virtual Result<std::unique_ptr<Model>> LoadModel(const std::filesystem::path& model_dir) const = 0;
};

// Every built-in, in a fixed order (registry.cc lists them explicitly).
const std::vector<const Algorithm*>& Registry();
const Algorithm* FindAlgorithm(std::string_view name);

}  // namespace hearth::algorithms
