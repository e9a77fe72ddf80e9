#include "algorithms/linear_learner/linear_model.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include <Eigen/Core>
#include <nlohmann/json.hpp>

namespace hearth::algorithms::linear_learner {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Below this many multiply-adds a batch is scored on the calling thread: a parallel region
// costs more than it saves.
constexpr std::size_t kParallelScoringWork = std::size_t{1} << 21;

void AppendFloat(std::string* out, float value) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out->append(buf, end);
}

void AppendFloats(std::string* out, const std::vector<float>& values) {
  out->push_back('[');
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out->push_back(',');
    AppendFloat(out, values[i]);
  }
  out->push_back(']');
}

}  // namespace

Status CheckFeatureWidth(const data::Batch& rows, std::size_t dim) {
  if (!rows.sparse) {
    if (rows.rows > 0 && rows.cols != dim) {
      return InvalidArgument("expected " + std::to_string(dim) + " features per row, got " +
                             std::to_string(rows.cols));
    }
    return Status::Ok();
  }
  std::uint32_t max_index = 0;
  for (std::uint32_t index : rows.indices) max_index = std::max(max_index, index);
  if (!rows.indices.empty() && max_index >= dim) {
    return InvalidArgument("expected " + std::to_string(dim) +
                           " features per row, got a feature at index " +
                           std::to_string(max_index));
  }
  return Status::Ok();
}

void ApplyLink(Loss loss, int outputs, float* values, std::size_t rows) {
  const std::size_t n = rows * static_cast<std::size_t>(outputs);
  if (loss == Loss::kLogistic) {
    for (std::size_t i = 0; i < n; ++i) values[i] = 1.0f / (1.0f + std::exp(-values[i]));
  } else if (loss == Loss::kSoftmax) {
    for (std::size_t r = 0; r < rows; ++r) {
      float* z = values + r * outputs;
      float max = *std::max_element(z, z + outputs);
      float sum = 0;
      for (int k = 0; k < outputs; ++k) sum += (z[k] = std::exp(z[k] - max));
      for (int k = 0; k < outputs; ++k) z[k] /= sum;
    }
  }
}

LinearModel::LinearModel(PredictorType type, Loss loss, std::size_t dim, int outputs)
    : predictor_type_(type),
      loss_(loss),
      dim_(dim),
      outputs_(outputs),
      weights_(dim * outputs, 0.0f),
      bias_(outputs, 0.0f),
      threshold_(loss == Loss::kHinge ? 0.0f : 0.5f) {}

Status LinearModel::Scores(const data::Batch& rows, std::vector<float>* scores) const {
  RETURN_IF_ERROR(Outputs(rows, scores));
  ApplyLink(loss_, outputs_, scores->data(), rows.rows);
  return Status::Ok();
}

Status LinearModel::Outputs(const data::Batch& rows, std::vector<float>* scores) const {
  RETURN_IF_ERROR(CheckFeatureWidth(rows, dim_));
  const std::size_t n = rows.rows;
  const int k_out = outputs_;
  scores->resize(n * k_out);
  float* out = scores->data();
  if (!rows.sparse && n == 1 && k_out == 1) {
    // One row, one output: the common online request, kept free of any set-up.
    const float* x = rows.dense.data();
    float z = 0;
    for (std::size_t d = 0; d < dim_; ++d) z += x[d] * weights_[d];
    out[0] = z + bias_[0];
  } else if (!rows.sparse) {
    Eigen::Map<const RowMatrix> w(weights_.data(), dim_, k_out);
    Eigen::Map<const Eigen::RowVectorXf> b(bias_.data(), k_out);
    auto score_block = [&](std::size_t r0, std::size_t r1) {
      Eigen::Map<const RowMatrix> x(rows.dense.data() + r0 * dim_, r1 - r0, dim_);
      Eigen::Map<RowMatrix> z(out + r0 * k_out, r1 - r0, k_out);
      z.noalias() = x * w;
      z.rowwise() += b;
    };
    if (n * dim_ * k_out < kParallelScoringWork) {
      score_block(0, n);
    } else {
      const std::int64_t blocks = static_cast<std::int64_t>((n + 255) / 256);
#pragma omp parallel for schedule(static)
      for (std::int64_t blk = 0; blk < blocks; ++blk) {
        std::size_t r0 = static_cast<std::size_t>(blk) * 256;
        score_block(r0, std::min(n, r0 + 256));
      }
    }
  } else {
    for (std::size_t r = 0; r < n; ++r) {
      float* z = out + r * k_out;
      std::copy(bias_.begin(), bias_.end(), z);
      for (std::uint64_t i = rows.row_offsets[r]; i < rows.row_offsets[r + 1]; ++i) {
        const float v = rows.values[i];
        const float* w = weights_.data() + static_cast<std::size_t>(rows.indices[i]) * k_out;
        for (int k = 0; k < k_out; ++k) z[k] += v * w[k];
      }
    }
  }
  return Status::Ok();
}

