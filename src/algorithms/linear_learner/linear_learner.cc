#include "algorithms/linear_learner/linear_learner.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "algorithms/host_memory.h"
#include "algorithms/linear_learner/fit.h"
#include "algorithms/linear_learner/linear_model.h"
#include "algorithms/linear_learner/options.h"
#include "algorithms/linear_learner/trainer.h"
#include "common/clock.h"

namespace hearth::algorithms {
namespace {

using linear_learner::BatchGroupFn;
using linear_learner::EpochSource;

// Mini-batches read per call of the training loop when streaming from a channel.
constexpr std::size_t kStreamGroupBatches = 16;

// What the parsed training and validation data may hold in memory before the channels are
// re-read every epoch instead: $HEARTH_LINEAR_LEARNER_CACHE_BYTES, else half of the memory
// available (1 GiB when that is unknown).
std::size_t CacheBudgetBytes() {
  if (const char* env = std::getenv("HEARTH_LINEAR_LEARNER_CACHE_BYTES"); env && *env) {
    return static_cast<std::size_t>(std::strtoull(env, nullptr, 10));
  }
  const std::size_t available = AvailableMemoryBytes();
  return available > 0 ? available / 2 : std::size_t{1} << 30;
}

std::size_t BatchBytes(const data::Batch& b) {
  return 4 * (b.dense.size() + b.values.size() + b.indices.size() + b.labels.size() +
              b.weights.size()) +
         8 * b.row_offsets.size();
}

// A channel re-read for each pass: `train_<n>` FIFOs in Pipe mode, the files in File mode.
// `check`, when set, vets every batch of every pass (a later pass may not hold what the first
// one did: Pipe mode streams each epoch anew).
class ChannelSource final : public EpochSource {
 public:
  using BatchCheck = std::function<Status(const data::Batch& batch, std::size_t first_row)>;

  ChannelSource(const TrainingContext& ctx, std::string channel, std::size_t batch_rows,
                int first_pass, BatchCheck check = nullptr)
      : ctx_(ctx),
        channel_(std::move(channel)),
        batch_rows_(batch_rows),
        pass_(first_pass),
        check_(std::move(check)) {}

  Status ForEachGroup(std::size_t max_rows, const BatchGroupFn& fn) override {
    auto reader = ctx_.OpenChannel(channel_, pass_++);
    if (!reader.ok()) return reader.status();
    std::vector<data::Batch> group(kStreamGroupBatches);
    std::vector<const data::Batch*> pointers;
    std::size_t rows = 0;
    bool more = true;
    while (more && rows < max_rows) {
      pointers.clear();
      for (data::Batch& b : group) {
        ASSIGN_OR_RETURN(more, (*reader)->Next(batch_rows_, &b));
        if (!more) break;
        if (check_) RETURN_IF_ERROR(check_(b, rows + 1));
        pointers.push_back(&b);
        rows += b.rows;
        if (rows >= max_rows) break;
      }
      if (!pointers.empty()) RETURN_IF_ERROR(fn(pointers));
    }
    return Status::Ok();
  }

 private:
  const TrainingContext& ctx_;
  std::string channel_;
  std::size_t batch_rows_;
  int pass_;
  BatchCheck check_;
};

// A channel read once: cached in memory when it fits `budget` (which shrinks by what it
// takes), else streamed from its next pass on, each batch vetted by `check`. `scanner`, when
// given, sees every batch of the first pass.
Result<std::unique_ptr<EpochSource>> LoadChannel(const TrainingContext& ctx,
                                                 const std::string& channel,
                                                 std::size_t batch_rows,
                                                 linear_learner::DataScanner* scanner,
                                                 std::size_t* budget,
                                                 ChannelSource::BatchCheck check) {
  auto reader = ctx.OpenChannel(channel, 0);
  if (!reader.ok()) return linear_learner::WithChannel(reader.status(), channel);
  std::vector<data::Batch> cache;
  std::size_t cached_bytes = 0;
  bool caching = true;
  while (true) {
    data::Batch batch;
    auto more = (*reader)->Next(batch_rows, &batch);
    if (!more.ok()) return linear_learner::WithChannel(more.status(), channel);
    if (!*more) break;
    if (scanner) RETURN_IF_ERROR(linear_learner::WithChannel(scanner->Add(batch), channel));
    if (!caching) continue;
    cached_bytes += BatchBytes(batch);
    if (cached_bytes > *budget) {
      ctx.Log("linear-learner: channel '" + channel +
              "' exceeds the in-memory budget; it is re-read every epoch");
      cache = {};
      caching = false;
      continue;
    }
    cache.push_back(std::move(batch));
  }
  if (caching) {
    *budget -= cached_bytes;
    return std::unique_ptr<EpochSource>(
        std::make_unique<linear_learner::InMemorySource>(std::move(cache)));
  }
  return std::unique_ptr<EpochSource>(
      std::make_unique<ChannelSource>(ctx, channel, batch_rows, /*first_pass=*/1, check));
}

Status EmitFinalMetrics(const TrainingContext& ctx, const linear_learner::Options& options,
                        const linear_learner::LinearModel& model, EpochSource& source,
                        std::string_view channel) {
  auto metrics = linear_learner::Evaluate(options, model, source);
  if (!metrics.ok()) return linear_learner::WithChannel(metrics.status(), channel);
  for (const auto& [name, value] : *metrics) ctx.EmitMetric(channel, name, value);
  return Status::Ok();
}

class LinearLearner final : public Algorithm {
 public:
  std::string_view name() const override { return "linear-learner"; }
  std::vector<std::string> repositories() const override { return {"linear-learner"}; }

