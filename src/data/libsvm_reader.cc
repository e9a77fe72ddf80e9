// text/libsvm: `label idx:val idx:val ...` per line, whitespace-separated, indices kept as
// written (0- or 1-based, as XGBoost does). `#` starts a comment. Columns = largest index + 1
// over everything read so far.

#include <charconv>
#include <string>

#include "data/row_parser.h"
#include "data/text_number.h"

namespace hearth::data {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

class LibsvmParser : public RowParser {
 public:
  void StartInput() override { line_ = 0; }

  void BeginBatch(Batch* out) override {
    out->sparse = true;
    out->cols = cols_;
    out->row_offsets.assign(1, 0);
  }

  Result<bool> Parse(ByteWindow& window, std::size_t max_rows, Batch* out) override {
    return ForEachLine(
        window, max_rows, [out] { return out->rows; }, &line_,
        [&](const char* begin, const char* end) { return ParseRow(begin, end, window, out); });
  }

 private:
  Status ParseRow(const char* p, const char* end, const ByteWindow& window, Batch* out) {
    while (p < end && IsBlank(*p)) ++p;
    if (*p == '#') return Status::Ok();  // a comment line
    float label;
    const char* after = ParseFloat(p, end, &label);
    if (after == nullptr || (after < end && !IsBlank(*after) && *after != '#')) {
      if (after != nullptr && *after == ':') {
        return InvalidArgument(Where(window) + ": 'label:weight' is not supported");
      }
      return Bad(window, "cannot parse the label", p, end);
    }
    p = after;
    std::size_t row_start = out->values.size();
    while (true) {
      while (p < end && IsBlank(*p)) ++p;
      if (p == end || *p == '#') break;
      std::uint64_t index = 0;
      auto [colon, ec] = std::from_chars(p, end, index);
      if (ec != std::errc() || colon == end || *colon != ':' || index > 0xFFFFFFFEull) {
        out->indices.resize(row_start);
        out->values.resize(row_start);
        return Bad(window, "expected index:value", p, end);
      }
      float value;
      after = ParseFloat(colon + 1, end, &value);
      if (after == nullptr || (after < end && !IsBlank(*after) && *after != '#')) {
        out->indices.resize(row_start);
        out->values.resize(row_start);
        return Bad(window, "expected index:value", p, end);
      }
      out->indices.push_back(static_cast<std::uint32_t>(index));
      out->values.push_back(value);
      if (index + 1 > cols_) cols_ = index + 1;
      p = after;
    }
    out->labels.push_back(label);
    out->row_offsets.push_back(out->values.size());
    out->cols = cols_;
    ++out->rows;
    return Status::Ok();
  }

  std::string Where(const ByteWindow& window) const {
    return window.name() + " line " + std::to_string(line_);
  }

  Status Bad(const ByteWindow& window, const char* what, const char* p, const char* end) const {
    const char* token_end = p;
    while (token_end < end && !IsBlank(*token_end) && token_end - p < 40) ++token_end;
    return InvalidArgument(Where(window) + ": " + what + ", found '" + std::string(p, token_end) +
                           "'");
  }

  std::size_t cols_ = 0;
  std::uint64_t line_ = 0;
};

}  // namespace

std::unique_ptr<RowParser> NewLibsvmParser() { return std::make_unique<LibsvmParser>(); }

}  // namespace hearth::data
