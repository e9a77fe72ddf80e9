#include "data/predictions.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>

#include "data/protobuf_wire.h"
#include "data/recordio_protobuf.h"

namespace hearth::data {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
  }
  return true;
}

enum class Dialect { kJson, kCsv };

// Shortest text that reads back as the same float; integral columns as integers. JSON has no
// NaN or infinity: they print the way Python's json module writes them, which is what
// SageMaker's clients parse.
void AppendNumber(std::string* out, float v, bool integral, Dialect dialect) {
  if (!std::isfinite(v)) {
    if (std::isnan(v)) {
      out->append(dialect == Dialect::kJson ? "NaN" : "nan");
    } else {
      if (v < 0) out->push_back('-');
      out->append(dialect == Dialect::kJson ? "Infinity" : "inf");
    }
    return;
  }
  char buf[32];
  std::to_chars_result r;
  if (integral && std::fabs(v) < 9.2e18f) {
    r = std::to_chars(buf, buf + sizeof(buf), static_cast<long long>(std::llround(v)));
  } else {
    r = std::to_chars(buf, buf + sizeof(buf), v);
  }
  out->append(buf, r.ptr);
}

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out->append(buf);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

// "name": — column names are plain identifiers, so the escaping loop is rarely needed.
void AppendJsonKey(std::string* out, std::string_view name) {
  bool plain = true;
  for (char c : name) plain &= c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20;
  if (plain) {
    out->push_back('"');
    out->append(name);
    out->append("\":", 2);
  } else {
    AppendJsonString(out, name);
    out->push_back(':');
  }
}

// {"score":0.4,"predicted_label":1}
void AppendJsonRow(const Predictions& p, std::size_t row, std::string* out) {
  out->push_back('{');
  for (std::size_t c = 0; c < p.columns.size(); ++c) {
    const PredictionColumn& col = p.columns[c];
    if (c > 0) out->push_back(',');
    AppendJsonKey(out, col.name);
    const float* v = col.values.data() + row * col.width;
    if (col.width == 1 && !col.always_vector) {
      AppendNumber(out, v[0], col.integral, Dialect::kJson);
      continue;
    }
    out->push_back('[');
    for (std::size_t i = 0; i < col.width; ++i) {
      if (i > 0) out->push_back(',');
      AppendNumber(out, v[i], col.integral, Dialect::kJson);
    }
    out->push_back(']');
  }
  out->push_back('}');
}

std::size_t ValuesPerRow(const Predictions& p) {
  std::size_t n = 0;
  for (const PredictionColumn& col : p.columns) n += col.width;
  return n;
}

std::string EncodeJson(const Predictions& p) {
  std::string out;
  out.reserve(32 + p.rows * (ValuesPerRow(p) * 14 + p.columns.size() * 20));
  out.push_back('{');
  AppendJsonKey(&out, p.envelope);
  out.push_back('[');
  for (std::size_t r = 0; r < p.rows; ++r) {
    if (r > 0) out.push_back(',');
    AppendJsonRow(p, r, &out);
  }
  out.append("]}");
  return out;
}

std::string EncodeJsonLines(const Predictions& p) {
  std::string out;
  out.reserve(p.rows * (ValuesPerRow(p) * 14 + p.columns.size() * 20));
  for (std::size_t r = 0; r < p.rows; ++r) {
    AppendJsonRow(p, r, &out);
    out.push_back('\n');
  }
  return out;
}

std::string EncodeCsv(const Predictions& p) {
  std::string out;
  out.reserve(p.rows * ValuesPerRow(p) * 14);
  for (std::size_t r = 0; r < p.rows; ++r) {
    if (r > 0) out.push_back(p.csv_one_line ? ',' : '\n');
    bool first = true;
    for (const PredictionColumn& col : p.columns) {
      const float* v = col.values.data() + r * col.width;
      for (std::size_t i = 0; i < col.width; ++i) {
        if (!first) out.push_back(',');
        first = false;
        AppendNumber(&out, v[i], col.integral, Dialect::kCsv);
      }
    }
  }
  // Row lines end with a newline; the one-line form is a bare list, as XGBoost answers.
  if (!p.csv_one_line && p.rows > 0) out.push_back('\n');
  return out;
}

