// Predictions: what a model returns for a batch of rows, and how it goes on the wire in
// SageMaker's built-in response shapes (reference/sagemaker-api.md §7.2):
//
//   application/json        {"<envelope>":[{"score":0.4,"predicted_label":1}, ...]}
//                           envelope "predictions" (linear learner, k-means, XGBoost) or
//                           "projections" (PCA: {"projection":[...]})
//   application/jsonlines   one {"score":..,"predicted_label":..} object per line
//   text/csv                one line per row, the columns' values comma-separated in
//                           column order (a vector column spreads over several cells)
//   application/x-recordio-protobuf
//                           one aialgs.data.Record per row; each column is a Float32Tensor
//                           under the record's `label` map, keyed by the column name
//
// A column is either a scalar per row (width 1) or a fixed-width vector per row (width n:
// multiclass scores, a projection). Integral columns (predicted_label, closest_cluster) print
// without a fractional part in JSON and CSV.
//
// Thread safety: value types; the functions are pure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace hearth::data {

struct PredictionColumn {
  std::string name;           // "score", "predicted_label", "closest_cluster", "projection"
  std::size_t width = 1;      // 1 = scalar per row; n = vector of n per row
  bool integral = false;      // printed as an integer
  bool always_vector = false; // JSON prints a list even when width == 1 (multiclass score)
  std::vector<float> values;  // rows * width, row-major
};

struct Predictions {
  std::size_t rows = 0;
  std::string envelope = "predictions";
  // text/csv: all rows' values on one comma-separated line (SageMaker XGBoost's realtime
  // answer, which notebooks parse with np.fromstring(body, sep=',')) instead of a line each.
  bool csv_one_line = false;
  std::vector<PredictionColumn> columns;
};

enum class ResponseFormat { kJson, kJsonLines, kCsv, kRecordIOProtobuf };

// The Accept header's first supported type ("*/*" and empty -> `fallback`). Parameters such
// as `;verbose=true` are ignored. InvalidArgument (-> 406) for an unsupported type.
Result<ResponseFormat> ParseAccept(std::string_view accept, ResponseFormat fallback);
std::string_view MimeType(ResponseFormat format);

std::string Encode(const Predictions& predictions, ResponseFormat format);

}  // namespace hearth::data
