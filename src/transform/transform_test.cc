#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "data/recordio_protobuf.h"
#include "transform/byte_source.h"
#include "transform/data_processing.h"
#include "transform/json_path.h"
#include "transform/output_assembler.h"
#include "transform/payload_splitter.h"
#include "transform/tfrecord.h"

namespace hearth::transform {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Cut {
  std::string body;
  std::uint64_t first = 0;
  std::uint64_t count = 0;
  std::string input;
  bool operator==(const Cut&) const = default;
};

Cut C(std::string body, std::uint64_t first, std::uint64_t count, std::string input = "") {
  return Cut{std::move(body), first, count, std::move(input)};
}

void PrintTo(const Cut& c, std::ostream* os) {
  *os << "{first=" << c.first << " count=" << c.count << " body=\"" << c.body << "\"}";
}

PayloadSplitter::Options Opts(SplitType split, BatchStrategy strategy, std::uint64_t limit,
                              std::string name = "in/data.csv") {
  PayloadSplitter::Options o;
  o.split_type = split;
  o.batch_strategy = strategy;
  o.max_payload_bytes = limit;
  o.object_name = std::move(name);
  return o;
}

// All payloads of `source`, or the first error.
Result<std::vector<Cut>> SplitAll(PayloadSplitter::Options options, ByteSource source) {
  ASSIGN_OR_RETURN(auto splitter, PayloadSplitter::Open(std::move(options), std::move(source)));
  std::vector<Cut> cuts;
  Payload p;
  for (;;) {
    ASSIGN_OR_RETURN(bool more, splitter->Next(&p));
    if (!more) break;
    cuts.push_back({p.body, p.first_record, p.record_count, p.has_input ? p.input : ""});
  }
  return cuts;
}

Result<std::vector<Cut>> SplitString(PayloadSplitter::Options options, std::string_view bytes,
                                     std::size_t max_read = SIZE_MAX) {
  return SplitAll(std::move(options), SourceFromMemory(bytes, max_read));
}

std::vector<Cut> MustSplit(PayloadSplitter::Options options, std::string_view bytes,
                           std::size_t max_read = SIZE_MAX) {
  auto cuts = SplitString(std::move(options), bytes, max_read);
  EXPECT_TRUE(cuts.ok()) << cuts.status().ToString();
  return cuts.ok() ? *cuts : std::vector<Cut>{};
}

std::string Gzip(std::string_view data, int level = 6) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// A CSV object whose rows have different lengths, some empty, some ending in \r\n.
std::string MixedCsv(std::size_t rows) {
  std::string csv;
  std::mt19937 rng(3);
  for (std::size_t r = 0; r < rows; ++r) {
    if (r % 17 == 5) {
      csv += "\n";
      continue;
    }
    csv += std::to_string(r);
    for (std::size_t c = 0, n = rng() % 9; c < n; ++c) csv += "," + std::to_string(rng() % 1000);
    csv += r % 5 == 0 ? "\r\n" : "\n";
  }
  csv += "last,row";  // no newline at the end
  return csv;
}

// ---------------------------------------------------------------------------------------------
// Line

TEST(LineSplit, MultiRecordCutsAfterTheLastNewlineThatFits) {
  // Records: "aaaa\n" (5) "bb\n" (3) "cccccc\n" (7) "d" (1); limit 10 bytes.
  auto cuts = MustSplit(Opts(SplitType::kLine, BatchStrategy::kMultiRecord, 10),
                        "aaaa\nbb\ncccccc\nd");
  EXPECT_THAT(cuts, ElementsAre(C("aaaa\nbb\n", 0, 2), C("cccccc\nd", 2, 2)));
}

TEST(LineSplit, MultiRecordFillsThePayloadExactly) {
  // 4 + 3 + 3 = 10 bytes fit exactly; the next payload starts at record 3.
  auto cuts = MustSplit(Opts(SplitType::kLine, BatchStrategy::kMultiRecord, 10),
                        "abc\nde\nfg\nh\n");
  EXPECT_THAT(cuts, ElementsAre(C("abc\nde\nfg\n", 0, 3), C("h\n", 3, 1)));
  // An object that ends without a newline exactly at the limit is one payload.
  cuts = MustSplit(Opts(SplitType::kLine, BatchStrategy::kMultiRecord, 10), "abc\nde\nfgh");
  EXPECT_THAT(cuts, ElementsAre(C("abc\nde\nfgh", 0, 3)));
}

TEST(LineSplit, SingleRecordSendsEachLineWithItsTerminator) {
  auto cuts = MustSplit(Opts(SplitType::kLine, BatchStrategy::kSingleRecord, 100),
                        "1,2\r\n\n3,4\nlast");
  EXPECT_THAT(cuts, ElementsAre(C("1,2\r\n", 0, 1), C("\n", 1, 1), C("3,4\n", 2, 1),
                                C("last", 3, 1)));
}

TEST(LineSplit, EmptyLinesAreRecordsAndAFinalNewlineIsNot) {
  auto cuts = MustSplit(Opts(SplitType::kLine, BatchStrategy::kMultiRecord, 100), "a\n\n\nb\n");
  EXPECT_THAT(cuts, ElementsAre(C("a\n\n\nb\n", 0, 4)));
}

TEST(LineSplit, CrLfStaysInsideTheRecord) {
  // 5 bytes per record; a limit of 7 must not cut between '\r' and '\n'.
  auto cuts = MustSplit(Opts(SplitType::kLine, BatchStrategy::kMultiRecord, 7),
                        "a,b\r\nc,d\r\n");
  EXPECT_THAT(cuts, ElementsAre(C("a,b\r\n", 0, 1), C("c,d\r\n", 1, 1)));
}

TEST(LineSplit, EmptyObjectHasNoPayloads) {
  EXPECT_TRUE(MustSplit(Opts(SplitType::kLine, BatchStrategy::kMultiRecord, 10), "").empty());
  EXPECT_TRUE(MustSplit(Opts(SplitType::kLine, BatchStrategy::kSingleRecord, 10), "").empty());
}

TEST(LineSplit, RecordLargerThanTheLimitNamesObjectAndRecord) {
  for (auto strategy : {BatchStrategy::kMultiRecord, BatchStrategy::kSingleRecord}) {
    auto cuts = SplitString(Opts(SplitType::kLine, strategy, 8, "in/big.csv"),
                            "ok\nfine\nthis line is too long\nok\n");
    ASSERT_FALSE(cuts.ok());
    EXPECT_EQ(cuts.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(cuts.status().message(), HasSubstr("record 3 of object 'in/big.csv'"));
    EXPECT_THAT(cuts.status().message(), HasSubstr("MaxPayloadInMB"));
  }
}

TEST(LineSplit, ErrorsAreSticky) {
  auto splitter = PayloadSplitter::Open(Opts(SplitType::kLine, BatchStrategy::kSingleRecord, 4),
                                        SourceFromMemory("toolong\nok\n"));
  ASSERT_TRUE(splitter.ok());
  Payload p;
  auto first = (*splitter)->Next(&p);
  ASSERT_FALSE(first.ok());
  auto again = (*splitter)->Next(&p);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().message(), first.status().message());
}

TEST(LineSplit, ZeroLimitMeansOnePayloadForAllRecords) {
  std::string csv = MixedCsv(300);
  auto cuts = MustSplit(Opts(SplitType::kLine, BatchStrategy::kMultiRecord, 0), csv, 7);
  ASSERT_EQ(cuts.size(), 1u);
  EXPECT_EQ(cuts[0].body, csv);
  EXPECT_EQ(cuts[0].count, 301u);  // 300 lines plus the last one without a newline
}

TEST(LineSplit, TinyReadsGiveTheSamePayloadsAsOneBigRead) {
  std::string csv = MixedCsv(2000);
  for (auto strategy : {BatchStrategy::kMultiRecord, BatchStrategy::kSingleRecord}) {
    auto options = Opts(SplitType::kLine, strategy, 700);
    auto whole = MustSplit(options, csv);
    ASSERT_FALSE(whole.empty());
    std::string joined;
    std::uint64_t next = 0;
    for (const Cut& c : whole) {
      EXPECT_LE(c.body.size(), 700u);
      EXPECT_EQ(c.first, next);
      next += c.count;
      joined += c.body;
    }
    EXPECT_EQ(joined, csv);  // contiguous slices, nothing lost or added
    EXPECT_EQ(next, 2001u);
    EXPECT_EQ(MustSplit(options, csv, 1), whole);
    EXPECT_EQ(MustSplit(options, csv, 7), whole);
    options.read_bytes = 3;  // the window's own reads tiny too
    EXPECT_EQ(MustSplit(options, csv, 7), whole);
  }
}

TEST(LineSplit, MultiRecordPacksGreedily) {
  // Every payload but the last would overflow with the next record.
  std::string csv = MixedCsv(3000);
  auto cuts = MustSplit(Opts(SplitType::kLine, BatchStrategy::kMultiRecord, 500), csv);
  std::size_t offset = 0;
  for (std::size_t i = 0; i + 1 < cuts.size(); ++i) {
    offset += cuts[i].body.size();
    std::size_t next_len = csv.find('\n', offset);
    next_len = (next_len == std::string::npos ? csv.size() : next_len + 1) - offset;
    EXPECT_GT(cuts[i].body.size() + next_len, 500u) << "payload " << i;
  }
}

// ---------------------------------------------------------------------------------------------
// None

TEST(NoneSplit, WholeObjectIsOnePayload) {
  auto cuts = MustSplit(Opts(SplitType::kNone, BatchStrategy::kMultiRecord, 100), "a\nb\nc", 1);
  EXPECT_THAT(cuts, ElementsAre(C("a\nb\nc", 0, 1)));
  cuts = MustSplit(Opts(SplitType::kNone, BatchStrategy::kSingleRecord, 100), "");
  EXPECT_THAT(cuts, ElementsAre(C("", 0, 1)));
}

TEST(NoneSplit, ObjectOverTheLimitIsAnError) {
  auto cuts = SplitString(Opts(SplitType::kNone, BatchStrategy::kMultiRecord, 4, "in/x.json"),
                          "12345");
  ASSERT_FALSE(cuts.ok());
  EXPECT_THAT(cuts.status().message(), HasSubstr("object 'in/x.json' is larger than"));
  EXPECT_THAT(cuts.status().message(), HasSubstr("SplitType None"));
  // Exactly at the limit is fine.
  EXPECT_THAT(MustSplit(Opts(SplitType::kNone, BatchStrategy::kMultiRecord, 4), "1234"),
              ElementsAre(C("1234", 0, 1)));
}

// ---------------------------------------------------------------------------------------------
// RecordIO

std::vector<std::string> SampleBinaryRecords() {
  std::vector<std::string> records = {"a", "", "abcd", "hello world", std::string(37, 'x')};
  // Holds the magic at a 4-aligned offset: written as three frames (cflag 1, 2, 3).
  std::string magic("\x0a\x23\xd7\xce", 4);
  records.push_back("ABCD" + magic + "EFGH" + magic + "IJ");
  std::mt19937 rng(11);
  for (int i = 0; i < 40; ++i) {
    std::string r(rng() % 50, '\0');
    for (char& c : r) c = static_cast<char>(rng());
    records.push_back(r);
  }
  return records;
}

TEST(RecordIOSplit, SingleRecordStripsTheFraming) {
  auto records = SampleBinaryRecords();
  std::string object;
  for (const auto& r : records) data::AppendRecordIOFrame(r, &object);
  for (std::size_t max_read : {std::size_t{1}, std::size_t{7}, SIZE_MAX}) {
    auto cuts = MustSplit(Opts(SplitType::kRecordIO, BatchStrategy::kSingleRecord, 1000), object,
                          max_read);
    ASSERT_EQ(cuts.size(), records.size());
    for (std::size_t i = 0; i < records.size(); ++i) {
      EXPECT_EQ(cuts[i].body, records[i]) << "record " << i;
      EXPECT_EQ(cuts[i].first, i);
      EXPECT_EQ(cuts[i].count, 1u);
    }
  }
}

TEST(RecordIOSplit, MultiRecordKeepsFramingAndPadding) {
  auto records = SampleBinaryRecords();
  std::string object;
  std::vector<std::size_t> frame_sizes;
  for (const auto& r : records) {
    std::size_t before = object.size();
    data::AppendRecordIOFrame(r, &object);
    frame_sizes.push_back(object.size() - before);
  }
  const std::uint64_t limit = 120;
  auto whole = MustSplit(Opts(SplitType::kRecordIO, BatchStrategy::kMultiRecord, limit), object);
  std::string joined;
  std::size_t next = 0;
  for (const Cut& c : whole) {
    EXPECT_EQ(c.first, next);
    std::size_t expected = 0;
    for (std::size_t i = 0; i < c.count; ++i) expected += frame_sizes[next + i];
    EXPECT_EQ(c.body.size(), expected);  // whole frames, padding included
    EXPECT_LE(c.body.size(), limit);
    if (next + c.count < records.size()) {
      EXPECT_GT(c.body.size() + frame_sizes[next + c.count], limit);  // greedy
    }
    next += c.count;
    joined += c.body;
  }
  EXPECT_EQ(next, records.size());
  EXPECT_EQ(joined, object);
  EXPECT_EQ(MustSplit(Opts(SplitType::kRecordIO, BatchStrategy::kMultiRecord, limit), object, 1),
            whole);
  EXPECT_EQ(MustSplit(Opts(SplitType::kRecordIO, BatchStrategy::kMultiRecord, limit), object, 7),
            whole);
}

TEST(RecordIOSplit, BadMagicTruncationAndOversizeAreErrors) {
  std::string object;
  data::AppendRecordIOFrame("first", &object);
  data::AppendRecordIOFrame("second record", &object);

  std::string bad = object;
  bad[object.size() - 24] ^= 0x55;  // inside the second frame's magic
  auto cuts = SplitString(Opts(SplitType::kRecordIO, BatchStrategy::kSingleRecord, 100, "r.rec"),
                          bad);
  ASSERT_FALSE(cuts.ok());
  EXPECT_THAT(cuts.status().message(), HasSubstr("'r.rec' is not RecordIO at record 2"));

  cuts = SplitString(Opts(SplitType::kRecordIO, BatchStrategy::kMultiRecord, 100, "r.rec"),
                     std::string_view(object).substr(0, object.size() - 3));
  ASSERT_FALSE(cuts.ok());
  EXPECT_THAT(cuts.status().message(), HasSubstr("ends inside RecordIO record 2"));

  cuts = SplitString(Opts(SplitType::kRecordIO, BatchStrategy::kSingleRecord, 10, "r.rec"),
                     object);
  ASSERT_FALSE(cuts.ok());
  EXPECT_THAT(cuts.status().message(), HasSubstr("record 2 of object 'r.rec' is larger"));
  // With MultiRecord the framing counts: "first" takes 16 bytes framed.
  cuts = SplitString(Opts(SplitType::kRecordIO, BatchStrategy::kMultiRecord, 15, "r.rec"), object);
  ASSERT_FALSE(cuts.ok());
  EXPECT_THAT(cuts.status().message(), HasSubstr("record 1 of object 'r.rec' is larger"));
}

// ---------------------------------------------------------------------------------------------
// TFRecord

TEST(TFRecord, Crc32cMatchesKnownValues) {
  // RFC 3720 B.4 test vectors and the classic "123456789" check value.
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  EXPECT_EQ(MaskCrc32c(0), 0xa282ead8u);
}

TEST(TFRecordSplit, RoundTripSingleAndMulti) {
  auto records = SampleBinaryRecords();
  std::string object;
  for (const auto& r : records) AppendTFRecordFrame(r, &object);
  for (std::size_t max_read : {std::size_t{1}, std::size_t{7}, SIZE_MAX}) {
    auto single = MustSplit(Opts(SplitType::kTFRecord, BatchStrategy::kSingleRecord, 100), object,
                            max_read);
    ASSERT_EQ(single.size(), records.size());
    for (std::size_t i = 0; i < records.size(); ++i) {
      EXPECT_EQ(single[i].body, records[i]);
      EXPECT_EQ(single[i].first, i);
    }
    auto multi = MustSplit(Opts(SplitType::kTFRecord, BatchStrategy::kMultiRecord, 100), object,
                           max_read);
    std::string joined;
    std::uint64_t total = 0;
    for (const Cut& c : multi) {
      EXPECT_LE(c.body.size(), 100u);
      EXPECT_EQ(c.first, total);
      total += c.count;
      joined += c.body;
    }
    EXPECT_EQ(joined, object);  // framing kept
    EXPECT_EQ(total, records.size());
  }
}

TEST(TFRecordSplit, ChecksumsAreVerified) {
  std::string object;
  AppendTFRecordFrame("one", &object);
  AppendTFRecordFrame("two", &object);
  std::string bad_data = object;
  bad_data[object.size() - 5] ^= 1;  // last byte of "two"
  auto cuts = SplitString(Opts(SplitType::kTFRecord, BatchStrategy::kMultiRecord, 100, "t.tfr"),
                          bad_data);
  ASSERT_FALSE(cuts.ok());
  EXPECT_THAT(cuts.status().message(), HasSubstr("bad TFRecord data checksum in record 2"));

  std::string bad_length = object;
  bad_length[0] ^= 1;
  cuts = SplitString(Opts(SplitType::kTFRecord, BatchStrategy::kSingleRecord, 100, "t.tfr"),
                     bad_length);
  ASSERT_FALSE(cuts.ok());
  EXPECT_THAT(cuts.status().message(), HasSubstr("bad TFRecord length checksum in record 1"));

  cuts = SplitString(Opts(SplitType::kTFRecord, BatchStrategy::kSingleRecord, 100, "t.tfr"),
                     std::string_view(object).substr(0, object.size() - 1));
  ASSERT_FALSE(cuts.ok());
  EXPECT_THAT(cuts.status().message(), HasSubstr("ends inside TFRecord record 2"));
}

// ---------------------------------------------------------------------------------------------
// Sources

TEST(ByteSources, GzipInputSplitsLikeThePlainObject) {
  std::string csv = MixedCsv(5000);
  // Two gzip members back to back read as one stream.
  std::string half1 = csv.substr(0, csv.size() / 2), half2 = csv.substr(csv.size() / 2);
  std::string gz = Gzip(half1) + Gzip(half2);
  auto options = Opts(SplitType::kLine, BatchStrategy::kMultiRecord, 4096);
  auto plain = MustSplit(options, csv);
  for (std::size_t max_read : {std::size_t{1}, std::size_t{7}, SIZE_MAX}) {
    auto cuts = SplitAll(options, GunzipSource(SourceFromMemory(gz, max_read), "in/data.csv.gz"));
    ASSERT_TRUE(cuts.ok()) << cuts.status().ToString();
    EXPECT_EQ(*cuts, plain);
  }
}

TEST(ByteSources, CorruptOrTruncatedGzipIsAnError) {
  std::string gz = Gzip(MixedCsv(500));
  auto options = Opts(SplitType::kLine, BatchStrategy::kMultiRecord, 1 << 20);
  auto truncated = SplitAll(
      options, GunzipSource(SourceFromMemory(std::string_view(gz).substr(0, gz.size() / 2)),
                            "in/t.gz"));
  ASSERT_FALSE(truncated.ok());
  EXPECT_THAT(truncated.status().message(), HasSubstr("'in/t.gz' is not valid gzip"));
  EXPECT_THAT(truncated.status().message(), HasSubstr("truncated"));

  std::string plain = "not gzip at all\n";
  auto corrupt = SplitAll(options, GunzipSource(SourceFromMemory(plain), "in/c.gz"));
  ASSERT_FALSE(corrupt.ok());
  EXPECT_THAT(corrupt.status().message(), HasSubstr("'in/c.gz' is not valid gzip"));
}

TEST(ByteSources, ReadAtAdapterWalksTheObject) {
  std::string csv = MixedCsv(400);
  std::vector<std::uint64_t> offsets;
  ReadAtFn read_at = [&](std::uint64_t offset, std::size_t n, std::string* out) -> Status {
    offsets.push_back(offset);
    *out = offset < csv.size() ? csv.substr(offset, std::min<std::size_t>(n, 100)) : "";
    return Status::Ok();
  };
  auto options = Opts(SplitType::kLine, BatchStrategy::kMultiRecord, 300);
  auto cuts = SplitAll(options, SourceFromReadAt(read_at));
  ASSERT_TRUE(cuts.ok()) << cuts.status().ToString();
  EXPECT_EQ(*cuts, MustSplit(options, csv));
  for (std::size_t i = 1; i < offsets.size(); ++i) EXPECT_GT(offsets[i], offsets[i - 1]);

  ReadAtFn failing = [](std::uint64_t, std::size_t, std::string*) {
    return Unavailable("storage is down");
  };
  auto failed = SplitAll(options, SourceFromReadAt(failing));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
}

// ---------------------------------------------------------------------------------------------
// JSONPath

Json J(std::string_view text) { return Json::parse(text); }

Json Eval(std::string_view path, const Json& value) {
  auto p = JsonPath::Parse(path, "DataProcessing.OutputFilter");
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  if (!p.ok()) return nullptr;
  auto r = p->Evaluate(value, "record 1");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : Json(nullptr);
}

TEST(JsonPath, DocumentedOperators) {
  const Json row = J("[0,1,2,3,4,5,6,7]");
  EXPECT_EQ(Eval("$", row), row);
  EXPECT_EQ(Eval("", row), row);
  EXPECT_EQ(Eval("$[1:]", row), J("[1,2,3,4,5,6,7]"));
  EXPECT_EQ(Eval("$[0,5:]", row), J("[0,5,6,7]"));
  EXPECT_EQ(Eval("$[1,3,5]", row), J("[1,3,5]"));
  EXPECT_EQ(Eval("$[1]", row), J("1"));
  EXPECT_EQ(Eval("$[-1]", row), J("7"));
  EXPECT_EQ(Eval("$[*]", row), row);
  // "$[1:4] specifies the second through fifth columns"; "[:5] ... the first column (index 0)
  // through the sixth column": slices include their end.
  EXPECT_EQ(Eval("$[1:4]", row), J("[1,2,3,4]"));
  EXPECT_EQ(Eval("$[:5]", row), J("[0,1,2,3,4,5]"));
  EXPECT_EQ(Eval("$[2:5]", row), J("[2,3,4,5]"));
  EXPECT_EQ(Eval("$[-2:]", row), J("[6,7]"));

  const Json doc = J(R"({"id":7,"features":[1,2],"a":{"b":{"c":true}},"SageMakerOutput":{"l":1}})");
  EXPECT_EQ(Eval("$.features", doc), J("[1,2]"));
  EXPECT_EQ(Eval("$.a.b", doc), J(R"({"c":true})"));
  EXPECT_EQ(Eval("$.a.b.c", doc), J("true"));
  EXPECT_EQ(Eval("$['features']", doc), J("[1,2]"));
  EXPECT_EQ(Eval("$.features[1]", doc), J("2"));
  EXPECT_EQ(Eval("$.id.*", J(R"({"id":{"x":1,"y":2}})")), J("[1,2]"));
  EXPECT_EQ(Eval("$.a.['b']", doc), J(R"({"c":true})"));
  // Several names: an object with those members, in the order named.
  Json picked = Eval("$['id','SageMakerOutput']", doc);
  EXPECT_EQ(picked.dump(), R"({"id":7,"SageMakerOutput":{"l":1}})");
  EXPECT_EQ(Eval("$.a.['b', 'zz']", J(R"({"a":{"zz":1,"b":2}})")).dump(), R"({"b":2,"zz":1})");
}

TEST(JsonPath, ParseErrorsNameTheFieldAndTheRule) {
  struct Case {
    std::string expr, rule;
  };
  for (const Case& c : std::vector<Case>{
           {"features", "must start with '$'"},
           {"$[", "expected an integer index"},
           {"$[1", "expected ']'"},
           {"$.", "expected a name or '*' after '.'"},
           {"$['a','b'].c", "several names must be the last step"},
           {"$['a", "unterminated quoted name"},
           {"$x", "unexpected 'x'"},
           {"$[a]", "expected an integer index"},
       }) {
    auto p = JsonPath::Parse(c.expr, "DataProcessing.InputFilter");
    ASSERT_FALSE(p.ok()) << c.expr;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(p.status().message(),
                HasSubstr("Value '" + c.expr + "' at 'DataProcessing.InputFilter' failed to "
                          "satisfy constraint"));
    EXPECT_THAT(p.status().message(), HasSubstr(c.rule)) << c.expr;
  }
  std::string long_path = "$." + std::string(62, 'a');
  auto p = JsonPath::Parse(long_path, "DataProcessing.OutputFilter");
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("at 'DataProcessing.OutputFilter'"));
  EXPECT_THAT(p.status().message(), HasSubstr("length less than or equal to 63"));
  EXPECT_TRUE(JsonPath::Parse(long_path.substr(0, 63), "DataProcessing.OutputFilter").ok());
}

