// The MXNet NDArray list file (`mx.nd.save` / `mx.nd.load`), the format of SageMaker's PCA and
// k-means artifacts (`model_algo-1`), for dense float32 arrays.
//
// Layout (MXNet src/ndarray/ndarray.cc, NDArray::Save; all little-endian):
//   u64 0x112 (list magic), u64 0 (reserved)
//   u64 count, then per array:
//     u32 0xF993FAC9 (NDArray v2 magic), i32 0 (dense storage)
//     u32 ndim, i64 dims[ndim]
//     i32 dev_type 1 (CPU), i32 dev_id 0
//     i32 type flag 0 (float32), float32 data[prod(dims)] (row-major)
//   u64 count, then per name: u64 length, bytes
//
// An unnamed list (every name empty, as `mx.nd.save(f, [a, b])` writes it) is saved with no
// names: count 0. Decoding also accepts the legacy v1 magic 0xF993FAC8 (no storage type) and
// the v3 magic 0xF993FACA (numpy shape semantics), and float64 data (converted to float32);
// anything else (sparse storage, other data types) is InvalidArgument.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace hearth::algorithms {

struct NamedArray {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<float> values;  // row-major, product of shape entries
};

std::string EncodeNDArrayList(const std::vector<NamedArray>& arrays);
Result<std::vector<NamedArray>> DecodeNDArrayList(std::string_view bytes);

}  // namespace hearth::algorithms
