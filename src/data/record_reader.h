// RecordReader: streams the records of one channel (or one request body) as mini-batches.
//
// Training input formats, as SageMaker's built-ins accept them (reference/sagemaker-api.md
// §7-8):
//   text/csv                         label first; `text/csv;label_size=0` = no label column
//   text/libsvm (text/x-libsvm)      `label idx:val ...`, indices as written (0- or 1-based
//                                    kept as is, as XGBoost does)
//   application/x-recordio-protobuf  RecordIO framing of aialgs.data.Record messages,
//                                    features["values"] dense or sparse Float32Tensor (also
//                                    Float64/Int32), label["values"] scalar
// A ContentType's parameters (`;label_size=0`) and case are handled by ParseContentType.
//
// A reader never holds more than one mini-batch of parsed rows plus one read buffer, so data
// larger than memory streams. Errors name the file (or "request body"), the record/line
// number and the rule broken.
//
// Thread safety: one reader per thread.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "data/batch.h"

namespace hearth::data {

enum class Format { kCsv, kLibsvm, kRecordIOProtobuf, kJson, kJsonLines };

struct ContentType {
  Format format = Format::kCsv;
  int label_size = 1;  // CSV only: 1 = first column is the label, 0 = none
};

// "text/csv", "text/csv;label_size=0", "application/x-recordio-protobuf", "text/libsvm",
// "text/x-libsvm", "application/json", "application/jsonlines" (case-insensitive, spaces
// around ';' allowed). InvalidArgument naming `field` for anything else.
Result<ContentType> ParseContentType(std::string_view value, std::string_view field);

class RecordReader {
 public:
  virtual ~RecordReader() = default;
  // Replaces *out with up to `max_rows` rows. Returns false (and out->rows == 0) at the end.
  virtual Result<bool> Next(std::size_t max_rows, Batch* out) = 0;
};

// Reads the files in `files`, in order, as one stream of `type` records. A `.gz` file is
// decompressed on the fly.
Result<std::unique_ptr<RecordReader>> OpenFileReader(std::vector<std::filesystem::path> files,
                                                     ContentType type);

// Reads an in-memory body (inference requests; tests). The bytes must outlive the reader.
Result<std::unique_ptr<RecordReader>> OpenMemoryReader(std::string_view bytes, ContentType type);

// Reads all remaining rows into one batch.
Result<Batch> ReadAll(RecordReader& reader);

}  // namespace hearth::data
