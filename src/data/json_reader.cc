// application/json and application/jsonlines inference requests (reference/sagemaker-api.md
// §7.1), parsed with simdjson. Accepted shapes:
//   {"instances": [<instance>, ...]}      or a bare <instance> as the whole body
//   <instance> = {"features": [..]} | {"data": {"features": {"values": [..]}}}
//              | {"data": {"features": {"keys": [..], "shape": [n], "values": [..]}}} (sparse)
//              | [..] (an array of numbers)
//   a top-level array of instances ([[..], [..]]) is taken as `instances` too.
// JSON lines: one <instance> per line.
//
// Rows are dense unless an instance is sparse; then the whole batch becomes CSR.

#include <simdjson.h>

#include <limits>
#include <string>
#include <vector>

#include "data/row_parser.h"

namespace hearth::data {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

// Reused across requests on a thread: parsing allocates only when a body outgrows it. Documents
// never outlive the call that parsed them, so readers on one thread cannot clobber each other.
simdjson::dom::parser& ThreadParser() {
  thread_local simdjson::dom::parser parser;
  return parser;
}

// Names an instance in errors; built into text only when an error is reported.
struct Where {
  const std::string* input;       // "request body" or a file name
  std::uint64_t line = 0;         // JSON lines: 1-based line
  std::int64_t instance = -1;     // JSON: index into "instances"
  std::string Text() const {
    std::string text = *input;
    if (line > 0) text += " line " + std::to_string(line);
    if (instance >= 0) text += ": instances[" + std::to_string(instance) + "]";
    return text;
  }
};

// Accumulates instances into a batch, keeping dense vs sparse and the width consistent across
// every row of the stream.
class RowBuilder {
 public:
  void SetUp(Batch* out) const {
    out->sparse = sparse_;
    out->cols = cols_;
    if (sparse_) out->row_offsets.assign(1, 0);
  }

  // `where` names the instance for errors.
  Status Add(element instance, const Where& where, Batch* out) {
    switch (instance.type()) {
      case element_type::ARRAY:
        RETURN_IF_ERROR(Numbers(instance, where, "the instance", &values_));
        return AddDense(where, out);
      case element_type::OBJECT: {
        element features;
        if (instance["features"].get(features) == simdjson::SUCCESS) {
          if (features.is_object()) return AddTensor(features, where, "features", out);
          RETURN_IF_ERROR(Numbers(features, where, "\"features\"", &values_));
          return AddDense(where, out);
        }
        element data;
        if (instance["data"].get(data) == simdjson::SUCCESS) {
          if (!data.is_object() || data["features"].get(features) != simdjson::SUCCESS ||
              !features.is_object()) {
            return InvalidArgument(where.Text() + ": expected \"data\": {\"features\": {\"values\": [...]}}");
          }
          return AddTensor(features, where, "data.features", out);
        }
        return InvalidArgument(where.Text() + ": expected \"features\": [...] or \"data\": {\"features\": "
                               "{\"values\": [...]}}");
      }
      default:
        return InvalidArgument(where.Text() + ": expected an object or an array of numbers");
    }
  }

 private:
  static Status Numbers(element e, const Where& where, const char* what,
                        std::vector<float>* out) {
    array items;
    if (e.get_array().get(items) != simdjson::SUCCESS) {
      return InvalidArgument(where.Text() + ": expected " + what + " to be an array of numbers");
    }
    out->clear();
    std::size_t i = 0;
    for (element item : items) {
      double d;
      if (item.get_double().get(d) != simdjson::SUCCESS) {
        return InvalidArgument(where.Text() + ": expected " + what + " to be an array of numbers; item " +
                               std::to_string(i) + " is not a number");
      }
      out->push_back(static_cast<float>(d));
      ++i;
    }
    return Status::Ok();
  }

  static Status Unsigned(element e, const Where& where, const char* what,
                         std::vector<std::uint64_t>* out) {
    array items;
    if (e.get_array().get(items) != simdjson::SUCCESS) {
      return InvalidArgument(where.Text() + ": expected \"" + what + "\" to be an array of integers");
    }
    out->clear();
    for (element item : items) {
      std::uint64_t v;
      if (item.get_uint64().get(v) != simdjson::SUCCESS) {
        return InvalidArgument(where.Text() + ": expected \"" + what +
                               "\" to be an array of non-negative integers");
      }
      out->push_back(v);
    }
    return Status::Ok();
  }

  // {"values": [...]} dense, or {"keys": [...], "shape": [n], "values": [...]} sparse.
  Status AddTensor(element tensor, const Where& where, const char* path, Batch* out) {
    element values, keys, shape;
    if (tensor["values"].get(values) != simdjson::SUCCESS) {
      return InvalidArgument(where.Text() + ": expected " + path + " to hold \"values\": [...]");
    }
    RETURN_IF_ERROR(Numbers(values, where, "\"values\"", &values_));
    if (tensor["keys"].get(keys) != simdjson::SUCCESS) return AddDense(where, out);

    RETURN_IF_ERROR(Unsigned(keys, where, "keys", &keys_));
    if (tensor["shape"].get(shape) != simdjson::SUCCESS) {
      return InvalidArgument(where.Text() + ": sparse features need \"shape\": [n]");
    }
    RETURN_IF_ERROR(Unsigned(shape, where, "shape", &shape_));
    if (shape_.size() != 1 || shape_[0] > 0xFFFFFFFFull) {
      return InvalidArgument(where.Text() + ": expected \"shape\" to be [n] with one dimension");
    }
    if (keys_.size() != values_.size()) {
      return InvalidArgument(where.Text() + ": " + std::to_string(keys_.size()) + " keys but " +
                             std::to_string(values_.size()) + " values");
    }
    for (std::uint64_t key : keys_) {
      if (key >= shape_[0]) {
        return InvalidArgument(where.Text() + ": key " + std::to_string(key) + " is outside shape [" +
                               std::to_string(shape_[0]) + "]");
      }
    }
    if (!sparse_) {
      sparse_ = true;
      ConvertToSparse(out);
    }
    for (std::size_t i = 0; i < keys_.size(); ++i) {
      out->indices.push_back(static_cast<std::uint32_t>(keys_[i]));
      out->values.push_back(values_[i]);
    }
    out->row_offsets.push_back(out->values.size());
    cols_ = std::max<std::size_t>(cols_, shape_[0]);
    out->cols = cols_;
    ++out->rows;
    return Status::Ok();
  }

