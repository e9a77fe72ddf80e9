#include "algorithms/xgboost/xgboost_model.h"

#include <algorithm>
#include <cstdlib>
#include <limits>

#include <omp.h>

#include "fmt/format.h"

namespace hearth::algorithms::xgb {

namespace fs = std::filesystem;

namespace {

Result<fs::path> FindModelFile(const fs::path& model_dir) {
  std::error_code ec;
  if (fs::is_regular_file(model_dir / kModelFileName, ec)) return model_dir / kModelFileName;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(model_dir, ec)) {
    std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && !name.starts_with(".")) files.push_back(entry.path());
  }
  if (ec) return NotFound(fmt::format("cannot read the model directory {}: {}",
                                      model_dir.string(), ec.message()));
  if (files.size() != 1) {
    return NotFound(fmt::format("no {} in {} (and {} other files)", kModelFileName,
                                model_dir.string(), files.size()));
  }
  return files.front();
}

}  // namespace

Result<std::unique_ptr<XGBoostModel>> XGBoostModel::Load(const fs::path& model_dir) {
  ASSIGN_OR_RETURN(fs::path file, FindModelFile(model_dir));
  ASSIGN_OR_RETURN(Booster booster, Booster::Load(file));
  return FromBooster(std::move(booster));
}

Result<std::unique_ptr<XGBoostModel>> XGBoostModel::FromBooster(Booster booster) {
  std::unique_ptr<XGBoostModel> model(new XGBoostModel(std::move(booster)));
  RETURN_IF_ERROR(model->Init());
  return model;
}

Status XGBoostModel::Init() {
  threads_ = std::max(omp_get_num_procs(), 1);
  // XGBoost's predictor parallelises over rows itself; one request at a time is what the
  // mutex allows, so let it use every core.
  RETURN_IF_ERROR(booster_.SetParam("nthread", std::to_string(threads_)));
  ASSIGN_OR_RETURN(std::string json, booster_.ModelJson());
  ASSIGN_OR_RETURN(ModelSummary summary, ReadModelSummary(json));
  num_features_ = summary.num_features;
  output_width_ = summary.objective == "multi:softprob" ? std::max<std::size_t>(summary.num_class, 1)
                                                        : 1;

  // Predict as SageMaker's container does: with ntree_limit=best_ntree_limit (tree layers).
  // gblinear has no layers to limit.
  ASSIGN_OR_RETURN(auto limit, booster_.GetAttr("best_ntree_limit"));
  ASSIGN_OR_RETURN(int rounds, booster_.BoostedRounds());
  if (limit && summary.booster != "gblinear") {
    int layers = std::atoi(limit->c_str()) / static_cast<int>(summary.num_parallel_tree);
    if (layers > 0 && layers < rounds) iteration_end_ = layers;
  }

  // Whatever the flat layout cannot take (FlatForest says why) XGBoost predicts.
  auto forest = FlatForest::FromJson(json, iteration_end_);
  if (forest.ok()) {
    forest_ = std::move(*forest);
    num_features_ = std::max(num_features_, forest_->num_features());
  }
  return Status::Ok();
}

Result<PredictionMatrix> XGBoostModel::PredictWithXGBoost(const data::Batch& rows) const {
  ASSIGN_OR_RETURN(DMatrix matrix, DMatrix::FromBatch(rows, threads_));
  std::lock_guard lock(booster_mu_);
  ASSIGN_OR_RETURN(PredictionMatrix out, booster_.Predict(matrix, iteration_end_));
  if (out.rows != rows.rows) {
    return Internal(fmt::format("XGBoost returned {} predictions for {} rows", out.rows, rows.rows));
  }
  return out;
}

Result<PredictionMatrix> XGBoostModel::SparseWithForest(const data::Batch& rows) const {
  PredictionMatrix out;
  out.rows = rows.rows;
  out.width = output_width_;
  out.values.resize(rows.rows * output_width_);
  const std::size_t features = num_features_;
  for (std::uint32_t index : rows.indices) {
    if (index >= features) {
      return InvalidArgument(fmt::format(
          "Feature index {} is out of range: the model has {} features.", index, features));
    }
  }
  const FlatForest& forest = *forest_;
  int team = static_cast<int>(std::min<std::size_t>(threads_, std::max<std::size_t>(rows.rows / 64, 1)));
#pragma omp parallel num_threads(team) if (team > 1)
  {
    // One dense row per thread: scatter a row's entries, walk it, put the NaNs back.
    std::vector<float> dense(features, std::numeric_limits<float>::quiet_NaN());
#pragma omp for schedule(static)
    for (std::int64_t r = 0; r < static_cast<std::int64_t>(rows.rows); ++r) {
      std::uint64_t begin = rows.row_offsets[r], end = rows.row_offsets[r + 1];
      for (std::uint64_t k = begin; k < end; ++k) dense[rows.indices[k]] = rows.values[k];
      forest.PredictRow(dense.data(), out.values.data() + static_cast<std::size_t>(r) * output_width_);
      for (std::uint64_t k = begin; k < end; ++k) {
        dense[rows.indices[k]] = std::numeric_limits<float>::quiet_NaN();
      }
    }
  }
  return out;
}

Result<PredictionMatrix> XGBoostModel::Scores(const data::Batch& rows) const {
  if (rows.cols > num_features_) {
    return InvalidArgument(fmt::format(
        "Feature size of the inference data ({}) is larger than the model's ({}).", rows.cols,
        num_features_));
  }
  if (!forest_) return PredictWithXGBoost(rows);
  if (rows.sparse) return SparseWithForest(rows);
  if (rows.dense.size() != rows.rows * rows.cols) {
    return InvalidArgument("dense rows have inconsistent dimensions");
  }
  PredictionMatrix out;
  out.rows = rows.rows;
  out.width = output_width_;
  out.values.resize(rows.rows * output_width_);
  forest_->PredictDense(rows.dense.data(), rows.rows, rows.cols, out.values.data(), threads_);
  return out;
}

Result<data::Predictions> XGBoostModel::Predict(const data::Batch& rows) const {
  ASSIGN_OR_RETURN(PredictionMatrix scores, Scores(rows));
  data::Predictions out;
  out.rows = rows.rows;
  out.envelope = "predictions";
  out.csv_one_line = true;
  data::PredictionColumn score;
  score.name = "score";
  score.width = scores.width;
  score.always_vector = output_width_ > 1;
  score.values = std::move(scores.values);
  out.columns.push_back(std::move(score));
  return out;
}

}  // namespace hearth::algorithms::xgb
