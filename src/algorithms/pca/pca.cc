#include "algorithms/pca/pca.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "algorithms/host_memory.h"
#include "algorithms/mxnet_ndarray.h"
#include "common/clock.h"
#include "common/fs.h"
#include "fmt/format.h"

namespace hearth::algorithms {
namespace pca {
namespace {

namespace fs = std::filesystem;

// A channel's rows, densified to feature_dim columns, one pass per epoch. Pass 0 also keeps
// the rows in memory when `cache_budget` allows, and later passes replay them instead of
// reading the channel again.
class ChannelRows : public RowBlocks {
 public:
  ChannelRows(const TrainingContext& ctx, const ChannelInfo& channel, std::size_t dim,
              std::size_t batch_rows, std::size_t cache_budget)
      : ctx_(ctx),
        channel_(channel),
        dim_(dim),
        batch_rows_(batch_rows),
        cache_budget_(cache_budget) {}

  std::size_t dim() const override { return dim_; }
  // Time spent reading and densifying, all passes.
  double read_seconds() const { return read_seconds_; }

  Status ForEachBlock(int pass, const Visitor& visit) override {
    if (pass > 0 && cached_) {
      for (const Segment& s : cache_) RETURN_IF_ERROR(visit(s.values.data(), s.rows));
      return Status::Ok();
    }
    ASSIGN_OR_RETURN(std::unique_ptr<data::RecordReader> reader,
                     ctx_.OpenChannel(channel_.name, pass));
    bool caching = pass == 0 && cache_budget_ > 0;
    std::size_t cached_bytes = 0;
    data::Batch batch;
    std::vector<float> densified;
    while (true) {
      const auto read_start = std::chrono::steady_clock::now();
      ASSIGN_OR_RETURN(bool more, reader->Next(batch_rows_, &batch));
      if (!more) break;
      if (batch.rows == 0) continue;
      ASSIGN_OR_RETURN(const float* rows, Dense(batch, &densified));
      read_seconds_ += SecondsSince(read_start);
      if (caching) {
        cached_bytes += batch.rows * dim_ * sizeof(float);
        if (cached_bytes > cache_budget_) {
          caching = false;
          cache_.clear();
          cache_.shrink_to_fit();
        } else {
          Cache(rows, batch.rows);
        }
      }
      RETURN_IF_ERROR(visit(rows, batch.rows));
    }
    cached_ = caching;
    return Status::Ok();
  }

 private:
  struct Segment {
    std::vector<float> values;
    std::size_t rows = 0;
  };
  // Rows per cache segment: large blocks for the accumulators, few allocations.
  static constexpr std::size_t kSegmentBytes = std::size_t{16} << 20;

  void Cache(const float* rows, std::size_t n) {
    const std::size_t segment_rows = std::max<std::size_t>(1, kSegmentBytes / (dim_ * 4));
    while (n > 0) {
      if (cache_.empty() || cache_.back().rows == segment_rows) {
        cache_.emplace_back();
        cache_.back().values.reserve(segment_rows * dim_);
      }
      Segment& s = cache_.back();
      const std::size_t take = std::min(n, segment_rows - s.rows);
      s.values.insert(s.values.end(), rows, rows + take * dim_);
      s.rows += take;
      rows += take * dim_;
      n -= take;
    }
  }

  Result<const float*> Dense(const data::Batch& batch, std::vector<float>* densified) const {
    if (!batch.sparse) {
      if (batch.cols != dim_) return WidthError(batch.cols);
      return batch.dense.data();
    }
    densified->assign(batch.rows * dim_, 0.0f);
    for (std::size_t r = 0; r < batch.rows; ++r) {
      for (std::uint64_t p = batch.row_offsets[r]; p < batch.row_offsets[r + 1]; ++p) {
        if (batch.indices[p] >= dim_) {
          return InvalidArgument(
              fmt::format("{} channel: a row has feature index {}, but feature_dim is {}",
                          channel_.name, batch.indices[p], dim_));
        }
        (*densified)[r * dim_ + batch.indices[p]] = batch.values[p];
      }
    }
    return densified->data();
  }

