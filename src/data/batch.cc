#include "data/batch.h"

#include <algorithm>

#include "data/row_parser.h"

namespace hearth::data {

void Batch::Clear() {
  rows = 0;
  dense.clear();
  row_offsets.clear();
  indices.clear();
  values.clear();
  labels.clear();
  weights.clear();
}

void Batch::Densify() {
  if (!sparse) return;
  std::vector<float> out(rows * cols, 0.0f);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::uint64_t k = row_offsets[r]; k < row_offsets[r + 1]; ++k) {
      out[r * cols + indices[k]] = values[k];
    }
  }
  dense = std::move(out);
  sparse = false;
  row_offsets.clear();
  indices.clear();
  values.clear();
}

void Batch::Append(const Batch& other) {
  if (other.rows == 0) return;
  if (rows == 0 && dense.empty() && row_offsets.empty()) {
    sparse = other.sparse;
    if (!sparse) cols = other.cols;
  }
  if (sparse) {
    if (row_offsets.empty()) row_offsets.push_back(0);
    std::uint64_t base = row_offsets.back();
    for (std::size_t r = 1; r <= other.rows; ++r) row_offsets.push_back(base + other.row_offsets[r]);
    indices.insert(indices.end(), other.indices.begin(), other.indices.end());
    values.insert(values.end(), other.values.begin(), other.values.end());
    cols = std::max(cols, other.cols);
  } else {
    dense.insert(dense.end(), other.dense.begin(), other.dense.end());
  }
  labels.insert(labels.end(), other.labels.begin(), other.labels.end());
  weights.insert(weights.end(), other.weights.begin(), other.weights.end());
  rows += other.rows;
}

void AppendRows(const Batch& src, std::size_t begin, std::size_t end, Batch* out) {
  if (begin >= end) return;
  if (out->rows == 0) {
    out->sparse = src.sparse;
    out->dense.clear();
    out->row_offsets.assign(out->sparse ? 1 : 0, 0);
  } else if (src.sparse && !out->sparse) {
    ConvertToSparse(out);
  }
  out->cols = std::max(out->cols, src.cols);
  if (src.sparse) {
    std::uint64_t from = src.row_offsets[begin], to = src.row_offsets[end];
    std::uint64_t shift = out->row_offsets.back() - from;
    for (std::size_t r = begin + 1; r <= end; ++r) {
      out->row_offsets.push_back(src.row_offsets[r] + shift);
    }
    out->indices.insert(out->indices.end(), src.indices.begin() + from, src.indices.begin() + to);
    out->values.insert(out->values.end(), src.values.begin() + from, src.values.begin() + to);
  } else if (out->sparse) {
    for (std::size_t r = begin; r < end; ++r) {
      for (std::size_t c = 0; c < src.cols; ++c) {
        out->indices.push_back(static_cast<std::uint32_t>(c));
        out->values.push_back(src.dense[r * src.cols + c]);
      }
      out->row_offsets.push_back(out->values.size());
    }
  } else {
    out->dense.insert(out->dense.end(), src.dense.begin() + begin * src.cols,
                      src.dense.begin() + end * src.cols);
  }
  if (src.has_labels()) {
    out->labels.insert(out->labels.end(), src.labels.begin() + begin, src.labels.begin() + end);
  }
  if (!src.weights.empty()) {
    out->weights.insert(out->weights.end(), src.weights.begin() + begin, src.weights.begin() + end);
  }
  out->rows += end - begin;
}

void ConvertToSparse(Batch* batch) {
  if (batch->sparse) return;
  batch->sparse = true;
  batch->row_offsets.assign(1, 0);
  batch->indices.clear();
  batch->values.clear();
  for (std::size_t r = 0; r < batch->rows; ++r) {
    for (std::size_t c = 0; c < batch->cols; ++c) {
      batch->indices.push_back(static_cast<std::uint32_t>(c));
      batch->values.push_back(batch->dense[r * batch->cols + c]);
    }
    batch->row_offsets.push_back(batch->values.size());
  }
  batch->dense.clear();
}

}  // namespace hearth::data
