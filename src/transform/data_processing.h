// DataProcessing: CreateTransformJob's InputFilter, JoinSource and OutputFilter, applied to
// records (developer guide, "Associate Prediction Results with Input Records"; sagemaker-api.md
// §5). JSONPath itself is json_path.h.
//
// The three steps, per record:
//   1. InputFilter selects what the model sees (the splitter calls FilterInput per record).
//   2. JoinSource = Input joins the *original* input record with the model's output for it.
//   3. OutputFilter selects what is written from the joined record (or from the output alone
//      when JoinSource = None).
//
// Record forms. A record is CSV or JSON, decided from content types:
//   - input records: TransformInput.ContentType;
//   - output records: the container's response Content-Type; when the response has none, or
//     one that is neither CSV nor JSON, TransformOutput.Accept; when that is empty too, the
//     input's form.
// text/csv (any parameters) is CSV; application/json, application/jsonlines,
// application/json-lines, application/x-jsonlines and application/jsonl are JSON; anything else
// cannot be filtered or joined (an error when DataProcessing asks for it).
//
// CSV records are rows: fields split at commas outside RFC 4180 double quotes, each field kept
// as its exact text (quotes included), so a row comes out byte for byte as it went in. As the
// guide says, "each row is taken as a JSON array, so only index based JSONPaths can be
// applied": a filter on CSV must be "$" or one positional step ($[1:], $[0,5:], $[-1], $[*]).
// Selected fields are written back joined by ','.
//
// Joining (JoinSource = Input):
//   CSV input, CSV output: the output's fields are appended to the input row
//                          ("1,2,3" + "1" -> "1,2,3,1", the guide's example).
//   JSON input object:     the output is added as member "SageMakerOutput" ({"key":1} +
//                          {"label":1} -> {"key":1,"SageMakerOutput":{"label":1}}); an
//                          existing member of that name is replaced, as the guide warns.
//   any other input:       {"SageMakerInput": input, "SageMakerOutput": output}.
//   Mixed forms are joined as JSON: a CSV row becomes an array whose fields are JSON numbers
//   when their text is a JSON number and strings otherwise (quotes removed, "" unescaped).
// The written record is CSV when the joined record is a CSV row, JSON (compact) otherwise.
// JSON values are re-serialised, so insignificant text may change (1.50 -> 1.5).
//
// Splitting a MultiRecord response into per-record outputs (needed to join or filter; not
// documented by SageMaker, chosen here): the body is cut into lines ('\n', a trailing '\r'
// dropped, nothing after the final '\n'). One line per record is the rule for CSV and JSON
// Lines responses. For an application/json response that does not hold one line per record:
// a single record takes the whole body; otherwise the body must be one JSON array with one
// element per record, or one object whose only member is such an array
// ({"predictions":[...]}, the built-in algorithms' shape). Anything else is an error naming the
// object, the records and both counts.
//
// Thread safety: immutable after Create; all methods may run concurrently (a filter made by
// InputFilterFor belongs to one splitter).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "transform/json_path.h"
#include "transform/payload_splitter.h"

namespace hearth::transform {

enum class RecordFormat { kCsv, kJson, kOther };
enum class JoinSource { kNone, kInput };

// The form of records of `content_type` (case-insensitive; parameters after ';' ignored).
RecordFormat RecordFormatOf(std::string_view content_type);

// "None" or "Input"; InvalidArgument naming `field` otherwise.
Result<JoinSource> ParseJoinSource(std::string_view value, std::string_view field);

struct DataProcessingOptions {
  std::string input_filter;   // DataProcessing.InputFilter; "" = "$"
  std::string output_filter;  // DataProcessing.OutputFilter; "" = "$"
  JoinSource join_source = JoinSource::kNone;
  SplitType split_type = SplitType::kNone;  // TransformInput.SplitType
  std::string content_type;                 // TransformInput.ContentType
  std::string accept;                       // TransformOutput.Accept
};

class DataProcessing {
 public:
  // Validates the options, with errors naming the field and rule:
  //   - InputFilter / OutputFilter must parse (json_path.h);
  //   - filtering or joining needs CSV or JSON input records and SplitType Line (CSV, JSON
  //     Lines) or None (one JSON document); never RecordIO/TFRecord;
  //   - a filter applied to CSV rows must be positional; an OutputFilter is checked against
  //     the output form that Accept (or the input form) implies, and again per response.
  static Result<DataProcessing> Create(const DataProcessingOptions& options);

  DataProcessing() = default;  // "$", None, "$": changes nothing

  // True when InputFilter selects less than everything: pass InputFilterFor() to the splitter.
  bool filters_input() const { return !input_filter_.is_root(); }
  // True when responses must be split per record and rewritten (JoinSource = Input or an
  // OutputFilter other than "$"): call ProcessResponse. Otherwise write responses as they are.
  bool rewrites_output() const { return join_ || !output_filter_.is_root(); }
  // True when the splitter must keep the original records (Options::keep_input).
  bool needs_input() const { return join_; }

  RecordFormat input_format() const { return input_format_; }
  // The output form for a response with `response_content_type` (may be empty).
  RecordFormat OutputFormat(std::string_view response_content_type) const;

  // Applies InputFilter to one record (without its line terminator); *out is replaced.
  // `what` names the record in errors.
  Status FilterInput(std::string_view record, std::string_view what, std::string* out) const;
  // FilterInput as a PayloadSplitter filter for `object_name`'s records. The filter keeps
  // scratch state (the CSV positions for the last row width): make one per splitter.
  RecordFilter InputFilterFor(std::string object_name) const;

  // Cuts `body`, the response to `record_count` records, into one output per record (without
  // line terminators), following the rule above. `what` names the records in errors.
  Result<std::vector<std::string>> SplitResponse(std::string_view body,
                                                 std::string_view response_content_type,
                                                 std::uint64_t record_count,
                                                 std::string_view what) const;

  // Joins (when asked) each record of `payload` with its output in `response_body` and applies
  // OutputFilter. Returns one written record per input record, in order, without
  // terminators: pass each to AppendAssembled (output_assembler.h). `payload` must come from a
  // splitter opened with keep_input = needs_input(). When !rewrites_output() the one element
  // returned is the response body unchanged.
  Result<std::vector<std::string>> ProcessResponse(const Payload& payload,
                                                   std::string_view response_body,
                                                   std::string_view response_content_type,
                                                   std::string_view object_name) const;

 private:
  Result<std::string> JoinAndFilter(std::string_view input, std::string_view output,
                                    RecordFormat output_format,
                                    std::string_view response_content_type,
                                    std::string_view what) const;

  JsonPath input_filter_;
  JsonPath output_filter_;
  bool join_ = false;
  SplitType split_type_ = SplitType::kNone;
  RecordFormat input_format_ = RecordFormat::kOther;
  RecordFormat accept_format_ = RecordFormat::kOther;
};

// A CSV row's fields as views into `row` (quotes kept), RFC 4180 quoting respected. The second
// form reuses *out's storage.
std::vector<std::string_view> SplitCsvRow(std::string_view row);
void SplitCsvRow(std::string_view row, std::vector<std::string_view>* out);

}  // namespace hearth::transform