  std::vector<MetricDefinition> metric_definitions() const override {
    std::vector<MetricDefinition> out{QualityMetric("train", "objective_loss")};
    for (const char* channel : {"test", "validation"}) {
      for (const char* metric :
           {"objective_loss", "mse", "rmse", "absolute_loss", "r2",
            "binary_classification_accuracy", "binary_f_beta", "precision", "recall",
            "roc_auc_score", "multiclass_accuracy", "multiclass_top_k_accuracy", "macro_f_beta",
            "macro_precision", "macro_recall", "dcg"}) {
        out.push_back(QualityMetric(channel, metric));
      }
    }
    return out;
  }

  const std::vector<HyperparameterSpec>& hyperparameter_specs() const override {
    return linear_learner::HyperparameterSpecs();
  }

  // As SageMaker's first-party algorithms: the sagemaker SDK's record_set() channels carry no
  // ContentType and hold RecordIO-protobuf.
  std::string_view default_content_type() const override {
    return "application/x-recordio-protobuf";
  }

  Status Train(const TrainingContext& ctx, const Hyperparameters& hps) const override {
    ASSIGN_OR_RETURN(linear_learner::Options options,
                     linear_learner::OptionsFromHyperparameters(hps));
    if (!ctx.HasChannel("train")) {
      std::string given;
      for (const auto& [name, info] : ctx.channels()) given += (given.empty() ? "" : ", ") + name;
      return InvalidArgument("linear-learner needs a 'train' channel; the job has " +
                             (given.empty() ? std::string("no channels") : "channels " + given));
    }

    auto phase_start = std::chrono::steady_clock::now();
    std::size_t budget = CacheBudgetBytes();
    linear_learner::DataScanner scanner(options);
    // Set once the first pass has fixed the width; vets the passes after it.
    std::size_t dim = 0;
    // (Fit names the channel in what they return.)
    auto check_train = [&](const data::Batch& b, std::size_t first_row) {
      RETURN_IF_ERROR(linear_learner::CheckLabels(options, b, first_row));
      return linear_learner::CheckFeatureWidth(b, dim);
    };
    ASSIGN_OR_RETURN(auto train, LoadChannel(ctx, "train", options.mini_batch_size, &scanner,
                                             &budget, check_train));
    auto summary = scanner.Summary();
    if (!summary.ok()) return linear_learner::WithChannel(summary.status(), "train");
    dim = summary->dim;
    const linear_learner::FeatureStats stats = scanner.Stats();

    std::unique_ptr<EpochSource> validation;
    if (ctx.HasChannel("validation")) {
      ASSIGN_OR_RETURN(validation, LoadChannel(ctx, "validation", options.mini_batch_size,
                                               nullptr, &budget, nullptr));
    }
    ctx.LogPhase("read", SecondsSince(phase_start));
    phase_start = std::chrono::steady_clock::now();

    linear_learner::FitCallbacks callbacks{
        .log = [&](std::string_view line) { ctx.Log("linear-learner: " + std::string(line)); },
        .metric = [&](std::string_view channel, std::string_view metric, double value,
                      std::optional<int> epoch) { ctx.EmitMetric(channel, metric, value, epoch); },
    };
    ASSIGN_OR_RETURN(linear_learner::FitResult fit,
                     linear_learner::Fit(options, *summary, stats, *train, validation.get(),
                                         callbacks));
    ctx.LogPhase("fit", SecondsSince(phase_start));
    ctx.Log("linear-learner: " + std::to_string(fit.epochs_run) +
            " passes over the training data (epochs), plus a calibration sample of at most " +
            std::to_string(options.num_calibration_samples.value_or(100000)) + " rows");
    phase_start = std::chrono::steady_clock::now();
    RETURN_IF_ERROR(fit.model.Save(ctx.model_dir()));
    ctx.LogPhase("write", SecondsSince(phase_start));
    phase_start = std::chrono::steady_clock::now();

    if (validation) {
      RETURN_IF_ERROR(EmitFinalMetrics(ctx, options, fit.model, *validation, "validation"));
    }
    if (ctx.HasChannel("test")) {
      ChannelSource test(ctx, "test", options.mini_batch_size, /*first_pass=*/0);
      RETURN_IF_ERROR(EmitFinalMetrics(ctx, options, fit.model, test, "test"));
    }
    if (validation || ctx.HasChannel("test")) ctx.LogPhase("evaluate", SecondsSince(phase_start));
    return Status::Ok();
  }

  Result<std::unique_ptr<Model>> LoadModel(const std::filesystem::path& model_dir) const override {
    ASSIGN_OR_RETURN(auto model, linear_learner::LinearModel::Load(model_dir));
    return std::unique_ptr<Model>(std::move(model));
  }
};

}  // namespace

const Algorithm& LinearLearnerAlgorithm() {
  static const LinearLearner algorithm;
  return algorithm;
}

}  // namespace hearth::algorithms
