// JsonPath: the JSONPath subset SageMaker supports for DataProcessing.InputFilter and
// OutputFilter (developer guide, "Associate Prediction Results with Input Records",
// "Supported JSONPath Operators").
//
// Grammar (at most 63 characters, the API's limit; "" means "$"):
//   path     := '$' step*
//   step     := '.' name | '.' '*' | '.'? '[' selector ']'
//   selector := '*' | quoted (',' quoted)* | item (',' item)*
//   item     := int | int? ':' int?                  int may be negative: -1 is the last
//   quoted   := '\'' chars '\'' | '"' chars '"'      (backslash escapes the quote)
//   name     := one or more characters other than '.', '[', ']', '\'', '"', ',', '*', space
// Examples: $  $.id  $.a.b  $.id.*  $['id','SageMakerOutput']  $.field1.['child1','child2']
//           $[1]  $[1,3,5]  $[-1]  $[2:5]  $[:5]  $[2:]  $[0,5:]
// A bracket with several names must be the last step ("additional nesting of children within
// brackets is not supported").
//
// Slices include their end: the guide says "$[1:4] specifies the second through fifth
// columns" and "[:5] ... from the first column (index 0) through the sixth column". An omitted
// start is the first element, an omitted end the last.
//
// Results, as Jayway JsonPath (which the guide points to) returns them:
//   - a definite path (only single names and single indexes) yields the value itself;
//   - an index list, a slice or a wildcard yields an array of the selected values, in the
//     order the selector names them ($[0,5:] = element 0, then 5, 6, ... to the end);
//   - several quoted names yield an object with those members, in the order named.
// Errors (InvalidArgument): an index outside the array ("If you specify indexes that aren't
// within the dimension size of the joined dataset, you get an error"), a name missing from an
// object on a definite path (indefinite paths skip it, as Jayway does), a name applied to a
// non-object, an index applied to a non-array.
//
// Thread safety: a parsed JsonPath is immutable; Evaluate may run concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace hearth::transform {

// Keeps members in the order they were read or added, so joined records come out as the
// input had them ({"key":1,"SageMakerOutput":...}).
using Json = nlohmann::ordered_json;

inline constexpr std::size_t kMaxJsonPathLength = 63;

class JsonPath {
 public:
  // Parses `expr`. Errors read, in the API's validation format:
  //   1 validation error detected: Value '$[' at 'DataProcessing.InputFilter' failed to
  //   satisfy constraint: <rule> (at character 3)
  // naming `field` and the rule broken.
  static Result<JsonPath> Parse(std::string_view expr, std::string_view field);

  JsonPath() = default;  // "$"

  const std::string& text() const { return text_; }
  bool is_root() const { return steps_.empty(); }  // "$": selects everything
  // True when the path only selects array elements by position with a single step ($[1:],
  // $[0,5:], $[-1], $[*]) or is "$": the paths that apply to CSV rows.
  bool is_positional() const;
  // True when the result is the value itself rather than an array of matches.
  bool is_definite() const;

  // Applies the path to `value`. `what` names the record in errors ("record 12 of object
  // 'in/a.json'"); errors also name the field and the path.
  Result<Json> Evaluate(const Json& value, std::string_view what) const;

  // For a positional path: the positions it selects in an array of `size` elements, in
  // order (CSV rows are arrays of fields). InvalidArgument for an index outside the row.
  Result<std::vector<std::size_t>> SelectPositions(std::size_t size, std::string_view what) const;

 private:
  struct Item {  // one entry of an index selector
    bool is_slice = false;
    bool has_start = false, has_end = false;
    std::int64_t start = 0, end = 0;  // index when !is_slice (in `start`)
  };
  struct Step {
    enum Kind { kName, kNames, kWildcard, kIndexes } kind = kName;
    std::vector<std::string> names;  // kName: one; kNames: several
    std::vector<Item> items;         // kIndexes
    bool definite() const;
  };

  Result<std::vector<std::size_t>> Positions(const Step& step, std::size_t size,
                                             std::string_view what) const;
  Status Apply(std::size_t step_index, const Json& value, bool definite, std::string_view what,
               Json* matches) const;
  Status EvalError(std::string_view what, std::string_view why) const;

  std::string text_ = "$";
  std::string field_;  // "DataProcessing.InputFilter", for errors
  std::vector<Step> steps_;
};

}  // namespace hearth::transform