TEST(JsonPath, OutOfRangeIndexesAndMissingMembersAreErrors) {
  auto p = JsonPath::Parse("$[0,5:]", "DataProcessing.OutputFilter");
  ASSERT_TRUE(p.ok());
  auto r = p->Evaluate(J("[1,2,3]"), "record 4 of object 'k'");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("DataProcessing.OutputFilter '$[0,5:]'"));
  EXPECT_THAT(r.status().message(), HasSubstr("record 4 of object 'k'"));
  EXPECT_THAT(r.status().message(), HasSubstr("index 5 is outside an array of 3 elements"));
  EXPECT_FALSE(p->SelectPositions(3, "row").ok());
  EXPECT_THAT(*p->SelectPositions(7, "row"), ElementsAre(0, 5, 6));

  auto q = JsonPath::Parse("$.features", "DataProcessing.InputFilter");
  ASSERT_TRUE(q.ok());
  auto missing = q->Evaluate(J(R"({"id":1})"), "record 2");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("no member 'features'"));
  EXPECT_FALSE(q->Evaluate(J("[1]"), "record 2").ok());
  EXPECT_FALSE(q->is_positional());
  EXPECT_TRUE(JsonPath::Parse("$[-1]", "f")->is_positional());
}

// ---------------------------------------------------------------------------------------------
// DataProcessing

