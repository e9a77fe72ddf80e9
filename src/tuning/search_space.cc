#include "tuning/search_space.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "tuning/random.h"
#include "tuning/validation.h"

namespace hearth::tuning {
namespace {

std::string_view ListKey(ParameterType type) {
  switch (type) {
    case ParameterType::kInteger:
      return "integerParameterRanges";
    case ParameterType::kContinuous:
      return "continuousParameterRanges";
    case ParameterType::kCategorical:
      return "categoricalParameterRanges";
  }
  return "";
}

std::string MemberPath(std::string_view prefix, ParameterType type, int index_in_list) {
  return std::string(prefix) + "." + std::string(ListKey(type)) + "." +
         std::to_string(index_in_list + 1) + ".member";
}

std::optional<double> ParseFiniteDouble(std::string_view text) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

// Integers are exact in a double up to 2^53; beyond that a range could not be enumerated anyway.
constexpr double kMaxExactInteger = 9007199254740992.0;

std::optional<double> ParseInteger(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (std::abs(static_cast<double>(value)) > kMaxExactInteger) return std::nullopt;
  return static_cast<double>(value);
}

std::optional<ScalingType> ParseScaling(std::string_view text) {
  if (text == "Auto") return ScalingType::kAuto;
  if (text == "Linear") return ScalingType::kLinear;
  if (text == "Logarithmic") return ScalingType::kLogarithmic;
  if (text == "ReverseLogarithmic") return ScalingType::kReverseLogarithmic;
  return std::nullopt;
}

double Warp(ScalingType scaling, double x) {
  switch (EffectiveScaling(scaling)) {
    case ScalingType::kLogarithmic:
      return std::log(x);
    case ScalingType::kReverseLogarithmic:
      return -std::log1p(-x);
    default:
      return x;
  }
}

double Unwarp(ScalingType scaling, double w) {
  switch (EffectiveScaling(scaling)) {
    case ScalingType::kLogarithmic:
      return std::exp(w);
    case ScalingType::kReverseLogarithmic:
      return -std::expm1(-w);
    default:
      return w;
  }
}

// Whether Warp is defined (finite) at x.
bool WarpDefined(ScalingType scaling, double x) {
  switch (EffectiveScaling(scaling)) {
    case ScalingType::kLogarithmic:
      return x > 0;
    case ScalingType::kReverseLogarithmic:
      return x < 1;
    default:
      return std::isfinite(x);
  }
}

void ValidateNumeric(const ParameterRange& p, const std::string& member, Violations& errors) {
  const bool is_integer = p.type == ParameterType::kInteger;
  bool bounds_ok = true;
  for (const auto& [value, field] :
       {std::pair{p.min_value, ".minValue"}, std::pair{p.max_value, ".maxValue"}}) {
    if (!std::isfinite(value)) {
      errors.AddQuoted(FormatDouble(value), member + field, "Member must be a finite number");
      bounds_ok = false;
    } else if (is_integer && (value != std::floor(value) || std::abs(value) > kMaxExactInteger)) {
      errors.AddQuoted(FormatDouble(value), member + field, "Member must be an integer");
      bounds_ok = false;
    }
  }
  if (!bounds_ok) return;
  if (p.min_value > p.max_value) {
    errors.AddQuoted(
        FormatDouble(p.min_value), member + ".minValue",
        "Member must be less than or equal to MaxValue '" + FormatDouble(p.max_value) + "'");
  }
  switch (p.scaling) {
    case ScalingType::kLogarithmic:
      if (p.min_value <= 0) {
        errors.AddQuoted(FormatDouble(p.min_value), member + ".minValue",
                         "Member must be greater than 0 when ScalingType is Logarithmic");
      }
      break;
    case ScalingType::kReverseLogarithmic:
      if (is_integer) {
        errors.AddQuoted("ReverseLogarithmic", member + ".scalingType",
                         "ReverseLogarithmic scaling is supported only for continuous parameter "
                         "ranges");
        break;
      }
      if (p.min_value < 0) {
        errors.AddQuoted(FormatDouble(p.min_value), member + ".minValue",
                         "Member must be greater than or equal to 0 when ScalingType is "
                         "ReverseLogarithmic");
      }
      if (p.max_value >= 1) {
        errors.AddQuoted(FormatDouble(p.max_value), member + ".maxValue",
                         "Member must be less than 1 when ScalingType is ReverseLogarithmic");
      }
      break;
    default:
      break;
  }
}

std::string JoinValues(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + values[i];
  return out + "]";
}

}  // namespace

ScalingType EffectiveScaling(ScalingType scaling) {
  return scaling == ScalingType::kAuto ? ScalingType::kLinear : scaling;
}

std::string_view ScalingTypeName(ScalingType scaling) {
  switch (scaling) {
    case ScalingType::kAuto:
      return "Auto";
    case ScalingType::kLinear:
      return "Linear";
    case ScalingType::kLogarithmic:
      return "Logarithmic";
    case ScalingType::kReverseLogarithmic:
      return "ReverseLogarithmic";
  }
  return "";
}

std::string FormatDouble(double value) {
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, ec == std::errc() ? end : buffer);
}

