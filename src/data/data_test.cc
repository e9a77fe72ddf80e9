#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "data/batch.h"
#include "data/byte_window.h"
#include "data/parallel_chunks.h"
#include "data/predictions.h"
#include "data/record.pb.h"
#include "data/record_reader.h"
#include "data/recordio_protobuf.h"
#include "data/row_parser.h"
#include "data/text_number.h"

namespace hearth::data {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr ContentType kCsvLabelled{Format::kCsv, 1};
constexpr ContentType kCsvNoLabel{Format::kCsv, 0};
constexpr ContentType kLibsvm{Format::kLibsvm, 1};
constexpr ContentType kRecordIO{Format::kRecordIOProtobuf, 1};
constexpr ContentType kJson{Format::kJson, 0};
constexpr ContentType kJsonLines{Format::kJsonLines, 0};

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "hearth-data-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

void WriteFile(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void WriteGzip(const fs::path& path, std::string_view bytes) {
  gzFile gz = gzopen(path.c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(gz);
}

Result<Batch> ReadMemory(std::string_view bytes, ContentType type) {
  ASSIGN_OR_RETURN(auto reader, OpenMemoryReader(bytes, type));
  return ReadAll(*reader);
}

Result<Batch> ReadFiles(std::vector<fs::path> files, ContentType type) {
  ASSIGN_OR_RETURN(auto reader, OpenFileReader(std::move(files), type));
  return ReadAll(*reader);
}

std::string ErrorOf(const Result<Batch>& result) {
  EXPECT_FALSE(result.ok());
  return result.status().message();
}

// ---------------------------------------------------------------------------------------------
// CSV

TEST(CsvReaderTest, FirstColumnIsTheLabel) {
  auto batch = ReadMemory("1,2,3\n0,4.5,-6e2\n", kCsvLabelled);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_EQ(batch->rows, 2u);
  EXPECT_EQ(batch->cols, 2u);
  EXPECT_FALSE(batch->sparse);
  EXPECT_THAT(batch->labels, ElementsAre(1.0f, 0.0f));
  EXPECT_THAT(batch->dense, ElementsAre(2.0f, 3.0f, 4.5f, -600.0f));
}

TEST(CsvReaderTest, LabelSizeZeroKeepsEveryColumnAsAFeature) {
  auto batch = ReadMemory("1,2,3\n4,5,6\n", kCsvNoLabel);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_EQ(batch->cols, 3u);
  EXPECT_FALSE(batch->has_labels());
  EXPECT_THAT(batch->dense, ElementsAre(1, 2, 3, 4, 5, 6));
}

TEST(CsvReaderTest, RaggedRowNamesFileAndLine) {
  TempDir dir;
  WriteFile(dir / "train.csv", "1,2,3\n\n4,5\n");
  std::string error = ErrorOf(ReadFiles({dir / "train.csv"}, kCsvLabelled));
  EXPECT_THAT(error, HasSubstr("train.csv line 3"));
  EXPECT_THAT(error, HasSubstr("expected 3 columns, found 2"));
}

TEST(CsvReaderTest, HandlesCrlfBlankLinesAndAMissingFinalNewline) {
  auto batch = ReadMemory("1,2\r\n\r\n  \n3,4", kCsvLabelled);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_THAT(batch->labels, ElementsAre(1, 3));
  EXPECT_THAT(batch->dense, ElementsAre(2, 4));
}

TEST(CsvReaderTest, BadNumberNamesLineColumnAndText) {
  std::string error = ErrorOf(ReadMemory("1,2\n1,abc\n", kCsvLabelled));
  EXPECT_THAT(error, HasSubstr("request body line 2, column 2"));
  EXPECT_THAT(error, HasSubstr("'abc'"));
  EXPECT_THAT(ErrorOf(ReadMemory("1,2.5x\n", kCsvLabelled)), HasSubstr("column 2"));
  EXPECT_THAT(ErrorOf(ReadMemory("1,\"2\"\n", kCsvLabelled)), HasSubstr("column 2"));
}

TEST(CsvReaderTest, EmptyFieldIsAMissingValue) {
  auto batch = ReadMemory("1,,3\n", kCsvLabelled);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->cols, 2u);
  EXPECT_TRUE(std::isnan(batch->dense[0]));
  EXPECT_EQ(batch->dense[1], 3.0f);
}

TEST(CsvReaderTest, AcceptsPlusSignSpacesAndSaturatesOutOfRange) {
  auto batch = ReadMemory("0, +1.5 ,1e50,-1e50,1e-50,0.1\n", kCsvLabelled);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->cols, 5u);
  EXPECT_EQ(batch->dense[0], 1.5f);
  EXPECT_EQ(batch->dense[1], std::numeric_limits<float>::infinity());
  EXPECT_EQ(batch->dense[2], -std::numeric_limits<float>::infinity());
  EXPECT_EQ(batch->dense[3], 0.0f);
  EXPECT_EQ(batch->dense[4], 0.1f);  // correctly rounded
}

TEST(CsvReaderTest, LabelOnlyRowIsRejected) {
  EXPECT_THAT(ErrorOf(ReadMemory("1\n2\n", kCsvLabelled)), HasSubstr("at least one feature"));
}

TEST(CsvReaderTest, ReadsGzipFiles) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 5000; ++i) text += std::to_string(i) + "," + std::to_string(i * 2) + "\n";
  WriteGzip(dir / "part.csv.gz", text);
  auto batch = ReadFiles({dir / "part.csv.gz"}, kCsvLabelled);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->rows, 5000u);
  EXPECT_EQ(batch->labels[4999], 4999.0f);
  EXPECT_EQ(batch->dense[4999], 9998.0f);
}