DataProcessing MustCreate(DataProcessingOptions o) {
  auto dp = DataProcessing::Create(o);
  EXPECT_TRUE(dp.ok()) << dp.status().ToString();
  return dp.ok() ? *dp : DataProcessing();
}

DataProcessingOptions CsvOptions(std::string in, std::string join, std::string out) {
  DataProcessingOptions o;
  o.input_filter = std::move(in);
  o.join_source = join == "Input" ? JoinSource::kInput : JoinSource::kNone;
  o.output_filter = std::move(out);
  o.split_type = SplitType::kLine;
  o.content_type = "text/csv";
  o.accept = "text/csv";
  return o;
}

DataProcessingOptions JsonOptions(std::string in, std::string join, std::string out) {
  DataProcessingOptions o = CsvOptions(std::move(in), std::move(join), std::move(out));
  o.content_type = "application/jsonlines";
  o.accept = "application/jsonlines";
  return o;
}

// Runs one payload through `dp` with a model that answers `answer(filtered body)`.
Result<std::string> Transform(const DataProcessing& dp, std::string_view object,
                              BatchStrategy strategy,
                              const std::function<std::string(std::string_view)>& answer,
                              std::string_view response_type, std::uint64_t limit = 1 << 20) {
  auto options = Opts(SplitType::kLine, strategy, limit, "in/obj");
  if (dp.filters_input()) options.filter = dp.InputFilterFor("in/obj");
  options.keep_input = dp.needs_input();
  ASSIGN_OR_RETURN(auto splitter, PayloadSplitter::Open(options, SourceFromMemory(object)));
  std::string out;
  Payload p;
  for (;;) {
    ASSIGN_OR_RETURN(bool more, splitter->Next(&p));
    if (!more) break;
    ASSIGN_OR_RETURN(auto records,
                     dp.ProcessResponse(p, answer(p.body), response_type, "in/obj"));
    for (const auto& r : records) AppendAssembled(AssembleWith::kLine, r, &out);
  }
  return out;
}

