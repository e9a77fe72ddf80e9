#include "data/recordio_protobuf.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "data/protobuf_wire.h"
#include "data/row_parser.h"

namespace hearth::data {
namespace {

constexpr std::uint32_t kLengthMask = (1u << 29) - 1;
// Record fields (proto/record.proto).
constexpr std::uint32_t kRecordFeatures = 1;
constexpr std::uint32_t kRecordLabel = 2;
// Value's oneof.
constexpr std::uint32_t kValueFloat32 = 2;
constexpr std::uint32_t kValueFloat64 = 3;
constexpr std::uint32_t kValueInt32 = 7;
constexpr std::uint32_t kValueBytes = 9;
// Tensor fields, the same in all three tensor messages.
constexpr std::uint32_t kTensorValues = 1;
constexpr std::uint32_t kTensorKeys = 2;
constexpr std::uint32_t kTensorShape = 3;

std::size_t Padded(std::size_t len) { return (len + 3) & ~std::size_t{3}; }

// ---------------------------------------------------------------------------------------------
// Decoding

enum class ElementType { kFloat32, kFloat64, kInt32 };

// One decoded tensor, values widened or narrowed to float.
struct Tensor {
  bool present = false;
  std::vector<float> values;
  std::vector<std::uint64_t> keys;
  std::vector<std::uint64_t> shape;

