// Hyperparameters: SageMaker's names, types, defaults and ranges, declared once per algorithm
// as a table of HyperparameterSpec and checked before training starts.
//
// hyperparameters.json holds strings only. Parse() checks every value against its spec and
// fails with the message SageMaker's built-ins give in FailureReason, naming the
// hyperparameter and the rule ("Hyperparameter 'epochs' must be an integer >= 1, got 'x'.").
// A required one that is missing, and a name the algorithm does not know, fail too. Names
// starting with "_" (`_tuning_objective_metric`) or "sagemaker_" are platform keys and are
// ignored.
//
// "auto" is a legal value only where the spec says `allow_auto`; accessors then report it
// with IsAuto() and the algorithm decides.
//
// Thread safety: value types.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace hearth::algorithms {

enum class HpType { kInt, kFloat, kBool, kCategorical, kString };

struct HyperparameterSpec {
  std::string name;
  HpType type = HpType::kFloat;
  bool required = false;
  std::optional<std::string> default_value;  // as it would appear in hyperparameters.json
  std::optional<double> min;                 // inclusive, numeric types
  std::optional<double> max;                 // inclusive, numeric types
  bool min_exclusive = false;                // min is exclusive ("> 0")
  std::vector<std::string> choices;          // categorical
  bool allow_auto = false;                   // "auto" is accepted
};

class Hyperparameters {
 public:
  // Checks `raw` against `specs`. InvalidArgument naming the first offending hyperparameter.
  static Result<Hyperparameters> Parse(const std::vector<HyperparameterSpec>& specs,
                                       const std::map<std::string, std::string>& raw);

  bool Has(std::string_view name) const;     // given or defaulted
  bool IsAuto(std::string_view name) const;  // value is "auto"
  // Typed reads; the name must be in the specs and not "auto" (a programming error
  // otherwise: they abort).
  std::int64_t Int(std::string_view name) const;
  double Float(std::string_view name) const;
  bool Bool(std::string_view name) const;
  const std::string& String(std::string_view name) const;

  // Every resolved value, defaults included, as strings (logged at the start of training).
  const std::map<std::string, std::string, std::less<>>& values() const { return values_; }

 private:
  std::map<std::string, std::string, std::less<>> values_;
};

}  // namespace hearth::algorithms
