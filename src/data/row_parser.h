// RowParser: the per-format half of a RecordReader. The reader (record_reader.cc) walks the
// inputs in order and hands each one's ByteWindow to the parser, which turns bytes into rows.
// A parser keeps what must agree across inputs (column count, label presence, dense vs
// sparse); line and record numbers restart with each input.
//
// Thread safety: one parser per reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "common/status.h"
#include "data/batch.h"
#include "data/byte_window.h"
#include "data/record_reader.h"

namespace hearth::data {

class RowParser {
 public:
  virtual ~RowParser() = default;

  // A new input begins.
  virtual void StartInput() {}
  // `out` was just cleared for a new batch: set `sparse`, `cols` (and row_offsets = {0} when
  // sparse) from what the stream has established so far.
  virtual void BeginBatch(Batch* out) = 0;
  // Appends rows parsed from `window` to `out` until `out->rows` reaches `max_rows` (returns
  // false) or the input ends (returns true). Rows of a record that did not fit are kept for
  // the next batch.
  virtual Result<bool> Parse(ByteWindow& window, std::size_t max_rows, Batch* out) = 0;
};

std::unique_ptr<RowParser> NewCsvParser(int label_size);
std::unique_ptr<RowParser> NewLibsvmParser();
// `accept_bare_record`: an input that does not start with RecordIO's magic is one Record
// message without framing — what batch transform sends for SplitType RecordIO with BatchStrategy
// SingleRecord ("padding is removed"). Only for request bodies: a file is always framed.
std::unique_ptr<RowParser> NewRecordIOParser(bool accept_bare_record = false);
std::unique_ptr<RowParser> NewJsonParser();
std::unique_ptr<RowParser> NewJsonLinesParser();

// Feeds `on_line(begin, end)` — Status-returning — each non-blank line of `window` (without
// its '\n' or a trailing '\r'; the last line may lack a '\n') until `rows()` reaches
// `max_rows` or the input ends. `*line_number` counts every line, blank ones included.
// Returns true when the input is exhausted.
template <typename RowCount, typename OnLine>
Result<bool> ForEachLine(ByteWindow& window, std::size_t max_rows, RowCount&& rows,
                         std::uint64_t* line_number, OnLine&& on_line) {
  while (rows() < max_rows) {
    const char* p = window.begin();
    const char* end = window.end();
    const char* newline = static_cast<const char*>(std::memchr(p, '\n', end - p));
    if (newline == nullptr) {
      if (!window.at_eof()) {
        ASSIGN_OR_RETURN(bool more, window.Refill());
        (void)more;
        continue;
      }
      if (p == end) return true;
      newline = end;
    }
    ++*line_number;
    const char* content_end = newline;
    if (content_end > p && content_end[-1] == '\r') --content_end;
    const char* first = p;
    while (first < content_end && (*first == ' ' || *first == '\t')) ++first;
    if (first != content_end) RETURN_IF_ERROR(on_line(p, content_end));
    window.ConsumeTo(newline == end ? end : newline + 1);
  }
  return false;
}

// Appends rows [begin, end) of `src` to `out`. An empty `out` takes `src`'s layout; a dense
// `out` becomes sparse when `src` is; dense rows join a sparse `out` as explicit values.
void AppendRows(const Batch& src, std::size_t begin, std::size_t end, Batch* out);
// Turns a dense batch into CSR holding every value (explicit zeros included).
void ConvertToSparse(Batch* batch);

}  // namespace hearth::data
