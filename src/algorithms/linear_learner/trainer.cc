#include "algorithms/linear_learner/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

#include <omp.h>

#include <Eigen/Core>

#include "algorithms/linear_learner/dense_kernels.h"

namespace hearth::algorithms::linear_learner {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ColMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using Array = Eigen::Array<float, Eigen::Dynamic, 1>;

// Scoring below this many multiply-adds stays on the calling thread.
constexpr double kParallelScoringWork = 1 << 20;
constexpr float kAdamEpsilon = 1e-8f;
constexpr float kRmspropDecay = 0.9f;

using AlignedFloats = std::vector<float, Eigen::aligned_allocator<float>>;

// Column stride of the per-batch output blocks: a multiple of 8 floats, so that every block
// starts 32-byte aligned and Eigen's vectorised loops split every block the same way.
std::size_t PaddedRows(std::size_t rows) { return (rows + 7) & ~std::size_t{7}; }

// Sums in index order: Eigen's vectorised reductions split a sum by the data's alignment,
// which would make results depend on how models are laid out across threads.
double OrderedSum(const float* values, std::size_t n) {
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) sum += values[i];
  return sum;
}

std::string RowText(std::size_t row) { return "row " + std::to_string(row); }

bool AllFinite(const float* values, std::size_t n) {
  // Infinities and NaNs have every exponent bit set. Integer tests vectorise; a float sum
  // could not be reordered.
  std::uint32_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, values + i, sizeof bits);
    bad |= (bits & 0x7f800000u) == 0x7f800000u;
  }
  return bad == 0;
}

}  // namespace