Result<SearchSpace> SearchSpace::FromJson(const nlohmann::json& ranges, std::string_view path) {
  if (ranges.is_null()) return SearchSpace();
  if (!ranges.is_object()) {
    return InvalidArgument("ParameterRanges at '" + std::string(path) + "' must be an object",
                           "ValidationException");
  }
  if (auto it = ranges.find("AutoParameters");
      it != ranges.end() && it->is_array() && !it->empty()) {
    return Unimplemented("AutoParameters (Autotune) are not supported; give explicit ranges");
  }
  Violations errors;
  std::vector<ParameterRange> parameters;
  auto read_string = [&](const nlohmann::json& member, const char* key, const std::string& at,
                         std::string* out) {
    auto it = member.find(key);
    if (it == member.end() || it->is_null()) {
      errors.AddNull(at);
      return false;
    }
    if (!it->is_string()) {
      errors.AddQuoted(it->dump(), at, "Member must be a string");
      return false;
    }
    *out = it->get<std::string>();
    return true;
  };

  for (ParameterType type :
       {ParameterType::kInteger, ParameterType::kContinuous, ParameterType::kCategorical}) {
    std::string key(ListKey(type));
    key[0] = static_cast<char>(key[0] - 'a' + 'A');
    auto list = ranges.find(key);
    if (list == ranges.end() || list->is_null()) continue;
    const std::string list_path = std::string(path) + "." + std::string(ListKey(type));
    if (!list->is_array()) {
      errors.AddQuoted(list->dump(), list_path, "Member must be a list");
      continue;
    }
    if (list->size() > static_cast<size_t>(kMaxTunableParameters)) {
      errors.AddQuoted(std::to_string(list->size()) + " items", list_path,
                       "Member must have length less than or equal to 30");
    }
    for (size_t i = 0; i < list->size(); ++i) {
      const nlohmann::json& member = (*list)[i];
      const std::string at = MemberPath(path, type, static_cast<int>(i));
      if (!member.is_object()) {
        errors.AddQuoted(member.dump(), at, "Member must be a structure");
        continue;
      }
      ParameterRange p;
      p.type = type;
      bool ok = read_string(member, "Name", at + ".name", &p.name);
      if (type == ParameterType::kCategorical) {
        auto values = member.find("Values");
        if (values == member.end() || values->is_null()) {
          errors.AddNull(at + ".values");
          ok = false;
        } else if (!values->is_array()) {
          errors.AddQuoted(values->dump(), at + ".values", "Member must be a list");
          ok = false;
        } else {
          for (const auto& v : *values) {
            if (!v.is_string()) {
              errors.AddQuoted(v.dump(), at + ".values", "Member must be a list of strings");
              ok = false;
              break;
            }
            p.values.push_back(v.get<std::string>());
          }
        }
      } else {
        std::string min_text;
        std::string max_text;
        const bool has_min = read_string(member, "MinValue", at + ".minValue", &min_text);
        const bool has_max = read_string(member, "MaxValue", at + ".maxValue", &max_text);
        ok = ok && has_min && has_max;
        auto parse = type == ParameterType::kInteger ? ParseInteger : ParseFiniteDouble;
        const char* rule = type == ParameterType::kInteger ? "Member must be an integer"
                                                           : "Member must be a finite number";
        for (auto [has, text, field, out] :
             {std::tuple{has_min, &min_text, ".minValue", &p.min_value},
              std::tuple{has_max, &max_text, ".maxValue", &p.max_value}}) {
          if (!has) continue;
          if (auto v = parse(*text)) {
            *out = *v;
          } else {
            errors.AddQuoted(*text, at + field, rule);
            ok = false;
          }
        }
        if (auto s = member.find("ScalingType"); s != member.end() && !s->is_null()) {
          std::optional<ScalingType> scaling;
          if (s->is_string()) scaling = ParseScaling(s->get<std::string>());
          if (!scaling) {
            errors.AddQuoted(s->is_string() ? s->get<std::string>() : s->dump(),
                             at + ".scalingType",
                             "Member must satisfy enum value set: [Auto, Linear, Logarithmic, "
                             "ReverseLogarithmic]");
            ok = false;
          } else {
            p.scaling = *scaling;
          }
        }
      }
      if (ok) parameters.push_back(std::move(p));
    }
  }
  if (!errors.empty()) return errors.ToStatus();
  return Create(std::move(parameters), path);
}