TEST(CsvReaderTest, CorruptGzipIsAnError) {
  TempDir dir;
  std::string text(100000, '1');
  for (std::size_t i = 1; i < text.size(); i += 2) text[i] = i % 40 == 1 ? '\n' : ',';
  WriteGzip(dir / "part.csv.gz", text);
  std::string bytes;
  {
    std::ifstream in(dir / "part.csv.gz", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  WriteFile(dir / "cut.csv.gz", bytes.substr(0, bytes.size() / 2));
  EXPECT_THAT(ErrorOf(ReadFiles({dir / "cut.csv.gz"}, kCsvLabelled)), HasSubstr("gzip"));
}

TEST(CsvReaderTest, ReadsFromAFifo) {
  TempDir dir;
  fs::path fifo = dir / "train_0";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  constexpr int kRows = 200000;
  std::thread writer([&] {
    int fd = ::open(fifo.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    std::string chunk;
    for (int i = 0; i < kRows; ++i) {
      chunk += std::to_string(i % 2) + "," + std::to_string(i) + ",0.5\n";
      if (chunk.size() > 5000 || i == kRows - 1) {  // odd-sized writes split lines anywhere
        ASSERT_EQ(::write(fd, chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size()));
        chunk.clear();
      }
    }
    ::close(fd);
  });
  auto reader = OpenFileReader({fifo}, kCsvLabelled);
  ASSERT_TRUE(reader.ok());
  Batch batch;
  std::size_t rows = 0;
  bool ordered = true;
  while (true) {
    auto more = (*reader)->Next(1000, &batch);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    for (std::size_t r = 0; r < batch.rows; ++r) {
      ordered &= batch.dense[r * 2] == static_cast<float>(rows + r);
    }
    rows += batch.rows;
  }
  writer.join();
  EXPECT_EQ(rows, static_cast<std::size_t>(kRows));
  EXPECT_TRUE(ordered);
}

TEST(CsvReaderTest, MiniBatchesSpanFileBoundaries) {
  TempDir dir;
  WriteFile(dir / "a.csv", "0,1\n1,2\n0,3");  // no final newline: must not merge with b's first
  WriteFile(dir / "b.csv", "1,4\n0,5\n1,6\n0,7\n");
  auto reader = OpenFileReader({dir / "a.csv", dir / "b.csv"}, kCsvLabelled);
  ASSERT_TRUE(reader.ok());
  Batch batch;
  auto more = (*reader)->Next(5, &batch);
  ASSERT_TRUE(more.ok() && *more);
  EXPECT_THAT(batch.dense, ElementsAre(1, 2, 3, 4, 5));
  EXPECT_THAT(batch.labels, ElementsAre(0, 1, 0, 1, 0));
  more = (*reader)->Next(5, &batch);
  ASSERT_TRUE(more.ok() && *more);
  EXPECT_THAT(batch.dense, ElementsAre(6, 7));
  more = (*reader)->Next(5, &batch);
  ASSERT_TRUE(more.ok());
  EXPECT_FALSE(*more);
  EXPECT_EQ(batch.rows, 0u);
}

TEST(CsvReaderTest, ColumnCountMustAgreeAcrossFiles) {
  TempDir dir;
  WriteFile(dir / "a.csv", "0,1,2\n");
  WriteFile(dir / "b.csv", "0,1\n");
  EXPECT_THAT(ErrorOf(ReadFiles({dir / "a.csv", dir / "b.csv"}, kCsvLabelled)),
              HasSubstr("b.csv line 1: expected 3 columns, found 2"));
}

TEST(CsvReaderTest, MissingFileIsNotFound) {
  auto batch = ReadFiles({"/nonexistent/hearth/x.csv"}, kCsvLabelled);
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(batch.status().code(), StatusCode::kNotFound);
}

TEST(CsvReaderTest, LinesLongerThanTheBufferGrowIt) {
  TempDir dir;
  std::string line = "7";
  for (int c = 0; c < 3000; ++c) line += "," + std::to_string(c);
  WriteFile(dir / "wide.csv", line + "\n" + line + "\n");
  auto window = ByteWindow::OpenFile(dir / "wide.csv", 4096);
  ASSERT_TRUE(window.ok());
  auto parser = NewCsvParser(1);
  Batch batch;
  parser->StartInput();
  parser->BeginBatch(&batch);
  auto exhausted = parser->Parse(**window, 10, &batch);
  ASSERT_TRUE(exhausted.ok()) << exhausted.status().ToString();
  EXPECT_TRUE(*exhausted);
  ASSERT_EQ(batch.rows, 2u);
  EXPECT_EQ(batch.cols, 3000u);
  EXPECT_EQ(batch.dense[2999], 2999.0f);
  EXPECT_EQ(batch.dense[3000 + 2999], 2999.0f);
}

// Enough rows for the batch to be shared among threads: order, blank lines and the line number
// of a bad row must come out as in a sequential parse.
TEST(CsvReaderTest, BigBatchesKeepOrderAndLineNumbers) {
  std::string text;
  std::size_t rows = 0;
  for (int line = 1; line <= 20000; ++line) {
    if (line % 7 == 0) {
      text += "\n";
      continue;
    }
    text += std::to_string(line % 2) + "," + std::to_string(line) + "," + std::to_string(-line) +
            "\r\n";
    ++rows;
  }
  auto batch = ReadMemory(text, kCsvLabelled);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->rows, rows);
  std::size_t r = 0;
  bool ordered = true;
  for (int line = 1; line <= 20000; ++line) {
    if (line % 7 == 0) continue;
    ordered &= batch->dense[2 * r] == float(line) && batch->dense[2 * r + 1] == float(-line) &&
               batch->labels[r] == float(line % 2);
    ++r;
  }
  EXPECT_TRUE(ordered);

  std::string bad = text;
  std::size_t at = 0;
  for (int line = 1; line < 15001; ++line) at = bad.find('\n', at) + 1;
  bad.insert(at, "1,2,oops\n");  // becomes line 15001
  EXPECT_THAT(ErrorOf(ReadMemory(bad, kCsvLabelled)),
              HasSubstr("request body line 15001, column 3: cannot parse 'oops'"));
  std::string ragged = text;
  ragged.insert(at, "1,2\n");
  EXPECT_THAT(ErrorOf(ReadMemory(ragged, kCsvLabelled)),
              HasSubstr("request body line 15001: expected 3 columns, found 2"));
}

TEST(ParallelChunksTest, RunsEveryChunkExactlyOnce) {
  ParallelChunks pool(3);
  for (int round = 0; round < 2000; ++round) {
    std::size_t n = round % 37;
    std::vector<std::atomic<int>> calls(n);
    pool.Run(n, [&](std::size_t i) { calls[i].fetch_add(1); });
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(calls[i].load(), 1) << round << " " << i;
  }
}

TEST(CsvReaderTest, AFailedReaderKeepsFailing) {
  auto reader = OpenMemoryReader("1,2\n1\n", kCsvLabelled);
  ASSERT_TRUE(reader.ok());
  Batch batch;
  EXPECT_FALSE((*reader)->Next(10, &batch).ok());
  EXPECT_EQ(batch.rows, 0u);
  EXPECT_FALSE((*reader)->Next(10, &batch).ok());
}

// What the reader must make of one cell: blanks around it ignored, empty is NaN, otherwise what
// std::from_chars reads (a leading '+' allowed), saturating when out of range.
float ExpectedCell(std::string cell) {
  while (!cell.empty() && (cell.back() == ' ' || cell.back() == '\t')) cell.pop_back();
  std::size_t first = cell.find_first_not_of(" \t");
  cell = first == std::string::npos ? "" : cell.substr(first);
  if (cell.empty()) return std::numeric_limits<float>::quiet_NaN();
  if (cell[0] == '+') cell.erase(0, 1);
  float v = 0;
  auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v);
  EXPECT_EQ(end, cell.data() + cell.size()) << cell;
  if (ec == std::errc::result_out_of_range) return std::strtof(cell.c_str(), nullptr);
  EXPECT_EQ(ec, std::errc()) << cell;
  return v;
}

bool SameFloat(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof(float)) == 0;
}

// Cells of every shape the reader meets: the plain decimals its vector path reads (1 to 16
// characters, with or without '-', '.' first, last or absent), and the forms it leaves to the
// exact parser (blanks, '+', exponents, nan/inf, long digit strings, float rounding midpoints).
std::string RandomCell(std::mt19937_64& rng) {
  static const char* const kSpecial[] = {
      "", " ", "\t", " 1.5", "1.5 ", "+2", "-0", "0", "-0.0", "0.000", ".5", "5.", "-.5", "-5.",
      "nan", "inf", "-inf", "1e5", "1E-5", "-2.5e+3", "00000001.5000000", "0000000000000000",
      "-000000000000000.5", "123456789012345678", "1234567.8", "12345678", "9999999",
      "99999999", "0.00000001", "1234567890123456", "12345678901234567", "0.000000000000001",
      "-1.234567890123456", "16777216", "16777217", "16777219", "33554435", "-33554433",
      "9007199254740993", "0.1", "0.2", "0.3", "3.4028235e38", "1e-45", "1e50", "-1e-50",
      "1677721.7", "8388608.5", "0.5", "2.5", "-9.999999", "999999.9", "0.0000001"};
  char buf[64];
  switch (rng() % 8) {
    case 0:
      return kSpecial[rng() % std::size(kSpecial)];
    case 1: {  // what numpy's "%.6g" writes
      float v = std::uniform_real_distribution<float>(-10, 10)(rng);
      return std::string(buf, std::snprintf(buf, sizeof(buf), "%.6g", v));
    }
    case 2: {  // any precision, magnitudes 1e-8 .. 1e8
      double v = std::pow(10.0, std::uniform_real_distribution<double>(-8, 8)(rng));
      if (rng() % 2) v = -v;
      int precision = 1 + static_cast<int>(rng() % 10);
      return std::string(buf, std::snprintf(buf, sizeof(buf), "%.*g", precision, v));
    }
    case 3: {
      double v = std::uniform_real_distribution<double>(-1e4, 1e4)(rng);
      int decimals = static_cast<int>(rng() % 12);
      return std::string(buf, std::snprintf(buf, sizeof(buf), "%.*f", decimals, v));
    }
    case 4: {
      long long v = static_cast<long long>(rng() % 2000000000) - 1000000000;
      return std::to_string(v >> (rng() % 30));
    }
    case 5: {  // next to a float rounding midpoint, in 7 to 17 significant digits
      float f = std::ldexp(std::uniform_real_distribution<float>(0.5f, 1)(rng),
                           static_cast<int>(rng() % 40) - 16);
      double midpoint = (double(f) + double(std::nextafter(f, 1e30f))) / 2;
      int precision = 7 + static_cast<int>(rng() % 11);
      return std::string(buf, std::snprintf(buf, sizeof(buf), "%.*g", precision, midpoint));
    }
    case 6: {  // short digit strings with the '.' anywhere
      std::string digits;
      int n = 1 + static_cast<int>(rng() % 16);
      for (int i = 0; i < n; ++i) digits += static_cast<char>('0' + rng() % 10);
      std::size_t dot = rng() % (digits.size() + 2);
      if (dot <= digits.size()) digits.insert(dot, ".");
      return rng() % 2 ? "-" + digits : digits;
    }
    default: {
      float v = std::uniform_real_distribution<float>(-1, 1)(rng);
      return std::string(buf, std::snprintf(buf, sizeof(buf), "%.7g", v));
    }
  }
}

