// text/csv: label first (label_size=1) or features only (label_size=0), no header, every row
// the same number of columns. An empty field is a missing value (NaN), as XGBoost reads it.
//
// Large batches are parsed on every core: the lines in the window are found first (memchr is
// far faster than number parsing), then shared out in chunks (ParallelChunks), each row writing
// its own slot of the batch. Within a row the commas are found first and each cell is read on its
// own (csv_cells.h); a row that does not parse that way is parsed again cell after cell, which
// words the error.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "data/csv_cells.h"
#include "data/parallel_chunks.h"
#include "data/row_parser.h"
#include "data/text_number.h"

namespace hearth::data {
namespace {

// Below this many rows and bytes a parallel region costs more than it saves.
constexpr std::size_t kMinParallelRows = 256;
constexpr std::size_t kMinParallelChunk = std::size_t{256} << 10;
// Rows per claimed chunk: small enough that a helper preempted mid-chunk costs little.
constexpr std::size_t kRowsPerChunk = 32;
// After a row whose cells mostly missed the vector path (csv_cells.h), this many rows go cell
// after cell before it is tried again; in a shared batch, a chunk in this many tries it again.
constexpr std::size_t kInOrderRows = 64;
constexpr std::size_t kRetryEveryChunks = 16;
// Top the window up to at least this before cutting it among threads.
constexpr std::size_t kMinParallelBytes = std::size_t{1} << 20;

class CsvParser : public RowParser {
 public:
  explicit CsvParser(int label_size)
      : label_size_(static_cast<std::size_t>(label_size)),
        helpers_(ParallelChunks::DefaultHelpers()) {}

  void StartInput() override { line_ = 0; }

  void BeginBatch(Batch* out) override {
    out->sparse = false;
    out->cols = fields_ == 0 ? 0 : fields_ - label_size_;
  }

  Result<bool> Parse(ByteWindow& window, std::size_t max_rows, Batch* out) override {
    while (out->rows < max_rows) {
      if (fields_ != 0 && helpers_ > 0 && max_rows - out->rows >= 2) {
        ASSIGN_OR_RETURN(std::size_t parsed, ParseInParallel(window, max_rows, out));
        if (parsed > 0) continue;
      }
      // One row at a time until the width is known; then what the parallel path left.
      std::size_t limit = fields_ == 0 ? out->rows + 1 : max_rows;
      ASSIGN_OR_RETURN(bool exhausted, ForEachLine(
          window, limit, [out] { return out->rows; }, &line_,
          [&](const char* begin, const char* end) { return ParseRow(begin, end, window, out); }));
      if (exhausted) return true;
    }
    return false;
  }

 private:
  struct Line {
    const char* begin;
    const char* end;
    std::uint64_t number;
  };

  // What went wrong in a row, for the message.
  struct RowError {
    std::size_t column = 0;       // 0-based cell index
    const char* at = nullptr;     // the bad cell, or nullptr when the width is wrong
    std::size_t found = 0;        // cells found, when the width is wrong
  };

#if defined(__SSE4_1__)
  // The vector path: split the row at its commas, then read each cell alone (csv_cells.h).
  // Parses a row of exactly fields_ cells, features into row[0..cols) and the label into *label,
  // and counts in *declined the cells that were not plain decimals. False for a row of the wrong
  // width or with a cell that is not a number (the cells written so far are then garbage); the
  // caller parses it again cell after cell, which words the error. Bytes [floor, ceiling)
  // around the row may be read; `ends` holds fields_ + kCellEndsSlack entries.
  bool ParseSplitCells(const char* p, const char* end, const char* floor, const char* ceiling,
                       float* row, float* label, std::uint32_t* ends,
                       std::size_t* declined) const {
    // Cell ends are 32-bit offsets.
    if (static_cast<std::uint64_t>(end - p) > std::numeric_limits<std::uint32_t>::max()) {
      return false;
    }
    const std::size_t fields = fields_;
    if (FindCellEnds(p, end, ceiling, ends, fields) != fields) return false;
    const std::uint32_t* cell_end = ends;
    const char* cell = p;
    if (label_size_ == 1) {
      if (!ParseCell(cell, p + *cell_end, floor, end, label, declined)) return false;
      cell = p + *cell_end++ + 1;
    }
    for (float *feature = row, *stop = row + (fields - label_size_); feature != stop;
         ++feature, ++cell_end) {
      if (!ParseCell(cell, p + *cell_end, floor, end, feature, declined)) return false;
      cell = p + *cell_end + 1;
    }
    return true;
  }

  // Whether a row's cells mostly missed the vector path: for such rows (exponents, blanks, long
  // numbers) splitting first is only overhead.
  bool MostlyDeclined(std::size_t declined) const { return declined * 2 > fields_; }