Result<SearchSpace> SearchSpace::Create(std::vector<ParameterRange> parameters,
                                        std::string_view path) {
  Violations errors;
  if (parameters.size() > static_cast<size_t>(kMaxTunableParameters)) {
    errors.AddQuoted(std::to_string(parameters.size()), path,
                     "The number of hyperparameters to tune must be less than or equal to 30");
  }
  std::set<std::string> names;
  int seen_of_type[3] = {0, 0, 0};
  for (const ParameterRange& p : parameters) {
    const int index_in_list = seen_of_type[static_cast<int>(p.type)]++;
    const std::string member = MemberPath(path, p.type, index_in_list);
    if (!names.insert(p.name).second) {
      errors.AddQuoted(p.name, member + ".name",
                       "Member must be unique across all parameter ranges");
    }
    if (p.type != ParameterType::kCategorical) {
      ValidateNumeric(p, member, errors);
      continue;
    }
    if (p.values.empty()) {
      errors.Add("[]", member + ".values", "Member must have length greater than or equal to 1");
    } else if (p.values.size() > static_cast<size_t>(kMaxCategoricalValues)) {
      errors.Add(JoinValues(p.values), member + ".values",
                 "Member must have length less than or equal to 30");
    } else if (std::set<std::string>(p.values.begin(), p.values.end()).size() != p.values.size()) {
      errors.Add(JoinValues(p.values), member + ".values", "Member must contain distinct values");
    }
  }
  if (!errors.empty()) return errors.ToStatus();
  return SearchSpace(std::move(parameters));
}

SearchSpace::SearchSpace(std::vector<ParameterRange> parameters)
    : parameters_(std::move(parameters)) {
  const int n = num_parameters();
  warped_low_.assign(n, 0.0);
  warped_high_.assign(n, 0.0);
  for (int i = 0; i < n; ++i) {
    const ParameterRange& p = parameters_[i];
    offset_.push_back(encoded_dim());
    if (p.type == ParameterType::kCategorical) {
      owner_.insert(owner_.end(), p.values.size(), i);
      continue;
    }
    owner_.push_back(i);
    const double half = p.type == ParameterType::kInteger ? 0.5 : 0.0;
    warped_low_[i] = Warp(p.scaling, p.min_value - half);
    warped_high_[i] = Warp(p.scaling, p.max_value + half);
  }
}

