// Violations: collects constraint violations and renders them as one SageMaker validation
// message, "N validation error(s) detected: Value '<v>' at '<path>' failed to satisfy
// constraint: <rule>; ..." (at most ten listed, as AWS does), reason "ValidationException".
//
// Thread safety: a value; distinct objects may be used concurrently.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace hearth::tuning {

class Violations {
 public:
  // `shown_value` is printed as is: quote it yourself, or pass "null".
  void Add(std::string_view shown_value, std::string_view path, std::string_view rule);
  void AddQuoted(std::string_view value, std::string_view path, std::string_view rule);
  void AddNull(std::string_view path) { Add("null", path, "Member must not be null"); }

  bool empty() const { return errors_.empty(); }
  Status ToStatus() const;

 private:
  std::vector<std::string> errors_;
};

}  // namespace hearth::tuning
