// Batch: a block of rows as every built-in algorithm sees it — features (dense row-major or
// sparse CSR), optional labels and optional per-row weights, all float32.
//
// Readers fill batches from a channel's bytes or from a request body (record_reader.h:
// OpenFileReader, OpenMemoryReader). Sparse rows come from libsvm and sparse
// RecordIO-protobuf; an algorithm that needs dense input calls Densify().
//
// Thread safety: a value type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hearth::data {

struct Batch {
  std::size_t rows = 0;
  // Feature dimension. Dense: every row has exactly `cols` values. Sparse: one more than the
  // largest index seen, or the declared shape when the format carries one.
  std::size_t cols = 0;
  bool sparse = false;

  std::vector<float> dense;  // rows * cols values, row-major (when !sparse)

  // CSR (when sparse): row r holds indices[row_offsets[r] .. row_offsets[r+1]) and the
  // matching values. row_offsets has rows + 1 entries.
  std::vector<std::uint64_t> row_offsets;
  std::vector<std::uint32_t> indices;
  std::vector<float> values;

  std::vector<float> labels;   // empty, or one per row
  std::vector<float> weights;  // empty, or one per row

  bool has_labels() const { return !labels.empty(); }
  const float* row(std::size_t r) const { return dense.data() + r * cols; }

  void Clear();                       // rows = 0, keeps capacity and `sparse`, `cols`
  void Densify();                     // sparse -> dense (no-op when dense)
  // Appends `other`'s rows. Both must agree on `sparse`; cols grows to the larger.
  void Append(const Batch& other);
};

}  // namespace hearth::data