// A stand-in model: one CSV line per input line, the number of fields it saw.
std::string CountFields(std::string_view body) {
  std::string out;
  for (std::size_t start = 0; start < body.size();) {
    std::size_t nl = body.find('\n', start);
    std::string_view line = body.substr(start, nl - start);
    out += std::to_string(SplitCsvRow(line).size()) + "\n";
    start = nl + 1;
  }
  return out;
}

TEST(DataProcessing, GuideExampleOutputInputDataAndInferences) {
  // "if the record is [1,2,3], and the label result is [1], then the output file would contain
  // [1,2,3,1]".
  auto dp = MustCreate(CsvOptions("$", "Input", "$"));
  Payload p{"1,2,3\n", 0, 1, "", false};
  auto out = dp.ProcessResponse(p, "1\n", "text/csv", "k");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_THAT(*out, ElementsAre("1,2,3,1"));

  // JSON: {"key":1} and the result {"label":1}.
  auto jdp = MustCreate(JsonOptions("$", "Input", "$"));
  Payload jp{"{\"key\":1}\n", 0, 1, "", false};
  auto jout = jdp.ProcessResponse(jp, "{\"label\":1}", "application/json", "k");
  ASSERT_TRUE(jout.ok()) << jout.status().ToString();
  EXPECT_THAT(*jout, ElementsAre(R"({"key":1,"SageMakerOutput":{"label":1}})"));

  // Not a key-value object: input under SageMakerInput.
  Payload ap{"[1,2]\n", 0, 1, "", false};
  auto aout = jdp.ProcessResponse(ap, "0.5\n", "application/jsonlines", "k");
  ASSERT_TRUE(aout.ok()) << aout.status().ToString();
  EXPECT_THAT(*aout, ElementsAre(R"({"SageMakerInput":[1,2],"SageMakerOutput":0.5})"));
}