// Rows of random cells with "\n" or "\r\n" endings, blank lines, and no final newline.
struct RandomCsv {
  std::string text;
  std::vector<std::vector<std::string>> rows;
};

// At least two columns, so that no row is a blank line.
RandomCsv MakeRandomCsv(std::mt19937_64& rng, std::size_t rows, std::size_t cols) {
  RandomCsv csv;
  for (std::size_t r = 0; r < rows; ++r) {
    std::vector<std::string> cells;
    for (std::size_t c = 0; c < cols; ++c) {
      cells.push_back(RandomCell(rng));
      if (c > 0) csv.text += ',';
      csv.text += cells.back();
    }
    csv.rows.push_back(std::move(cells));
    if (r + 1 < rows) csv.text += rng() % 3 == 0 ? "\r\n" : "\n";
    if (rng() % 50 == 0) csv.text += "\n";
  }
  return csv;
}

// Compares every cell of `batch` (label first, when it has labels) with ExpectedCell.
void ExpectCells(const RandomCsv& csv, const Batch& batch, std::size_t first_row = 0) {
  std::size_t mismatches = 0;
  for (std::size_t r = 0; r < batch.rows; ++r) {
    const std::vector<std::string>& cells = csv.rows[first_row + r];
    std::size_t label_size = batch.has_labels() ? 1 : 0;
    ASSERT_EQ(cells.size(), batch.cols + label_size);
    for (std::size_t c = 0; c < cells.size(); ++c) {
      float got = c < label_size ? batch.labels[r] : batch.row(r)[c - label_size];
      float want = ExpectedCell(cells[c]);
      if (!SameFloat(got, want)) {
        ADD_FAILURE() << "row " << first_row + r << " cell " << c << " '" << cells[c] << "': got "
                      << got << ", want " << want;
        if (++mismatches > 10) return;
      }
    }
  }
}

// Splitting rows at their commas and reading each cell alone (csv_cells.h) must give exactly
// what a cell-by-cell exact parse gives, in big batches (shared among threads), row by row, and
// across the refills of a file's read buffer.
TEST(CsvReaderTest, EveryCellShapeReadsAsFromChars) {
  std::mt19937_64 rng(11);
  for (std::size_t cols : {std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{37}}) {
    RandomCsv csv = MakeRandomCsv(rng, 3000, cols + 1);
    SCOPED_TRACE(cols);
    auto all = ReadMemory(csv.text, kCsvLabelled);
    ASSERT_TRUE(all.ok()) << all.status().ToString();
    ASSERT_EQ(all->rows, csv.rows.size());
    ExpectCells(csv, *all);

    auto reader = OpenMemoryReader(csv.text, kCsvLabelled);
    ASSERT_TRUE(reader.ok());
    Batch one;
    for (std::size_t r = 0; r < 300; ++r) {
      ASSERT_TRUE(*(*reader)->Next(1, &one));
      ExpectCells(csv, one, r);
    }

    auto no_label = ReadMemory(csv.text, kCsvNoLabel);
    ASSERT_TRUE(no_label.ok()) << no_label.status().ToString();
    ExpectCells(csv, *no_label);
  }

  // A file bigger than the read buffer: rows straddle refills and the parallel cut.
  TempDir dir;
  RandomCsv big = MakeRandomCsv(rng, 40000, 20);
  WriteFile(dir / "big.csv", big.text);
  auto reader = OpenFileReader({dir / "big.csv"}, kCsvLabelled);
  ASSERT_TRUE(reader.ok());
  Batch batch;
  std::size_t done = 0;
  while (true) {
    auto more = (*reader)->Next(777, &batch);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    ExpectCells(big, batch, done);
    done += batch.rows;
  }
  EXPECT_EQ(done, big.rows.size());
}

// Rows that mostly miss the vector path (exponents, blanks) make the reader parse the next rows
// cell after cell for a while; stretches of each kind, in either order, read the same.
TEST(CsvReaderTest, StretchesOfDeclinedCellsReadTheSame) {
  std::mt19937_64 rng(5);
  const char* formats[] = {"%.8e", "%.6g", " %.6g", "%.6g", "%.17g", "%.4f"};
  RandomCsv csv;
  char buf[64];
  for (const char* format : formats) {
    for (int r = 0; r < 700; ++r) {
      std::vector<std::string> cells;
      for (int c = 0; c < 12; ++c) {
        float v = std::uniform_real_distribution<float>(-100, 100)(rng);
        cells.push_back(std::string(buf, std::snprintf(buf, sizeof(buf), format, v)));
        csv.text += (c ? "," : "") + cells.back();
      }
      csv.text += '\n';
      csv.rows.push_back(std::move(cells));
    }
  }
  auto all = ReadMemory(csv.text, kCsvLabelled);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->rows, csv.rows.size());
  ExpectCells(csv, *all);

  auto reader = OpenMemoryReader(csv.text, kCsvLabelled);
  ASSERT_TRUE(reader.ok());
  Batch batch;
  for (std::size_t done = 0; done < csv.rows.size(); done += batch.rows) {
    ASSERT_TRUE(*(*reader)->Next(rng() % 3 == 0 ? 300 : 1 + rng() % 20, &batch));
    ExpectCells(csv, batch, done);
  }
}

// Very long rows (many 32-byte blocks, cells of one character, a cell longer than the vector
// path takes) and a row that is one cell.
TEST(CsvReaderTest, LongRowsAndShortCells) {
  std::string row = "1";
  for (int c = 0; c < 5000; ++c) {
    row += c % 100 == 0 ? ",12345678901234567.25" : "," + std::to_string(c % 10);
  }
  std::string text;
  for (int r = 0; r < 400; ++r) text += row + (r % 2 ? "\r\n" : "\n");
  auto batch = ReadMemory(text, kCsvLabelled);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->rows, 400u);
  ASSERT_EQ(batch->cols, 5000u);
  bool same = true;
  for (std::size_t r = 0; r < 400; ++r) {
    for (int c = 0; c < 5000; ++c) {
      float want = c % 100 == 0 ? 12345678901234567.25f : float(c % 10);
      same &= batch->row(r)[c] == want;
    }
  }
  EXPECT_TRUE(same);

  auto single = ReadMemory("-1.5\n2\n\n.25\r\n-.75", kCsvNoLabel);
  ASSERT_TRUE(single.ok()) << single.status().ToString();
  EXPECT_THAT(single->dense, ElementsAre(-1.5f, 2.0f, 0.25f, -0.75f));
}

// Cells the vector path declines and the exact parser rejects keep their messages, whether the
// row is met in a big shared batch or alone.
TEST(CsvReaderTest, MalformedCellsKeepTheirMessages) {
  struct Case {
    const char* cells;  // columns 2 and 3
    const char* where;  // the column and what the message quotes
  };
  const Case cases[] = {{"abc,4", "column 2: cannot parse 'abc'"},
                        {"1-2,4", "column 2: cannot parse '-2'"},
                        {"--1,4", "column 2: cannot parse '--1'"},
                        {"-,4", "column 2: cannot parse '-'"},
                        {".,4", "column 2: cannot parse '.'"},
                        {"-.,4", "column 2: cannot parse '-.'"},
                        {"1.2.3,4", "column 2: cannot parse '.3'"},
                        {"1..2,4", "column 2: cannot parse '.2'"},
                        {"1 2,4", "column 2: cannot parse '2'"},
                        {"0x10,4", "column 2: cannot parse 'x10'"},
                        {"1,5e", "column 3: cannot parse 'e'"},
                        {"1,123456789.123456789x", "column 3: cannot parse 'x'"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.cells);
    std::string good;
    for (int r = 0; r < 600; ++r) good += "1,2.5,-3.25\n";
    std::string bad = std::string("0,") + c.cells + "\n";
    std::string text = good.substr(0, 12 * 299) + bad + good.substr(12 * 299);
    EXPECT_THAT(ErrorOf(ReadMemory(text, kCsvLabelled)),
                HasSubstr("request body line 300, " + std::string(c.where) + " as a number"));
    EXPECT_THAT(ErrorOf(ReadMemory("1,2,3\n" + bad, kCsvLabelled)),
                HasSubstr("request body line 2, " + std::string(c.where) + " as a number"));
  }
  std::string wide;
  for (int r = 0; r < 600; ++r) wide += r == 400 ? "1,2,3,4\n" : "1,2,3\n";
  EXPECT_THAT(ErrorOf(ReadMemory(wide, kCsvLabelled)),
              HasSubstr("request body line 401: expected 3 columns, found 4"));
  EXPECT_THAT(ErrorOf(ReadMemory("1,2,3\n1,2,3,\n", kCsvLabelled)),
              HasSubstr("request body line 2: expected 3 columns, found 4"));
}