bool SearchSpace::AllCategorical() const {
  return std::all_of(parameters_.begin(), parameters_.end(),
                     [](const ParameterRange& p) { return p.type == ParameterType::kCategorical; });
}

std::optional<std::int64_t> SearchSpace::NumCombinations() const {
  std::int64_t total = 1;
  for (const ParameterRange& p : parameters_) {
    double count = 0;
    switch (p.type) {
      case ParameterType::kCategorical:
        count = static_cast<double>(p.values.size());
        break;
      case ParameterType::kInteger:
        count = p.max_value - p.min_value + 1;
        break;
      case ParameterType::kContinuous:
        if (p.min_value != p.max_value) return std::nullopt;
        count = 1;
        break;
    }
    if (count > static_cast<double>(std::numeric_limits<std::int64_t>::max() / total)) {
      return std::nullopt;
    }
    total *= static_cast<std::int64_t>(count);
  }
  return total;
}

bool SearchSpace::IsNumericCoordinate(int coordinate) const {
  return parameters_[owner_[coordinate]].type != ParameterType::kCategorical;
}

double SearchSpace::ToUnit(int i, double value) const {
  const double span = warped_high_[i] - warped_low_[i];
  if (span == 0) return 0.5;
  return (Warp(parameters_[i].scaling, value) - warped_low_[i]) / span;
}

double SearchSpace::FromUnit(int i, double unit) const {
  const ParameterRange& p = parameters_[i];
  // At (or a hair from) an end, the end itself: exp(log(0.5)) is 0.49999999999990874, a value
  // no user typed, and optimisers often settle exactly on a bound.
  constexpr double kEnd = 1e-9;
  if (unit <= kEnd) return p.min_value;
  if (unit >= 1 - kEnd) return p.max_value;
  const double x = Unwarp(p.scaling, warped_low_[i] + unit * (warped_high_[i] - warped_low_[i]));
  if (p.type == ParameterType::kInteger) {
    return std::clamp(std::round(x), p.min_value, p.max_value);
  }
  return std::clamp(x, p.min_value, p.max_value);
}

std::vector<double> SearchSpace::Encode(const Configuration& config) const {
  std::vector<double> point(encoded_dim(), 0.0);
  for (int i = 0; i < num_parameters(); ++i) {
    if (parameters_[i].type == ParameterType::kCategorical) {
      point[offset_[i] + static_cast<int>(config.values[i])] = 1.0;
    } else {
      point[offset_[i]] = ToUnit(i, config.values[i]);
    }
  }
  return point;
}

Configuration SearchSpace::Decode(std::span<const double> point) const {
  Configuration config;
  config.values.resize(num_parameters());
  for (int i = 0; i < num_parameters(); ++i) {
    const ParameterRange& p = parameters_[i];
    if (p.type != ParameterType::kCategorical) {
      config.values[i] = FromUnit(i, point[offset_[i]]);
      continue;
    }
    int best = 0;
    for (int j = 1; j < static_cast<int>(p.values.size()); ++j) {
      if (point[offset_[i] + j] > point[offset_[i] + best]) best = j;
    }
    config.values[i] = best;
  }
  return config;
}

std::vector<double> SearchSpace::Snap(std::span<const double> point) const {
  return Encode(Decode(point));
}

Configuration SearchSpace::Sample(Rng& rng) const {
  Configuration config;
  config.values.resize(num_parameters());
  for (int i = 0; i < num_parameters(); ++i) {
    const ParameterRange& p = parameters_[i];
    config.values[i] = p.type == ParameterType::kCategorical
                           ? static_cast<double>(rng.Below(p.values.size()))
                           : FromUnit(i, rng.Uniform());
  }
  return config;
}