TEST(DataProcessing, GuideExampleCsvIdColumnExcludedFromInputKeptInOutput) {
  // Five columns, the first is the ID: InputFilter "$[1:]", JoinSource Input, OutputFilter "$".
  auto dp = MustCreate(CsvOptions("$[1:]", "Input", "$"));
  std::string seen;
  auto out = Transform(dp, "id1,1,2,3,4\nid2,5,6,7,8\n", BatchStrategy::kMultiRecord,
                       [&](std::string_view body) {
                         seen = body;
                         return CountFields(body);
                       },
                       "text/csv");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(seen, "1,2,3,4\n5,6,7,8\n");  // the model never sees the IDs
  EXPECT_EQ(*out, "id1,1,2,3,4,4\nid2,5,6,7,8,4\n");

  // The API's OutputFilter example "$[0,5:]": the ID and everything from the sixth column,
  // i.e. the ID and the model's output.
  auto dp2 = MustCreate(CsvOptions("$[1:]", "Input", "$[0,5:]"));
  out = Transform(dp2, "id1,1,2,3,4\nid2,5,6,7,8\n", BatchStrategy::kSingleRecord, CountFields,
                  "text/csv");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, "id1,4\nid2,4\n");
}

TEST(DataProcessing, GuideExampleJsonIdAttribute) {
  // InputFilter "$.features", JoinSource Input, OutputFilter "$['id','SageMakerOutput']".
  auto dp = MustCreate(JsonOptions("$.features", "Input", "$['id','SageMakerOutput']"));
  std::string seen;
  auto out = Transform(
      dp, "{\"id\":1,\"features\":[1,2,3]}\n{\"id\":2,\"features\":[4,5]}\n",
      BatchStrategy::kMultiRecord,
      [&](std::string_view body) {
        seen = body;
        return std::string("{\"label\":1}\n{\"label\":0}\n");
      },
      "application/jsonlines");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(seen, "[1,2,3]\n[4,5]\n");
  EXPECT_EQ(*out,
            "{\"id\":1,\"SageMakerOutput\":{\"label\":1}}\n"
            "{\"id\":2,\"SageMakerOutput\":{\"label\":0}}\n");
}