// The fast float path must round exactly as std::from_chars does, float rounding midpoints
// (where a double intermediate could round twice) included.
TEST(TextNumberTest, ParseFloatMatchesFromChars) {
  std::mt19937_64 rng(3);
  const char* formats[] = {"%.6g", "%.9g", "%.17g", "%.3f", "%.8e", "%.18e", "%g", "%.12g"};
  char buf[64];
  std::size_t mismatches = 0;
  for (int i = 0; i < 300000; ++i) {
    double v;
    if (i % 2 == 0) {
      float f = std::ldexp(std::uniform_real_distribution<float>(0.5f, 1)(rng),
                           static_cast<int>(rng() % 120) - 60);
      double midpoint = (double(f) + double(std::nextafter(f, 1e30f))) / 2;
      v = midpoint + (static_cast<int>(rng() % 5) - 2) * std::ldexp(midpoint, -52);
    } else {
      v = std::uniform_real_distribution<double>(-1e4, 1e4)(rng);
    }
    int len = std::snprintf(buf, sizeof(buf), formats[i % 8], v);
    float fast, exact;
    const char* end = ParseFloat(buf, buf + len, &fast);
    auto [exact_end, ec] = std::from_chars(buf, buf + len, exact);
    ASSERT_EQ(ec, std::errc()) << buf;
    if (end != exact_end || std::memcmp(&fast, &exact, 4) != 0) {
      ADD_FAILURE() << buf << ": " << fast << " vs " << exact;
      if (++mismatches > 5) break;
    }
  }
  for (const char* text : {"nan", "inf", "-0", "1e-50", "7e-46", "3.4028236e38",
                           "123456789012345678901234567890", "0.00012345678901234567"}) {
    float fast, exact;
    ASSERT_NE(ParseFloat(text, text + std::strlen(text), &fast), nullptr) << text;
    std::from_chars(text, text + std::strlen(text), exact);
    if (!std::isnan(exact) && std::isfinite(exact) && exact != 0) {
      EXPECT_EQ(fast, exact) << text;
    }
  }
  float v;
  EXPECT_EQ(ParseFloat("abc", "abc" + 3, &v), nullptr);
  const char* one_e = "1e";
  EXPECT_EQ(ParseFloat(one_e, one_e + 2, &v), one_e + 1);  // the 'e' is not part of it
  EXPECT_EQ(v, 1.0f);
}

// ---------------------------------------------------------------------------------------------
// libsvm

TEST(LibsvmReaderTest, ReadsSparseRowsWithIndicesAsWritten) {
  auto batch = ReadMemory("1 0:1.5 3:2\n0\n-1\t2:-1 # comment\n# only a comment\n", kLibsvm);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_TRUE(batch->sparse);
  EXPECT_EQ(batch->rows, 3u);
  EXPECT_EQ(batch->cols, 4u);
  EXPECT_THAT(batch->labels, ElementsAre(1, 0, -1));
  EXPECT_THAT(batch->row_offsets, ElementsAre(0, 2, 2, 3));
  EXPECT_THAT(batch->indices, ElementsAre(0, 3, 2));
  EXPECT_THAT(batch->values, ElementsAre(1.5f, 2.0f, -1.0f));
  batch->Densify();
  EXPECT_THAT(batch->dense, ElementsAre(1.5, 0, 0, 2, 0, 0, 0, 0, 0, 0, -1, 0));
}

TEST(LibsvmReaderTest, ErrorsNameTheLine) {
  EXPECT_THAT(ErrorOf(ReadMemory("1 1:2\n0 x:1\n", kLibsvm)),
              HasSubstr("request body line 2: expected index:value, found 'x:1'"));
  EXPECT_THAT(ErrorOf(ReadMemory("1 1:2 3\n", kLibsvm)), HasSubstr("line 1"));
  EXPECT_THAT(ErrorOf(ReadMemory("1:0.5 1:2\n", kLibsvm)), HasSubstr("label:weight"));
  EXPECT_THAT(ErrorOf(ReadMemory("abc 1:2\n", kLibsvm)), HasSubstr("cannot parse the label"));
}

TEST(LibsvmReaderTest, ColumnCountNeverShrinksAcrossBatches) {
  auto reader = OpenMemoryReader("1 9:1\n0 1:1\n", kLibsvm);
  ASSERT_TRUE(reader.ok());
  Batch batch;
  ASSERT_TRUE(*(*reader)->Next(1, &batch));
  EXPECT_EQ(batch.cols, 10u);
  ASSERT_TRUE(*(*reader)->Next(1, &batch));
  EXPECT_EQ(batch.cols, 10u);
  EXPECT_THAT(batch.row_offsets, ElementsAre(0, 1));
}

// ---------------------------------------------------------------------------------------------
// RecordIO-protobuf

// The sagemaker SDK's _write_recordio, byte for byte.
void SdkWriteRecordIO(std::string* out, const std::string& data) {
  std::uint32_t magic = 0xCED7230A, length = static_cast<std::uint32_t>(data.size());
  out->append(reinterpret_cast<const char*>(&magic), 4);
  out->append(reinterpret_cast<const char*>(&length), 4);
  out->append(data);
  out->append(((length + 3) >> 2 << 2) - length, '\0');
}

// write_numpy_to_dense_tensor for a float32 matrix and labels.
std::string SdkDenseTensor(const std::vector<std::vector<float>>& rows,
                           const std::vector<float>* labels) {
  std::string out;
  aialgs::data::Record record;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    record.Clear();
    auto* values = (*record.mutable_features())["values"].mutable_float32_tensor();
    for (float v : rows[i]) values->add_values(v);
    if (labels != nullptr) {
      (*record.mutable_label())["values"].mutable_float32_tensor()->add_values((*labels)[i]);
    }
    SdkWriteRecordIO(&out, record.SerializeAsString());
  }
  return out;
}

TEST(RecordIOReaderTest, ReadsWhatTheSdkWritesForDenseNumpy) {
  std::vector<std::vector<float>> rows = {{1, 2, 3}, {4, 5, 6}, {7, 8.5f, -9}};
  std::vector<float> labels = {0, 1, 0};
  std::string bytes = SdkDenseTensor(rows, &labels);
  auto batch = ReadMemory(bytes, kRecordIO);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_FALSE(batch->sparse);
  EXPECT_EQ(batch->rows, 3u);
  EXPECT_EQ(batch->cols, 3u);
  EXPECT_THAT(batch->dense, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8.5f, -9));
  EXPECT_THAT(batch->labels, ElementsAre(0, 1, 0));

  auto unlabelled = ReadMemory(SdkDenseTensor(rows, nullptr), kRecordIO);
  ASSERT_TRUE(unlabelled.ok());
  EXPECT_FALSE(unlabelled->has_labels());
}

TEST(RecordIOReaderTest, ReadsFloat64FeaturesAndInt32Labels) {
  // numpy float64 arrays become Float64Tensor; int32 labels Int32Tensor.
  std::string bytes;
  aialgs::data::Record record;
  auto* values = (*record.mutable_features())["values"].mutable_float64_tensor();
  values->add_values(0.25);
  values->add_values(-3.5);
  (*record.mutable_label())["values"].mutable_int32_tensor()->add_values(-2);
  SdkWriteRecordIO(&bytes, record.SerializeAsString());
  auto batch = ReadMemory(bytes, kRecordIO);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_THAT(batch->dense, ElementsAre(0.25f, -3.5f));
  EXPECT_THAT(batch->labels, ElementsAre(-2.0f));
}