Configuration SearchSpace::FromUniform(std::span<const double> uniform) const {
  Configuration config;
  config.values.resize(num_parameters());
  for (int i = 0; i < num_parameters(); ++i) {
    const ParameterRange& p = parameters_[i];
    if (p.type == ParameterType::kCategorical) {
      const double m = static_cast<double>(p.values.size());
      config.values[i] = std::min(std::floor(uniform[i] * m), m - 1);
    } else {
      config.values[i] = FromUnit(i, uniform[i]);
    }
  }
  return config;
}

Configuration SearchSpace::GridPoint(std::int64_t index) const {
  Configuration config;
  config.values.resize(num_parameters());
  for (int i = num_parameters() - 1; i >= 0; --i) {
    const ParameterRange& p = parameters_[i];
    switch (p.type) {
      case ParameterType::kCategorical: {
        const auto radix = static_cast<std::int64_t>(p.values.size());
        config.values[i] = static_cast<double>(index % radix);
        index /= radix;
        break;
      }
      case ParameterType::kInteger: {
        const auto radix = static_cast<std::int64_t>(p.max_value - p.min_value) + 1;
        config.values[i] = p.min_value + static_cast<double>(index % radix);
        index /= radix;
        break;
      }
      case ParameterType::kContinuous:
        config.values[i] = p.min_value;
        break;
    }
  }
  return config;
}

std::map<std::string, std::string> SearchSpace::ToHyperParameters(
    const Configuration& config) const {
  std::map<std::string, std::string> hps;
  for (int i = 0; i < num_parameters(); ++i) {
    const ParameterRange& p = parameters_[i];
    switch (p.type) {
      case ParameterType::kCategorical:
        hps[p.name] = p.values[static_cast<size_t>(config.values[i])];
        break;
      case ParameterType::kInteger:
        hps[p.name] = std::to_string(static_cast<std::int64_t>(config.values[i]));
        break;
      case ParameterType::kContinuous:
        hps[p.name] = FormatDouble(config.values[i]);
        break;
    }
  }
  return hps;
}

Result<Configuration> SearchSpace::FromHyperParameters(
    const std::map<std::string, std::string>& hps, bool allow_out_of_range) const {
  Configuration config;
  config.values.resize(num_parameters());
  for (int i = 0; i < num_parameters(); ++i) {
    const ParameterRange& p = parameters_[i];
    auto it = hps.find(p.name);
    if (it == hps.end()) {
      return InvalidArgument("Hyperparameter '" + p.name + "' is missing");
    }
    const std::string& text = it->second;
    if (p.type == ParameterType::kCategorical) {
      auto v = std::find(p.values.begin(), p.values.end(), text);
      if (v == p.values.end()) {
        return InvalidArgument("Value '" + text + "' of hyperparameter '" + p.name +
                               "' is not one of " + JoinValues(p.values));
      }
      config.values[i] = static_cast<double>(v - p.values.begin());
      continue;
    }
    const std::optional<double> value =
        p.type == ParameterType::kInteger ? ParseInteger(text) : ParseFiniteDouble(text);
    if (!value) {
      return InvalidArgument("Value '" + text + "' of hyperparameter '" + p.name + "' is not " +
                             (p.type == ParameterType::kInteger ? "an integer" : "a number"));
    }
    const bool in_range = *value >= p.min_value && *value <= p.max_value;
    if (!in_range && (!allow_out_of_range || !WarpDefined(p.scaling, *value))) {
      return InvalidArgument("Value '" + text + "' of hyperparameter '" + p.name +
                             "' is outside its range [" + FormatDouble(p.min_value) + ", " +
                             FormatDouble(p.max_value) + "]");
    }
    config.values[i] = *value;
  }
  return config;
}

}  // namespace hearth::tuning