void LinearModel::Labels(const std::vector<float>& scores, std::size_t rows,
                         std::vector<float>* labels) const {
  labels->resize(rows);
  if (predictor_type_ == PredictorType::kBinaryClassifier) {
    for (std::size_t r = 0; r < rows; ++r) (*labels)[r] = scores[r] > threshold_ ? 1.0f : 0.0f;
    return;
  }
  for (std::size_t r = 0; r < rows; ++r) {
    const float* s = scores.data() + r * outputs_;
    (*labels)[r] = static_cast<float>(std::max_element(s, s + outputs_) - s);
  }
}

Result<data::Predictions> LinearModel::Predict(const data::Batch& rows) const {
  data::Predictions predictions;
  predictions.rows = rows.rows;
  data::PredictionColumn score;
  score.name = "score";
  score.width = static_cast<std::size_t>(outputs_);
  RETURN_IF_ERROR(Scores(rows, &score.values));
  if (predictor_type_ == PredictorType::kRegressor) {
    predictions.columns.push_back(std::move(score));
    return predictions;
  }
  data::PredictionColumn label;
  label.name = "predicted_label";
  label.integral = true;
  Labels(score.values, rows.rows, &label.values);
  score.always_vector = predictor_type_ == PredictorType::kMulticlassClassifier;
  predictions.columns.push_back(std::move(score));
  predictions.columns.push_back(std::move(label));
  return predictions;
}

std::string LinearModel::ToJson() const {
  std::string out;
  out.reserve(64 + 12 * weights_.size());
  out += "{\"format\":\"hearth-linear-learner\",\"version\":1,\"predictor_type\":\"";
  out += PredictorTypeName(predictor_type_);
  out += "\",\"loss\":\"";
  out += LossName(loss_);
  out += "\",\"feature_dim\":" + std::to_string(dim_);
  out += ",\"num_outputs\":" + std::to_string(outputs_);
  if (predictor_type_ == PredictorType::kBinaryClassifier) {
    out += ",\"threshold\":";
    AppendFloat(&out, threshold_);
  }
  out += ",\"training\":";
  out += nlohmann::json(training_info_).dump();
  out += ",\"bias\":";
  AppendFloats(&out, bias_);
  out += ",\"weights\":";
  AppendFloats(&out, weights_);
  out += "}\n";
  return out;
}

Result<LinearModel> LinearModel::FromJson(std::string_view text) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InvalidArgument("linear learner model: not a JSON object");
  }
  try {
    if (doc.value("format", "") != "hearth-linear-learner" || doc.value("version", 0) != 1) {
      return InvalidArgument(
          "linear learner model: expected \"format\": \"hearth-linear-learner\", version 1");
    }
    ASSIGN_OR_RETURN(PredictorType type,
                     ParsePredictorType(doc.at("predictor_type").get<std::string>()));
    ASSIGN_OR_RETURN(Loss loss, ParseLoss(doc.at("loss").get<std::string>()));
    const auto dim = doc.at("feature_dim").get<std::size_t>();
    const auto outputs = doc.at("num_outputs").get<int>();
    if (outputs < 1) return InvalidArgument("linear learner model: num_outputs must be >= 1");
    LinearModel model(type, loss, dim, outputs);
    model.weights_ = doc.at("weights").get<std::vector<float>>();
    model.bias_ = doc.at("bias").get<std::vector<float>>();
    if (model.weights_.size() != dim * outputs || model.bias_.size() != std::size_t(outputs)) {
      return InvalidArgument("linear learner model: expected " + std::to_string(dim * outputs) +
                             " weights and " + std::to_string(outputs) + " biases, got " +
                             std::to_string(model.weights_.size()) + " and " +
                             std::to_string(model.bias_.size()));
    }
    if (doc.contains("threshold")) model.threshold_ = doc.at("threshold").get<float>();
    if (doc.contains("training")) {
      model.training_info_ = doc.at("training").get<std::map<std::string, double>>();
    }
    return model;
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string("linear learner model: ") + e.what());
  }
}

Status LinearModel::Save(const std::filesystem::path& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const std::filesystem::path path = dir / kModelFileName;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << ToJson();
  out.close();
  if (!out) return Internal("cannot write " + path.string());
  return Status::Ok();
}

Result<std::unique_ptr<LinearModel>> LinearModel::Load(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / kModelFileName;
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("no linear learner model at " + path.string());
  std::stringstream text;
  text << in.rdbuf();
  ASSIGN_OR_RETURN(LinearModel model, FromJson(text.str()));
  return std::make_unique<LinearModel>(std::move(model));
}

}  // namespace hearth::algorithms::linear_learner