TEST(RecordIOReaderTest, ReadsWhatTheSdkWritesForSparseMatrices) {
  // write_spmatrix_to_sparse_tensor: values, keys, label, shape [n_cols]; an all-zero row has
  // neither values nor keys.
  std::string bytes;
  aialgs::data::Record record;
  struct Row {
    std::vector<std::uint64_t> keys;
    std::vector<float> values;
  };
  std::vector<Row> rows = {{{1, 4}, {2.5f, -1}}, {{}, {}}, {{0}, {7}}};
  for (std::size_t i = 0; i < rows.size(); ++i) {
    record.Clear();
    auto* tensor = (*record.mutable_features())["values"].mutable_float32_tensor();
    for (float v : rows[i].values) tensor->add_values(v);
    for (auto k : rows[i].keys) tensor->add_keys(k);
    (*record.mutable_label())["values"].mutable_float32_tensor()->add_values(float(i));
    tensor->add_shape(6);
    SdkWriteRecordIO(&bytes, record.SerializeAsString());
  }
  auto batch = ReadMemory(bytes, kRecordIO);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_TRUE(batch->sparse);
  EXPECT_EQ(batch->rows, 3u);
  EXPECT_EQ(batch->cols, 6u);
  EXPECT_THAT(batch->row_offsets, ElementsAre(0, 2, 2, 3));
  EXPECT_THAT(batch->indices, ElementsAre(1, 4, 0));
  EXPECT_THAT(batch->values, ElementsAre(2.5f, -1, 7));
  EXPECT_THAT(batch->labels, ElementsAre(0, 1, 2));
}

TEST(RecordIOReaderTest, ARecordMayHoldSeveralDenseRowsSplitAcrossBatches) {
  aialgs::data::Record record;
  auto* tensor = (*record.mutable_features())["values"].mutable_float32_tensor();
  for (int v = 0; v < 6; ++v) tensor->add_values(float(v));
  tensor->add_shape(3);
  tensor->add_shape(2);
  auto* label = (*record.mutable_label())["values"].mutable_float32_tensor();
  for (int v = 0; v < 3; ++v) label->add_values(float(10 + v));
  std::string bytes;
  SdkWriteRecordIO(&bytes, record.SerializeAsString());
  SdkWriteRecordIO(&bytes, record.SerializeAsString());

  auto reader = OpenMemoryReader(bytes, kRecordIO);
  ASSERT_TRUE(reader.ok());
  Batch batch;
  std::vector<std::size_t> sizes;
  std::vector<float> all_labels, all_values;
  while (true) {
    auto more = (*reader)->Next(2, &batch);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    EXPECT_EQ(batch.cols, 2u);
    sizes.push_back(batch.rows);
    all_labels.insert(all_labels.end(), batch.labels.begin(), batch.labels.end());
    all_values.insert(all_values.end(), batch.dense.begin(), batch.dense.end());
  }
  EXPECT_THAT(sizes, ElementsAre(2, 2, 2));
  EXPECT_THAT(all_labels, ElementsAre(10, 11, 12, 10, 11, 12));
  EXPECT_THAT(all_values, ElementsAre(0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5));
}

TEST(RecordIOReaderTest, JoinsARecordSplitOverFramesReinsertingTheMagic) {
  // dmlc's writer splits a payload where it holds the magic: frames cflag 1, 2, 3, each part
  // without the magic. The reader must put it back.
  aialgs::data::Record record;
  auto* tensor = (*record.mutable_features())["values"].mutable_float32_tensor();
  float magic_as_float;
  std::uint32_t magic = kRecordIOMagic;
  std::memcpy(&magic_as_float, &magic, 4);
  for (float v : {magic_as_float, 1.0f, magic_as_float, 2.0f}) tensor->add_values(v);
  std::string payload = record.SerializeAsString();

  std::string framed;
  AppendRecordIOFrame(payload, &framed);
  // Walk the frames: the encoder must have split (the values start 4-aligned in this payload).
  std::vector<std::uint32_t> flags;
  for (std::size_t at = 0; at < framed.size();) {
    std::uint32_t lrecord;
    std::memcpy(&lrecord, framed.data() + at + 4, 4);
    flags.push_back(lrecord >> 29);
    at += 8 + (((lrecord & ((1u << 29) - 1)) + 3) & ~3u);
  }
  EXPECT_THAT(flags, ElementsAre(1, 2, 3));

  auto batch = ReadMemory(framed + framed, kRecordIO);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_EQ(batch->rows, 2u);
  ASSERT_EQ(batch->cols, 4u);
  EXPECT_EQ(std::memcmp(&batch->dense[0], &magic_as_float, 4), 0);
  EXPECT_EQ(batch->dense[1], 1.0f);
  EXPECT_EQ(std::memcmp(&batch->dense[2], &magic_as_float, 4), 0);
  EXPECT_EQ(batch->dense[7], 2.0f);
}

TEST(RecordIOReaderTest, HandBuiltSplitFramesJoin) {
  // Payload "AAAA<magic>BBBB<magic>CC": frames (1,"AAAA") (2,"BBBB") (3,"CC"+pad).
  std::string framed;
  auto frame = [&](std::uint32_t cflag, std::string_view part) {
    std::uint32_t magic = kRecordIOMagic, lrecord = (cflag << 29) | part.size();
    framed.append(reinterpret_cast<const char*>(&magic), 4);
    framed.append(reinterpret_cast<const char*>(&lrecord), 4);
    framed.append(part);
    framed.append(((part.size() + 3) & ~std::size_t{3}) - part.size(), '\0');
  };
  std::string magic_bytes(4, '\0');
  std::uint32_t magic = kRecordIOMagic;
  std::memcpy(magic_bytes.data(), &magic, 4);
  std::string payload = "AAAA" + magic_bytes + "BBBB" + magic_bytes + "CC";
  std::string reframed;
  AppendRecordIOFrame(payload, &reframed);
  frame(1, "AAAA");
  frame(2, "BBBB");
  frame(3, "CC");
  EXPECT_EQ(reframed, framed);  // the encoder splits exactly as dmlc does
}

TEST(RecordIOReaderTest, BadMagicNamesTheByteOffset) {
  std::vector<std::vector<float>> rows = {{1, 2}, {3, 4}};
  std::string bytes = SdkDenseTensor(rows, nullptr);
  std::size_t second = bytes.size() / 2;
  bytes[second] = 'X';
  std::string error = ErrorOf(ReadMemory(bytes, kRecordIO));
  EXPECT_THAT(error, HasSubstr("bad RecordIO magic"));
  EXPECT_THAT(error, HasSubstr("at byte offset " + std::to_string(second)));
  EXPECT_THAT(error, HasSubstr("record 2"));
}

TEST(RecordIOReaderTest, TruncatedRecordIsAnError) {
  std::vector<std::vector<float>> rows = {{1, 2}, {3, 4}};
  std::string bytes = SdkDenseTensor(rows, nullptr);
  std::string error = ErrorOf(ReadMemory(bytes.substr(0, bytes.size() - 6), kRecordIO));
  EXPECT_THAT(error, HasSubstr("truncated RecordIO record 2"));
  EXPECT_THAT(ErrorOf(ReadMemory(bytes.substr(0, bytes.size() / 2 + 5), kRecordIO)),
              HasSubstr("inside a record header"));
  // Only the final padding missing is tolerated. An Int32 label makes the payload unaligned.
  aialgs::data::Record record;
  (*record.mutable_features())["values"].mutable_float32_tensor()->add_values(1);
  (*record.mutable_label())["values"].mutable_int32_tensor()->add_values(1);
  std::string padded;
  SdkWriteRecordIO(&padded, record.SerializeAsString());
  std::size_t padding = padded.size() - 8 - record.ByteSizeLong();
  ASSERT_GT(padding, 0u);
  auto batch = ReadMemory(padded.substr(0, padded.size() - padding), kRecordIO);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_THAT(batch->labels, ElementsAre(1));
}

TEST(RecordIOReaderTest, MissingValuesFeatureIsAnError) {
  aialgs::data::Record record;
  (*record.mutable_features())["other"].mutable_float32_tensor()->add_values(1);
  std::string bytes;
  SdkWriteRecordIO(&bytes, record.SerializeAsString());
  EXPECT_THAT(ErrorOf(ReadMemory(bytes, kRecordIO)),
              HasSubstr("record 1 at byte offset 0: no features[\"values\"] tensor"));
}