  Status AddDense(const Where& where, Batch* out) {
    std::size_t n = values_.size();
    if (sparse_) {
      for (std::size_t c = 0; c < n; ++c) {
        out->indices.push_back(static_cast<std::uint32_t>(c));
        out->values.push_back(values_[c]);
      }
      out->row_offsets.push_back(out->values.size());
      cols_ = std::max(cols_, n);
    } else {
      if (!width_known_) {
        width_known_ = true;
        cols_ = n;
      } else if (n != cols_) {
        return InvalidArgument(where.Text() + ": has " + std::to_string(n) +
                               " features; earlier instances have " + std::to_string(cols_));
      }
      out->dense.insert(out->dense.end(), values_.begin(), values_.end());
    }
    out->cols = cols_;
    ++out->rows;
    return Status::Ok();
  }

  bool sparse_ = false;
  bool width_known_ = false;
  std::size_t cols_ = 0;
  std::vector<float> values_;
  std::vector<std::uint64_t> keys_, shape_;
};

Status JsonError(const Where& where, simdjson::error_code error) {
  return InvalidArgument(where.Text() + ": invalid JSON: " + simdjson::error_message(error));
}

// One JSON document per input, parsed whole (a document cannot be cut into mini-batches
// before it is parsed), then handed out `max_rows` at a time.
class JsonParser : public RowParser {
 public:
  void StartInput() override {
    parsed_ = false;
    pending_ = Batch();
    cursor_ = 0;
  }

  void BeginBatch(Batch* out) override { builder_.SetUp(out); }

  Result<bool> Parse(ByteWindow& window, std::size_t max_rows, Batch* out) override {
    if (!parsed_) {
      while (!window.at_eof()) {
        ASSIGN_OR_RETURN(bool more, window.Refill());
        (void)more;
      }
      builder_.SetUp(&pending_);
      RETURN_IF_ERROR(ParseDocument(window, &pending_));
      window.ConsumeTo(window.end());
      parsed_ = true;
    }
    std::size_t take = std::min(pending_.rows - cursor_, max_rows - out->rows);
    if (cursor_ == 0 && take == pending_.rows && out->rows == 0) {
      *out = std::move(pending_);  // the common case: the whole request in one batch
      pending_ = Batch();
      return true;
    }
    AppendRows(pending_, cursor_, cursor_ + take, out);
    cursor_ += take;
    return cursor_ == pending_.rows;
  }

 private:
  Status ParseDocument(const ByteWindow& window, Batch* out) {
    element doc;
    auto error = ThreadParser().parse(window.begin(), window.size()).get(doc);
    Where where{&window.name()};
    if (error) return JsonError(where, error);

    element instances;
    if (doc.is_object() && doc["instances"].get(instances) == simdjson::SUCCESS) {
      if (!instances.is_array()) {
        return InvalidArgument(window.name() + ": expected \"instances\" to be an array");
      }
      return AddAll(instances.get_array().value_unsafe(), where, out);
    }
    if (doc.is_array()) {
      array items = doc.get_array().value_unsafe();
      // A flat array of numbers is one instance; otherwise each item is one.
      if (items.size() > 0 && !items.at(0).value_unsafe().is_number()) {
        return AddAll(items, where, out);
      }
    }
    return builder_.Add(doc, where, out);
  }

  Status AddAll(array items, Where where, Batch* out) {
    where.instance = 0;
    for (element item : items) {
      RETURN_IF_ERROR(builder_.Add(item, where, out));
      ++where.instance;
    }
    return Status::Ok();
  }

  RowBuilder builder_;
  bool parsed_ = false;
  Batch pending_;
  std::size_t cursor_ = 0;
};

class JsonLinesParser : public RowParser {
 public:
  void StartInput() override { line_ = 0; }

  void BeginBatch(Batch* out) override { builder_.SetUp(out); }

  Result<bool> Parse(ByteWindow& window, std::size_t max_rows, Batch* out) override {
    return ForEachLine(window, max_rows, [out] { return out->rows; }, &line_,
                       [&](const char* begin, const char* end) -> Status {
                         Where where{&window.name(), line_};
                         element doc;
                         auto error = ThreadParser().parse(begin, end - begin).get(doc);
                         if (error) return JsonError(where, error);
                         return builder_.Add(doc, where, out);
                       });
  }

 private:
  RowBuilder builder_;
  std::uint64_t line_ = 0;
};

}  // namespace

std::unique_ptr<RowParser> NewJsonParser() { return std::make_unique<JsonParser>(); }
std::unique_ptr<RowParser> NewJsonLinesParser() { return std::make_unique<JsonLinesParser>(); }

}  // namespace hearth::data