// One Record per row: label[<column name>] = Value{float32_tensor{values: [...]}}.
std::string EncodeRecordIO(const Predictions& p) {
  constexpr std::uint32_t kRecordLabel = 2, kValueFloat32 = 2, kTensorValues = 1;
  std::string out;
  std::string payload;
  for (std::size_t r = 0; r < p.rows; ++r) {
    payload.clear();
    for (const PredictionColumn& col : p.columns) {
      std::size_t tensor = wire::DelimitedSize(kTensorValues, 4 * col.width);
      std::size_t value = wire::DelimitedSize(kValueFloat32, tensor);
      std::size_t entry = wire::DelimitedSize(1, col.name.size()) + wire::DelimitedSize(2, value);
      wire::PutTag(&payload, kRecordLabel, wire::kLengthDelimited);
      wire::PutVarint(&payload, entry);
      wire::PutTag(&payload, 1, wire::kLengthDelimited);
      wire::PutVarint(&payload, col.name.size());
      payload.append(col.name);
      wire::PutTag(&payload, 2, wire::kLengthDelimited);
      wire::PutVarint(&payload, value);
      wire::PutTag(&payload, kValueFloat32, wire::kLengthDelimited);
      wire::PutVarint(&payload, tensor);
      wire::PutTag(&payload, kTensorValues, wire::kLengthDelimited);
      wire::PutVarint(&payload, 4 * col.width);
      payload.append(reinterpret_cast<const char*>(col.values.data() + r * col.width),
                     4 * col.width);
    }
    AppendRecordIOFrame(payload, &out);
  }
  return out;
}

}  // namespace

Result<ResponseFormat> ParseAccept(std::string_view accept, ResponseFormat fallback) {
  if (Trim(accept).empty()) return fallback;
  std::string_view rest = accept;
  while (!rest.empty()) {
    std::size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    std::string_view mime = Trim(item.substr(0, item.find(';')));
    if (mime == "*/*") return fallback;
    if (EqualsIgnoreCase(mime, "application/json")) return ResponseFormat::kJson;
    if (EqualsIgnoreCase(mime, "application/jsonlines") ||
        EqualsIgnoreCase(mime, "application/x-jsonlines")) {
      return ResponseFormat::kJsonLines;
    }
    if (EqualsIgnoreCase(mime, "text/csv")) return ResponseFormat::kCsv;
    if (EqualsIgnoreCase(mime, "application/x-recordio-protobuf")) {
      return ResponseFormat::kRecordIOProtobuf;
    }
  }
  return InvalidArgument("Accept: unsupported type '" + std::string(accept) +
                         "' (supported: application/json, application/jsonlines, text/csv, "
                         "application/x-recordio-protobuf)");
}

std::string_view MimeType(ResponseFormat format) {
  switch (format) {
    case ResponseFormat::kJson: return "application/json";
    case ResponseFormat::kJsonLines: return "application/jsonlines";
    case ResponseFormat::kCsv: return "text/csv";
    case ResponseFormat::kRecordIOProtobuf: return "application/x-recordio-protobuf";
  }
  return "application/octet-stream";
}

std::string Encode(const Predictions& predictions, ResponseFormat format) {
  switch (format) {
    case ResponseFormat::kJson: return EncodeJson(predictions);
    case ResponseFormat::kJsonLines: return EncodeJsonLines(predictions);
    case ResponseFormat::kCsv: return EncodeCsv(predictions);
    case ResponseFormat::kRecordIOProtobuf: return EncodeRecordIO(predictions);
  }
  return {};
}

}  // namespace hearth::data