TEST(RecordIOReaderTest, InconsistentRecordsAreErrors) {
  std::vector<float> labels = {1};
  std::string labelled = SdkDenseTensor({{1, 2}}, &labels);
  std::string unlabelled = SdkDenseTensor({{1, 2}}, nullptr);
  EXPECT_THAT(ErrorOf(ReadMemory(labelled + unlabelled, kRecordIO)),
              HasSubstr("record 2 at byte offset " + std::to_string(labelled.size()) +
                        ": has no label"));
  EXPECT_THAT(ErrorOf(ReadMemory(unlabelled + SdkDenseTensor({{1, 2, 3}}, nullptr), kRecordIO)),
              HasSubstr("has 3 features; earlier records have 2"));
  std::string garbage("\x0a\x23\xd7\xce\x03\x00\x00\x00\xff\xff\xff\x00", 12);
  EXPECT_THAT(ErrorOf(ReadMemory(garbage, kRecordIO)), HasSubstr("record 1 at byte offset 0: malformed"));
}

TEST(RecordIOReaderTest, StreamsLargeFilesThroughTheBufferAndGzip) {
  TempDir dir;
  Batch batch;
  batch.rows = 30000;
  batch.cols = 40;
  for (std::size_t i = 0; i < batch.rows * batch.cols; ++i) batch.dense.push_back(float(i % 977));
  for (std::size_t r = 0; r < batch.rows; ++r) batch.labels.push_back(float(r));
  std::string bytes = EncodeRecordIOProtobuf(batch);
  ASSERT_GT(bytes.size(), 2 * ByteWindow::kDefaultBufferBytes);
  WriteFile(dir / "train.rec", bytes);
  WriteGzip(dir / "train2.rec.gz", bytes);
  auto read = ReadFiles({dir / "train.rec", dir / "train2.rec.gz"}, kRecordIO);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->rows, 2 * batch.rows);
  EXPECT_EQ(std::vector<float>(read->dense.begin(), read->dense.begin() + batch.dense.size()),
            batch.dense);
  EXPECT_EQ(std::vector<float>(read->dense.begin() + batch.dense.size(), read->dense.end()),
            batch.dense);
  EXPECT_EQ(read->labels[2 * batch.rows - 1], float(batch.rows - 1));
}

TEST(RecordIOReaderTest, ARequestBodyMayBeOneRecordWithoutFraming) {
  // Batch transform with SplitType RecordIO and BatchStrategy SingleRecord sends a record's
  // payload without its RecordIO header and padding.
  Batch batch;
  batch.rows = 1;
  batch.cols = 3;
  batch.dense = {1.5f, -2, 7};
  batch.labels = {1};
  std::string framed = EncodeRecordIOProtobuf(batch);
  std::uint32_t length;
  std::memcpy(&length, framed.data() + 4, 4);
  const std::string bare = framed.substr(8, length);
  auto read = ReadMemory(bare, kRecordIO);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->rows, 1u);
  EXPECT_EQ(read->dense, batch.dense);
  EXPECT_EQ(read->labels, batch.labels);
  // A file is always framed: the same bytes there are a bad magic.
  TempDir dir;
  WriteFile(dir / "bare.rec", bare);
  EXPECT_NE(ErrorOf(ReadFiles({dir / "bare.rec"}, kRecordIO)).find("bad RecordIO magic"),
            std::string::npos);
  // A framed body still reads as before, and garbage after a framed record is still an error.
  auto framed_read = ReadMemory(framed, kRecordIO);
  ASSERT_TRUE(framed_read.ok()) << framed_read.status().ToString();
  EXPECT_EQ(framed_read->dense, batch.dense);
  EXPECT_NE(ErrorOf(ReadMemory(framed + "garbage!", kRecordIO)).find("bad RecordIO magic"),
            std::string::npos);
}

TEST(RecordIOEncoderTest, WritesTheSdkLayoutForDenseRows) {
  Batch batch;
  batch.rows = 2;
  batch.cols = 2;
  batch.dense = {1, 2, 3, 4};
  batch.labels = {0, 1};
  std::string bytes = EncodeRecordIOProtobuf(batch);
  std::vector<float> expected_labels = {0, 1};
  EXPECT_EQ(bytes, SdkDenseTensor({{1, 2}, {3, 4}}, &expected_labels));
}

TEST(RecordIOEncoderTest, SparseRowsRoundTrip) {
  Batch batch;
  batch.sparse = true;
  batch.rows = 3;
  batch.cols = 300;  // multi-byte varints for keys and shape
  batch.row_offsets = {0, 2, 2, 3};
  batch.indices = {5, 299, 128};
  batch.values = {1.5f, -2, 3};
  std::string bytes = EncodeRecordIOProtobuf(batch);

  // The generated classes agree on the layout.
  std::uint32_t length;
  std::memcpy(&length, bytes.data() + 4, 4);
  aialgs::data::Record record;
  ASSERT_TRUE(record.ParseFromArray(bytes.data() + 8, static_cast<int>(length)));
  const auto& tensor = record.features().at("values").float32_tensor();
  EXPECT_THAT(tensor.keys(), ElementsAre(5, 299));
  EXPECT_THAT(tensor.values(), ElementsAre(1.5f, -2));
  EXPECT_THAT(tensor.shape(), ElementsAre(300));
  EXPECT_TRUE(record.label().empty());

  auto read = ReadMemory(bytes, kRecordIO);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_TRUE(read->sparse);
  EXPECT_EQ(read->cols, 300u);
  EXPECT_EQ(read->row_offsets, batch.row_offsets);
  EXPECT_EQ(read->indices, batch.indices);
  EXPECT_EQ(read->values, batch.values);
}

// ---------------------------------------------------------------------------------------------
// JSON

TEST(JsonReaderTest, ReadsEveryInstanceShape) {
  const char* bodies[] = {
      R"({"instances":[{"features":[1,2]},{"features":[3,4.5]}]})",
      R"({"instances":[{"data":{"features":{"values":[1,2]}}},{"data":{"features":{"values":[3,4.5]}}}]})",
      R"({"instances":[[1,2],[3,4.5]]})",
      R"([[1,2],[3,4.5]])",
  };
  for (const char* body : bodies) {
    auto batch = ReadMemory(body, kJson);
    ASSERT_TRUE(batch.ok()) << body << ": " << batch.status().ToString();
    EXPECT_FALSE(batch->sparse);
    EXPECT_EQ(batch->cols, 2u) << body;
    EXPECT_THAT(batch->dense, ElementsAre(1, 2, 3, 4.5f)) << body;
  }
  for (const char* body : {R"({"features":[1,2,3]})", "[1,2,3]",
                           R"({"data":{"features":{"values":[1,2,3]}}})"}) {
    auto batch = ReadMemory(body, kJson);
    ASSERT_TRUE(batch.ok()) << body << ": " << batch.status().ToString();
    EXPECT_THAT(batch->dense, ElementsAre(1, 2, 3)) << body;
  }
}

TEST(JsonReaderTest, SparseInstancesMakeTheBatchSparse) {
  auto batch = ReadMemory(
      R"({"instances":[{"features":[1,0,2]},
                       {"data":{"features":{"keys":[4],"shape":[6],"values":[5]}}}]})",
      kJson);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_TRUE(batch->sparse);
  EXPECT_EQ(batch->cols, 6u);
  EXPECT_THAT(batch->row_offsets, ElementsAre(0, 3, 4));
  EXPECT_THAT(batch->indices, ElementsAre(0, 1, 2, 4));
  EXPECT_THAT(batch->values, ElementsAre(1, 0, 2, 5));
}

TEST(JsonReaderTest, ErrorsNameTheInstance) {
  EXPECT_THAT(ErrorOf(ReadMemory(R"({"instances":[{"features":[1,2]},{"features":[1]}]})", kJson)),
              HasSubstr("instances[1]: has 1 features; earlier instances have 2"));
  EXPECT_THAT(ErrorOf(ReadMemory(R"({"instances":[{"features":"x"}]})", kJson)),
              HasSubstr("instances[0]: expected \"features\" to be an array of numbers"));
  EXPECT_THAT(ErrorOf(ReadMemory(R"({"instances":[{"features":[1,"a"]}]})", kJson)),
              HasSubstr("item 1 is not a number"));
  EXPECT_THAT(ErrorOf(ReadMemory(R"({"instances":[{"label":1}]})", kJson)),
              HasSubstr("instances[0]: expected \"features\""));
  EXPECT_THAT(ErrorOf(ReadMemory(R"({"instances":{"features":[1]}})", kJson)),
              HasSubstr("\"instances\" to be an array"));
  EXPECT_THAT(ErrorOf(ReadMemory(
                  R"({"instances":[{"data":{"features":{"keys":[7],"shape":[6],"values":[1]}}}]})",
                  kJson)),
              HasSubstr("key 7 is outside shape [6]"));
  EXPECT_THAT(ErrorOf(ReadMemory(R"({"instances":[{"features":[1,2]})", kJson)),
              HasSubstr("request body: invalid JSON"));
  EXPECT_THAT(ErrorOf(ReadMemory("42", kJson)), HasSubstr("expected an object or an array"));
}

