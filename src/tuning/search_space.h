// SearchSpace: the hyperparameter ranges of a tuning job (SageMaker's ParameterRanges) and the
// three forms a configuration takes:
//
//   Configuration     one number per parameter, in the space's order: the value of an integer
//                     or continuous parameter, the 0-based index into Values of a categorical.
//   hyperparameters   the strings a training job gets: integers as integers ("12"), continuous
//                     values in the shortest form that parses back to the same double, the
//                     categorical value itself.
//   encoding          a point of the unit cube, the input of the Bayesian model: one coordinate
//                     per integer or continuous parameter, after warping (below), and a one-hot
//                     block per categorical parameter.
//
// Warping. Logarithmic parameters are encoded as log(x), ReverseLogarithmic ones as -log(1 - x)
// (which spreads out the values close to 1), Linear ones as x; the result is mapped affinely
// onto [0, 1]. An integer range [a, b] covers [a - 0.5, b + 0.5] before warping and decodes by
// rounding, so uniform draws give every integer its share (its log share for Logarithmic);
// an integer is encoded at its own warped position, and Decode(Encode(c)) == c exactly.
//
// ScalingType Auto. SageMaker documents only that it "chooses the best scale"; Hearth reads
// Auto as Linear (Logarithmic or ReverseLogarithmic must be asked for).
//
// Validation follows SageMaker's rules and Hearth's message format; every violation is
// reported, up to ten, as "N validation error(s) detected: Value '<v>' at '<path>' failed to
// satisfy constraint: <rule>; ...", with paths like
// "parameterRanges.integerParameterRanges.1.member.minValue" under the caller's prefix. Rules:
//   - Name, MinValue, MaxValue (Values for categoricals) are present; names are unique.
//   - MinValue and MaxValue parse: integers for integer ranges, finite numbers for continuous.
//   - MinValue <= MaxValue.
//   - Logarithmic: MinValue > 0. ReverseLogarithmic: continuous only, 0 <= MinValue,
//     MaxValue < 1.
//   - At most 30 tunable parameters in all; a categorical has 1 to 30 distinct values.
//
// Thread safety: a SearchSpace is immutable after construction; all methods may be called
// concurrently.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace hearth::tuning {

class Rng;

enum class ParameterType { kInteger, kContinuous, kCategorical };
enum class ScalingType { kAuto, kLinear, kLogarithmic, kReverseLogarithmic };

// SageMaker's limits on ParameterRanges.
inline constexpr int kMaxTunableParameters = 30;
inline constexpr int kMaxCategoricalValues = 30;

struct ParameterRange {
  std::string name;
  ParameterType type = ParameterType::kContinuous;
  ScalingType scaling = ScalingType::kAuto;  // integer and continuous only
  double min_value = 0;                      // integer and continuous only
  double max_value = 0;
  std::vector<std::string> values;  // categorical only
};

struct Configuration {
  std::vector<double> values;
  bool operator==(const Configuration&) const = default;
};

class SearchSpace {
 public:
  // An empty space (no tunable parameters): every configuration is the empty one.
  SearchSpace() = default;

  // Parses a ParameterRanges object ({"IntegerParameterRanges": [...], ...}); `path` is the
  // wire path of that object, used in messages. AutoParameters (Autotune) are not supported:
  // a non-empty list is Unimplemented. Violations are InvalidArgument as described above.
  static Result<SearchSpace> FromJson(const nlohmann::json& parameter_ranges,
                                      std::string_view path = "parameterRanges");

  // Validates ranges built in code (integer, then continuous, then categorical order is not
  // required; the given order is kept). Messages use the same paths as FromJson would.
  static Result<SearchSpace> Create(std::vector<ParameterRange> parameters,
                                    std::string_view path = "parameterRanges");

  const std::vector<ParameterRange>& parameters() const { return parameters_; }
  int num_parameters() const { return static_cast<int>(parameters_.size()); }
  bool AllCategorical() const;
  // The number of distinct configurations; nullopt when a continuous parameter makes it
  // unbounded (or the product exceeds 2^63).
  std::optional<std::int64_t> NumCombinations() const;

  // Width of an encoding, and for each coordinate the parameter it belongs to (a categorical's
  // one-hot block maps to one parameter).
  int encoded_dim() const { return static_cast<int>(owner_.size()); }
  const std::vector<int>& encoded_owner() const { return owner_; }
  // True for the coordinates of integer and continuous parameters.
  bool IsNumericCoordinate(int coordinate) const;

  // `config` must belong to this space (values in range, right length).
  std::vector<double> Encode(const Configuration& config) const;
  // The nearest configuration: coordinates are clamped to [0, 1], integers rounded, and a
  // categorical takes the largest coordinate of its block (the first on ties).
  Configuration Decode(std::span<const double> point) const;
  // Decode(Encode-like point) then Encode again: the encoding of a feasible configuration.
  std::vector<double> Snap(std::span<const double> point) const;

  // One configuration drawn uniformly in the warped space.
  Configuration Sample(Rng& rng) const;
  // The configuration at `uniform` (one number in [0, 1) per parameter): numeric parameters
  // at that fraction of their warped range, categoricals at index floor(u · #values).
  Configuration FromUniform(std::span<const double> uniform) const;
  // The `index`-th configuration of the full product, parameters in order, the last one
  // varying fastest (integers ascending, categoricals in Values order). No continuous
  // parameter may vary, and 0 <= index < NumCombinations().
  Configuration GridPoint(std::int64_t index) const;

  // The training job's hyperparameter strings (only the tunable ones).
  std::map<std::string, std::string> ToHyperParameters(const Configuration& config) const;
  // The inverse, for configurations recorded as strings. Keys outside the space are ignored;
  // every parameter must be present and valid. With `allow_out_of_range` (parents of a
  // TransferLearning warm start, whose ranges may differ) numeric values outside [min, max]
  // are accepted as long as the warping is defined for them. InvalidArgument names the key.
  Result<Configuration> FromHyperParameters(const std::map<std::string, std::string>& hps,
                                            bool allow_out_of_range = false) const;

 private:
  explicit SearchSpace(std::vector<ParameterRange> parameters);

  // Warped bounds of numeric parameter i (integer ranges widened by half a step).
  double WarpedLow(int i) const { return warped_low_[i]; }
  double WarpedHigh(int i) const { return warped_high_[i]; }
  double ToUnit(int i, double value) const;
  double FromUnit(int i, double unit) const;

  std::vector<ParameterRange> parameters_;
  std::vector<int> offset_;  // first coordinate of each parameter
  std::vector<int> owner_;
  std::vector<double> warped_low_;
  std::vector<double> warped_high_;
};

// The effective scaling: Auto reads as Linear.
ScalingType EffectiveScaling(ScalingType scaling);
std::string_view ScalingTypeName(ScalingType scaling);

// Shortest decimal form that parses back to exactly `value` ("0.1", "1e-05", "3").
std::string FormatDouble(double value);

}  // namespace hearth::tuning