Status CheckLabels(const Options& options, const data::Batch& batch, std::size_t first_row) {
  if (batch.rows > 0 && batch.labels.size() != batch.rows) {
    return InvalidArgument(RowText(first_row) +
                           ": no label (a training channel needs a label in the first column "
                           "of text/csv, or label[\"values\"] in RecordIO-protobuf)");
  }
  for (std::size_t r = 0; r < batch.rows; ++r) {
    const float y = batch.labels[r];
    switch (options.predictor_type) {
      case PredictorType::kBinaryClassifier:
        if (y != 0.0f && y != 1.0f) {
          return InvalidArgument(RowText(first_row + r) + " has label " + std::to_string(y) +
                                 "; labels must be 0 or 1 when predictor_type is "
                                 "binary_classifier");
        }
        break;
      case PredictorType::kMulticlassClassifier:
        if (!(y >= 0 && y < options.num_classes) || y != std::floor(y)) {
          return InvalidArgument(RowText(first_row + r) + " has label " + std::to_string(y) +
                                 "; labels must be integers from 0 to num_classes - 1 = " +
                                 std::to_string(options.num_classes - 1) +
                                 " when predictor_type is multiclass_classifier");
        }
        break;
      case PredictorType::kRegressor:
        if (!std::isfinite(y)) {
          return InvalidArgument(RowText(first_row + r) + " has a label that is not a finite number");
        }
        break;
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------
// DataScanner

DataScanner::DataScanner(const Options& options) : options_(options) {
  if (options_.predictor_type != PredictorType::kRegressor) {
    summary_.class_counts.assign(options_.num_classes, 0.0);
  }
}

Status DataScanner::Add(const data::Batch& b) {
  if (b.rows == 0) return Status::Ok();
  RETURN_IF_ERROR(CheckLabels(options_, b, summary_.rows + 1));
  if (!b.sparse) {
    if (dense_cols_ != 0 && b.cols != dense_cols_) {
      return InvalidArgument(RowText(summary_.rows + 1) + " has " + std::to_string(b.cols) +
                             " features, earlier rows had " + std::to_string(dense_cols_));
    }
    dense_cols_ = b.cols;
    if (!AllFinite(b.dense.data(), b.dense.size())) {
      for (std::size_t r = 0; r < b.rows; ++r) {
        if (!AllFinite(b.row(r), b.cols)) {
          return InvalidArgument(RowText(summary_.rows + 1 + r) +
                                 " has a feature value that is not a finite number");
        }
      }
    }
    summary_.values += b.dense.size();
  } else {
    summary_.sparse = true;
    if (!AllFinite(b.values.data(), b.values.size())) {
      return InvalidArgument("rows " + std::to_string(summary_.rows + 1) + " to " +
                             std::to_string(summary_.rows + b.rows) +
                             " hold a feature value that is not a finite number");
    }
    summary_.values += b.values.size();
  }
  summary_.dim = std::max(summary_.dim, b.cols);

  if (!summary_.class_counts.empty()) {
    for (float y : b.labels) summary_.class_counts[static_cast<std::size_t>(y)] += 1;
  }

  // Normalisation statistics from the first num_point_for_scaler rows.
  const std::size_t take = std::min(b.rows, options_.num_point_for_scaler - std::min(
                                                options_.num_point_for_scaler, sample_rows_));
  if (take > 0) {
    if (sum_.size() < b.cols) {
      sum_.resize(b.cols, 0.0);
      square_sum_.resize(b.cols, 0.0);
    }
    for (std::size_t r = 0; r < take; ++r) {
      if (!b.sparse) {
        const float* x = b.row(r);
        for (std::size_t d = 0; d < b.cols; ++d) {
          sum_[d] += x[d];
          square_sum_[d] += double(x[d]) * x[d];
        }
      } else {
        for (std::uint64_t i = b.row_offsets[r]; i < b.row_offsets[r + 1]; ++i) {
          sum_[b.indices[i]] += b.values[i];
          square_sum_[b.indices[i]] += double(b.values[i]) * b.values[i];
        }
      }
      label_sum_ += b.labels[r];
      label_square_sum_ += double(b.labels[r]) * b.labels[r];
    }
    sample_rows_ += take;
  }
  summary_.rows += b.rows;
  return Status::Ok();
}

Result<DataSummary> DataScanner::Summary() const {
  if (summary_.rows == 0) return InvalidArgument("no rows");
  DataSummary summary = summary_;
  if (dense_cols_ != 0 && dense_cols_ != summary.dim) {
    return InvalidArgument("dense rows have " + std::to_string(dense_cols_) +
                           " features but sparse rows reach feature index " +
                           std::to_string(summary.dim - 1));
  }
  if (options_.feature_dim) {
    const std::size_t dim = *options_.feature_dim;
    if ((dense_cols_ != 0 && dense_cols_ != dim) || summary.dim > dim) {
      return InvalidArgument("Hyperparameter 'feature_dim' is " + std::to_string(dim) +
                             " but the data has " + std::to_string(summary.dim) + " features.");
    }
    summary.dim = dim;
  }
  return summary;
}

FeatureStats DataScanner::Stats() const {
  const std::size_t dim = options_.feature_dim.value_or(summary_.dim);
  FeatureStats stats;
  stats.mean.assign(dim, 0.0f);
  stats.scale.assign(dim, 1.0f);
  const double n = static_cast<double>(std::max<std::size_t>(sample_rows_, 1));
  // Sparse data keep their zeros: scaled, never shifted.
  const bool shift = options_.unbias_data && !summary_.sparse;
  for (std::size_t d = 0; d < std::min(dim, sum_.size()); ++d) {
    const double mean = sum_[d] / n;
    const double variance = std::max(0.0, square_sum_[d] / n - mean * mean);
    if (shift) stats.mean[d] = static_cast<float>(mean);
    if (options_.normalize_data && variance > 1e-12 * std::max(1.0, mean * mean)) {
      stats.scale[d] = static_cast<float>(1.0 / std::sqrt(variance));
    }
  }
  if (options_.predictor_type == PredictorType::kRegressor) {
    const double mean = label_sum_ / n;
    const double variance = std::max(0.0, label_square_sum_ / n - mean * mean);
    if (options_.unbias_label || options_.normalize_label) stats.label_mean = static_cast<float>(mean);
    if (options_.normalize_label && variance > 1e-12 * std::max(1.0, mean * mean)) {
      stats.label_scale = static_cast<float>(1.0 / std::sqrt(variance));
    }
    if (!options_.use_bias) stats.label_mean = 0.0f;
  }
  return stats;
}

// ---------------------------------------------------------------------------------------
// PlanTraining

TrainingPlan PlanTraining(const Options& o, const DataSummary& summary) {
  TrainingPlan plan;
  const std::size_t batches =
      std::max<std::size_t>(1, (summary.rows + o.mini_batch_size - 1) / o.mini_batch_size);

  // Large data sets make every model costly and leave little to regularisation; small ones
  // are cheap and are where the choice of learning rate and weight decay matters.
  const bool large = summary.values >= 20'000'000;
  const int models = o.num_models.value_or(large ? 2 : 8);

  float base_lr = 0.0f;
  switch (o.optimizer) {
    case Optimizer::kAdam: base_lr = 0.05f; break;
    case Optimizer::kRmsprop: base_lr = 0.01f; break;
    case Optimizer::kSgd: base_lr = 0.05f; break;
  }
  if (o.learning_rate) base_lr = *o.learning_rate;
  // Model i: the given (or default) settings first, then neighbours, as SageMaker spreads
  // its parallel models around the given settings.
  static constexpr float kLrMultipliers[] = {1.0f, 0.3f, 3.0f, 0.1f};
  static constexpr float kWeightDecays[] = {0.0f, 1e-4f, 1e-3f, 1e-2f};

  float balanced = 1.0f;
  if (o.predictor_type == PredictorType::kBinaryClassifier && summary.class_counts.size() == 2 &&
      summary.class_counts[1] > 0) {
    balanced = static_cast<float>(summary.class_counts[0] / summary.class_counts[1]);
  }
  for (int i = 0; i < models; ++i) {
    ModelSetting s;
    s.learning_rate = base_lr * (o.learning_rate ? 1.0f : kLrMultipliers[i % 4]);
    s.wd = o.wd ? *o.wd : kWeightDecays[(i / 4) % 4];
    s.l1 = o.l1.value_or(0.0f);
    switch (o.positive_weight) {
      case PositiveWeight::kFixed: s.positive_weight = o.positive_example_weight_mult; break;
      case PositiveWeight::kBalanced: s.positive_weight = balanced; break;
      case PositiveWeight::kAuto: s.positive_weight = i % 2 == 0 ? 1.0f : balanced; break;
    }
    plan.models.push_back(s);
  }

  // Twenty decays per epoch (0.8^20: about 1 %) on large data, which then converges within
  // an epoch or two; at least 50 updates between decays on small data, which needs many
  // epochs of updates at a useful step.
  plan.lr_step = o.lr_scheduler_step.value_or(
      static_cast<int>(std::max<std::size_t>(50, (batches + 19) / 20)));
  plan.lr_factor = o.lr_scheduler_factor;
  plan.min_lr = o.lr_scheduler_minimum_lr.value_or(0.0f);
  plan.momentum = o.momentum.value_or(o.optimizer == Optimizer::kSgd ? 0.9f : 0.0f);

  if (o.predictor_type == PredictorType::kMulticlassClassifier && o.balance_multiclass_weights) {
    plan.class_weights.assign(o.num_classes, 1.0f);
    for (int k = 0; k < o.num_classes; ++k) {
      const double count = summary.class_counts[k];
      if (count > 0) plan.class_weights[k] = static_cast<float>(summary.rows / (o.num_classes * count));
    }
  }
  return plan;
}

// ---------------------------------------------------------------------------------------
// MultiModelTrainer

struct MultiModelTrainer::ThreadScratch {
  int model_begin = 0, model_end = 0;      // the models this thread trains
  std::size_t col_begin = 0, col_end = 0;  // their rows of W
  std::size_t columns() const { return col_end - col_begin; }

  AlignedFloats z;                // PaddedRows(batch rows) x columns, column-major; G after
                                  // LossGradient
  std::vector<float> partial;     // columns x D: G^T X (sparse: only touched features set)
  bool partial_dirty = false;     // a dense batch left all of `partial` written
  std::vector<float> column_sum;  // columns: 1^T G
  std::vector<float> offset;      // columns: b - W_eff mean
  std::vector<float> step_size;   // columns: this mini-batch's step
  std::vector<double> loss;       // per own model: weighted loss sum over the batch
  AlignedFloats weight, target, tmp1, tmp2;  // per row
  std::vector<std::uint8_t> touched;              // sparse: features in this batch
  std::vector<std::uint32_t> touched_list;
  std::int64_t step = 0;
};

MultiModelTrainer::MultiModelTrainer(const Options& options, const TrainingPlan& plan,
                                     const FeatureStats& stats, std::size_t dim)
    : options_(options),
      plan_(plan),
      stats_(stats),
      dim_(dim),
      outputs_(options.predictor_type == PredictorType::kMulticlassClassifier ? options.num_classes
                                                                              : 1) {
  cols_ = static_cast<std::size_t>(num_models()) * outputs_;
  stats_.mean.resize(dim_, 0.0f);
  stats_.scale.resize(dim_, 1.0f);
  shift_ = std::any_of(stats_.mean.begin(), stats_.mean.end(), [](float m) { return m != 0; });

  loss_params_ = LossParamsFrom(options_);
  loss_params_.outputs = outputs_;
  loss_params_.insensitivity *= stats_.label_scale;
  loss_params_.huber_delta *= stats_.label_scale;

  std::mt19937_64 rng(options_.seed);
  w_.resize(cols_ * dim_);
  if (options_.init_normal) {
    std::normal_distribution<float> init(0.0f, options_.init_sigma);
    for (float& w : w_) w = init(rng);
  } else {
    std::uniform_real_distribution<float> init(-options_.init_scale, options_.init_scale);
    for (float& w : w_) w = init(rng);
  }
  bias_.assign(cols_, options_.use_bias ? options_.init_bias : 0.0f);
  moment1_.assign(w_.size(), 0.0f);
  moment2_.assign(w_.size(), 0.0f);
  bias_moment1_.assign(cols_, 0.0f);
  bias_moment2_.assign(cols_, 0.0f);
  w_effective_.resize(w_.size());
  offset_.resize(cols_);
  best_w_ = w_;
  best_bias_ = bias_;

  // Two ways to split the work: every model on one thread, and whole models spread over
  // all threads (Options::threads > 0 caps them, up to one per model). Which is faster
  // depends on the machine and its load — spread, each thread reads every row, so a pass is
  // bound by memory bandwidth that a second core raises little; alone, one core does all the
  // arithmetic — so TrainBatches times both (ChooseTeam). A model's arithmetic is the same
  // either way.
  const int most = std::max(1, std::min(options_.threads > 0 ? options_.threads
                                                             : omp_get_max_threads(),
                                        num_models()));
  teams_.resize(most > 1 ? 2 : 1);
  for (std::size_t team = 0; team < teams_.size(); ++team) {
    const int threads = team == 0 ? 1 : most;
    teams_[team].resize(threads);
    for (int t = 0; t < threads; ++t) {
      ThreadScratch& s = teams_[team][t];
      s.model_begin = num_models() * t / threads;
      s.model_end = num_models() * (t + 1) / threads;
      s.col_begin = static_cast<std::size_t>(s.model_begin) * outputs_;
      s.col_end = static_cast<std::size_t>(s.model_end) * outputs_;
      s.partial.assign(s.columns() * dim_, 0.0f);
      s.column_sum.assign(s.columns(), 0.0f);
      s.offset.assign(s.columns(), 0.0f);
      s.step_size.assign(s.columns(), 0.0f);
      s.loss.assign(s.model_end - s.model_begin, 0.0);
    }
  }
  epoch_loss_.assign(num_models(), 0.0);
  RefreshEffective();
}

MultiModelTrainer::~MultiModelTrainer() = default;

float MultiModelTrainer::ComputeOffset(std::size_t j) const {
  double offset = bias_[j];
  if (shift_) {
    const float* weff = w_effective_.data() + j * dim_;
    for (std::size_t d = 0; d < dim_; ++d) offset -= double(stats_.mean[d]) * weff[d];
  }
  return static_cast<float>(offset);
}

void MultiModelTrainer::RefreshEffective() {
  for (std::size_t j = 0; j < cols_; ++j) {
    for (std::size_t d = 0; d < dim_; ++d) {
      w_effective_[j * dim_ + d] = stats_.scale[d] * w_[j * dim_ + d];
    }
    offset_[j] = ComputeOffset(j);
  }
}

float MultiModelTrainer::LearningRate(std::size_t column, std::int64_t step) const {
  const ModelSetting& s = plan_.models[column / outputs_];
  if (!options_.use_lr_scheduler) return s.learning_rate;
  const float floor = plan_.min_lr > 0 ? plan_.min_lr : s.learning_rate * plan_.min_lr_ratio;
  const float decayed =
      s.learning_rate * std::pow(plan_.lr_factor, static_cast<float>(step / plan_.lr_step));
  return std::max(decayed, std::min(floor, s.learning_rate));
}

void MultiModelTrainer::BeginEpoch() {
  epoch_rows_ = 0;
  std::fill(epoch_loss_.begin(), epoch_loss_.end(), 0.0);
  probed_this_epoch_ = false;
}

std::vector<double> MultiModelTrainer::EndEpoch() {
  std::vector<double> loss = epoch_loss_;
  for (double& l : loss) l /= std::max(1.0, epoch_rows_);
  return loss;
}

void MultiModelTrainer::Forward(const data::Batch& b, const ThreadScratch& s, float* z) const {
  const std::size_t n = b.rows, ld = PaddedRows(n), columns = s.columns();
  Eigen::Map<ColMatrix, 0, Eigen::OuterStride<>> zt(z, n, columns, Eigen::OuterStride<>(ld));
  Eigen::Map<const Eigen::RowVectorXf> off(s.offset.data(), columns);
  const float* weff = w_effective_.data() + s.col_begin * dim_;
  if (!b.sparse) {
    // In chunks of at most kMaxForwardColumns outputs: each output's sum is the same whatever
    // else is computed beside it, so results do not depend on the thread count.
    for (std::size_t c = 0; c < columns; c += kMaxForwardColumns) {
      const int chunk = static_cast<int>(std::min<std::size_t>(kMaxForwardColumns, columns - c));
      DenseForward(b.dense.data(), n, dim_, weff + c * dim_, chunk, z + c * ld, ld);
    }
    zt.rowwise() += off;
    return;
  }
  zt = off.replicate(n, 1);
  for (std::size_t r = 0; r < n; ++r) {
    for (std::uint64_t i = b.row_offsets[r]; i < b.row_offsets[r + 1]; ++i) {
      const float v = b.values[i];
      const float* w = weff + b.indices[i];
      for (std::size_t j = 0; j < columns; ++j) z[j * ld + r] += v * w[j * dim_];
    }
  }
}

void MultiModelTrainer::LossGradient(const data::Batch& b, ThreadScratch& s) const {
  const std::size_t n = b.rows, ld = PaddedRows(n);
  s.weight.resize(n);
  s.target.resize(n);
  s.tmp1.resize(n);
  s.tmp2.resize(n);
  Eigen::Map<Array> weight(s.weight.data(), n), target(s.target.data(), n);
  Eigen::Map<Array> tmp1(s.tmp1.data(), n), tmp2(s.tmp2.data(), n);
  Eigen::Map<const Array> labels(b.labels.data(), n);
  if (b.weights.empty()) {
    weight.setOnes();
  } else {
    weight = Eigen::Map<const Array>(b.weights.data(), n);
  }
  if (!plan_.class_weights.empty()) {
    for (std::size_t r = 0; r < n; ++r) weight[r] *= plan_.class_weights[static_cast<int>(labels[r])];
  }
  const bool regressor = options_.predictor_type == PredictorType::kRegressor;
  if (regressor) target = (labels - stats_.label_mean) * stats_.label_scale;

  const LossParams& p = loss_params_;
  const int k_out = outputs_;
  for (int m = s.model_begin; m < s.model_end; ++m) {
    double loss = 0;
    float* block = s.z.data() + static_cast<std::size_t>(m - s.model_begin) * k_out * ld;
    if (p.loss == Loss::kSoftmax) {
      Eigen::Map<ColMatrix, 0, Eigen::OuterStride<>> zb(block, n, k_out, Eigen::OuterStride<>(ld));
      tmp1 = zb.rowwise().maxCoeff().array();
      for (std::size_t r = 0; r < n; ++r) tmp2[r] = zb(r, static_cast<int>(labels[r]));  // z_y
      zb.array().colwise() -= tmp1;
      zb.array() = zb.array().exp();
      const Array sums = zb.array().rowwise().sum();
      tmp2 = (sums.log() + tmp1 - tmp2) * weight;
      loss = OrderedSum(tmp2.data(), n);
      zb.array().colwise() *= weight / sums;
      for (std::size_t r = 0; r < n; ++r) zb(r, static_cast<int>(labels[r])) -= weight[r];
    } else if (!regressor) {
      const float positive_weight = plan_.models[m].positive_weight;
      for (int k = 0; k < k_out; ++k) {
        Eigen::Map<Array> zc(block + static_cast<std::size_t>(k) * ld, n);
        if (k_out == 1) {
          target = labels;
        } else {
          target = (labels == static_cast<float>(k)).cast<float>();
        }
        // Binary: positives weigh positive_weight (labels are 0/1).
        if (positive_weight != 1.0f && k_out == 1) {
          tmp2 = weight * (1.0f + (positive_weight - 1.0f) * target);
        } else {
          tmp2 = weight;
        }
        if (p.loss == Loss::kLogistic) {
          // One exponential serves loss and gradient: E = e^-z, sigmoid(z) = 1 / (1 + E),
          // loss = log(1 + E) + (1 - y) z. z is clamped to +-80 so that E stays finite (the
          // loss of a row past that is reported as 80-odd rather than its exact value).
          // Eigen 3.4 does not vectorise select(), so the arithmetic avoids it.
          tmp1 = (-zc.max(-80.0f).min(80.0f)).exp();
          const Array example_loss = ((1.0f + tmp1).log() + (1.0f - target) * zc) * tmp2;
          loss += OrderedSum(example_loss.data(), n);
          zc = ((1.0f + tmp1).inverse() - target) * tmp2;
        } else {  // hinge
          tmp1 = 2.0f * target - 1.0f;  // t in {-1, 1}
          const Array margin_loss = (p.margin - tmp1 * zc).max(0.0f);
          const Array example_loss = margin_loss * tmp2;
          loss += OrderedSum(example_loss.data(), n);
          zc = (margin_loss > 0.0f).select(-tmp1 * tmp2, 0.0f);
        }
      }
    } else {
      Eigen::Map<Array> zc(block, n);
      Array example_loss(n);
      tmp1 = zc - target;  // residual
      switch (p.loss) {
        case Loss::kSquared:
          example_loss = tmp1.square() * weight;
          zc = 2.0f * tmp1 * weight;
          break;
        case Loss::kAbsolute:
          example_loss = tmp1.abs() * weight;
          zc = tmp1.sign() * weight;
          break;
        case Loss::kEpsInsensitiveSquared:
          tmp2 = (tmp1.abs() - p.insensitivity).max(0.0f);
          example_loss = tmp2.square() * weight;
          zc = 2.0f * tmp2 * tmp1.sign() * weight;
          break;
        case Loss::kEpsInsensitiveAbsolute:
          tmp2 = (tmp1.abs() - p.insensitivity).max(0.0f);
          example_loss = tmp2 * weight;
          zc = (tmp2 > 0.0f).select(tmp1.sign(), 0.0f) * weight;
          break;
        case Loss::kQuantile:
          example_loss =
              (tmp1 < 0.0f).select(-p.quantile * tmp1, (1.0f - p.quantile) * tmp1) * weight;
          zc = (tmp1 < 0.0f).select(-p.quantile * weight, (1.0f - p.quantile) * weight);
          break;
        case Loss::kHuber: {
          const float delta = p.huber_delta;
          tmp2 = tmp1.abs();
          example_loss =
              (tmp2 <= delta).select(0.5f * tmp1.square(), delta * (tmp2 - 0.5f * delta)) * weight;
          zc = tmp1.max(-delta).min(delta) * weight;
          break;
        }
        default:
          example_loss.setZero();
          break;
      }
      loss = OrderedSum(example_loss.data(), n);
    }
    s.loss[m - s.model_begin] = loss;
  }
  for (std::size_t c = 0; c < s.columns(); ++c) {
    s.column_sum[c] = static_cast<float>(OrderedSum(s.z.data() + c * ld, n));
  }
}

void MultiModelTrainer::Backward(const data::Batch& b, const data::Batch* next,
                                 ThreadScratch& s) const {
  const std::size_t n = b.rows, ld = PaddedRows(n), columns = s.columns();
  const float* g = s.z.data();
  if (!b.sparse) {
    for (std::size_t c = 0; c < columns; c += kMaxBackwardColumns) {
      const int chunk = static_cast<int>(std::min<std::size_t>(kMaxBackwardColumns, columns - c));
      // The last chunk pulls in the next mini-batch while it computes from the cache.
      const bool last = c + chunk == columns;
      DenseBackward(b.dense.data(), n, dim_, g + c * ld, ld, chunk, s.partial.data() + c * dim_,
                    last && next && !next->sparse ? next->dense.data() : nullptr,
                    last && next ? next->dense.size() * sizeof(float) : 0);
    }
    s.partial_dirty = true;
    return;
  }
  if (s.partial_dirty) std::fill(s.partial.begin(), s.partial.end(), 0.0f);
  s.partial_dirty = false;
  if (s.touched.size() != dim_) s.touched.assign(dim_, 0);
  for (std::size_t r = 0; r < n; ++r) {
    for (std::uint64_t i = b.row_offsets[r]; i < b.row_offsets[r + 1]; ++i) {
      const std::uint32_t d = b.indices[i];
      const float v = b.values[i];
      for (std::size_t j = 0; j < columns; ++j) s.partial[j * dim_ + d] += v * g[j * ld + r];
      if (!s.touched[d]) {
        s.touched[d] = 1;
        s.touched_list.push_back(d);
      }
    }
  }
}

void MultiModelTrainer::UpdateCell(std::size_t j, std::size_t d, float grad, float step_size) {
  const std::size_t i = j * dim_ + d;
  const ModelSetting& setting = plan_.models[j / outputs_];
  grad += setting.wd * w_[i];
  float w = w_[i];
  float step = step_size;  // the step along this coordinate, preconditioner included
  switch (options_.optimizer) {
    case Optimizer::kAdam: {
      const float b1 = options_.beta_1, b2 = options_.beta_2;
      moment1_[i] = b1 * moment1_[i] + (1 - b1) * grad;
      moment2_[i] = b2 * moment2_[i] + (1 - b2) * grad * grad;
      step = step_size / (std::sqrt(moment2_[i]) + kAdamEpsilon);
      w -= step * moment1_[i];
      break;
    }
    case Optimizer::kRmsprop:
      moment2_[i] = kRmspropDecay * moment2_[i] + (1 - kRmspropDecay) * grad * grad;
      step = step_size / (std::sqrt(moment2_[i]) + kAdamEpsilon);
      w -= step * grad;
      break;
    case Optimizer::kSgd:
      moment1_[i] = plan_.momentum * moment1_[i] - step_size * grad;
      w += moment1_[i];
      break;
  }
  if (setting.l1 > 0) {
    // Proximal step with the same per-coordinate step: soft-thresholding by step * l1 sets a
    // weight to exactly zero while its (averaged) gradient stays under l1.
    const float shrink = step * setting.l1;
    w = w > shrink ? w - shrink : w < -shrink ? w + shrink : 0.0f;
  }
  w_[i] = w;
  w_effective_[i] = stats_.scale[d] * w;
}

void MultiModelTrainer::Update(const data::Batch& b, ThreadScratch& s) {
  const float inv_rows = 1.0f / static_cast<float>(b.rows);
  // Adam's bias correction folded into the step size; steps count from 0.
  const float t = static_cast<float>(s.step + 1);
  const float correction =
      options_.optimizer == Optimizer::kAdam
          ? std::sqrt(1 - std::pow(options_.beta_2, t)) / (1 - std::pow(options_.beta_1, t))
          : 1.0f;
  for (std::size_t c = 0; c < s.columns(); ++c) {
    s.step_size[c] = LearningRate(s.col_begin + c, s.step) * correction;
  }

  if (options_.use_bias) {
    for (std::size_t c = 0; c < s.columns(); ++c) {
      const std::size_t j = s.col_begin + c;
      const ModelSetting& setting = plan_.models[j / outputs_];
      const float step_size = s.step_size[c] * options_.bias_lr_mult;
      const float grad =
          s.column_sum[c] * inv_rows + setting.wd * options_.bias_wd_mult * bias_[j];
      switch (options_.optimizer) {
        case Optimizer::kAdam: {
          const float b1 = options_.beta_1, b2 = options_.beta_2;
          bias_moment1_[j] = b1 * bias_moment1_[j] + (1 - b1) * grad;
          bias_moment2_[j] = b2 * bias_moment2_[j] + (1 - b2) * grad * grad;
          bias_[j] -= step_size * bias_moment1_[j] / (std::sqrt(bias_moment2_[j]) + kAdamEpsilon);
          break;
        }
        case Optimizer::kRmsprop:
          bias_moment2_[j] = kRmspropDecay * bias_moment2_[j] + (1 - kRmspropDecay) * grad * grad;
          bias_[j] -= step_size * grad / (std::sqrt(bias_moment2_[j]) + kAdamEpsilon);
          break;
        case Optimizer::kSgd:
          bias_moment1_[j] = plan_.momentum * bias_moment1_[j] - step_size * grad;
          bias_[j] += bias_moment1_[j];
          break;
      }
    }
  }

  if (!b.sparse) {
    for (std::size_t c = 0; c < s.columns(); ++c) {
      const std::size_t j = s.col_begin + c;
      const float* partial = s.partial.data() + c * dim_;
      const float column_sum = s.column_sum[c];
      double shifted = 0;  // mean . W_eff after the update
      for (std::size_t d = 0; d < dim_; ++d) {
        const float grad = stats_.scale[d] * (partial[d] - stats_.mean[d] * column_sum) * inv_rows;
        UpdateCell(j, d, grad, s.step_size[c]);
        shifted += double(stats_.mean[d]) * w_effective_[j * dim_ + d];
      }
      s.offset[c] = static_cast<float>(bias_[j] - shifted);
    }
  } else {
    for (std::uint32_t d : s.touched_list) {
      for (std::size_t c = 0; c < s.columns(); ++c) {
        float& partial = s.partial[c * dim_ + d];
        UpdateCell(s.col_begin + c, d, stats_.scale[d] * partial * inv_rows, s.step_size[c]);
        partial = 0.0f;
      }
      s.touched[d] = 0;
    }
    s.touched_list.clear();
    for (std::size_t c = 0; c < s.columns(); ++c) s.offset[c] = ComputeOffset(s.col_begin + c);
  }
  ++s.step;
}

void MultiModelTrainer::TrainBatch(const data::Batch& b, const data::Batch* next,
                                   ThreadScratch& s) {
  if (b.rows == 0) return;
  if (s.z.size() < PaddedRows(b.rows) * s.columns()) s.z.resize(PaddedRows(b.rows) * s.columns());
  Forward(b, s, s.z.data());
  LossGradient(b, s);
  // Summed batch by batch in order, whichever thread holds the model.
  for (int m = s.model_begin; m < s.model_end; ++m) epoch_loss_[m] += s.loss[m - s.model_begin];
  Backward(b, next, s);
  Update(b, s);
}

std::size_t MultiModelTrainer::ChooseTeam() {
  if (teams_.size() == 1) return 0;
  const double alone = team_timing_[0].seconds_per_row, spread = team_timing_[1].seconds_per_row;
  if (spread < 0) return 1;
  if (alone < 0) return 0;
  const std::size_t best = alone <= spread ? 0 : 1;
  // Once an epoch the other team runs too, so that a change in the machine's load is seen.
  if (!probed_this_epoch_) {
    probed_this_epoch_ = true;
    return 1 - best;
  }
  return best;
}

void MultiModelTrainer::TrainBatches(std::span<const data::Batch* const> batches) {
  // Runs of this many batches are timed to choose a team: long enough to time, short enough
  // that a probe of the slower team costs little.
  constexpr std::size_t kRunBatches = 16;
  for (std::size_t begin = 0; begin < batches.size(); begin += kRunBatches) {
    const auto run = batches.subspan(begin, std::min(kRunBatches, batches.size() - begin));
    double rows = 0;
    for (const data::Batch* batch : run) rows += static_cast<double>(batch->rows);
    const std::size_t team = ChooseTeam();
    const auto start = std::chrono::steady_clock::now();
    TrainRun(run, teams_[team]);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (rows > 0) {
      // A moving average: one slow run (an interrupt, a page fault burst) does not decide.
      double& estimate = team_timing_[team].seconds_per_row;
      estimate = estimate < 0 ? seconds / rows : 0.5 * estimate + 0.5 * seconds / rows;
    }
  }
}

void MultiModelTrainer::TrainRun(std::span<const data::Batch* const> batches,
                                 std::vector<ThreadScratch>& team) {
  // No thread waits on another before the end of the run: they do the same work per batch
  // and advance together, while a thread that the OS keeps off the CPU holds up nobody until
  // then. (Keeping them within a few batches of each other, for the shared cache's sake, was
  // measured slower.)
  const int threads = static_cast<int>(team.size());
  for (ThreadScratch& s : team) {
    s.step = step_;
    for (std::size_t c = 0; c < s.columns(); ++c) s.offset[c] = offset_[s.col_begin + c];
  }
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    ThreadScratch& s = team[omp_get_thread_num()];
    for (std::size_t i = 0; i < batches.size(); ++i) {
      TrainBatch(*batches[i], i + 1 < batches.size() ? batches[i + 1] : nullptr, s);
    }
  }
  for (const data::Batch* batch : batches) {
    if (batch->rows == 0) continue;
    ++step_;
    epoch_rows_ += static_cast<double>(batch->rows);
  }
  for (const ThreadScratch& s : team) {
    for (std::size_t c = 0; c < s.columns(); ++c) offset_[s.col_begin + c] = s.offset[c];
  }
}

void MultiModelTrainer::Outputs(const data::Batch& b, std::vector<float>* z_out) const {
  const std::size_t n = b.rows;
  z_out->resize(n * cols_);
  float* z = z_out->data();
  auto block = [&](std::size_t r0, std::size_t r1, std::vector<float>& column_major) {
    const std::size_t rows = r1 - r0;
    Eigen::Map<RowMatrix> zt(z + r0 * cols_, rows, cols_);
    Eigen::Map<const Eigen::RowVectorXf> off(offset_.data(), cols_);
    if (!b.sparse) {
      const float* x = b.dense.data() + r0 * b.cols;
      column_major.resize(rows * cols_);
      for (std::size_t c = 0; c < cols_; c += kMaxForwardColumns) {
        const int chunk = static_cast<int>(std::min<std::size_t>(kMaxForwardColumns, cols_ - c));
        DenseForward(x, rows, dim_, w_effective_.data() + c * dim_, chunk,
                     column_major.data() + c * rows, rows);
      }
      zt = Eigen::Map<const ColMatrix>(column_major.data(), rows, cols_);
      zt.rowwise() += off;
    } else {
      zt = off.replicate(rows, 1);
      for (std::size_t r = r0; r < r1; ++r) {
        float* zr = z + r * cols_;
        for (std::uint64_t i = b.row_offsets[r]; i < b.row_offsets[r + 1]; ++i) {
          const float v = b.values[i];
          const float* w = w_effective_.data() + b.indices[i];
          for (std::size_t j = 0; j < cols_; ++j) zr[j] += v * w[j * dim_];
        }
      }
    }
    if (options_.predictor_type == PredictorType::kRegressor) {
      zt.array() = zt.array() / stats_.label_scale + stats_.label_mean;
    }
  };
  constexpr std::size_t kBlock = 1024;
  const int threads = options_.threads > 0 ? options_.threads : omp_get_max_threads();
  if (double(n) * dim_ * cols_ < kParallelScoringWork || threads == 1) {
    std::vector<float> column_major;
    block(0, n, column_major);
    return;
  }
  const std::int64_t blocks = static_cast<std::int64_t>((n + kBlock - 1) / kBlock);
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> column_major;
#pragma omp for schedule(static)
    for (std::int64_t i = 0; i < blocks; ++i) {
      const std::size_t r0 = static_cast<std::size_t>(i) * kBlock;
      block(r0, std::min(n, r0 + kBlock), column_major);
    }
  }
}

void MultiModelTrainer::KeepBest(int m) {
  const std::size_t j0 = static_cast<std::size_t>(m) * outputs_, j1 = j0 + outputs_;
  std::copy(w_.begin() + j0 * dim_, w_.begin() + j1 * dim_, best_w_.begin() + j0 * dim_);
  std::copy(bias_.begin() + j0, bias_.begin() + j1, best_bias_.begin() + j0);
}

void MultiModelTrainer::RestoreBest() {
  w_ = best_w_;
  bias_ = best_bias_;
  RefreshEffective();
}

LinearModel MultiModelTrainer::Export(int m) const {
  LinearModel model(options_.predictor_type, options_.loss, dim_, outputs_);
  const bool regressor = options_.predictor_type == PredictorType::kRegressor;
  const double label_factor = regressor ? 1.0 / stats_.label_scale : 1.0;
  const double label_offset = regressor ? stats_.label_mean : 0.0;
  for (int k = 0; k < outputs_; ++k) {
    const std::size_t j = static_cast<std::size_t>(m) * outputs_ + k;
    double bias = bias_[j];
    for (std::size_t d = 0; d < dim_; ++d) {
      const double w = double(stats_.scale[d]) * w_[j * dim_ + d];
      bias -= double(stats_.mean[d]) * w;
      model.weights()[d * outputs_ + k] = static_cast<float>(w * label_factor);
    }
    model.bias()[k] = static_cast<float>(bias * label_factor + label_offset);
  }
  const ModelSetting& s = plan_.models[m];
  model.training_info() = {{"learning_rate", s.learning_rate},
                           {"wd", s.wd},
                           {"l1", s.l1},
                           {"num_models", num_models()},
                           {"updates", static_cast<double>(step_)}};
  if (options_.predictor_type == PredictorType::kBinaryClassifier) {
    model.training_info()["positive_example_weight_mult"] = s.positive_weight;
  }
  return model;
}

}  // namespace hearth::algorithms::linear_learner