  Status WidthError(std::size_t cols) const {
    std::string hint;
    if (channel_.content_type.format == data::Format::kCsv &&
        channel_.content_type.label_size == 1) {
      hint = fmt::format(
          " (ContentType '{}' makes the first CSV column a label; use "
          "'text/csv;label_size=0' for rows without one)",
          channel_.content_type_text);
    }
    return InvalidArgument(fmt::format("{} channel: rows have {} features, but feature_dim is {}{}",
                                       channel_.name, cols, dim_, hint));
  }

  const TrainingContext& ctx_;
  const ChannelInfo& channel_;
  std::size_t dim_, batch_rows_, cache_budget_;
  std::vector<Segment> cache_;
  bool cached_ = false;
  double read_seconds_ = 0;
};

class PcaModel : public Model {
 public:
  // `components`: feature_dim × k, columns in served order; `mean` empty or feature_dim.
  PcaModel(Eigen::MatrixXf components, Eigen::VectorXf mean)
      : components_(std::move(components)), mean_(std::move(mean)) {
    mean_projection_ = mean_.size() > 0 ? Eigen::RowVectorXf(mean_.transpose() * components_)
                                        : Eigen::RowVectorXf::Zero(components_.cols());
  }

  std::size_t feature_dim() const override { return components_.rows(); }

  Result<data::Predictions> Predict(const data::Batch& rows) const override {
    const Eigen::Index dim = components_.rows(), k = components_.cols();
    data::Predictions out;
    out.rows = rows.rows;
    out.envelope = "projections";
    data::PredictionColumn column;
    column.name = "projection";
    column.width = static_cast<std::size_t>(k);
    column.always_vector = true;
    column.values.resize(rows.rows * k);
    using RowMap = Eigen::Map<Eigen::RowVectorXf>;
    if (!rows.sparse) {
      if (rows.rows > 0 && rows.cols != static_cast<std::size_t>(dim)) {
        return InvalidArgument(
            fmt::format("rows have {} features; this PCA model expects {}", rows.cols, dim));
      }
      Eigen::RowVectorXf centred(dim);
      for (std::size_t r = 0; r < rows.rows; ++r) {
        Eigen::Map<const Eigen::RowVectorXf> x(rows.row(r), dim);
        RowMap projection(&column.values[r * k], k);
        if (mean_.size() > 0) {
          centred = x - mean_.transpose();
          projection.noalias() = centred * components_;
        } else {
          projection.noalias() = x * components_;
        }
      }
    } else {
      for (std::size_t r = 0; r < rows.rows; ++r) {
        RowMap projection(&column.values[r * k], k);
        projection = -mean_projection_;
        for (std::uint64_t p = rows.row_offsets[r]; p < rows.row_offsets[r + 1]; ++p) {
          if (rows.indices[p] >= dim) {
            return InvalidArgument(
                fmt::format("a row has feature index {}; this PCA model expects {} features",
                            rows.indices[p], dim));
          }
          projection += rows.values[p] * components_.row(rows.indices[p]);
        }
      }
    }
    out.columns.push_back(std::move(column));
    return out;
  }