TEST(DataProcessing, FilteredPayloadsRespectTheLimitAndKeepRecordIndexes) {
  auto dp = MustCreate(CsvOptions("$[1:]", "Input", "$"));
  auto options = Opts(SplitType::kLine, BatchStrategy::kMultiRecord, 12, "in/obj");
  options.filter = dp.InputFilterFor("in/obj");
  options.keep_input = true;
  // Filtered rows: "1,2\n" (4) "3,4,5\n" (6) "6\n" (2) "7,8\n" (4).
  auto cuts = MustSplit(options, "a,1,2\nb,3,4,5\r\nc,6\nd,7,8", 1);
  EXPECT_THAT(cuts, ElementsAre(C("1,2\n3,4,5\n6\n", 0, 3, "a,1,2\nb,3,4,5\r\nc,6\n"),
                                C("7,8\n", 3, 1, "d,7,8")));
  // A filter error names the field, the record and the object.
  auto bad = SplitString(options, "a,1\nb\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("DataProcessing.InputFilter '$[1:]'"));
  EXPECT_THAT(bad.status().message(), HasSubstr("record 2 of object 'in/obj'"));
}

TEST(DataProcessing, QuotedCsvFieldsKeepTheirText) {
  EXPECT_THAT(SplitCsvRow(R"(1,"a,b","say ""hi""",)"),
              ElementsAre("1", R"("a,b")", R"("say ""hi""")", ""));
  auto dp = MustCreate(CsvOptions("$[1:]", "Input", "$[0,-1]"));
  auto out = Transform(dp, "\"x,1\",2,3\n", BatchStrategy::kSingleRecord, CountFields, "text/csv");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, "\"x,1\",2\n");
}

TEST(DataProcessing, CsvInputJsonOutputJoinsAsJson) {
  DataProcessingOptions o = CsvOptions("$", "Input", "$");
  o.accept = "application/json";
  auto dp = MustCreate(o);
  Payload p{"7,abc,\"q,r\"\n", 0, 1, "", false};
  auto out = dp.ProcessResponse(p, R"({"predictions":[{"score":0.25}]})", "application/json",
                                "k");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_THAT(*out,
              ElementsAre(R"({"SageMakerInput":[7,"abc","q,r"],)"
                          R"("SageMakerOutput":{"predictions":[{"score":0.25}]}})"));
}

TEST(DataProcessing, MultiRecordJsonResponsesAreSplitPerRecord) {
  auto dp = MustCreate(JsonOptions("$", "None", "$.score"));
  // One array element per record, bare or under a single member.
  for (std::string body : {std::string(R"([{"score":1},{"score":2},{"score":3}])"),
                           std::string(R"({"predictions":[{"score":1},{"score":2},{"score":3}]})"),
                           std::string("{\"score\":1}\n{\"score\":2}\n{\"score\":3}\n")}) {
    Payload p{"{}\n{}\n{}\n", 10, 3, "", false};
    auto out = dp.ProcessResponse(p, body, "application/json", "k");
    ASSERT_TRUE(out.ok()) << body << ": " << out.status().ToString();
    EXPECT_THAT(*out, ElementsAre("1", "2", "3"));
  }
  Payload p{"{}\n{}\n{}\n", 10, 3, "", false};
  auto mismatch = dp.ProcessResponse(p, R"([{"score":1},{"score":2}])", "application/json", "k");
  ASSERT_FALSE(mismatch.ok());
  EXPECT_THAT(mismatch.status().message(),
              HasSubstr("records 11-13 of object 'k' holds 2 outputs for 3 records"));
}

TEST(DataProcessing, CsvResponseLineCountMismatchIsAnError) {
  auto dp = MustCreate(CsvOptions("$", "Input", "$"));
  auto out = Transform(dp, "1,2\n3,4\n5,6\n", BatchStrategy::kMultiRecord,
                       [](std::string_view) { return std::string("0\n1\n"); }, "text/csv");
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("records 1-3 of object 'in/obj'"));
  EXPECT_THAT(out.status().message(), HasSubstr("holds 2 outputs for 3 records"));
  EXPECT_THAT(out.status().message(), HasSubstr("one line per record"));
}