  // Parses lines_[i..stop) on the vector path into their slots of `dense` and `labels` until a
  // row fails it or mostly misses it. Returns the first row left to the caller. Out of line, so
  // that the caller's loop over the rest keeps its registers.
  [[gnu::noinline]] std::size_t ParseSplitRows(std::size_t i, std::size_t stop,
                                               const char* floor, const char* ceiling,
                                               float* dense, float* labels) const {
    const std::size_t cols = fields_ - label_size_;
    std::vector<std::uint32_t> ends(fields_ + kCellEndsSlack);
    float ignored;
    for (; i < stop; ++i) {
      std::size_t declined = 0;
      if (!ParseSplitCells(lines_[i].begin, lines_[i].end, floor, ceiling, dense + i * cols,
                           labels ? labels + i : &ignored, ends.data(), &declined)) {
        return i;
      }
      const bool mostly_declined = MostlyDeclined(declined);
      // Written only on a change: every chunk reads it.
      if (mostly_declined != split_declined_.load(std::memory_order_relaxed)) {
        split_declined_.store(mostly_declined, std::memory_order_relaxed);
      }
      if (mostly_declined) return i + 1;
    }
    return stop;
  }
#endif

  // Parses a row of exactly fields_ cells cell after cell, stopping at the first problem, which
  // *error describes.
  bool ParseCellsInOrder(const char* p, const char* end, float* row, float* label,
                         RowError* error) const {
    std::size_t n = 0;
    while (true) {
      float v;
      const char* after = ParseCellText(p, end, &v);
      if (after == nullptr) {
        *error = {n, p, 0};
        return false;
      }
      if (n < fields_) {
        if (n < label_size_) {
          *label = v;
        } else {
          row[n - label_size_] = v;
        }
      }
      ++n;
      p = after;
      if (p == end) break;
      if (*p != ',') {
        *error = {n - 1, p, 0};
        return false;
      }
      ++p;
    }
    if (n != fields_) {
      *error = {0, nullptr, n};
      return false;
    }
    return true;
  }

  Status ParseRow(const char* p, const char* end, const ByteWindow& window, Batch* out) {
    if (fields_ == 0) return ParseFirstRow(p, end, window, out);
    std::size_t base = out->dense.size();
    out->dense.resize(base + fields_ - label_size_);
    float label = 0;
    bool parsed = false;
#if defined(__SSE4_1__)
    if (in_order_rows_ > 0) {
      --in_order_rows_;
    } else {
      std::size_t declined = 0;
      parsed = ParseSplitCells(p, end, window.begin(), window.end(), out->dense.data() + base,
                               &label, cell_ends_.data(), &declined);
      if (parsed && MostlyDeclined(declined)) in_order_rows_ = kInOrderRows;
    }
#endif
    RowError error;
    if (!parsed && !ParseCellsInOrder(p, end, out->dense.data() + base, &label, &error)) {
      out->dense.resize(base);
      return Describe(window, error, end);
    }
    if (label_size_ == 1) out->labels.push_back(label);
    ++out->rows;
    return Status::Ok();
  }

  // The first row fixes the column count.
  Status ParseFirstRow(const char* p, const char* end, const ByteWindow& window, Batch* out) {
    std::vector<float>& cells = out->dense;  // empty: this is the stream's first row
    cells.reserve(64);
    while (true) {
      float v;
      const char* after = ParseCellText(p, end, &v);
      if (after == nullptr) return Fail(out, Describe(window, {cells.size(), p, 0}, end));
      cells.push_back(v);
      p = after;
      if (p == end) break;
      if (*p != ',') return Fail(out, Describe(window, {cells.size() - 1, p, 0}, end));
      ++p;
    }
    if (cells.size() <= label_size_) {
      return Fail(out, InvalidArgument(Where(window) +
                                       ": a row needs a label and at least one feature, found " +
                                       std::to_string(cells.size()) + " column(s)"));
    }
    fields_ = cells.size();
    cell_ends_.resize(fields_ + kCellEndsSlack);
    out->cols = fields_ - label_size_;
    if (label_size_ == 1) {
      out->labels.push_back(cells[0]);
      cells.erase(cells.begin());
    }
    ++out->rows;
    return Status::Ok();
  }

  static Status Fail(Batch* out, Status status) {
    out->dense.clear();
    return status;
  }

