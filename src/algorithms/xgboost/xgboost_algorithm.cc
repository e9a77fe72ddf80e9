#include "algorithms/xgboost/xgboost_algorithm.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <system_error>

#include "algorithms/xgboost/boosting.h"
#include "algorithms/xgboost/xgboost_api.h"
#include "algorithms/xgboost/xgboost_model.h"
#include "algorithms/xgboost/xgboost_params.h"
#include "common/clock.h"
#include "fmt/format.h"

namespace hearth::algorithms {

namespace {

namespace fs = std::filesystem;

constexpr const char* kTrain = "train";
constexpr const char* kValidation = "validation";

// The metrics SageMaker's documentation lists for XGBoost, plus the rest XGBoost prints.
const std::vector<std::string>& ReportedMetrics() {
  static const std::vector<std::string> kMetrics = {
      "accuracy", "auc",   "aucpr", "error",   "f1",   "logloss", "mae",  "map",
      "merror",   "mlogloss", "mse", "ndcg",  "rmse", "rmsle",   "mape", "mphe",
      "poisson-nloglik", "gamma-nloglik", "gamma-deviance", "tweedie-nloglik",
      "cox-nloglik", "aft-nloglik"};
  return kMetrics;
}

// CSV with csv_weights=1: the first feature column is the instance weight. Moves it out
// and closes the gap in place.
void SplitWeightColumn(data::Batch& batch) {
  const std::size_t cols = batch.cols;
  batch.weights.resize(batch.rows);
  float* d = batch.dense.data();
  for (std::size_t r = 0; r < batch.rows; ++r) {
    batch.weights[r] = d[r * cols];
    std::copy(d + r * cols + 1, d + (r + 1) * cols, d + r * (cols - 1));
  }
  batch.cols = cols - 1;
  batch.dense.resize(batch.rows * batch.cols);
}

Result<xgb::DMatrix> LoadChannel(const TrainingContext& ctx, const std::string& name,
                                 bool csv_weights, int nthread) {
  const ChannelInfo& channel = ctx.channels().at(name);
  ASSIGN_OR_RETURN(auto reader, ctx.OpenChannel(name, 0));
  auto batch = data::ReadAll(*reader);
  if (!batch.ok()) {
    return Status(batch.status().code(),
                  fmt::format("Channel '{}': {}", name, batch.status().message()));
  }
  if (batch->rows == 0) {
    return InvalidArgument(fmt::format("No data in the '{}' channel ({}).", name,
                                       channel.dir.string()));
  }
  if (!batch->has_labels()) {
    return InvalidArgument(fmt::format(
        "Channel '{}': XGBoost needs a label in every row (ContentType '{}').", name,
        channel.content_type_text));
  }
  if (csv_weights && channel.content_type.format == data::Format::kCsv) {
    if (batch->cols < 2) {
      return InvalidArgument(fmt::format(
          "Channel '{}': csv_weights=1 needs a weight column and at least one feature.", name));
    }
    SplitWeightColumn(*batch);
  }
  auto matrix = xgb::DMatrix::FromBatch(*batch, nthread);
  if (!matrix.ok()) {
    return InvalidArgument(fmt::format("Channel '{}': {}", name, matrix.status().message()));
  }
  return matrix;
}

Status SaveModel(const xgb::Booster& booster, const fs::path& model_dir) {
  std::error_code ec;
  fs::create_directories(model_dir, ec);
  if (ec) {
    return Internal(fmt::format("cannot create {}: {}", model_dir.string(), ec.message()));
  }
  // XGBoost picks the format from the extension: ".partial" gives the binary format, which
  // the final name (no extension) reads back as.
  fs::path partial = model_dir / (std::string(xgb::kModelFileName) + ".partial");
  RETURN_IF_ERROR(booster.Save(partial));
  fs::rename(partial, model_dir / xgb::kModelFileName, ec);
  if (ec) return Internal(fmt::format("cannot write the model: {}", ec.message()));
  return Status::Ok();
}

class XGBoost final : public Algorithm {
 public:
  std::string_view name() const override { return "xgboost"; }
  std::vector<std::string> repositories() const override {
    return {"sagemaker-xgboost", "xgboost"};
  }
  std::string_view default_content_type() const override { return "text/libsvm"; }
  data::ResponseFormat default_accept() const override { return data::ResponseFormat::kCsv; }
  const std::vector<HyperparameterSpec>& hyperparameter_specs() const override {
    return xgb::HyperparameterSpecs();
  }

