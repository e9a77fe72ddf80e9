// ServiceModel is a botocore service model (api/model/*.json) compiled for request validation.
// Hearth validates every request the way the AWS service does, before any handler runs, and it
// does so from the model alone: nothing here knows about a particular operation.
//
// ValidateInput(operation, input) returns:
//  - OK when `input` (the decoded JSON body) satisfies the operation's input shape. Members the
//    model does not know are ignored, and an explicit JSON null reads as an absent member, as
//    the service does.
//  - kInvalidArgument, reason "SerializationException", when a member has the wrong JSON type:
//    AWS's JSON deserializer rejects those before validation runs, so only the first is
//    reported, with the deserializer's wording:
//      "STRING_VALUE can not be converted to an Integer"  (also TRUE_VALUE, FALSE_VALUE,
//          NUMBER_VALUE; targets a String, an Integer, a Long, a Float, a Double, a Timestamp,
//          a Boolean — "an Boolean" after STRING_VALUE, as the service spells it)
//      "Start of structure or map found where not expected."  (object for a scalar or list)
//      "Start of list found where not expected"               (array for a scalar or object)
//      "Expected null"  /  "Expected list or null"  /  "Expected map or null"
//                                                             (scalar for a structure/list/map)
//  - kInvalidArgument, reason "ValidationException", listing constraint violations in model
//    order, at most 10 (as AWS caps them):
//      "1 validation error detected: <e>"  or  "N validation errors detected: <e1>; <e2>; ..."
//    where each <e> is "Value '<v>' at '<path>' failed to satisfy constraint: <rule>"
//    ("Value null at ..." for a missing required member; "Value at ..." for a sensitive shape)
//    and <rule> is one of
//      "Member must not be null"
//      "Member must have length less than or equal to N"     (strings in code points; lists; maps)
//      "Member must have length greater than or equal to N"
//      "Member must satisfy regular expression pattern: <the model's Java pattern>"
//      "Member must satisfy enum value set: [A, B, C]"
//      "Member must have value less than or equal to N"      (integer, long, float, double)
//      "Member must have value greater than or equal to N"
//      "Map keys must satisfy constraint: [<every rule of the key shape>]"
//      "Map value must satisfy constraint: [<every rule of the value shape>]"
//    Paths use member names with the first letter lower-cased ("resourceConfig.instanceType");
//    list elements are "<list>.<1-based index>.member" ("inputDataConfig.1.member.channelName");
//    a map's keys and scalar values are reported once per map at the map's own path, and
//    members inside structure or collection values at "<map>.<key>.member...".
//    Values print as Java would: strings bare, lists "[a, b]", maps "{k=v}", doubles "1.0".
//  - kUnimplemented, reason "UnknownOperationException", when the model has no such operation.
//
// Patterns are botocore's Java regular expressions. They are compiled with RE2 once, at Load,
// after rewriting the Java spellings RE2 lacks (\uXXXX, \p{Alnum} and the other POSIX classes,
// counted repetition above 1000); a pattern RE2 still cannot parse (lookaround) is not checked,
// and unchecked_pattern_count() says how many there are so a test can pin the number.
//
// Thread safety: a ServiceModel is immutable after Load; all methods may be called
// concurrently. SageMaker() and Logs() are safe to call from any thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace hearth::api {

class ServiceModel {
 public:
  // Parses a botocore service model (the trimmed form that scripts/trim-botocore-model.py
  // writes, or a full one). Returns InvalidArgument if it is not JSON or not a well-formed model
  // (a member naming a shape that does not exist, say).
  static Result<std::unique_ptr<ServiceModel>> Load(std::string_view model_json);

  // The models embedded in the binary (api/model/). Loaded once, on first use; they never fail
  // to load, since a broken embedded model is a build defect (the process aborts).
  static const ServiceModel& SageMaker();
  static const ServiceModel& Logs();

  ~ServiceModel();
  ServiceModel(const ServiceModel&) = delete;
  ServiceModel& operator=(const ServiceModel&) = delete;

  bool HasOperation(std::string_view operation) const;
  // Operation names in model order.
  std::vector<std::string> OperationNames() const;
  // metadata.targetPrefix ("SageMaker", "Logs_20140328"): the X-Amz-Target prefix.
  const std::string& target_prefix() const;

  // See the file comment for the result.
  Status ValidateInput(std::string_view operation, const nlohmann::json& input) const;

  // Distinct patterns RE2 could not parse, even after rewriting; those checks are skipped.
  std::size_t unchecked_pattern_count() const;
  const std::vector<std::string>& unchecked_patterns() const;

 private:
  struct Impl;  // service_model.cc

  explicit ServiceModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::api