TEST(DataProcessing, OutputFilterOutOfRangeIsAnError) {
  auto dp = MustCreate(CsvOptions("$", "Input", "$[0,9]"));
  Payload p{"1,2,3\n", 4, 1, "", false};
  auto out = dp.ProcessResponse(p, "1\n", "text/csv", "in/k.csv");
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("DataProcessing.OutputFilter '$[0,9]'"));
  EXPECT_THAT(out.status().message(), HasSubstr("record 5 of object 'in/k.csv'"));
  EXPECT_THAT(out.status().message(), HasSubstr("index 9 is outside an array of 4 elements"));
}

TEST(DataProcessing, CreateRejectsWhatCannotWork) {
  struct Case {
    DataProcessingOptions o;
    std::string message;
  };
  DataProcessingOptions by_name = CsvOptions("$.id", "None", "$");
  DataProcessingOptions csv_out_by_name = CsvOptions("$", "Input", "$['id']");
  DataProcessingOptions binary = CsvOptions("$", "Input", "$");
  binary.content_type = "application/x-recordio-protobuf";
  DataProcessingOptions recordio = JsonOptions("$.a", "None", "$");
  recordio.split_type = SplitType::kRecordIO;
  DataProcessingOptions csv_none = CsvOptions("$[1:]", "None", "$");
  csv_none.split_type = SplitType::kNone;
  DataProcessingOptions bad_accept = JsonOptions("$", "Input", "$");
  bad_accept.accept = "image/png";
  DataProcessingOptions bad_path = CsvOptions("$[1:", "None", "$");
  for (const Case& c : std::vector<Case>{
           {by_name, "DataProcessing.InputFilter '$.id' selects by name"},
           {csv_out_by_name, "DataProcessing.OutputFilter '$['id']' selects by name"},
           {binary, "DataProcessing.JoinSource needs TransformInput.ContentType text/csv"},
           {recordio, "DataProcessing.InputFilter needs TransformInput.SplitType Line or None"},
           {csv_none, "needs TransformInput.SplitType Line"},
           {bad_accept, "needs TransformOutput.Accept text/csv"},
           {bad_path, "at 'DataProcessing.InputFilter'"},
       }) {
    auto dp = DataProcessing::Create(c.o);
    ASSERT_FALSE(dp.ok()) << c.message;
    EXPECT_EQ(dp.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(dp.status().message(), HasSubstr(c.message));
  }
  // The default changes nothing.
  auto plain = MustCreate(DataProcessingOptions{});
  EXPECT_FALSE(plain.filters_input());
  EXPECT_FALSE(plain.rewrites_output());
}

TEST(DataProcessing, RecordFormatsFromContentTypes) {
  EXPECT_EQ(RecordFormatOf("text/csv"), RecordFormat::kCsv);
  EXPECT_EQ(RecordFormatOf("Text/CSV; label_size=0"), RecordFormat::kCsv);
  EXPECT_EQ(RecordFormatOf("application/json"), RecordFormat::kJson);
  EXPECT_EQ(RecordFormatOf("application/jsonlines"), RecordFormat::kJson);
  EXPECT_EQ(RecordFormatOf("application/x-recordio-protobuf"), RecordFormat::kOther);
  // The response's type wins; without a usable one, Accept decides.
  DataProcessingOptions o = CsvOptions("$", "None", "$[0]");
  auto dp = MustCreate(o);
  EXPECT_EQ(dp.OutputFormat("application/json"), RecordFormat::kJson);
  EXPECT_EQ(dp.OutputFormat(""), RecordFormat::kCsv);
  EXPECT_EQ(dp.OutputFormat("application/octet-stream"), RecordFormat::kCsv);
}

// ---------------------------------------------------------------------------------------------
// Assembly and enums

TEST(OutputAssembly, LineAddsANewlineOnlyWhereMissing) {
  std::string out;
  AppendAssembled(AssembleWith::kLine, "0.1\n0.2", &out);
  AppendAssembled(AssembleWith::kLine, "0.3\n", &out);
  AppendAssembled(AssembleWith::kLine, "", &out);
  EXPECT_EQ(out, "0.1\n0.2\n0.3\n\n");
  out.clear();
  AppendAssembled(AssembleWith::kNone, "0.1\n0.2", &out);
  AppendAssembled(AssembleWith::kNone, "0.3", &out);
  EXPECT_EQ(out, "0.1\n0.20.3");
}

TEST(Enums, ApiSpellings) {
  EXPECT_EQ(*ParseSplitType("TFRecord", "TransformInput.SplitType"), SplitType::kTFRecord);
  EXPECT_EQ(*ParseBatchStrategy("SingleRecord", "BatchStrategy"), BatchStrategy::kSingleRecord);
  EXPECT_EQ(*ParseAssembleWith("Line", "TransformOutput.AssembleWith"), AssembleWith::kLine);
  EXPECT_EQ(*ParseJoinSource("Input", "DataProcessing.JoinSource"), JoinSource::kInput);
  auto bad = ParseSplitType("line", "TransformInput.SplitType");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("Value 'line' at 'TransformInput.SplitType'"));
  EXPECT_FALSE(ParseAssembleWith("Lines", "TransformOutput.AssembleWith").ok());
  EXPECT_FALSE(ParseJoinSource("Output", "DataProcessing.JoinSource").ok());
  EXPECT_FALSE(ParseBatchStrategy("Multi", "BatchStrategy").ok());
  EXPECT_EQ(PayloadLimitBytes(6), 6u * 1024 * 1024);
}