TEST(JsonReaderTest, FilesWithDenseThenSparseInstancesJoin) {
  TempDir dir;
  WriteFile(dir / "a.json", R"({"instances":[[1,2]]})");
  WriteFile(dir / "b.json", R"({"instances":[{"data":{"features":{"keys":[3],"shape":[5],"values":[7]}}}]})");
  auto batch = ReadFiles({dir / "a.json", dir / "b.json"}, kJson);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_TRUE(batch->sparse);
  EXPECT_EQ(batch->cols, 5u);
  EXPECT_THAT(batch->row_offsets, ElementsAre(0, 2, 3));
  EXPECT_THAT(batch->indices, ElementsAre(0, 1, 3));
  EXPECT_THAT(batch->values, ElementsAre(1, 2, 7));
}

TEST(JsonReaderTest, HandsOutMiniBatches) {
  auto reader = OpenMemoryReader(R"({"instances":[[1],[2],[3]]})", kJson);
  ASSERT_TRUE(reader.ok());
  Batch batch;
  ASSERT_TRUE(*(*reader)->Next(2, &batch));
  EXPECT_THAT(batch.dense, ElementsAre(1, 2));
  ASSERT_TRUE(*(*reader)->Next(2, &batch));
  EXPECT_THAT(batch.dense, ElementsAre(3));
  EXPECT_FALSE(*(*reader)->Next(2, &batch));
}

TEST(JsonReaderTest, EmptyInstancesGiveNoRows) {
  auto batch = ReadMemory(R"({"instances":[]})", kJson);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->rows, 0u);
}

TEST(JsonLinesReaderTest, ReadsOneInstancePerLine) {
  auto batch = ReadMemory(
      "{\"features\":[1,2]}\n\n{\"data\":{\"features\":{\"values\":[3,4]}}}\r\n[5,6]", kJsonLines);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_EQ(batch->rows, 3u);
  EXPECT_THAT(batch->dense, ElementsAre(1, 2, 3, 4, 5, 6));
}

TEST(JsonLinesReaderTest, ErrorsNameTheLine) {
  EXPECT_THAT(ErrorOf(ReadMemory("[1,2]\n\n{\"features\":[1]}\n", kJsonLines)),
              HasSubstr("request body line 3: has 1 features; earlier instances have 2"));
  EXPECT_THAT(ErrorOf(ReadMemory("[1,2]\n{oops\n", kJsonLines)),
              HasSubstr("request body line 2: invalid JSON"));
}

// ---------------------------------------------------------------------------------------------
// Content types

TEST(ParseContentTypeTest, AcceptsTheTrainingAndInferenceTypes) {
  struct Case {
    const char* text;
    Format format;
    int label_size;
  } cases[] = {
      {"text/csv", Format::kCsv, 1},
      {"text/csv;label_size=0", Format::kCsv, 0},
      {"TEXT/CSV ; Label_Size = 0", Format::kCsv, 0},
      {"text/csv; label_size=1", Format::kCsv, 1},
      {"text/csv; charset=utf-8", Format::kCsv, 1},
      {"text/libsvm", Format::kLibsvm, 1},
      {"text/x-libsvm", Format::kLibsvm, 1},
      {"application/x-recordio-protobuf", Format::kRecordIOProtobuf, 1},
      {"application/json", Format::kJson, 1},
      {"application/jsonlines", Format::kJsonLines, 1},
  };
  for (const Case& c : cases) {
    auto type = ParseContentType(c.text, "ContentType");
    ASSERT_TRUE(type.ok()) << c.text << ": " << type.status().ToString();
    EXPECT_EQ(type->format, c.format) << c.text;
    EXPECT_EQ(type->label_size, c.label_size) << c.text;
  }
}

TEST(ParseContentTypeTest, RejectsOthersNamingTheField) {
  for (const char* bad : {"image/png", "", "text/csv;label_size=2",
                          "application/json;label_size=0", "text/csvx"}) {
    auto type = ParseContentType(bad, "Channel train ContentType");
    ASSERT_FALSE(type.ok()) << bad;
    EXPECT_EQ(type.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(type.status().message(), HasSubstr("Channel train ContentType")) << bad;
  }
}

TEST(ParseAcceptTest, PicksTheFirstSupportedType) {
  auto fallback = ResponseFormat::kCsv;
  EXPECT_EQ(*ParseAccept("", fallback), ResponseFormat::kCsv);
  EXPECT_EQ(*ParseAccept("*/*", ResponseFormat::kJson), ResponseFormat::kJson);
  EXPECT_EQ(*ParseAccept("application/json", fallback), ResponseFormat::kJson);
  EXPECT_EQ(*ParseAccept("application/json;verbose=true", fallback), ResponseFormat::kJson);
  EXPECT_EQ(*ParseAccept("application/jsonlines", fallback), ResponseFormat::kJsonLines);
  EXPECT_EQ(*ParseAccept("image/png, text/csv;q=0.5", ResponseFormat::kJson), ResponseFormat::kCsv);
  EXPECT_EQ(*ParseAccept("APPLICATION/X-RECORDIO-PROTOBUF", fallback),
            ResponseFormat::kRecordIOProtobuf);
  auto bad = ParseAccept("image/png", fallback);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("image/png"));
}

TEST(ParseAcceptTest, MimeTypes) {
  EXPECT_EQ(MimeType(ResponseFormat::kJson), "application/json");
  EXPECT_EQ(MimeType(ResponseFormat::kJsonLines), "application/jsonlines");
  EXPECT_EQ(MimeType(ResponseFormat::kCsv), "text/csv");
  EXPECT_EQ(MimeType(ResponseFormat::kRecordIOProtobuf), "application/x-recordio-protobuf");
}

// ---------------------------------------------------------------------------------------------
// Predictions

Predictions BinaryClassifier() {
  Predictions p;
  p.rows = 2;
  p.columns = {{"score", 1, false, false, {0.4f, 0.75f}},
               {"predicted_label", 1, true, false, {0, 1}}};
  return p;
}

TEST(EncodeTest, Json) {
  EXPECT_EQ(Encode(BinaryClassifier(), ResponseFormat::kJson),
            R"({"predictions":[{"score":0.4,"predicted_label":0},{"score":0.75,"predicted_label":1}]})");
}

TEST(EncodeTest, JsonLines) {
  EXPECT_EQ(Encode(BinaryClassifier(), ResponseFormat::kJsonLines),
            "{\"score\":0.4,\"predicted_label\":0}\n{\"score\":0.75,\"predicted_label\":1}\n");
}

TEST(EncodeTest, Csv) {
  EXPECT_EQ(Encode(BinaryClassifier(), ResponseFormat::kCsv), "0.4,0\n0.75,1\n");
  Predictions xgb;
  xgb.rows = 3;
  xgb.csv_one_line = true;
  xgb.columns = {{"score", 1, false, false, {0.25f, 0.5f, 0.1f}}};
  EXPECT_EQ(Encode(xgb, ResponseFormat::kCsv), "0.25,0.5,0.1");
}

TEST(EncodeTest, RecordIOProtobufPutsEachColumnUnderLabel) {
  std::string bytes = Encode(BinaryClassifier(), ResponseFormat::kRecordIOProtobuf);
  std::size_t at = 0;
  std::vector<std::pair<float, float>> rows;
  while (at < bytes.size()) {
    std::uint32_t magic, length;
    std::memcpy(&magic, bytes.data() + at, 4);
    std::memcpy(&length, bytes.data() + at + 4, 4);
    ASSERT_EQ(magic, kRecordIOMagic);
    ASSERT_EQ(length >> 29, 0u);
    aialgs::data::Record record;
    ASSERT_TRUE(record.ParseFromArray(bytes.data() + at + 8, static_cast<int>(length)));
    EXPECT_TRUE(record.features().empty());
    ASSERT_EQ(record.label().size(), 2u);
    rows.emplace_back(record.label().at("score").float32_tensor().values(0),
                      record.label().at("predicted_label").float32_tensor().values(0));
    at += 8 + ((length + 3) & ~3u);
  }
  EXPECT_THAT(rows, ElementsAre(std::pair(0.4f, 0.0f), std::pair(0.75f, 1.0f)));
}

