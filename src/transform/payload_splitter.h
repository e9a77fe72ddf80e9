// PayloadSplitter: cuts one object's bytes into records (TransformInput.SplitType) and groups
// them into request bodies for the model container's POST /invocations
// (CreateTransformJob.BatchStrategy, MaxPayloadInMB). Reference: sagemaker-api.md §5.
//
// SplitType
//   None      the whole object is one record and one payload (even when empty).
//   Line      a record is the bytes up to and including '\n' ("\r\n" ends a line too: the '\r'
//             belongs to the record's terminator). A last line without '\n' is a record when
//             it is not empty. Empty lines are records like any other (SageMaker splits on
//             every newline and skips nothing; the SDK's local mode does the same), so line i
//             of the input is record i and its output is line i of the `.out` object.
//   RecordIO  MXNet/dmlc RecordIO (sagemaker-api.md §8): magic 0xCED7230A, lrecord =
//             cflag << 29 | length, data, zero padding to 4 bytes. A record written in
//             several frames (cflag 1 start, 2 middle, 3 end; the writer cut it where the data
//             held the magic) counts as one record.
//   TFRecord  uint64 length, uint32 masked crc32c(length), data, uint32 masked crc32c(data),
//             little-endian. Both checksums are verified; a mismatch is an error.
//
// BatchStrategy
//   SingleRecord  one record per payload. For RecordIO and TFRecord the framing is removed:
//                 the payload is the record's data (a multi-frame RecordIO record is joined
//                 back, magic included, as dmlc's reader does). Line records are sent with
//                 their terminator, exactly as they appear in the object.
//   MultiRecord   as many whole records as fit in max_payload_bytes, in order. The payload is
//                 the records' bytes exactly as in the object: Line keeps every newline,
//                 RecordIO and TFRecord keep their framing and padding (the TransformInput
//                 docs: "padding is removed if ... SingleRecord ... not removed if ...
//                 MultiRecord").
//   Without a record filter a payload is always one contiguous slice of the (decompressed)
//   object. Line + MultiRecord without a filter never looks at single records: it reads up to
//   max_payload_bytes, cuts after the last '\n' that fits (memrchr) and counts the newlines.
//
// MaxPayloadInMB: max_payload_bytes = MaxPayloadInMB * 1024 * 1024; 0 means no limit (the
// HTTP-chunked mode of the API; the splitter then holds a whole payload in memory, so with
// SplitType None the caller may prefer streaming the object itself). Over the limit:
//   - SplitType None: the object is larger than the limit -> InvalidArgument naming the key;
//   - any other SplitType: a single record larger than the limit -> InvalidArgument naming the
//     key and the record number (1-based, as a person counts lines).
// Sizes are measured on the bytes sent: with framing for RecordIO/TFRecord MultiRecord,
// without for SingleRecord; with a filter, on the filtered records and their newlines (the
// record as read must fit the limit too, which keeps memory bounded).
//
// Record filter (DataProcessing.InputFilter, see data_processing.h): when set, records are
// taken one by one (Line or None only), the line terminator is stripped, the filter rewrites
// the record, and the payload is the filtered records each followed by '\n' (SplitType None:
// the filtered object as is, with no newline added). With keep_input set the payload also
// carries the original records (Payload::input) for JoinSource = Input.
//
// Memory: one window of about max_payload_bytes plus one read buffer, whatever the object's
// size; the payload handed out is the caller's (Next reuses its capacity).
//
// Errors name the object (`Options::object_name`): a truncated RecordIO/TFRecord frame, a bad
// magic, a checksum mismatch, a record over the limit, a filter error, a read error from the
// source (passed through).
//
// Thread safety: one splitter per thread; distinct splitters are independent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "transform/byte_source.h"

namespace hearth::transform {

enum class SplitType { kNone, kLine, kRecordIO, kTFRecord };
enum class BatchStrategy { kSingleRecord, kMultiRecord };

// API spellings: "None", "Line", "RecordIO", "TFRecord"; "SingleRecord", "MultiRecord".
// InvalidArgument naming `field` (e.g. "TransformInput.SplitType") otherwise.
Result<SplitType> ParseSplitType(std::string_view value, std::string_view field);
Result<BatchStrategy> ParseBatchStrategy(std::string_view value, std::string_view field);
std::string_view SplitTypeName(SplitType type);
std::string_view BatchStrategyName(BatchStrategy strategy);

inline constexpr std::size_t kDefaultMaxPayloadInMB = 6;
inline constexpr std::uint64_t PayloadLimitBytes(std::uint64_t max_payload_in_mb) {
  return max_payload_in_mb * 1024 * 1024;
}

// One request body and which records it holds.
struct Payload {
  std::string body;               // what POST /invocations sends
  std::uint64_t first_record = 0;  // 0-based index in the object of the first record in body
  std::uint64_t record_count = 0;  // records in body (>= 1)
  // The original records behind `body`, exactly as in the object (terminators included), when
  // Options::keep_input is set and a record filter rewrote them; empty otherwise.
  std::string input;
  bool has_input = false;

  // The records as they were in the object: `input` when a filter rewrote the body, else the
  // body itself.
  std::string_view inputs() const { return has_input ? std::string_view(input) : body; }
};

// Rewrites record `index` (0-based in the object; given without its line terminator) into
// *out, which it replaces.
using RecordFilter =
    std::function<Status(std::uint64_t index, std::string_view record, std::string* out)>;

class PayloadSplitter {
 public:
  struct Options {
    SplitType split_type = SplitType::kNone;
    BatchStrategy batch_strategy = BatchStrategy::kMultiRecord;
    std::uint64_t max_payload_bytes = PayloadLimitBytes(kDefaultMaxPayloadInMB);  // 0: no limit
    std::string object_name;  // the object key, for errors
    RecordFilter filter;      // optional; Line or None only
    bool keep_input = false;  // fill Payload::input when `filter` rewrites records
    std::size_t read_bytes = std::size_t{1} << 20;  // size of one read from the source
  };

  // InvalidArgument for a filter with RecordIO/TFRecord. Takes ownership of `source`.
  static Result<std::unique_ptr<PayloadSplitter>> Open(Options options, ByteSource source);

  ~PayloadSplitter();
  PayloadSplitter(const PayloadSplitter&) = delete;
  PayloadSplitter& operator=(const PayloadSplitter&) = delete;

  // Replaces *out with the next payload (reusing out->body's capacity). Returns false once the
  // object has no more records (*out then holds nothing to send). After an error the splitter
  // is done: later calls return the same error.
  Result<bool> Next(Payload* out);

  // Records handed out so far.
  std::uint64_t records() const;

 private:
  class Impl;
  explicit PayloadSplitter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::transform
