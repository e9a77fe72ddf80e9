#include "data/record_reader.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <string>
#include <utility>
#include <variant>

#include "data/byte_window.h"
#include "data/row_parser.h"

namespace hearth::data {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Walks a list of inputs (files, or one memory body) as one stream of rows.
class StreamReader : public RecordReader {
 public:
  using Input = std::variant<std::filesystem::path, std::string_view>;

  StreamReader(std::vector<Input> inputs, std::unique_ptr<RowParser> parser)
      : inputs_(std::move(inputs)), parser_(std::move(parser)) {}

  Result<bool> Next(std::size_t max_rows, Batch* out) override {
    out->Clear();
    if (!failed_.ok()) return failed_;
    if (max_rows == 0) return InvalidArgument("RecordReader::Next: max_rows must be positive");
    parser_->BeginBatch(out);
    while (out->rows < max_rows) {
      if (window_ == nullptr) {
        if (next_input_ == inputs_.size()) break;
        Status opened = OpenNextInput();
        if (!opened.ok()) return Fail(out, std::move(opened));
        parser_->StartInput();
      }
      auto exhausted = parser_->Parse(*window_, max_rows, out);
      if (!exhausted.ok()) return Fail(out, exhausted.status());
      if (!*exhausted) break;  // the batch is full
      window_.reset();
    }
    return out->rows > 0;
  }

 private:
  Status OpenNextInput() {
    const Input& input = inputs_[next_input_++];
    if (const auto* path = std::get_if<std::filesystem::path>(&input)) {
      ASSIGN_OR_RETURN(window_, ByteWindow::OpenFile(*path));
    } else {
      window_ = ByteWindow::OverMemory(std::get<std::string_view>(input), "request body");
    }
    return Status::Ok();
  }

  // A reader that failed stays failed: its position in the stream is unknown.
  Status Fail(Batch* out, Status status) {
    out->Clear();
    failed_ = std::move(status);
    window_.reset();
    return failed_;
  }

  std::vector<Input> inputs_;
  std::size_t next_input_ = 0;
  std::unique_ptr<RowParser> parser_;
  std::unique_ptr<ByteWindow> window_;
  Status failed_;
};

// `body`: the input is one request body (see NewRecordIOParser).
std::unique_ptr<RowParser> NewParser(ContentType type, bool body = false) {
  switch (type.format) {
    case Format::kCsv: return NewCsvParser(type.label_size);
    case Format::kLibsvm: return NewLibsvmParser();
    case Format::kRecordIOProtobuf: return NewRecordIOParser(/*accept_bare_record=*/body);
    case Format::kJson: return NewJsonParser();
    case Format::kJsonLines: return NewJsonLinesParser();
  }
  return nullptr;
}

Status CheckType(ContentType type) {
  if (type.format == Format::kCsv && type.label_size != 0 && type.label_size != 1) {
    return InvalidArgument("text/csv label_size must be 0 or 1, got " +
                           std::to_string(type.label_size));
  }
  return Status::Ok();
}

}  // namespace

Result<ContentType> ParseContentType(std::string_view value, std::string_view field) {
  std::string_view rest = value;
  std::size_t semi = rest.find(';');
  std::string mime = Lower(Trim(rest.substr(0, semi)));
  rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);

  ContentType type;
  if (mime == "text/csv") {
    type.format = Format::kCsv;
  } else if (mime == "text/libsvm" || mime == "text/x-libsvm") {
    type.format = Format::kLibsvm;
  } else if (mime == "application/x-recordio-protobuf") {
    type.format = Format::kRecordIOProtobuf;
  } else if (mime == "application/json") {
    type.format = Format::kJson;
  } else if (mime == "application/jsonlines" || mime == "application/x-jsonlines" ||
             mime == "application/json-lines") {
    type.format = Format::kJsonLines;
  } else {
    return InvalidArgument(std::string(field) + ": unsupported content type '" +
                           std::string(value) +
                           "' (expected text/csv, text/libsvm, application/x-recordio-protobuf, "
                           "application/json or application/jsonlines)");
  }

  // Parameters: label_size matters (CSV); others (charset=...) are ignored.
  while (!rest.empty()) {
    semi = rest.find(';');
    std::string_view param = Trim(rest.substr(0, semi));
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    if (param.empty()) continue;
    std::size_t eq = param.find('=');
    std::string key = Lower(Trim(param.substr(0, eq)));
    std::string_view val = eq == std::string_view::npos ? std::string_view()
                                                        : Trim(param.substr(eq + 1));
    if (key != "label_size") continue;
    if (type.format != Format::kCsv) {
      return InvalidArgument(std::string(field) + ": label_size applies to text/csv only, got '" +
                             std::string(value) + "'");
    }
    if (val == "0") {
      type.label_size = 0;
    } else if (val == "1") {
      type.label_size = 1;
    } else {
      return InvalidArgument(std::string(field) + ": label_size must be 0 or 1, got '" +
                             std::string(val) + "'");
    }
  }
  return type;
}

Result<std::unique_ptr<RecordReader>> OpenFileReader(std::vector<std::filesystem::path> files,
                                                     ContentType type) {
  RETURN_IF_ERROR(CheckType(type));
  std::vector<StreamReader::Input> inputs(files.begin(), files.end());
  return std::unique_ptr<RecordReader>(new StreamReader(std::move(inputs), NewParser(type)));
}

Result<std::unique_ptr<RecordReader>> OpenMemoryReader(std::string_view bytes, ContentType type) {
  RETURN_IF_ERROR(CheckType(type));
  std::vector<StreamReader::Input> inputs{bytes};
  return std::unique_ptr<RecordReader>(
      new StreamReader(std::move(inputs), NewParser(type, /*body=*/true)));
}

Result<Batch> ReadAll(RecordReader& reader) {
  constexpr std::size_t kAll = std::numeric_limits<std::size_t>::max();
  Batch all;
  ASSIGN_OR_RETURN(bool more, reader.Next(kAll, &all));
  if (!more) return all;
  // One call reads everything; the loop only guards against a reader that returns less.
  Batch next;
  while (true) {
    ASSIGN_OR_RETURN(more, reader.Next(kAll, &next));
    if (!more) break;
    all.Append(next);
  }
  return all;
}

}  // namespace hearth::data