TEST(EncodeTest, VectorColumnsAndEnvelopes) {
  Predictions multiclass;
  multiclass.rows = 1;
  multiclass.columns = {{"score", 3, false, true, {0.1f, 0.2f, 0.7f}},
                        {"predicted_label", 1, true, false, {2}}};
  EXPECT_EQ(Encode(multiclass, ResponseFormat::kJson),
            R"({"predictions":[{"score":[0.1,0.2,0.7],"predicted_label":2}]})");
  EXPECT_EQ(Encode(multiclass, ResponseFormat::kCsv), "0.1,0.2,0.7,2\n");

  Predictions pca;
  pca.rows = 2;
  pca.envelope = "projections";
  pca.columns = {{"projection", 2, false, false, {1.5f, -2, 1e-7f, 3e20f}}};
  EXPECT_EQ(Encode(pca, ResponseFormat::kJson),
            R"({"projections":[{"projection":[1.5,-2]},{"projection":[1e-07,3e+20]}]})");

  Predictions single_score_vector;
  single_score_vector.rows = 1;
  single_score_vector.columns = {{"score", 1, false, true, {0.5f}}};
  EXPECT_EQ(Encode(single_score_vector, ResponseFormat::kJsonLines), "{\"score\":[0.5]}\n");
}

TEST(EncodeTest, NonFiniteValuesAndEmptyPredictions) {
  Predictions p;
  p.rows = 1;
  p.columns = {{"score", 3, false, false,
                {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                 -std::numeric_limits<float>::infinity()}}};
  EXPECT_EQ(Encode(p, ResponseFormat::kJson),
            R"({"predictions":[{"score":[NaN,Infinity,-Infinity]}]})");
  EXPECT_EQ(Encode(p, ResponseFormat::kCsv), "nan,inf,-inf\n");
  Predictions empty;
  EXPECT_EQ(Encode(empty, ResponseFormat::kJson), R"({"predictions":[]})");
  EXPECT_EQ(Encode(empty, ResponseFormat::kCsv), "");
  EXPECT_EQ(Encode(empty, ResponseFormat::kRecordIOProtobuf), "");
}

// ---------------------------------------------------------------------------------------------
// Throughput (run with --gtest_also_run_disabled_tests; HEARTH_BENCH_ROWS overrides 1M rows).

std::size_t BenchRows() {
  const char* env = std::getenv("HEARTH_BENCH_ROWS");
  return env ? std::strtoull(env, nullptr, 10) : 1000000;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// CPU time of this process: on a shared machine wall time also counts other people's work.
double CpuSeconds(std::clock_t since) { return double(std::clock() - since) / CLOCKS_PER_SEC; }

TEST(DataThroughputTest, DISABLED_CsvAndRecordIO) {
  const std::size_t rows = BenchRows(), cols = 100;
  TempDir dir;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-10, 10);
  Batch source;
  source.rows = 20000;
  source.cols = cols;
  for (std::size_t i = 0; i < source.rows * cols; ++i) source.dense.push_back(uniform(rng));
  for (std::size_t r = 0; r < source.rows; ++r) source.labels.push_back(float(r % 2));

  // CSV: label + 100 features, numpy-style "%.6g".
  {
    std::string block;
    char buf[32];
    for (std::size_t r = 0; r < source.rows; ++r) {
      block += source.labels[r] ? "1" : "0";
      for (std::size_t c = 0; c < cols; ++c) {
        block += ',';
        block.append(buf, std::snprintf(buf, sizeof(buf), "%.6g", source.dense[r * cols + c]));
      }
      block += '\n';
    }
    std::ofstream out(dir / "bench.csv", std::ios::binary);
    for (std::size_t done = 0; done < rows; done += source.rows) out << block;
  }
  std::uintmax_t csv_bytes = fs::file_size(dir / "bench.csv");
  auto start = std::chrono::steady_clock::now();
  std::clock_t cpu_start = std::clock();
  auto reader = OpenFileReader({dir / "bench.csv"}, kCsvLabelled);
  ASSERT_TRUE(reader.ok());
  Batch batch;
  std::size_t read_rows = 0;
  while (*(*reader)->Next(1000, &batch)) read_rows += batch.rows;
  double csv_seconds = Seconds(start), csv_cpu = CpuSeconds(cpu_start);
  EXPECT_EQ(read_rows, (rows + source.rows - 1) / source.rows * source.rows);
  std::printf("CSV: %zu rows x %zu cols, %.1f MB in %.3f s = %.0f MB/s, %.0f rows/s "
              "(CPU %.3f s = %.0f MB/s per CPU-second)\n",
              read_rows, cols, csv_bytes / 1e6, csv_seconds, csv_bytes / 1e6 / csv_seconds,
              read_rows / csv_seconds, csv_cpu, csv_bytes / 1e6 / csv_cpu);

  // A batch-transform request: ~6 MB of text/csv features read where it lies (the model
  // servers' path: OpenMemoryReader + ReadAll).
  {
    std::string payload;
    char buf[32];
    for (std::size_t r = 0; payload.size() < (std::size_t{6} << 20); ++r) {
      for (std::size_t c = 0; c < cols; ++c) {
        if (c > 0) payload += ',';
        float v = source.dense[(r % source.rows) * cols + c];
        payload.append(buf, std::snprintf(buf, sizeof(buf), "%.6g", v));
      }
      payload += '\n';
    }
    constexpr int kRequests = 40;
    std::size_t request_rows = 0;
    start = std::chrono::steady_clock::now();
    cpu_start = std::clock();
    for (int i = 0; i < kRequests; ++i) {
      auto parsed = ReadMemory(payload, kCsvNoLabel);
      ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
      request_rows = parsed->rows;
    }
    double body_seconds = Seconds(start), body_cpu = CpuSeconds(cpu_start);
    std::printf("CSV request body: %zu rows, %.1f MB x %d in %.3f s = %.0f MB/s "
                "(CPU %.3f s = %.0f MB/s per CPU-second)\n",
                request_rows, payload.size() / 1e6, kRequests, body_seconds,
                payload.size() * kRequests / 1e6 / body_seconds, body_cpu,
                payload.size() * kRequests / 1e6 / body_cpu);
  }

  {
    std::string block = EncodeRecordIOProtobuf(source);
    std::ofstream out(dir / "bench.rec", std::ios::binary);
    for (std::size_t done = 0; done < rows; done += source.rows) out << block;
  }
  std::uintmax_t rec_bytes = fs::file_size(dir / "bench.rec");
  start = std::chrono::steady_clock::now();
  cpu_start = std::clock();
  reader = OpenFileReader({dir / "bench.rec"}, kRecordIO);
  ASSERT_TRUE(reader.ok());
  read_rows = 0;
  while (*(*reader)->Next(1000, &batch)) read_rows += batch.rows;
  double rec_seconds = Seconds(start), rec_cpu = CpuSeconds(cpu_start);
  std::printf("RecordIO-protobuf: %zu rows, %.1f MB in %.3f s = %.0f MB/s, %.0f rows/s "
              "(CPU %.3f s = %.0f MB/s per CPU-second)\n",
              read_rows, rec_bytes / 1e6, rec_seconds, rec_bytes / 1e6 / rec_seconds,
              read_rows / rec_seconds, rec_cpu, rec_bytes / 1e6 / rec_cpu);

  // Single-row response encoding latency.
  Predictions one = BinaryClassifier();
  one.rows = 1;
  one.columns[0].values.resize(1);
  one.columns[1].values.resize(1);
  constexpr int kEncodes = 1000000;
  std::size_t total = 0;
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < kEncodes; ++i) total += Encode(one, ResponseFormat::kJson).size();
  std::printf("Encode JSON, one row: %.0f ns (%zu bytes)\n", Seconds(start) / kEncodes * 1e9,
              total / kEncodes);
  std::string body = R"({"instances":[{"features":[)";
  for (std::size_t c = 0; c < cols; ++c) body += (c ? "," : "") + std::to_string(c * 0.37);
  body += "]}]}";
  start = std::chrono::steady_clock::now();
  constexpr int kDecodes = 200000;
  for (int i = 0; i < kDecodes; ++i) {
    auto decoded = ReadMemory(body, kJson);
    total += decoded->rows;
  }
  std::printf("Decode JSON request, one row of %zu: %.0f ns\n", cols,
              Seconds(start) / kDecodes * 1e9);
}

}  // namespace
}  // namespace hearth::data