 private:
  Eigen::MatrixXf components_;
  Eigen::VectorXf mean_;
  Eigen::RowVectorXf mean_projection_;
};

const NamedArray* Find(const std::vector<NamedArray>& arrays, std::string_view name) {
  for (const NamedArray& a : arrays) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

Result<PcaOptions> OptionsFrom(const Hyperparameters& hps) {
  const std::int64_t dim = hps.Int("feature_dim");
  const std::int64_t k = hps.Int("num_components");
  if (k > dim) {
    return InvalidArgument(fmt::format(
        "Hyperparameter 'num_components' ({}) must not exceed 'feature_dim' ({}).", k, dim));
  }
  PcaOptions options;
  options.num_components = static_cast<std::size_t>(k);
  options.subtract_mean = hps.Bool("subtract_mean");
  options.mode = hps.String("algorithm_mode") == "randomized" ? Mode::kRandomized : Mode::kRegular;
  const std::int64_t extra = hps.Int("extra_components");
  options.sketch_width =
      static_cast<std::size_t>(k + (extra < 0 ? std::max<std::int64_t>(10, k) : extra));
  return options;
}

class PcaAlgorithmImpl : public Algorithm {
 public:
  std::string_view name() const override { return "pca"; }
  std::vector<std::string> repositories() const override { return {"pca"}; }
  // SageMaker's PCA publishes no metrics (and no tuning objective).
  std::vector<MetricDefinition> metric_definitions() const override { return {}; }

  const std::vector<HyperparameterSpec>& hyperparameter_specs() const override {
    static const std::vector<HyperparameterSpec> specs = [] {
      auto integer = [](std::string name, bool required, double min,
                        std::optional<std::string> default_value) {
        HyperparameterSpec spec;
        spec.name = std::move(name);
        spec.type = HpType::kInt;
        spec.required = required;
        spec.min = min;
        spec.default_value = std::move(default_value);
        return spec;
      };
      HyperparameterSpec mode;
      mode.name = "algorithm_mode";
      mode.type = HpType::kCategorical;
      mode.default_value = "regular";
      mode.choices = {"regular", "randomized"};
      HyperparameterSpec subtract_mean;
      subtract_mean.name = "subtract_mean";
      subtract_mean.type = HpType::kBool;
      subtract_mean.default_value = "true";
      return std::vector<HyperparameterSpec>{
          integer("feature_dim", true, 1, std::nullopt),
          integer("mini_batch_size", true, 1, std::nullopt),
          integer("num_components", true, 1, std::nullopt),
          mode,
          subtract_mean,
          // -1: max(10, num_components)
          integer("extra_components", false, -1, "-1"),
      };
    }();
    return specs;
  }

  // Channels without a ContentType hold RecordIO-protobuf, as for SageMaker's first-party
  // algorithms: the sagemaker SDK's record_set() channels carry none.
  std::string_view default_content_type() const override {
    return "application/x-recordio-protobuf";
  }

  Status Train(const TrainingContext& ctx, const Hyperparameters& hps) const override {
    ASSIGN_OR_RETURN(PcaOptions options, OptionsFrom(hps));
    for (const auto& [channel, info] : ctx.channels()) {
      if (channel != "train" && channel != "test") {
        return InvalidArgument(
            fmt::format("PCA reads the channels 'train' and 'test'; got a channel '{}'.", channel));
      }
    }
    const auto train = ctx.channels().find("train");
    if (train == ctx.channels().end()) {
      return InvalidArgument("PCA needs a 'train' channel.");
    }
    const std::size_t dim = static_cast<std::size_t>(hps.Int("feature_dim"));
    const std::size_t batch_rows = static_cast<std::size_t>(hps.Int("mini_batch_size"));
    const bool randomized = options.mode == Mode::kRandomized;
    const bool krylov_passes = randomized && !RandomizedFormsScatterMatrix(dim, options);
    std::string plan;
    if (krylov_passes) {
      plan = fmt::format(", sketch width {}, {} data passes", options.sketch_width,
                         options.passes);
    } else if (randomized) {
      plan = fmt::format(
          ", sketch width {}: forming the {}x{} covariance matrix in one data pass costs less "
          "than {} Krylov passes over the data, so the result is exact",
          options.sketch_width, dim, dim, options.passes);
    }
    ctx.Log(fmt::format("PCA: {} mode, {} components of {} features, subtract_mean={}{}",
                        randomized ? "randomized" : "regular", options.num_components, dim,
                        options.subtract_mean ? "true" : "false", plan));

    const auto start = std::chrono::steady_clock::now();
    // Only the Krylov passes read the data more than once: they replay it from memory.
    ChannelRows rows(ctx, train->second, dim, batch_rows,
                     krylov_passes ? AvailableMemoryBytes() / 2 : 0);
    ASSIGN_OR_RETURN(PcaFit fit, FitPca(rows, options));
    // Reading and fitting interleave (regular mode streams): the fit is the rest.
    ctx.LogPhase("read", rows.read_seconds());
    ctx.LogPhase("fit", SecondsSince(start) - rows.read_seconds());
    ctx.Log(fmt::format("PCA: {} rows", fit.rows));

    const Eigen::VectorXd ratio = fit.ExplainedVarianceRatio();
    double cumulative = 0;
    for (Eigen::Index j = 0; j < ratio.size(); ++j) {
      cumulative += ratio(j);
      ctx.Log(
          fmt::format("PCA: component {}: singular value {:.9g}, explained variance ratio {:.9f} "
                      "(cumulative {:.9f})",
                      j + 1, std::sqrt(fit.eigenvalues(j)), ratio(j), cumulative));
    }
    ctx.Log(fmt::format("train: explained variance ratio of {} components: {:.9f}", ratio.size(),
                        cumulative));

    if (const auto test = ctx.channels().find("test"); test != ctx.channels().end()) {
      const auto evaluate_start = std::chrono::steady_clock::now();
      ChannelRows test_rows(ctx, test->second, dim, batch_rows, 0);
      ASSIGN_OR_RETURN(double kept, HeldOutExplainedVariance(test_rows, fit));
      ctx.Log(fmt::format("test: explained variance ratio of {} components: {:.9f}", ratio.size(),
                          kept));
      ctx.LogPhase("evaluate", SecondsSince(evaluate_start));
    }
    const auto write_start = std::chrono::steady_clock::now();
    RETURN_IF_ERROR(WriteModel(fit, ctx.model_dir(), ctx.current_host()));
    ctx.LogPhase("write", SecondsSince(write_start));
    return Status::Ok();
  }

  Result<std::unique_ptr<Model>> LoadModel(const fs::path& model_dir) const override {
    return pca::LoadModel(model_dir);
  }
};

}  // namespace

Status WriteModel(const PcaFit& fit, const fs::path& model_dir, std::string_view host) {
  const Eigen::Index dim = fit.components.rows(), k = fit.components.cols();
  // SageMaker's order: smallest variance first.
  NamedArray s{"s", {k}, {}};
  NamedArray v{"v", {dim, k}, std::vector<float>(dim * k)};
  for (Eigen::Index j = 0; j < k; ++j) {
    const Eigen::Index source = k - 1 - j;
    s.values.push_back(static_cast<float>(std::sqrt(std::max(0.0, fit.eigenvalues(source)))));
    for (Eigen::Index i = 0; i < dim; ++i) {
      v.values[i * k + j] = static_cast<float>(fit.components(i, source));
    }
  }
  std::vector<NamedArray> arrays;
  if (!fit.mean.empty()) {
    arrays.push_back({"mean", {1, dim}, std::vector<float>(fit.mean.begin(), fit.mean.end())});
  }
  arrays.push_back(std::move(s));
  arrays.push_back(std::move(v));

  std::error_code ec;
  fs::create_directories(model_dir, ec);
  return WriteFileAtomic(model_dir / fmt::format("model_{}", host), EncodeNDArrayList(arrays));
}

Result<std::unique_ptr<Model>> LoadModel(const fs::path& model_dir) {
  // model_<host> as each training host wrote it; model_algo-1 sorts first.
  std::vector<fs::path> candidates;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(model_dir, ec)) {
    if (entry.is_regular_file() && entry.path().filename().string().starts_with("model_")) {
      candidates.push_back(entry.path());
    }
  }
  if (candidates.empty()) {
    return InvalidArgument(fmt::format("No PCA model (model_algo-1) in {}.", model_dir.string()));
  }
  std::sort(candidates.begin(), candidates.end());
  const fs::path& path = candidates.front();
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument(fmt::format("cannot read {}", path.string()));
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto arrays = DecodeNDArrayList(bytes);
  if (!arrays.ok()) {
    return InvalidArgument(fmt::format("{}: {}", path.string(), arrays.status().message()));
  }
  const NamedArray* v = Find(*arrays, "v");
  if (!v || v->shape.size() != 2 || v->shape[0] < 1 || v->shape[1] < 1) {
    return InvalidArgument(
        fmt::format("{}: not a PCA model (needs a 2-d array 'v' of components)", path.string()));
  }
  const Eigen::Index dim = v->shape[0], k = v->shape[1];
  Eigen::MatrixXf components =
      Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
          v->values.data(), dim, k);
  Eigen::VectorXf mean;
  if (const NamedArray* m = Find(*arrays, "mean")) {
    if (static_cast<Eigen::Index>(m->values.size()) != dim) {
      return InvalidArgument(fmt::format("{}: 'mean' has {} values for {} features", path.string(),
                                         m->values.size(), dim));
    }
    mean = Eigen::Map<const Eigen::VectorXf>(m->values.data(), dim);
  }
  return std::unique_ptr<Model>(new PcaModel(std::move(components), std::move(mean)));
}

}  // namespace pca

const Algorithm& PcaAlgorithm() {
  static const pca::PcaAlgorithmImpl algorithm;
  return algorithm;
}

}  // namespace hearth::algorithms