// ---------------------------------------------------------------------------------------------
// Throughput (run with --gtest_also_run_disabled_tests; HEARTH_BENCH_ROWS overrides 1M rows).

TEST(TransformThroughputTest, DISABLED_CsvLineMultiRecord) {
  const char* env = std::getenv("HEARTH_BENCH_ROWS");
  const std::size_t rows = env ? std::strtoull(env, nullptr, 10) : 1000000, cols = 28;
  std::string block;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-10, 10);
  char buf[32];
  const std::size_t block_rows = 10000;
  for (std::size_t r = 0; r < block_rows; ++r) {
    block += r % 2 ? "1" : "0";
    for (std::size_t c = 0; c < cols; ++c) {
      block += ',';
      block.append(buf, std::snprintf(buf, sizeof(buf), "%.6g", uniform(rng)));
    }
    block += '\n';
  }
  std::string csv;
  csv.reserve((rows / block_rows + 1) * block.size());
  for (std::size_t done = 0; done < rows; done += block_rows) csv += block;
  const std::size_t total_rows = (rows + block_rows - 1) / block_rows * block_rows;

  auto run = [&](const char* label, PayloadSplitter::Options options, ByteSource source,
                 std::size_t bytes) {
    auto start = std::chrono::steady_clock::now();
    std::clock_t cpu_start = std::clock();
    auto splitter = PayloadSplitter::Open(std::move(options), std::move(source));
    ASSERT_TRUE(splitter.ok());
    Payload p;
    std::uint64_t payloads = 0, records = 0;
    for (;;) {
      auto more = (*splitter)->Next(&p);
      ASSERT_TRUE(more.ok()) << more.status().ToString();
      if (!*more) break;
      ++payloads;
      records += p.record_count;
    }
    double cpu = double(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(records, total_rows);
    std::printf("%-34s %zu MB, %llu payloads: %.2f GB/s (CPU), %.2f GB/s (wall)\n", label,
                bytes >> 20, static_cast<unsigned long long>(payloads), bytes / cpu / 1e9,
                bytes / wall / 1e9);
  };
  auto options = Opts(SplitType::kLine, BatchStrategy::kMultiRecord, PayloadLimitBytes(6));
  run("Line+MultiRecord 6 MB", options, SourceFromMemory(csv), csv.size());

  auto dp = DataProcessing::Create(CsvOptions("$[1:]", "Input", "$"));
  ASSERT_TRUE(dp.ok());
  auto filtered = options;
  filtered.filter = dp->InputFilterFor("bench");
  filtered.keep_input = true;
  run("Line+MultiRecord 6 MB, $[1:]", filtered, SourceFromMemory(csv), csv.size());

  std::string gz = Gzip(csv, 1);
  run("Line+MultiRecord 6 MB, gzip", options, GunzipSource(SourceFromMemory(gz), "bench.gz"),
      csv.size());
}

}  // namespace
}  // namespace hearth::transform
