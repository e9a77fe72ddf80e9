// TFRecord framing (TensorFlow's record_writer.cc): per record
//   uint64 length | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
// all little-endian; masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8.
//
// The reading side lives in PayloadSplitter (SplitType TFRecord); this header offers the
// checksum and the writer, for the splitter, tests and benchmarks.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hearth::transform {

// CRC-32C (Castagnoli), as TFRecord, iSCSI and ext4 use it. Uses SSE4.2 when the CPU has it.
std::uint32_t Crc32c(std::string_view bytes);
std::uint32_t MaskCrc32c(std::uint32_t crc);

// Appends one TFRecord frame holding `data` to `out`.
void AppendTFRecordFrame(std::string_view data, std::string* out);

}  // namespace hearth::transform