  // Parses the window's complete lines, up to what the batch still takes, on every thread.
  // Returns the rows added; 0 (too little to share) tells the caller to go on alone.
  Result<std::size_t> ParseInParallel(ByteWindow& window, std::size_t max_rows, Batch* out) {
    if (window.size() < kMinParallelBytes && !window.at_eof()) {
      ASSIGN_OR_RETURN(bool more, window.Refill());
      (void)more;
    }
    const std::size_t wanted = max_rows - out->rows;
    lines_.clear();
    const char* p = window.begin();
    const char* end = window.end();
    std::uint64_t number = line_;
    while (lines_.size() < wanted) {
      const char* newline = static_cast<const char*>(std::memchr(p, '\n', end - p));
      if (newline == nullptr) break;  // an unfinished line, or the last one: left to the caller
      ++number;
      const char* content_end = newline > p && newline[-1] == '\r' ? newline - 1 : newline;
      const char* first = p;
      while (first < content_end && (*first == ' ' || *first == '\t')) ++first;
      if (first != content_end) lines_.push_back({p, content_end, number});
      p = newline + 1;
    }
    const std::size_t n = lines_.size();
    if (n < 2 || (n < kMinParallelRows && std::size_t(p - window.begin()) < kMinParallelChunk)) {
      return std::size_t{0};
    }

    const std::size_t cols = fields_ - label_size_;
    const std::size_t base = out->dense.size(), label_base = out->labels.size();
    out->dense.resize(base + n * cols);
    if (label_size_ == 1) out->labels.resize(label_base + n);
    float* dense = out->dense.data() + base;
    float* labels = label_size_ == 1 ? out->labels.data() + label_base : nullptr;
    std::atomic<std::size_t> first_bad{n};
    if (pool_ == nullptr) pool_ = std::make_unique<ParallelChunks>(helpers_);
    pool_->Run((n + kRowsPerChunk - 1) / kRowsPerChunk, [&](std::size_t chunk) {
      std::size_t stop = std::min(n, (chunk + 1) * kRowsPerChunk);
      std::size_t i = chunk * kRowsPerChunk;
#if defined(__SSE4_1__)
      // While rows keep missing the vector path, most chunks go cell after cell from the start.
      if (!split_declined_.load(std::memory_order_relaxed) || chunk % kRetryEveryChunks == 0) {
        i = ParseSplitRows(i, stop, window.begin(), window.end(), dense, labels);
      }
#endif
      for (; i < stop; ++i) {
        float ignored;
        RowError error;
        if (!ParseCellsInOrder(lines_[i].begin, lines_[i].end, dense + i * cols,
                               labels ? labels + i : &ignored, &error)) {
          std::size_t seen = first_bad.load(std::memory_order_relaxed);
          while (i < seen && !first_bad.compare_exchange_weak(seen, i)) {
          }
          return;
        }
      }
    });
    if (first_bad < n) {
      out->dense.resize(base);
      out->labels.resize(label_base);
      const Line& bad = lines_[first_bad];
      line_ = bad.number;
      RowError error;
      float scratch_label;
      std::vector<float> scratch(cols);
      ParseCellsInOrder(bad.begin, bad.end, scratch.data(), &scratch_label, &error);
      return Describe(window, error, bad.end);
    }
    out->rows += n;
    line_ = number;
    window.ConsumeTo(p);
    return n;
  }

  std::string Where(const ByteWindow& window) const {
    return window.name() + " line " + std::to_string(line_);
  }

  Status Describe(const ByteWindow& window, const RowError& error, const char* end) const {
    if (error.at == nullptr) {
      return InvalidArgument(Where(window) + ": expected " + std::to_string(fields_) +
                             " columns, found " + std::to_string(error.found) +
                             " (every row must have the same number of columns)");
    }
    // Show the offending cell, clipped.
    const char* cell_end = error.at;
    while (cell_end < end && *cell_end != ',' && cell_end - error.at < 40) ++cell_end;
    return InvalidArgument(Where(window) + ", column " + std::to_string(error.column + 1) +
                           ": cannot parse '" + std::string(error.at, cell_end) +
                           "' as a number");
  }

  const std::size_t label_size_;
  const int helpers_;
  std::unique_ptr<ParallelChunks> pool_;  // started on the first batch big enough to share
  std::size_t fields_ = 0;  // columns per row, label included; 0 until the first row
  std::uint64_t line_ = 0;
  std::vector<Line> lines_;
  std::vector<std::uint32_t> cell_ends_;  // ParseRow's FindCellEnds output
  std::size_t in_order_rows_ = 0;          // ParseRow's rows left before it tries the vector path
  // Whether the last row tried on the vector path mostly missed it (a hint shared by threads).
  mutable std::atomic<bool> split_declined_{false};
};

}  // namespace

std::unique_ptr<RowParser> NewCsvParser(int label_size) {
  return std::make_unique<CsvParser>(label_size);
}

}  // namespace hearth::data
