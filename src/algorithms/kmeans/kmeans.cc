#include "algorithms/kmeans/kmeans.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "algorithms/host_memory.h"
#include "algorithms/kmeans/kmeans_model.h"
#include "algorithms/kmeans/kmeans_trainer.h"
#include "common/clock.h"

namespace hearth::algorithms {
namespace {

using kmeans::InitMethod;

// SageMaker's k-means takes no seed; runs are made repeatable with this fixed one.
constexpr std::uint64_t kSeed = 0x6b6d65616e73;  // "kmeans"
// What SageMaker's logs show 'auto' evaluating to ("'extra_center_factor' was set to 'auto',
// evaluated to 10.", ten "local kmeans attempt" lines).
constexpr std::size_t kAutoExtraCenterFactor = 10;
constexpr int kAutoLocalLloydTrials = 10;

HyperparameterSpec Integer(std::string name, std::optional<std::string> default_value,
                           double min, bool allow_auto = false) {
  HyperparameterSpec spec;
  spec.name = std::move(name);
  spec.type = HpType::kInt;
  spec.required = !default_value;
  spec.default_value = std::move(default_value);
  spec.min = min;
  spec.allow_auto = allow_auto;
  return spec;
}

HyperparameterSpec Choice(std::string name, std::string default_value,
                          std::vector<std::string> choices) {
  HyperparameterSpec spec;
  spec.name = std::move(name);
  spec.type = HpType::kCategorical;
  spec.default_value = std::move(default_value);
  spec.choices = std::move(choices);
  return spec;
}

HyperparameterSpec Other(std::string name, HpType type, std::string default_value) {
  HyperparameterSpec spec;
  spec.name = std::move(name);
  spec.type = type;
  spec.default_value = std::move(default_value);
  return spec;
}

// Names, defaults and ranges of SageMaker's k-means (k-means-api-config; defaults as its
// default-input.json logs them).
const std::vector<HyperparameterSpec>& Specs() {
  static const std::vector<HyperparameterSpec> kSpecs = [] {
    HyperparameterSpec tol = Other("local_lloyd_tol", HpType::kFloat, "0.0001");
    tol.min = 0;
    tol.max = 1;
    return std::vector<HyperparameterSpec>{
        Integer("feature_dim", std::nullopt, 1),
        Integer("k", std::nullopt, 1),
        Integer("mini_batch_size", "5000", 1),
        Integer("epochs", "1", 1),
        Choice("init_method", "random", {"random", "kmeans++"}),
        Integer("extra_center_factor", "auto", 1, /*allow_auto=*/true),
        Integer("local_lloyd_max_iter", "300", 1),
        tol,
        Integer("local_lloyd_num_trials", "auto", 1, /*allow_auto=*/true),
        Choice("local_lloyd_init_method", "kmeans++", {"random", "kmeans++"}),
        Integer("half_life_time_size", "0", 0),
        Other("eval_metrics", HpType::kString, R"(["msd"])"),
        // Sent by every sagemaker SDK k-means estimator; rows are always dense here.
        Other("force_dense", HpType::kBool, "true"),
    };
  }();
  return kSpecs;
}

InitMethod ToInitMethod(const std::string& value) {
  return value == "kmeans++" ? InitMethod::kKMeansPlusPlus : InitMethod::kRandom;
}

// `["msd", "ssd"]` (JSON, what the sagemaker SDK sends) or `[msd, ssd]` (the Spark SDK's).
Result<std::vector<std::string>> ParseEvalMetrics(const std::string& raw) {
  auto invalid = [&] {
    return InvalidArgument("Hyperparameter 'eval_metrics' must be a JSON list of \"msd\" and/or "
                           "\"ssd\", got '" + raw + "'.");
  };
  std::string_view text = raw;
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  text = trim(text);
  if (text.size() < 2 || text.front() != '[' || text.back() != ']') return invalid();
  text = text.substr(1, text.size() - 2);
  std::vector<std::string> metrics;
  while (true) {
    const std::size_t comma = text.find(',');
    std::string_view item = trim(text.substr(0, comma));
    if (item.size() >= 2 && (item.front() == '"' || item.front() == '\'') &&
        item.back() == item.front()) {
      item = item.substr(1, item.size() - 2);
    }
    if (item != "msd" && item != "ssd") return invalid();
    if (std::find(metrics.begin(), metrics.end(), item) == metrics.end()) {
      metrics.emplace_back(item);
    }
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return metrics;
}

class ChannelRows final : public kmeans::RowSource {
 public:
  ChannelRows(const TrainingContext& ctx, const ChannelInfo& channel)
      : ctx_(ctx), channel_(channel) {}

  Result<std::unique_ptr<data::RecordReader>> Open(int epoch) override {
    return ctx_.OpenChannel(channel_.name, epoch);
  }
  std::string_view name() const override { return channel_.name; }
  bool csv_label_column() const override {
    return channel_.content_type.format == data::Format::kCsv &&
           channel_.content_type.label_size > 0;
  }

 private:
  const TrainingContext& ctx_;
  const ChannelInfo& channel_;
};

class KMeans final : public Algorithm {
 public:
  std::string_view name() const override { return "kmeans"; }
  std::vector<std::string> repositories() const override { return {"kmeans"}; }
  std::vector<MetricDefinition> metric_definitions() const override {
    return {QualityMetric("test", "msd"), QualityMetric("test", "ssd"),
            QualityMetric("train", "msd")};
  }
  const std::vector<HyperparameterSpec>& hyperparameter_specs() const override { return Specs(); }
  // SageMaker's first-party algorithms read RecordIO-protobuf when a channel names no
  // ContentType (the sagemaker SDK's record_set() channels name none).
  std::string_view default_content_type() const override {
    return "application/x-recordio-protobuf";
  }

  Status Train(const TrainingContext& ctx, const Hyperparameters& hps) const override {
    for (const auto& [channel, info] : ctx.channels()) {
      if (channel != "train" && channel != "test") {
        return InvalidArgument("k-means reads the channels 'train' and 'test'; got a channel '" +
                               channel + "'.");
      }
    }
    if (!ctx.HasChannel("train")) return InvalidArgument("k-means needs a 'train' channel.");
    ASSIGN_OR_RETURN(const std::vector<std::string> eval_metrics,
                     ParseEvalMetrics(hps.String("eval_metrics")));

    kmeans::KMeansConfig config;
    config.feature_dim = hps.Int("feature_dim");
    config.k = hps.Int("k");
    config.mini_batch_size = hps.Int("mini_batch_size");
    config.epochs = static_cast<int>(hps.Int("epochs"));
    config.init_method = ToInitMethod(hps.String("init_method"));
    config.extra_center_factor = hps.IsAuto("extra_center_factor")
                                     ? kAutoExtraCenterFactor
                                     : hps.Int("extra_center_factor");
    config.half_life_time_size = hps.Int("half_life_time_size");
    config.local_lloyd.max_iter = static_cast<int>(hps.Int("local_lloyd_max_iter"));
    config.local_lloyd.tol = hps.Float("local_lloyd_tol");
    config.local_lloyd_num_trials = hps.IsAuto("local_lloyd_num_trials")
                                        ? kAutoLocalLloydTrials
                                        : static_cast<int>(hps.Int("local_lloyd_num_trials"));
    config.local_lloyd_init_method = ToInitMethod(hps.String("local_lloyd_init_method"));
    config.seed = kSeed;
    if (hps.IsAuto("extra_center_factor")) {
      ctx.Log("'extra_center_factor' was set to 'auto', evaluated to " +
              std::to_string(config.extra_center_factor) + ".");
    }

    // The candidate centers must fit; beyond that, half of what is left may hold the data.
    const std::uint64_t available = AvailableMemoryBytes();
    const double center_bytes = static_cast<double>(config.k) * config.extra_center_factor *
                                config.feature_dim * sizeof(float);
    if (available > 0 && center_bytes > available / 2.0) {
      return InvalidArgument("k * extra_center_factor * feature_dim = " +
                             std::to_string(static_cast<std::uint64_t>(center_bytes / 4)) +
                             " center values do not fit in the memory available (" +
                             std::to_string(available >> 20) + " MiB).");
    }
    config.memory_budget_bytes = available / 2;

    ChannelRows train(ctx, ctx.channels().at("train"));
    kmeans::TrainEvents events;
    events.log = [&ctx](std::string_view line) { ctx.Log(line); };
    events.train_msd = [&ctx](double msd, std::optional<int> epoch) {
      ctx.EmitMetric("train", "msd", msd, epoch);
    };
    const auto train_start = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(kmeans::TrainResult result, kmeans::TrainKMeans(config, train, events));
    // Reading and fitting interleave (the first pass streams): the fit is the rest.
    ctx.LogPhase("read", result.read_seconds);
    ctx.LogPhase("fit", SecondsSince(train_start) - result.read_seconds);
    const auto write_start = std::chrono::steady_clock::now();
    const kmeans::KMeansModel model(std::move(result.centers));
    RETURN_IF_ERROR(model.Save(ctx.model_dir(), ctx.current_host()));
    ctx.LogPhase("write", SecondsSince(write_start));

    if (!ctx.HasChannel("test")) {
      ctx.Log("Test data is not provided.");
      return Status::Ok();
    }
    const auto evaluate_start = std::chrono::steady_clock::now();
    ChannelRows test(ctx, ctx.channels().at("test"));
    ASSIGN_OR_RETURN(const kmeans::Evaluation evaluation,
                     kmeans::EvaluateCenters(model.centers(), test, config.mini_batch_size));
    ctx.LogPhase("evaluate", SecondsSince(evaluate_start));
    for (const std::string& metric : eval_metrics) {
      ctx.EmitMetric("test", metric, metric == "msd" ? evaluation.msd() : evaluation.ssd);
    }
    return Status::Ok();
  }

  Result<std::unique_ptr<Model>> LoadModel(const std::filesystem::path& model_dir) const override {
    ASSIGN_OR_RETURN(auto model, kmeans::KMeansModel::Load(model_dir));
    return std::unique_ptr<Model>(std::move(model));
  }
};

}  // namespace

const Algorithm& KMeansAlgorithm() {
  static const KMeans kAlgorithm;
  return kAlgorithm;
}

}  // namespace hearth::algorithms