  std::vector<MetricDefinition> metric_definitions() const override {
    std::vector<MetricDefinition> out;
    for (const char* set : {kValidation, kTrain}) {
      for (const std::string& metric : ReportedMetrics()) {
        out.push_back({fmt::format("{}:{}", set, metric),
                       fmt::format(".*\\[[0-9]+\\].*#011{}-{}:([-+]?[0-9]*\\.?[0-9]+(?:[eE][-+]?"
                                   "[0-9]+)?).*",
                                   set, metric)});
      }
    }
    return out;
  }

  Status Train(const TrainingContext& ctx, const Hyperparameters& hps) const override {
    ASSIGN_OR_RETURN(xgb::TrainingPlan plan,
                     xgb::PlanTraining(hps, ctx.raw_hyperparameters(), ctx.num_cpus()));
    for (const auto& [name, channel] : ctx.channels()) {
      if (name != kTrain && name != kValidation) {
        return InvalidArgument(fmt::format(
            "Channel '{}' is not a channel of XGBoost; it reads 'train' and 'validation'.",
            name));
      }
      if (channel.content_type.format != data::Format::kCsv &&
          channel.content_type.format != data::Format::kLibsvm &&
          channel.content_type.format != data::Format::kRecordIOProtobuf) {
        return InvalidArgument(fmt::format(
            "Channel '{}': ContentType '{}' is not supported by XGBoost (text/libsvm, text/csv, "
            "application/x-recordio-protobuf).",
            name, channel.content_type_text));
      }
    }
    if (!ctx.HasChannel(kTrain)) {
      return InvalidArgument("Missing required channel 'train'.");
    }
    if (ctx.hosts().size() > 1) {
      return InvalidArgument(fmt::format(
          "XGBoost trains on one instance here; the job has {} (InstanceCount must be 1).",
          ctx.hosts().size()));
    }

    const int nthread = ctx.num_cpus();
    ctx.Log(fmt::format("XGBoost {} on {} cores", xgb::LibraryVersion(), nthread));
    auto started = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(xgb::DMatrix train, LoadChannel(ctx, kTrain, plan.csv_weights, nthread));
    ctx.Log(fmt::format("Train matrix has {} rows and {} columns", train.rows(), train.cols()));
    std::optional<xgb::DMatrix> validation;
    if (ctx.HasChannel(kValidation)) {
      ASSIGN_OR_RETURN(validation, LoadChannel(ctx, kValidation, plan.csv_weights, nthread));
      ctx.Log(fmt::format("Validation matrix has {} rows", validation->rows()));
    }
    ctx.LogPhase("read", SecondsSince(started));

    std::vector<const xgb::DMatrix*> cache = {&train};
    std::vector<xgb::EvalSet> evals = {{kTrain, &train}};
    if (validation) {
      cache.push_back(&*validation);
      evals.push_back({kValidation, &*validation});
    }
    ASSIGN_OR_RETURN(xgb::Booster booster, xgb::Booster::Create(cache));
    for (const auto& [param, value] : plan.booster_params) {
      RETURN_IF_ERROR(booster.SetParam(param, value));
    }

    xgb::BoostingOptions options{.num_round = plan.num_round,
                                 .early_stopping_rounds = plan.early_stopping_rounds,
                                 .custom_metrics = plan.custom_metrics,
                                 .num_parallel_tree = plan.num_parallel_tree};
    auto boosting_started = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(xgb::BoostingResult result,
                     xgb::RunBoosting(booster, train, evals, options,
                                      [&ctx](std::string_view line) { ctx.Log(line); }));
    ctx.LogPhase("fit", SecondsSince(boosting_started));
    ctx.Log(fmt::format("Trained {} rounds; best round {}.", result.rounds,
                        result.best_iteration));
    auto writing_started = std::chrono::steady_clock::now();
    RETURN_IF_ERROR(SaveModel(booster, ctx.model_dir()));
    ctx.LogPhase("write", SecondsSince(writing_started));
    return Status::Ok();
  }

  Result<std::unique_ptr<Model>> LoadModel(const fs::path& model_dir) const override {
    ASSIGN_OR_RETURN(auto model, xgb::XGBoostModel::Load(model_dir));
    return std::unique_ptr<Model>(std::move(model));
  }
};

}  // namespace

const Algorithm& XGBoostAlgorithm() {
  static const XGBoost kAlgorithm;
  return kAlgorithm;
}

}  // namespace hearth::algorithms
