// application/x-recordio-protobuf (reference/sagemaker-api.md §8): RecordIO framing (dmlc-core
// recordio.h, the sagemaker SDK's _write_recordio) of aialgs.data.Record messages.
//
// Reading lives behind OpenFileReader/OpenMemoryReader (record_reader.h); this header offers
// the writing side, for responses, tests and benchmarks.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "data/batch.h"

namespace hearth::data {

inline constexpr std::uint32_t kRecordIOMagic = 0xCED7230A;

// Appends one RecordIO record holding `payload` to `out`: magic, lrecord, payload, zero
// padding to 4 bytes. Like dmlc's RecordIOWriter, a payload holding the magic at a 4-aligned
// offset is split there into start/middle/end frames (cflag 1/2/3), so a reader that scans
// for the magic to find record boundaries never lands inside one.
void AppendRecordIOFrame(std::string_view payload, std::string* out);

// One Record per row, the way the sagemaker SDK writes them: features["values"] as a
// Float32Tensor (dense: values only; sparse: values, keys and shape [cols]) and, when the
// batch has labels, label["values"] = [label].
std::string EncodeRecordIOProtobuf(const Batch& batch);

}  // namespace hearth::data
