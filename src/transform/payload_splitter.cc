#include "transform/payload_splitter.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "transform/tfrecord.h"

namespace hearth::transform {
namespace {

constexpr std::uint32_t kRecordIOMagic = 0xCED7230A;
constexpr std::uint32_t kRecordIOLengthMask = (1u << 29) - 1;

std::uint32_t Load32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}
std::uint64_t Load64(const char* p) {
  return std::uint64_t(Load32(p)) | (std::uint64_t(Load32(p + 4)) << 32);
}

std::size_t CountNewlines(const char* p, std::size_t n) {
  // Byte-wide counters over blocks of 255 bytes: the compiler turns the inner loop into
  // vector compares, several times faster than a memchr per line on short lines.
  std::size_t count = 0;
  while (n > 0) {
    std::size_t block = std::min<std::size_t>(n, 255);
    unsigned char c = 0;
    for (std::size_t i = 0; i < block; ++i) c += p[i] == '\n';
    count += c;
    p += block;
    n -= block;
  }
  return count;
}

std::string_view StripTerminator(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

Result<SplitType> ParseSplitType(std::string_view value, std::string_view field) {
  if (value == "None") return SplitType::kNone;
  if (value == "Line") return SplitType::kLine;
  if (value == "RecordIO") return SplitType::kRecordIO;
  if (value == "TFRecord") return SplitType::kTFRecord;
  return InvalidArgument(fmt::format(
      "1 validation error detected: Value '{}' at '{}' failed to satisfy constraint: Member must "
      "satisfy enum value set: [None, Line, RecordIO, TFRecord]",
      value, field));
}

Result<BatchStrategy> ParseBatchStrategy(std::string_view value, std::string_view field) {
  if (value == "SingleRecord") return BatchStrategy::kSingleRecord;
  if (value == "MultiRecord") return BatchStrategy::kMultiRecord;
  return InvalidArgument(fmt::format(
      "1 validation error detected: Value '{}' at '{}' failed to satisfy constraint: Member must "
      "satisfy enum value set: [MultiRecord, SingleRecord]",
      value, field));
}

std::string_view SplitTypeName(SplitType type) {
  switch (type) {
    case SplitType::kNone: return "None";
    case SplitType::kLine: return "Line";
    case SplitType::kRecordIO: return "RecordIO";
    case SplitType::kTFRecord: return "TFRecord";
  }
  return "?";
}

std::string_view BatchStrategyName(BatchStrategy strategy) {
  return strategy == BatchStrategy::kSingleRecord ? "SingleRecord" : "MultiRecord";
}

class PayloadSplitter::Impl {
 public:
  Impl(Options options, ByteSource source)
      : o_(std::move(options)), source_(std::move(source)) {
    if (o_.read_bytes == 0) o_.read_bytes = 1;
  }

  Result<bool> Next(Payload* out) {
    if (!error_.ok()) return error_;
    if (done_) return false;
    Result<bool> r = NextImpl(out);
    if (!r.ok()) error_ = r.status();
    return r;
  }

  std::uint64_t records() const { return records_; }

 private:
  // One binary record found at an offset of the window.
  struct BinaryRecord {
    std::size_t frame_bytes = 0;  // framing included, up to the next record
    std::size_t data_offset = 0;  // single-frame records: where the data starts in the window
    std::size_t data_bytes = 0;   // the record's data (multi-frame: joined, magic included)
    bool multi_frame = false;
  };

  Result<bool> NextImpl(Payload* out) {
    const bool single = o_.batch_strategy == BatchStrategy::kSingleRecord;
    switch (o_.split_type) {
      case SplitType::kNone: return NextWhole(out);
      case SplitType::kLine:
        if (o_.filter) return NextFiltered(out, single);
        return single ? NextLine(out) : NextLines(out);
      case SplitType::kRecordIO:
      case SplitType::kTFRecord: return NextBinary(out, single);
    }
    return Internal("unknown SplitType");
  }

  std::size_t size() const { return end_ - begin_; }
  const char* data() const { return buf_.get() + begin_; }
  void Consume(std::size_t n) {
    begin_ += n;
    consumed_ += n;
  }

  // Reads until the window holds `want` bytes or the object ends. Keeps [begin_, end_); the
  // window grows to at most `want` plus one read.
  Status Fill(std::size_t want) {
    while (size() < want && !eof_) {
      const std::size_t chunk = o_.read_bytes;
      if (cap_ - end_ < chunk && begin_ > 0) {
        std::memmove(buf_.get(), data(), size());
        end_ = size();
        begin_ = 0;
      }
      if (cap_ - end_ < chunk) {
        std::size_t grown = want == SIZE_MAX ? cap_ * 2 : std::min(cap_ * 2, want + chunk);
        std::size_t new_cap = std::max(size() + chunk, grown);
        std::unique_ptr<char[]> bigger(new char[new_cap]);
        std::memcpy(bigger.get(), data(), size());
        end_ = size();
        begin_ = 0;
        buf_ = std::move(bigger);
        cap_ = new_cap;
      }
      ASSIGN_OR_RETURN(std::size_t got, source_(buf_.get() + end_, cap_ - end_));
      if (got == 0) eof_ = true;
      end_ += got;
    }
    return Status::Ok();
  }

  std::uint64_t limit() const { return o_.max_payload_bytes; }

  Status TooLarge(std::uint64_t index) const {
    return InvalidArgument(fmt::format(
        "record {} of object '{}' is larger than MaxPayloadInMB allows ({} bytes): a single "
        "record must fit in one request (SplitType {}, BatchStrategy {})",
        index + 1, o_.object_name, limit(), SplitTypeName(o_.split_type),
        BatchStrategyName(o_.batch_strategy)));
  }

  void Emit(Payload* out, std::uint64_t count) {
    out->first_record = records_;
    out->record_count = count;
    records_ += count;
  }

  // SplitType None: the whole object, once.
  Result<bool> NextWhole(Payload* out) {
    RETURN_IF_ERROR(Fill(limit() ? limit() + 1 : SIZE_MAX));
    // The filter path reads the raw object under the same limit: memory stays bounded.
    if (limit() && size() > limit()) {
      return InvalidArgument(fmt::format(
          "object '{}' is larger than MaxPayloadInMB allows ({} bytes): with SplitType None the "
          "whole object is one request; set SplitType to split it into records",
          o_.object_name, limit()));
    }
    std::string_view whole(data(), size());
    out->input.clear();
    out->has_input = false;
    if (o_.filter) {
      RETURN_IF_ERROR(o_.filter(0, whole, &scratch_));
      if (limit() && scratch_.size() > limit()) return TooLarge(0);
      out->body.assign(scratch_);
      if (o_.keep_input) {
        out->input.assign(whole);
        out->has_input = true;
      }
    } else {
      out->body.assign(whole);
    }
    Consume(size());
    done_ = true;
    Emit(out, 1);
    return true;
  }

  // The length of the next line with its '\n' (or the last line without one); 0 at the end.
  Result<std::size_t> NextLineLength() {
    std::size_t scanned = 0;
    for (;;) {
      const void* nl = std::memchr(data() + scanned, '\n', size() - scanned);
      if (nl != nullptr) {
        std::size_t len = static_cast<const char*>(nl) - data() + 1;
        if (limit() && len > limit()) return TooLarge(next_index_);
        return len;
      }
      scanned = size();
      if (limit() && scanned > limit()) return TooLarge(next_index_);
      if (eof_) return scanned;
      RETURN_IF_ERROR(Fill(scanned + 1));
    }
  }

  // Line + SingleRecord, no filter: the line as it is in the object.
  Result<bool> NextLine(Payload* out) {
    ASSIGN_OR_RETURN(std::size_t len, NextLineLength());
    if (len == 0) {
      done_ = true;
      return false;
    }
    out->body.assign(data(), len);
    out->input.clear();
    out->has_input = false;
    Consume(len);
    ++next_index_;
    Emit(out, 1);
    return true;
  }

  // Line + MultiRecord, no filter: cut after the last '\n' that fits.
  Result<bool> NextLines(Payload* out) {
    RETURN_IF_ERROR(Fill(limit() ? limit() + 1 : SIZE_MAX));
    if (size() == 0) {
      done_ = true;
      return false;
    }
    std::size_t take;
    if (eof_ && (limit() == 0 || size() <= limit())) {
      take = size();
    } else {
      const void* nl = memrchr(data(), '\n', std::min<std::uint64_t>(size(), limit()));
      if (nl == nullptr) return TooLarge(next_index_);
      take = static_cast<const char*>(nl) - data() + 1;
    }
    std::size_t count = CountNewlines(data(), take) + (data()[take - 1] != '\n' ? 1 : 0);
    out->body.assign(data(), take);
    out->input.clear();
    out->has_input = false;
    Consume(take);
    next_index_ += count;
    Emit(out, count);
    return true;
  }

  // Line with a filter: record by record, each filtered record followed by '\n'.
  Result<bool> NextFiltered(Payload* out, bool single) {
    out->body.clear();
    out->input.clear();
    out->has_input = o_.keep_input;
    std::uint64_t count = 0;
    if (has_pending_) {
      out->body.append(pending_body_).push_back('\n');
      if (o_.keep_input) out->input.append(pending_input_);
      has_pending_ = false;
      count = 1;
    }
    while (!(single && count == 1)) {
      ASSIGN_OR_RETURN(std::size_t len, NextLineLength());
      if (len == 0) break;
      std::string_view raw(data(), len);
      RETURN_IF_ERROR(o_.filter(next_index_, StripTerminator(raw), &scratch_));
      const std::size_t bytes = scratch_.size() + 1;
      if (limit() && bytes > limit()) return TooLarge(next_index_);
      if (limit() && out->body.size() + bytes > limit()) {
        // Keep it for the next payload; the window may move on.
        pending_body_.swap(scratch_);
        if (o_.keep_input) pending_input_.assign(raw);
        has_pending_ = true;
        Consume(len);
        ++next_index_;
        break;
      }
      out->body.append(scratch_).push_back('\n');
      if (o_.keep_input) out->input.append(raw);
      Consume(len);
      ++next_index_;
      ++count;
    }
    if (count == 0) {
      done_ = true;
      return false;
    }
    Emit(out, count);
    return true;
  }

  Status Truncated(std::size_t at, std::size_t need) const {
    return InvalidArgument(fmt::format(
        "object '{}' ends inside {} record {} (offset {}): the frame needs {} more bytes, {} "
        "remain",
        o_.object_name, SplitTypeName(o_.split_type), next_index_ + 1, consumed_ + at, need,
        size() - at));
  }

  // Parses the record starting `at` bytes into the window without consuming it. Returns false
  // at the end of the object. `max_bytes` (0: none) bounds what the record may take, framing
  // included for MultiRecord (`count_framing`), so that an oversized record is refused before
  // it is read. Sets *over when the record does not fit.
  Result<bool> ParseBinary(std::size_t at, std::uint64_t max_bytes, bool count_framing,
                           BinaryRecord* rec, bool* over) {
    *over = false;
    *rec = BinaryRecord{};
    RETURN_IF_ERROR(Fill(at + 1));
    if (size() <= at) return false;
    if (o_.split_type == SplitType::kTFRecord) {
      RETURN_IF_ERROR(Fill(at + 12));
      if (size() < at + 12) return Truncated(at, 12);
      std::uint64_t len = Load64(data() + at);
      if (MaskCrc32c(Crc32c(std::string_view(data() + at, 8))) != Load32(data() + at + 8)) {
        return InvalidArgument(fmt::format(
            "object '{}' has a bad TFRecord length checksum in record {} (offset {})",
            o_.object_name, next_index_ + 1, consumed_ + at));
      }
      if (len > (std::uint64_t{1} << 48)) {
        return InvalidArgument(fmt::format(
            "object '{}' is not TFRecord at record {} (offset {}): length {} is implausible",
            o_.object_name, next_index_ + 1, consumed_ + at, len));
      }
      std::uint64_t frame = 16 + len;
      if (max_bytes && (count_framing ? frame : len) > max_bytes) {
        *over = true;
        return true;
      }
      RETURN_IF_ERROR(Fill(at + frame));
      if (size() < at + frame) return Truncated(at, frame);
      std::string_view payload(data() + at + 12, len);
      if (MaskCrc32c(Crc32c(payload)) != Load32(data() + at + 12 + len)) {
        return InvalidArgument(fmt::format(
            "object '{}' has a bad TFRecord data checksum in record {} (offset {})",
            o_.object_name, next_index_ + 1, consumed_ + at));
      }
      rec->frame_bytes = frame;
      rec->data_offset = at + 12;
      rec->data_bytes = len;
      return true;
    }
    // RecordIO: frames until one with cflag 0 (whole) or 3 (end).
    std::size_t pos = at;
    for (int part = 0;; ++part) {
      RETURN_IF_ERROR(Fill(pos + 8));
      if (size() < pos + 8) return Truncated(pos, 8);
      if (Load32(data() + pos) != kRecordIOMagic) {
        return InvalidArgument(fmt::format(
            "object '{}' is not RecordIO at record {} (offset {}): expected the magic "
            "0xCED7230A",
            o_.object_name, next_index_ + 1, consumed_ + pos));
      }
      std::uint32_t lrecord = Load32(data() + pos + 4);
      std::uint32_t cflag = lrecord >> 29, len = lrecord & kRecordIOLengthMask;
      bool first = part == 0;
      if ((first && cflag != 0 && cflag != 1) || (!first && cflag != 2 && cflag != 3)) {
        return InvalidArgument(fmt::format(
            "object '{}' has a RecordIO frame with continuation flag {} out of sequence in "
            "record {} (offset {})",
            o_.object_name, cflag, next_index_ + 1, consumed_ + pos));
      }
      std::size_t frame = 8 + ((std::size_t{len} + 3) & ~std::size_t{3});
      rec->frame_bytes += frame;
      rec->data_bytes += len + (first ? 0 : 4);  // parts are joined by the magic
      if (max_bytes && (count_framing ? rec->frame_bytes : rec->data_bytes) > max_bytes) {
        *over = true;
        return true;
      }
      RETURN_IF_ERROR(Fill(pos + frame));
      if (size() < pos + frame) return Truncated(pos, frame);
      if (first) rec->data_offset = pos + 8;
      pos += frame;
      if (cflag == 0 || cflag == 3) break;
      rec->multi_frame = true;
    }
    return true;
  }

  // Joins a multi-frame RecordIO record's parts, as dmlc's reader does.
  void AssembleRecordIO(std::size_t at, std::string* out) const {
    out->clear();
    std::size_t pos = at;
    for (;;) {
      std::uint32_t lrecord = Load32(data() + pos + 4);
      std::uint32_t cflag = lrecord >> 29, len = lrecord & kRecordIOLengthMask;
      if (cflag == 2 || cflag == 3) {
        char magic[4];
        for (int i = 0; i < 4; ++i) magic[i] = static_cast<char>(kRecordIOMagic >> (8 * i));
        out->append(magic, 4);
      }
      out->append(data() + pos + 8, len);
      pos += 8 + ((std::size_t{len} + 3) & ~std::size_t{3});
      if (cflag == 0 || cflag == 3) return;
    }
  }

  Result<bool> NextBinary(Payload* out, bool single) {
    out->input.clear();
    out->has_input = false;
    BinaryRecord rec;
    bool over = false;
    if (single) {
      ASSIGN_OR_RETURN(bool found, ParseBinary(0, limit(), false, &rec, &over));
      if (!found) {
        done_ = true;
        return false;
      }
      if (over) return TooLarge(next_index_);
      if (rec.multi_frame) {
        AssembleRecordIO(0, &out->body);
      } else {
        out->body.assign(data() + rec.data_offset, rec.data_bytes);
      }
      Consume(rec.frame_bytes);
      ++next_index_;
      Emit(out, 1);
      return true;
    }
    std::size_t total = 0;
    std::uint64_t count = 0;
    for (;;) {
      std::uint64_t room = limit() ? limit() - total : 0;
      ASSIGN_OR_RETURN(bool found, ParseBinary(total, room, true, &rec, &over));
      if (!found) break;
      if (over) {
        if (count == 0) return TooLarge(next_index_);
        break;
      }
      total += rec.frame_bytes;
      ++count;
      ++next_index_;
      if (limit() && total == limit()) break;
    }
    if (count == 0) {
      done_ = true;
      return false;
    }
    out->body.assign(data(), total);
    Consume(total);
    Emit(out, count);
    return true;
  }

  Options o_;
  ByteSource source_;
  std::unique_ptr<char[]> buf_;
  std::size_t cap_ = 0, begin_ = 0, end_ = 0;
  bool eof_ = false;
  std::uint64_t consumed_ = 0;    // object offset of begin_
  std::uint64_t records_ = 0;     // records handed out in payloads
  std::uint64_t next_index_ = 0;  // index of the next record not yet taken from the window
  bool done_ = false;
  Status error_;
  std::string scratch_;
  // A filtered record that did not fit in the previous payload.
  bool has_pending_ = false;
  std::string pending_body_, pending_input_;
};

Result<std::unique_ptr<PayloadSplitter>> PayloadSplitter::Open(Options options,
                                                               ByteSource source) {
  if (options.filter && (options.split_type == SplitType::kRecordIO ||
                         options.split_type == SplitType::kTFRecord)) {
    return InvalidArgument(fmt::format(
        "DataProcessing filters apply to text records; SplitType {} records are binary",
        SplitTypeName(options.split_type)));
  }
  if (!source) return InvalidArgument("PayloadSplitter needs a byte source");
  return std::unique_ptr<PayloadSplitter>(
      new PayloadSplitter(std::make_unique<Impl>(std::move(options), std::move(source))));
}

PayloadSplitter::PayloadSplitter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PayloadSplitter::~PayloadSplitter() = default;

Result<bool> PayloadSplitter::Next(Payload* out) { return impl_->Next(out); }
std::uint64_t PayloadSplitter::records() const { return impl_->records(); }

}  // namespace hearth::transform