  void Reset() {
    present = false;
    values.clear();
    keys.clear();
    shape.clear();
  }
};

bool AppendVarints(std::string_view packed, std::vector<std::uint64_t>* out) {
  wire::Reader r(packed);
  while (!r.done()) {
    std::uint64_t v;
    if (!r.ReadVarint(&v)) return false;
    out->push_back(v);
  }
  return true;
}

bool AppendPackedValues(std::string_view packed, ElementType type, std::vector<float>* out) {
  if (packed.empty()) return true;
  std::size_t old = out->size();
  switch (type) {
    case ElementType::kFloat32:
      if (packed.size() % 4 != 0) return false;
      out->resize(old + packed.size() / 4);
      std::memcpy(out->data() + old, packed.data(), packed.size());
      return true;
    case ElementType::kFloat64: {
      if (packed.size() % 8 != 0) return false;
      std::size_t n = packed.size() / 8;
      out->resize(old + n);
      for (std::size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, packed.data() + 8 * i, 8);
        (*out)[old + i] = static_cast<float>(d);
      }
      return true;
    }
    case ElementType::kInt32: {
      wire::Reader r(packed);
      while (!r.done()) {
        std::uint64_t v;
        if (!r.ReadVarint(&v)) return false;
        out->push_back(static_cast<float>(static_cast<std::int32_t>(v)));
      }
      return true;
    }
  }
  return false;
}

bool AppendUnpackedValue(wire::Reader& r, std::uint32_t wire_type, ElementType type,
                         std::vector<float>* out) {
  if (type == ElementType::kFloat32 && wire_type == wire::kFixed32) {
    float f;
    if (!r.ReadFixed(&f)) return false;
    out->push_back(f);
    return true;
  }
  if (type == ElementType::kFloat64 && wire_type == wire::kFixed64) {
    double d;
    if (!r.ReadFixed(&d)) return false;
    out->push_back(static_cast<float>(d));
    return true;
  }
  if (type == ElementType::kInt32 && wire_type == wire::kVarint) {
    std::uint64_t v;
    if (!r.ReadVarint(&v)) return false;
    out->push_back(static_cast<float>(static_cast<std::int32_t>(v)));
    return true;
  }
  return false;
}

// Packed and unpacked encodings are both legal for repeated scalars; parsers must accept both.
bool DecodeTensor(std::string_view bytes, ElementType type, Tensor* t) {
  wire::Reader r(bytes);
  while (!r.done()) {
    std::uint32_t field, wire_type;
    if (!r.ReadTag(&field, &wire_type)) return false;
    if (field == kTensorValues) {
      if (wire_type == wire::kLengthDelimited) {
        std::string_view packed;
        if (!r.ReadBytes(&packed) || !AppendPackedValues(packed, type, &t->values)) return false;
      } else if (!AppendUnpackedValue(r, wire_type, type, &t->values)) {
        return false;
      }
    } else if (field == kTensorKeys || field == kTensorShape) {
      auto* out = field == kTensorKeys ? &t->keys : &t->shape;
      if (wire_type == wire::kLengthDelimited) {
        std::string_view packed;
        if (!r.ReadBytes(&packed) || !AppendVarints(packed, out)) return false;
      } else if (wire_type == wire::kVarint) {
        std::uint64_t v;
        if (!r.ReadVarint(&v)) return false;
        out->push_back(v);
      } else {
        return false;
      }
    } else if (!r.Skip(wire_type)) {
      return false;
    }
  }
  t->present = true;
  return true;
}

// Returns an empty string on success, else what was wrong.
std::string DecodeValue(std::string_view bytes, Tensor* t) {
  wire::Reader r(bytes);
  while (!r.done()) {
    std::uint32_t field, wire_type;
    if (!r.ReadTag(&field, &wire_type)) return "malformed Value";
    ElementType type;
    if (field == kValueFloat32) {
      type = ElementType::kFloat32;
    } else if (field == kValueFloat64) {
      type = ElementType::kFloat64;
    } else if (field == kValueInt32) {
      type = ElementType::kInt32;
    } else if (field == kValueBytes) {
      return "holds Bytes, not a Float32/Float64/Int32 tensor";
    } else {
      if (!r.Skip(wire_type)) return "malformed Value";
      continue;
    }
    std::string_view tensor;
    if (wire_type != wire::kLengthDelimited || !r.ReadBytes(&tensor)) return "malformed Value";
    t->Reset();  // a oneof: the last one on the wire wins
    if (!DecodeTensor(tensor, type, t)) return "malformed tensor";
  }
  return {};
}

// Fills `features` and `label` from the "values" entries of a Record's two maps.
std::string DecodeRecord(std::string_view payload, Tensor* features, Tensor* label) {
  features->Reset();
  label->Reset();
  wire::Reader r(payload);
  while (!r.done()) {
    std::uint32_t field, wire_type;
    if (!r.ReadTag(&field, &wire_type)) return "malformed Record";
    if ((field != kRecordFeatures && field != kRecordLabel) ||
        wire_type != wire::kLengthDelimited) {
      if (!r.Skip(wire_type)) return "malformed Record";
      continue;
    }
    std::string_view entry;
    if (!r.ReadBytes(&entry)) return "malformed Record";
    // A map entry: key = 1, value = 2, in either order.
    std::string_view key, value;
    bool has_value = false;
    wire::Reader e(entry);
    while (!e.done()) {
      std::uint32_t entry_field, entry_wire;
      if (!e.ReadTag(&entry_field, &entry_wire)) return "malformed map entry";
      if (entry_field == 1 && entry_wire == wire::kLengthDelimited) {
        if (!e.ReadBytes(&key)) return "malformed map entry";
      } else if (entry_field == 2 && entry_wire == wire::kLengthDelimited) {
        if (!e.ReadBytes(&value)) return "malformed map entry";
        has_value = true;
      } else if (!e.Skip(entry_wire)) {
        return "malformed map entry";
      }
    }
    if (key != "values" || !has_value) continue;
    std::string error = DecodeValue(value, field == kRecordFeatures ? features : label);
    if (!error.empty()) {
      return std::string(field == kRecordFeatures ? "features" : "label") + "[\"values\"] " +
             error;
    }
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// The reader

class RecordIOParser : public RowParser {
 public:
  explicit RecordIOParser(bool accept_bare_record) : accept_bare_record_(accept_bare_record) {}

  void StartInput() override { record_ = 0; }

  void BeginBatch(Batch* out) override { SetUp(out); }

  Result<bool> Parse(ByteWindow& window, std::size_t max_rows, Batch* out) override {
    if (ServePending(max_rows, out)) return false;
    while (out->rows < max_rows) {
      std::uint64_t offset = window.offset();
      std::string_view payload;
      std::size_t consume_after = 0;
      ASSIGN_OR_RETURN(bool found, NextPayload(window, &payload, &consume_after));
      if (!found) return true;
      ++record_;
      std::string error = DecodeRecord(payload, &features_, &label_);
      window.Consume(consume_after);  // payload is dead from here
      if (!error.empty()) return RecordError(window, offset, error);

      Layout layout;
      RETURN_IF_ERROR(Check(window, offset, &layout));
      if (layout.rows > max_rows - out->rows) {
        // A record of several rows that does not fit: hand it out over the next batches.
        pending_.Clear();
        SetUp(&pending_);
        pending_cursor_ = 0;
        Append(layout, &pending_);
        ServePending(max_rows, out);
        return false;
      }
      Append(layout, out);
    }
    return false;
  }

 private:
  enum class Mode { kUnknown, kDense, kSparse };

  struct Layout {
    bool sparse = false;
    std::size_t rows = 0;
    std::uint64_t width = 0;
  };

  void SetUp(Batch* b) const {
    b->sparse = mode_ == Mode::kSparse;
    b->cols = cols_;
    if (b->sparse) b->row_offsets.assign(1, 0);
  }

  // Moves rows from pending_ into `out`; true when `out` is full.
  bool ServePending(std::size_t max_rows, Batch* out) {
    if (pending_cursor_ >= pending_.rows) return false;
    std::size_t take = std::min(pending_.rows - pending_cursor_, max_rows - out->rows);
    AppendRows(pending_, pending_cursor_, pending_cursor_ + take, out);
    pending_cursor_ += take;
    return out->rows == max_rows;
  }

  // Reads the next whole record's payload: a view into the window for a one-frame record
  // (consume `*consume_after` bytes once done with it), or the joined frames of a split one.
  Result<bool> NextPayload(ByteWindow& window, std::string_view* payload,
                           std::size_t* consume_after) {
    bool joining = false;
    joined_.clear();
    std::uint64_t first_offset = window.offset();
    while (true) {
      while (window.size() < 8 && !window.at_eof()) {
        ASSIGN_OR_RETURN(bool more, window.Refill());
        (void)more;
      }
      std::uint64_t offset = window.offset();
      if (window.size() == 0 && !joining) return false;
      if (window.size() < 8) {
        return Truncated(window, first_offset,
                         joining ? "a record split over several frames has no end frame"
                                 : "the input ends inside a record header");
      }
      std::uint32_t magic, lrecord;
      std::memcpy(&magic, window.begin(), 4);
      std::memcpy(&lrecord, window.begin() + 4, 4);
      if (magic != kRecordIOMagic && accept_bare_record_ && offset == 0 && !joining) {
        // One unframed Record: the whole input.
        while (!window.at_eof()) {
          ASSIGN_OR_RETURN(bool more, window.Refill());
          (void)more;
        }
        *payload = std::string_view(window.begin(), window.size());
        *consume_after = window.size();
        return true;
      }
      if (magic != kRecordIOMagic) {
        char hex[16];
        std::snprintf(hex, sizeof(hex), "0x%08X", magic);
        return InvalidArgument(window.name() + ": bad RecordIO magic " + hex + " at byte offset " +
                               std::to_string(offset) + " (expected 0xCED7230A, record " +
                               std::to_string(record_ + 1) + ")");
      }
      std::uint32_t cflag = lrecord >> 29;
      std::size_t len = lrecord & kLengthMask;
      std::size_t frame = 8 + Padded(len);
      while (window.size() < frame && !window.at_eof()) {
        ASSIGN_OR_RETURN(bool more, window.Refill());
        (void)more;
      }
      // The last frame's padding may be missing at the very end; its payload may not.
      if (window.size() < 8 + len) {
        return Truncated(window, offset,
                         "the frame needs " + std::to_string(len) + " payload bytes, only " +
                             std::to_string(window.size() - 8) + " remain");
      }
      std::size_t take = std::min(frame, window.size());
      const char* data = window.begin() + 8;
      if (cflag == 0) {
        if (joining) return Truncated(window, offset, "a whole record interrupts a split one");
        *payload = std::string_view(data, len);
        *consume_after = take;
        return true;
      }
      if (cflag > 3 || (cflag == 1) == joining) {
        return InvalidArgument(window.name() + ": RecordIO frame at byte offset " +
                               std::to_string(offset) + " has continuation flag " +
                               std::to_string(cflag) +
                               (joining ? " inside a split record" : " outside a split record"));
      }
      joined_.append(data, len);
      window.Consume(take);
      if (cflag == 3) {
        *payload = joined_;
        *consume_after = 0;
        return true;
      }
      // The writer split the payload where it held the magic: put the magic back.
      const std::uint32_t kMagic = kRecordIOMagic;
      joined_.append(reinterpret_cast<const char*>(&kMagic), 4);
      joining = true;
    }
  }

  Status Truncated(const ByteWindow& window, std::uint64_t offset, const std::string& why) const {
    return InvalidArgument(window.name() + ": truncated RecordIO record " +
                           std::to_string(record_ + 1) + " at byte offset " +
                           std::to_string(offset) + ": " + why);
  }

  Status RecordError(const ByteWindow& window, std::uint64_t offset,
                     const std::string& why) const {
    return InvalidArgument(window.name() + ": RecordIO record " + std::to_string(record_) +
                           " at byte offset " + std::to_string(offset) + ": " + why);
  }

  // Works out how the record's features map onto rows and checks it against the stream.
  Status Check(const ByteWindow& window, std::uint64_t offset, Layout* layout) {
    const Tensor& f = features_;
    if (!f.present) return RecordError(window, offset, "no features[\"values\"] tensor");
    std::uint64_t shape_elements = 1;
    for (std::uint64_t d : f.shape) shape_elements *= d;
    layout->sparse = !f.keys.empty() ||
                     (f.values.empty() && !f.shape.empty() && shape_elements > 0);
    if (f.shape.size() > 2) {
      return RecordError(window, offset,
                         "features shape has " + std::to_string(f.shape.size()) +
                             " dimensions; expected [cols] or [rows, cols]");
    }
    if (layout->sparse) {
      if (f.keys.size() != f.values.size()) {
        return RecordError(window, offset,
                           "sparse features have " + std::to_string(f.keys.size()) + " keys but " +
                               std::to_string(f.values.size()) + " values");
      }
      if (f.shape.empty()) return RecordError(window, offset, "sparse features need a shape");
      layout->rows = f.shape.size() == 1 ? 1 : f.shape[0];
      layout->width = f.shape.back();
      std::uint64_t previous = 0;
      for (std::uint64_t key : f.keys) {
        if (key >= shape_elements || (f.shape.size() == 2 && key / layout->width < previous)) {
          return RecordError(window, offset,
                             "sparse key " + std::to_string(key) +
                                 " is outside the shape or out of row order");
        }
        if (f.shape.size() == 2) previous = key / layout->width;
      }
    } else {
      std::size_t n = f.values.size();
      if (f.shape.empty()) {
        layout->rows = 1;
        layout->width = n;
      } else {
        layout->rows = f.shape.size() == 1 ? 1 : f.shape[0];
        layout->width = f.shape.back();
        if (shape_elements != n) {
          return RecordError(window, offset,
                             "dense features hold " + std::to_string(n) +
                                 " values but the shape says " + std::to_string(shape_elements));
        }
      }
    }
    if (layout->width > 0xFFFFFFFFull) {
      return RecordError(window, offset, "more than 2^32 feature columns");
    }

    bool has_label = label_.present;
    if (has_label && label_.values.size() != layout->rows) {
      return RecordError(window, offset,
                         "label[\"values\"] holds " + std::to_string(label_.values.size()) +
                             " values for " + std::to_string(layout->rows) +
                             " row(s); expected one label per row");
    }
    if (labels_ == Presence::kUnknown) {
      labels_ = has_label ? Presence::kYes : Presence::kNo;
    } else if ((labels_ == Presence::kYes) != has_label) {
      return RecordError(window, offset,
                         has_label ? "has a label but earlier records do not"
                                   : "has no label[\"values\"] but earlier records do");
    }

    if (mode_ == Mode::kUnknown) {
      mode_ = layout->sparse ? Mode::kSparse : Mode::kDense;
      cols_ = layout->width;
    } else if (mode_ == Mode::kDense && layout->width != cols_) {
      return RecordError(window, offset,
                         "has " + std::to_string(layout->width) + " features; earlier records have " +
                             std::to_string(cols_));
    } else if (mode_ == Mode::kSparse) {
      cols_ = std::max<std::uint64_t>(cols_, layout->width);
    }
    return Status::Ok();
  }

  void Append(const Layout& layout, Batch* out) {
    const Tensor& f = features_;
    if (out->rows == 0 && out->dense.empty() && out->row_offsets.size() <= 1) {
      SetUp(out);  // the stream's mode may have just been settled by this record
    }
    out->cols = cols_;
    if (mode_ == Mode::kDense) {
      std::size_t base = out->dense.size();
      if (!layout.sparse) {
        out->dense.insert(out->dense.end(), f.values.begin(), f.values.end());
      } else {
        out->dense.resize(base + layout.rows * layout.width, 0.0f);
        for (std::size_t i = 0; i < f.keys.size(); ++i) out->dense[base + f.keys[i]] = f.values[i];
      }
    } else if (layout.sparse) {
      std::size_t k = 0;
      for (std::size_t r = 0; r < layout.rows; ++r) {
        std::uint64_t row_end = (r + 1) * layout.width;
        for (; k < f.keys.size() && f.keys[k] < row_end; ++k) {
          out->indices.push_back(static_cast<std::uint32_t>(f.keys[k] - r * layout.width));
          out->values.push_back(f.values[k]);
        }
        out->row_offsets.push_back(out->values.size());
      }
    } else {
      for (std::size_t r = 0; r < layout.rows; ++r) {
        for (std::size_t c = 0; c < layout.width; ++c) {
          out->indices.push_back(static_cast<std::uint32_t>(c));
          out->values.push_back(f.values[r * layout.width + c]);
        }
        out->row_offsets.push_back(out->values.size());
      }
    }
    if (label_.present) {
      out->labels.insert(out->labels.end(), label_.values.begin(), label_.values.end());
    }
    out->rows += layout.rows;
  }

  enum class Presence { kUnknown, kYes, kNo };

  Mode mode_ = Mode::kUnknown;
  Presence labels_ = Presence::kUnknown;
  std::uint64_t cols_ = 0;
  const bool accept_bare_record_;
  std::uint64_t record_ = 0;
  Tensor features_, label_;
  std::string joined_;
  Batch pending_;
  std::size_t pending_cursor_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Encoding

std::size_t PackedVarintBytes(const std::uint32_t* keys, std::size_t n) {
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < n; ++i) bytes += wire::VarintSize(keys[i]);
  return bytes;
}

}  // namespace

std::unique_ptr<RowParser> NewRecordIOParser(bool accept_bare_record) {
  return std::make_unique<RecordIOParser>(accept_bare_record);
}

void AppendRecordIOFrame(std::string_view payload, std::string* out) {
  const std::uint32_t kMagic = kRecordIOMagic;
  const std::size_t len = payload.size();
  auto put_header = [out, &kMagic](std::uint32_t cflag, std::size_t part) {
    std::uint32_t lrecord = (cflag << 29) | static_cast<std::uint32_t>(part);
    out->append(reinterpret_cast<const char*>(&kMagic), 4);
    out->append(reinterpret_cast<const char*>(&lrecord), 4);
  };
  std::size_t start = 0;
  for (std::size_t i = 0; i + 4 <= len; i += 4) {
    if (std::memcmp(payload.data() + i, &kMagic, 4) != 0) continue;
    put_header(start == 0 ? 1 : 2, i - start);
    out->append(payload.data() + start, i - start);
    start = i + 4;
  }
  put_header(start == 0 ? 0 : 3, len - start);
  out->append(payload.data() + start, len - start);
  out->append(Padded(len) - len, '\0');
}

std::string EncodeRecordIOProtobuf(const Batch& batch) {
  std::string out;
  std::string payload;
  const std::uint64_t shape = batch.cols;
  for (std::size_t r = 0; r < batch.rows; ++r) {
    const float* values;
    const std::uint32_t* keys = nullptr;
    std::size_t n, n_keys = 0;
    if (batch.sparse) {
      std::uint64_t begin = batch.row_offsets[r], end = batch.row_offsets[r + 1];
      values = batch.values.data() + begin;
      keys = batch.indices.data() + begin;
      n = n_keys = end - begin;
    } else {
      values = batch.row(r);
      n = batch.cols;
    }
    // Float32Tensor{values, keys, shape} inside Value{float32_tensor} inside a map entry.
    std::size_t key_bytes = PackedVarintBytes(keys, n_keys);
    std::size_t tensor = (n ? wire::DelimitedSize(kTensorValues, 4 * n) : 0) +
                         (batch.sparse && n_keys ? wire::DelimitedSize(kTensorKeys, key_bytes) : 0) +
                         (batch.sparse ? wire::DelimitedSize(kTensorShape, wire::VarintSize(shape))
                                       : 0);
    std::size_t value = wire::DelimitedSize(kValueFloat32, tensor);
    std::size_t entry = wire::DelimitedSize(1, 6) + wire::DelimitedSize(2, value);

    payload.clear();
    wire::PutTag(&payload, kRecordFeatures, wire::kLengthDelimited);
    wire::PutVarint(&payload, entry);
    wire::PutTag(&payload, 1, wire::kLengthDelimited);
    wire::PutVarint(&payload, 6);
    payload.append("values");
    wire::PutTag(&payload, 2, wire::kLengthDelimited);
    wire::PutVarint(&payload, value);
    wire::PutTag(&payload, kValueFloat32, wire::kLengthDelimited);
    wire::PutVarint(&payload, tensor);
    if (n) {
      wire::PutTag(&payload, kTensorValues, wire::kLengthDelimited);
      wire::PutVarint(&payload, 4 * n);
      payload.append(reinterpret_cast<const char*>(values), 4 * n);
    }
    if (batch.sparse) {
      if (n_keys) {
        wire::PutTag(&payload, kTensorKeys, wire::kLengthDelimited);
        wire::PutVarint(&payload, key_bytes);
        for (std::size_t i = 0; i < n_keys; ++i) wire::PutVarint(&payload, keys[i]);
      }
      wire::PutTag(&payload, kTensorShape, wire::kLengthDelimited);
      wire::PutVarint(&payload, wire::VarintSize(shape));
      wire::PutVarint(&payload, shape);
    }
    if (batch.has_labels()) {
      // label["values"] = Float32Tensor{values: [y]}
      std::size_t label_tensor = wire::DelimitedSize(kTensorValues, 4);
      std::size_t label_value = wire::DelimitedSize(kValueFloat32, label_tensor);
      std::size_t label_entry = wire::DelimitedSize(1, 6) + wire::DelimitedSize(2, label_value);
      wire::PutTag(&payload, kRecordLabel, wire::kLengthDelimited);
      wire::PutVarint(&payload, label_entry);
      wire::PutTag(&payload, 1, wire::kLengthDelimited);
      wire::PutVarint(&payload, 6);
      payload.append("values");
      wire::PutTag(&payload, 2, wire::kLengthDelimited);
      wire::PutVarint(&payload, label_value);
      wire::PutTag(&payload, kValueFloat32, wire::kLengthDelimited);
      wire::PutVarint(&payload, label_tensor);
      wire::PutTag(&payload, kTensorValues, wire::kLengthDelimited);
      wire::PutVarint(&payload, 4);
      payload.append(reinterpret_cast<const char*>(&batch.labels[r]), 4);
    }
    AppendRecordIOFrame(payload, &out);
  }
  return out;
}

}  // namespace hearth::data
