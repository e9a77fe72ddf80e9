#include "transform/data_processing.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include <fmt/format.h>

namespace hearth::transform {
namespace {

constexpr std::string_view kInputFilterField = "DataProcessing.InputFilter";
constexpr std::string_view kOutputFilterField = "DataProcessing.OutputFilter";
constexpr std::string_view kJoinSourceField = "DataProcessing.JoinSource";

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string_view StripTerminator(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// Lines of `body`: cut at '\n', a trailing '\r' dropped, nothing after the final '\n'.
std::vector<std::string_view> Lines(std::string_view body) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  while (start < body.size()) {
    std::size_t nl = body.find('\n', start);
    if (nl == std::string_view::npos) nl = body.size();
    lines.push_back(StripTerminator(body.substr(start, nl - start)));
    start = nl + 1;
  }
  return lines;
}

// JSON's number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
bool IsJsonNumber(std::string_view s) {
  std::size_t i = 0, n = s.size();
  auto digits = [&] {
    std::size_t start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < n && s[i] == '-') ++i;
  if (i < n && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == n;
}

// A CSV field as a JSON value: a number when its text is one, else a string (RFC 4180 quotes
// removed).
Json CsvFieldToJson(std::string_view field) {
  std::string_view trimmed = Trim(field);
  if (IsJsonNumber(trimmed)) {
    Json v = Json::parse(trimmed, nullptr, false);
    if (!v.is_discarded()) return v;
  }
  if (trimmed.size() >= 2 && trimmed.front() == '"' && trimmed.back() == '"') {
    std::string unquoted;
    std::string_view inner = trimmed.substr(1, trimmed.size() - 2);
    for (std::size_t i = 0; i < inner.size(); ++i) {
      unquoted.push_back(inner[i]);
      if (inner[i] == '"' && i + 1 < inner.size() && inner[i + 1] == '"') ++i;
    }
    return unquoted;
  }
  return std::string(field);
}

Json CsvRowToJson(std::string_view row) {
  Json array = Json::array();
  for (std::string_view field : SplitCsvRow(row)) array.push_back(CsvFieldToJson(field));
  return array;
}

Result<Json> ParseJson(std::string_view text, std::string_view what) {
  Json v = Json::parse(text, nullptr, false);
  if (v.is_discarded()) {
    return InvalidArgument(fmt::format("{} is not valid JSON: '{}'", what,
                                       text.substr(0, std::min<std::size_t>(text.size(), 80))));
  }
  return v;
}

std::string Dump(const Json& v) {
  return v.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Appends the selected fields joined by ','. Neighbouring fields of one row lie one comma apart
// in one buffer, so a run of them ($[1:]) is appended in one piece, commas included. (A joined
// row's fields come from two buffers: the check is on addresses, not positions.)
void AppendCsv(const std::vector<std::string_view>& fields,
               const std::vector<std::size_t>& positions, std::string* out) {
  auto adjacent = [&](std::size_t a, std::size_t b) {
    const char* end = fields[a].data() + fields[a].size();
    return b == a + 1 && fields[b].data() == end + 1 && *end == ',';
  };
  for (std::size_t i = 0; i < positions.size();) {
    std::size_t j = i;
    while (j + 1 < positions.size() && adjacent(positions[j], positions[j + 1])) ++j;
    if (i > 0) out->push_back(',');
    const std::string_view first = fields[positions[i]], last = fields[positions[j]];
    out->append(first.data(), last.data() + last.size() - first.data());
    i = j + 1;
  }
}

}  // namespace

std::vector<std::string_view> SplitCsvRow(std::string_view row) {
  std::vector<std::string_view> fields;
  SplitCsvRow(row, &fields);
  return fields;
}

void SplitCsvRow(std::string_view row, std::vector<std::string_view>* out) {
  std::vector<std::string_view>& fields = *out;
  fields.clear();
  if (std::memchr(row.data(), '"', row.size()) == nullptr) {
    // No quotes (the common case): jump from comma to comma.
    const char* p = row.data();
    const char* end = p + row.size();
    for (;;) {
      auto comma = static_cast<const char*>(std::memchr(p, ',', end - p));
      if (comma == nullptr) break;
      fields.emplace_back(p, comma - p);
      p = comma + 1;
    }
    fields.emplace_back(p, end - p);
    return;
  }
  std::size_t start = 0;
  bool quoted = false;
  for (std::size_t i = 0; i < row.size(); ++i) {
    char c = row[i];
    if (c == '"') {
      quoted = !quoted;  // "" inside quotes toggles twice
    } else if (c == ',' && !quoted) {
      fields.push_back(row.substr(start, i - start));
      start = i + 1;
    }
  }
  fields.push_back(row.substr(start));
}

RecordFormat RecordFormatOf(std::string_view content_type) {
  std::string_view base = content_type.substr(0, content_type.find(';'));
  base = Trim(base);
  std::string lower(base);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "text/csv") return RecordFormat::kCsv;
  if (lower == "application/json" || lower == "application/jsonlines" ||
      lower == "application/json-lines" || lower == "application/x-jsonlines" ||
      lower == "application/jsonl") {
    return RecordFormat::kJson;
  }
  return RecordFormat::kOther;
}

Result<JoinSource> ParseJoinSource(std::string_view value, std::string_view field) {
  if (value == "None") return JoinSource::kNone;
  if (value == "Input") return JoinSource::kInput;
  return InvalidArgument(fmt::format(
      "1 validation error detected: Value '{}' at '{}' failed to satisfy constraint: Member must "
      "satisfy enum value set: [Input, None]",
      value, field));
}

Result<DataProcessing> DataProcessing::Create(const DataProcessingOptions& o) {
  DataProcessing dp;
  ASSIGN_OR_RETURN(dp.input_filter_, JsonPath::Parse(o.input_filter, kInputFilterField));
  ASSIGN_OR_RETURN(dp.output_filter_, JsonPath::Parse(o.output_filter, kOutputFilterField));
  dp.join_ = o.join_source == JoinSource::kInput;
  dp.split_type_ = o.split_type;
  dp.input_format_ = RecordFormatOf(o.content_type);
  dp.accept_format_ = o.accept.empty() ? dp.input_format_ : RecordFormatOf(o.accept);

  if (dp.filters_input() || dp.join_) {
    std::string_view field = dp.filters_input() ? kInputFilterField : kJoinSourceField;
    if (dp.input_format_ == RecordFormat::kOther) {
      return InvalidArgument(fmt::format(
          "{} needs TransformInput.ContentType text/csv, application/json or "
          "application/jsonlines; got '{}'",
          field, o.content_type));
    }
    if (o.split_type == SplitType::kRecordIO || o.split_type == SplitType::kTFRecord) {
      return InvalidArgument(fmt::format(
          "{} needs TransformInput.SplitType Line or None; {} records are binary", field,
          SplitTypeName(o.split_type)));
    }
    if (dp.input_format_ == RecordFormat::kCsv && o.split_type != SplitType::kLine) {
      return InvalidArgument(fmt::format(
          "{} with text/csv input needs TransformInput.SplitType Line (one row per record)",
          field));
    }
  }
  if (dp.input_format_ == RecordFormat::kCsv && !dp.input_filter_.is_positional()) {
    return InvalidArgument(fmt::format(
        "{} '{}' selects by name, but text/csv rows are arrays: use index based paths such as "
        "$[0] or $[1:]",
        kInputFilterField, dp.input_filter_.text()));
  }
  if (dp.rewrites_output()) {
    std::string_view field = dp.join_ ? kJoinSourceField : kOutputFilterField;
    if (!o.accept.empty() && dp.accept_format_ == RecordFormat::kOther) {
      return InvalidArgument(fmt::format(
          "{} needs TransformOutput.Accept text/csv, application/json or application/jsonlines; "
          "got '{}'",
          field, o.accept));
    }
    bool csv_out = dp.accept_format_ == RecordFormat::kCsv &&
                   (!dp.join_ || dp.input_format_ == RecordFormat::kCsv);
    if (csv_out && !dp.output_filter_.is_positional()) {
      return InvalidArgument(fmt::format(
          "{} '{}' selects by name, but text/csv rows are arrays: use index based paths such as "
          "$[0,5:]",
          kOutputFilterField, dp.output_filter_.text()));
    }
  }
  return dp;
}

RecordFormat DataProcessing::OutputFormat(std::string_view response_content_type) const {
  RecordFormat f = RecordFormatOf(response_content_type);
  return f != RecordFormat::kOther ? f : accept_format_;
}

Status DataProcessing::FilterInput(std::string_view record, std::string_view what,
                                   std::string* out) const {
  out->clear();
  if (input_filter_.is_root()) {
    out->assign(record);
    return Status::Ok();
  }
  if (input_format_ == RecordFormat::kCsv) {
    std::vector<std::string_view> fields = SplitCsvRow(record);
    ASSIGN_OR_RETURN(std::vector<std::size_t> positions,
                     input_filter_.SelectPositions(fields.size(), what));
    AppendCsv(fields, positions, out);
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(Json value, ParseJson(record, what));
  ASSIGN_OR_RETURN(Json picked, input_filter_.Evaluate(value, what));
  *out = Dump(picked);
  return Status::Ok();
}

RecordFilter DataProcessing::InputFilterFor(std::string object_name) const {
  // A splitter calls its filter from one thread, so the filter may keep scratch state: the
  // fields of the current row, and the positions for the last row width seen (rows of one
  // object nearly always have the same width).
  struct Scratch {
    std::vector<std::string_view> fields;
    std::size_t width = SIZE_MAX;
    std::vector<std::size_t> positions;
  };
  auto scratch = std::make_shared<Scratch>();
  return [self = *this, name = std::move(object_name), scratch](
             std::uint64_t index, std::string_view record, std::string* out) -> Status {
    auto what = [&] { return fmt::format("record {} of object '{}'", index + 1, name); };
    if (self.input_format_ != RecordFormat::kCsv || self.input_filter_.is_root()) {
      return self.FilterInput(record, what(), out);
    }
    SplitCsvRow(record, &scratch->fields);
    if (scratch->fields.size() != scratch->width) {
      auto positions = self.input_filter_.SelectPositions(scratch->fields.size(), "");
      if (!positions.ok()) {
        return self.input_filter_.SelectPositions(scratch->fields.size(), what()).status();
      }
      scratch->positions = std::move(positions).value();
      scratch->width = scratch->fields.size();
    }
    out->clear();
    AppendCsv(scratch->fields, scratch->positions, out);
    return Status::Ok();
  };
}

Result<std::vector<std::string>> DataProcessing::SplitResponse(
    std::string_view body, std::string_view response_content_type, std::uint64_t record_count,
    std::string_view what) const {
  std::vector<std::string_view> lines = Lines(body);
  std::vector<std::string> outputs;
  if (lines.size() == record_count) {
    outputs.assign(lines.begin(), lines.end());
    return outputs;
  }
  if (record_count == 1 && lines.empty()) {  // an empty answer for one record
    outputs.emplace_back();
    return outputs;
  }
  std::size_t found = lines.size();
  if (OutputFormat(response_content_type) == RecordFormat::kJson) {
    if (record_count == 1) {
      outputs.emplace_back(Trim(body));
      return outputs;
    }
    Json v = Json::parse(body, nullptr, false);
    const Json* array = nullptr;
    if (v.is_array()) {
      array = &v;
    } else if (v.is_object() && v.size() == 1 && v.begin()->is_array()) {
      array = &*v.begin();
    }
    if (array != nullptr && array->size() == record_count) {
      for (const Json& element : *array) outputs.push_back(Dump(element));
      return outputs;
    }
    if (array != nullptr) found = array->size();
  }
  return InvalidArgument(fmt::format(
      "the response for {} holds {} outputs for {} records: to join or filter outputs "
      "(DataProcessing) with BatchStrategy MultiRecord, the model must answer one line per "
      "record (text/csv, application/jsonlines) or, for application/json, one array with an "
      "element per record",
      what, found, record_count));
}

Result<std::string> DataProcessing::JoinAndFilter(std::string_view input, std::string_view output,
                                                  RecordFormat output_format,
                                                  std::string_view response_content_type,
                                                  std::string_view what) const {
  if (output_format == RecordFormat::kOther) {
    return InvalidArgument(fmt::format(
        "{} needs a text/csv, application/json or application/jsonlines response to join or "
        "filter; the response for {} has content type '{}'",
        join_ ? kJoinSourceField : kOutputFilterField, what, response_content_type));
  }
  std::string written;
  if (output_format == RecordFormat::kCsv &&
      (!join_ || input_format_ == RecordFormat::kCsv)) {
    std::vector<std::string_view> fields;
    if (join_) fields = SplitCsvRow(input);
    for (std::string_view f : SplitCsvRow(output)) fields.push_back(f);
    ASSIGN_OR_RETURN(std::vector<std::size_t> positions,
                     output_filter_.SelectPositions(fields.size(), what));
    AppendCsv(fields, positions, &written);
    return written;
  }
  Json out_value;
  if (output_format == RecordFormat::kCsv) {
    out_value = CsvRowToJson(output);
  } else {
    ASSIGN_OR_RETURN(out_value, ParseJson(output, fmt::format("the model's output for {}", what)));
  }
  Json joined;
  if (join_) {
    Json in_value;
    if (input_format_ == RecordFormat::kCsv) {
      in_value = CsvRowToJson(input);
    } else {
      ASSIGN_OR_RETURN(in_value, ParseJson(input, what));
    }
    if (in_value.is_object()) {
      joined = std::move(in_value);
      joined["SageMakerOutput"] = std::move(out_value);
    } else {
      joined = Json::object();
      joined["SageMakerInput"] = std::move(in_value);
      joined["SageMakerOutput"] = std::move(out_value);
    }
  } else {
    joined = std::move(out_value);
  }
  ASSIGN_OR_RETURN(Json picked, output_filter_.Evaluate(joined, what));
  return Dump(picked);
}

Result<std::vector<std::string>> DataProcessing::ProcessResponse(
    const Payload& payload, std::string_view response_body,
    std::string_view response_content_type, std::string_view object_name) const {
  std::vector<std::string> written;
  if (!rewrites_output()) {
    written.emplace_back(response_body);
    return written;
  }
  const std::uint64_t count = payload.record_count;
  std::string what = count == 1 ? fmt::format("record {} of object '{}'",
                                              payload.first_record + 1, object_name)
                                : fmt::format("records {}-{} of object '{}'",
                                              payload.first_record + 1,
                                              payload.first_record + count, object_name);
  ASSIGN_OR_RETURN(std::vector<std::string> outputs,
                   SplitResponse(response_body, response_content_type, count, what));
  std::vector<std::string_view> inputs;
  if (join_) {
    if (split_type_ == SplitType::kLine) {
      inputs = Lines(payload.inputs());  // empty lines are records too
    } else {
      inputs.push_back(payload.inputs());
    }
    if (inputs.size() != count) {
      return Internal(fmt::format("{}: the payload holds {} input records, expected {}", what,
                                  inputs.size(), count));
    }
  }
  const RecordFormat output_format = OutputFormat(response_content_type);
  written.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    std::string record_what =
        fmt::format("record {} of object '{}'", payload.first_record + i + 1, object_name);
    ASSIGN_OR_RETURN(std::string record,
                     JoinAndFilter(join_ ? inputs[i] : std::string_view(), outputs[i],
                                   output_format, response_content_type, record_what));
    written.push_back(std::move(record));
  }
  return written;
}

}  // namespace hearth::transform
