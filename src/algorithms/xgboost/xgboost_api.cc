#include "algorithms/xgboost/xgboost_api.h"

#include <cctype>
#include <cmath>
#include <limits>
#include <type_traits>

#include <xgboost/c_api.h>

#include "fmt/format.h"

namespace hearth::algorithms::xgb {

namespace {

// Turns XGBoost's return code into a Status. XGBoost's messages start with the source
// location ("[12:00:00] ../src/learner.cc:1234: "), which means nothing to a user: keep what
// follows it, and drop the stack trace XGBoost appends in debug builds.
Status Check(int rc, std::string_view what) {
  if (rc == 0) return Status::Ok();
  std::string message = XGBGetLastError();
  if (auto cut = message.find("Stack trace:"); cut != std::string::npos) message.resize(cut);
  // "[10:23:45] /path/src/learner.cc:1234: message": the first ": " after "] " ends the prefix.
  if (message.starts_with("[")) {
    if (auto stamp = message.find("] "); stamp != std::string::npos) {
      if (auto colon = message.find(": ", stamp); colon != std::string::npos) {
        message.erase(0, colon + 2);
      }
    }
  }
  while (!message.empty() && std::isspace(static_cast<unsigned char>(message.back()))) {
    message.pop_back();
  }
  return InvalidArgument(fmt::format("{}: {}", what, message));
}

}  // namespace

std::string LibraryVersion() {
  int major = 0, minor = 0, patch = 0;
  XGBoostVersion(&major, &minor, &patch);
  return fmt::format("{}.{}.{}", major, minor, patch);
}

void DMatrix::Free::operator()(void* handle) const { XGDMatrixFree(handle); }
void Booster::Free::operator()(void* handle) const { XGBoosterFree(handle); }

Result<DMatrix> DMatrix::FromBatch(const data::Batch& batch, int nthread) {
  DMatrixHandle handle = nullptr;
  constexpr float kMissing = std::numeric_limits<float>::quiet_NaN();
  if (batch.sparse) {
    // Batch keeps row offsets as uint64_t; XGBoost takes size_t. Same type on LP64.
    static_assert(std::is_same_v<std::uint64_t, std::size_t> ||
                  sizeof(std::uint64_t) == sizeof(std::size_t));
    static_assert(sizeof(std::uint32_t) == sizeof(unsigned));
    if (batch.row_offsets.size() != batch.rows + 1) {
      return InvalidArgument("sparse batch has inconsistent row offsets");
    }
    RETURN_IF_ERROR(Check(
        XGDMatrixCreateFromCSREx(reinterpret_cast<const std::size_t*>(batch.row_offsets.data()),
                                 reinterpret_cast<const unsigned*>(batch.indices.data()),
                                 batch.values.data(), batch.row_offsets.size(),
                                 batch.values.size(), batch.cols, &handle),
        "cannot build the data matrix"));
  } else {
    if (batch.dense.size() != batch.rows * batch.cols) {
      return InvalidArgument("dense batch has inconsistent dimensions");
    }
    RETURN_IF_ERROR(Check(XGDMatrixCreateFromMat_omp(batch.dense.data(), batch.rows, batch.cols,
                                                     kMissing, &handle, nthread),
                          "cannot build the data matrix"));
  }
  DMatrix out;
  out.handle_.reset(handle);
  out.rows_ = batch.rows;
  out.cols_ = batch.cols;
  if (batch.has_labels()) {
    RETURN_IF_ERROR(Check(
        XGDMatrixSetFloatInfo(handle, "label", batch.labels.data(), batch.labels.size()),
        "cannot set labels"));
    out.labels_ = batch.labels;
  }
  if (!batch.weights.empty()) {
    RETURN_IF_ERROR(Check(
        XGDMatrixSetFloatInfo(handle, "weight", batch.weights.data(), batch.weights.size()),
        "cannot set instance weights"));
    out.weights_ = batch.weights;
  }
  return out;
}

Result<Booster> Booster::Create(std::span<const DMatrix* const> cache) {
  std::vector<DMatrixHandle> handles;
  for (const DMatrix* m : cache) handles.push_back(m->handle());
  BoosterHandle handle = nullptr;
  RETURN_IF_ERROR(Check(XGBoosterCreate(handles.data(), handles.size(), &handle),
                        "cannot create the booster"));
  Booster out;
  out.handle_.reset(handle);
  return out;
}

Result<Booster> Booster::Load(const std::filesystem::path& file) {
  BoosterHandle handle = nullptr;
  RETURN_IF_ERROR(Check(XGBoosterCreate(nullptr, 0, &handle), "cannot create the booster"));
  Booster out;
  out.handle_.reset(handle);
  RETURN_IF_ERROR(Check(XGBoosterLoadModel(handle, file.c_str()),
                        fmt::format("cannot load the XGBoost model {}", file.string())));
  return out;
}

Status Booster::SetParam(std::string_view name, std::string_view value) {
  std::string n(name), v(value);
  return Check(XGBoosterSetParam(handle(), n.c_str(), v.c_str()),
               fmt::format("cannot set parameter '{}' to '{}'", name, value));
}

Status Booster::UpdateOneIter(int iteration, const DMatrix& train) {
  return Check(XGBoosterUpdateOneIter(handle(), iteration, train.handle()),
               fmt::format("XGBoost training failed in round {}", iteration));
}

Result<std::string> Booster::EvalOneIter(int iteration, std::span<const DMatrix* const> sets,
                                         std::span<const std::string> names) {
  std::vector<DMatrixHandle> handles;
  std::vector<const char*> c_names;
  for (const DMatrix* m : sets) handles.push_back(m->handle());
  for (const std::string& n : names) c_names.push_back(n.c_str());
  const char* out = nullptr;
  RETURN_IF_ERROR(Check(XGBoosterEvalOneIter(handle(), iteration, handles.data(), c_names.data(),
                                             handles.size(), &out),
                        fmt::format("XGBoost evaluation failed in round {}", iteration)));
  return std::string(out);
}

Result<PredictionMatrix> Booster::Predict(const DMatrix& matrix, int iteration_end,
                                          bool output_margin) const {
  // "type": 0 is the transformed prediction, 1 the margin.
  std::string config = fmt::format(
      R"({{"type": {}, "training": false, "iteration_begin": 0, "iteration_end": {}, )"
      R"("strict_shape": false}})",
      output_margin ? 1 : 0, iteration_end);
  const bst_ulong* shape = nullptr;
  bst_ulong dims = 0;
  const float* result = nullptr;
  RETURN_IF_ERROR(Check(
      XGBoosterPredictFromDMatrix(handle(), matrix.handle(), config.c_str(), &shape, &dims,
                                  &result),
      "XGBoost prediction failed"));
  PredictionMatrix out;
  out.rows = dims >= 1 ? shape[0] : 0;
  out.width = dims >= 2 ? shape[1] : 1;
  out.values.assign(result, result + out.rows * out.width);
  return out;
}

Status Booster::SetAttr(std::string_view name, std::string_view value) {
  std::string n(name), v(value);
  return Check(XGBoosterSetAttr(handle(), n.c_str(), v.c_str()),
               fmt::format("cannot set attribute '{}'", name));
}

Result<std::optional<std::string>> Booster::GetAttr(std::string_view name) const {
  std::string n(name);
  const char* out = nullptr;
  int success = 0;
  RETURN_IF_ERROR(Check(XGBoosterGetAttr(handle(), n.c_str(), &out, &success),
                        fmt::format("cannot read attribute '{}'", name)));
  if (!success || out == nullptr) return std::optional<std::string>();
  return std::optional<std::string>(out);
}

Result<int> Booster::BoostedRounds() const {
  int rounds = 0;
  RETURN_IF_ERROR(Check(XGBoosterBoostedRounds(handle(), &rounds), "cannot count rounds"));
  return rounds;
}

Result<std::uint64_t> Booster::NumFeatures() const {
  bst_ulong n = 0;
  RETURN_IF_ERROR(Check(XGBoosterGetNumFeature(handle(), &n), "cannot read the feature count"));
  return static_cast<std::uint64_t>(n);
}

Result<std::string> Booster::ConfigJson() const {
  bst_ulong len = 0;
  const char* out = nullptr;
  RETURN_IF_ERROR(Check(XGBoosterSaveJsonConfig(handle(), &len, &out),
                        "cannot read the booster configuration"));
  return std::string(out, len);
}

Result<std::string> Booster::ModelJson() const {
  bst_ulong len = 0;
  const char* out = nullptr;
  RETURN_IF_ERROR(Check(XGBoosterSaveModelToBuffer(handle(), R"({"format": "json"})", &len, &out),
                        "cannot serialise the model"));
  return std::string(out, len);
}

Status Booster::Save(const std::filesystem::path& file) const {
  return Check(XGBoosterSaveModel(handle(), file.c_str()),
               fmt::format("cannot save the model to {}", file.string()));
}

}  // namespace hearth::algorithms::xgb
