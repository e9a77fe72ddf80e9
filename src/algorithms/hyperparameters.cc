#include "algorithms/hyperparameters.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "fmt/format.h"

namespace hearth::algorithms {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

bool ParseDouble(std::string_view s, double* out) {
  if (s.empty()) return false;
  // from_chars rejects a leading '+', which JSON-encoded and hand-written values may carry.
  if (s.front() == '+') s.remove_prefix(1);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(*out);
}

bool ParseInt(std::string_view s, std::int64_t* out) {
  double d;
  // Accept "10" and "10.0" (tuning jobs and SDKs send integers as floats), not "10.5".
  if (!ParseDouble(s, &d) || d != std::floor(d) || std::fabs(d) > 9.0e15) return false;
  *out = static_cast<std::int64_t>(d);
  return true;
}

bool ParseBool(std::string_view s, bool* out) {
  std::string v = Lower(s);
  if (v == "true" || v == "1") return *out = true, true;
  if (v == "false" || v == "0") return *out = false, true;
  return false;
}

std::string FormatNumber(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

// "an integer >= 1", "a float in (0, 1]", ...
std::string Rule(const HyperparameterSpec& spec) {
  std::string kind;
  switch (spec.type) {
    case HpType::kInt: kind = "an integer"; break;
    case HpType::kFloat: kind = "a number"; break;
    case HpType::kBool: kind = "a boolean (true or false)"; break;
    case HpType::kString: kind = "a string"; break;
    case HpType::kCategorical: {
      kind = "one of ";
      for (std::size_t i = 0; i < spec.choices.size(); ++i) {
        kind += (i ? ", " : "") + spec.choices[i];
      }
      break;
    }
  }
  if (spec.type == HpType::kInt || spec.type == HpType::kFloat) {
    if (spec.min && spec.max) {
      kind += fmt::format(" in {}{}, {}]", spec.min_exclusive ? "(" : "[", FormatNumber(*spec.min),
                          FormatNumber(*spec.max));
    } else if (spec.min) {
      kind += fmt::format(" {} {}", spec.min_exclusive ? ">" : ">=", FormatNumber(*spec.min));
    } else if (spec.max) {
      kind += fmt::format(" <= {}", FormatNumber(*spec.max));
    }
  }
  if (spec.allow_auto) kind += " or 'auto'";
  return kind;
}

Status Invalid(const HyperparameterSpec& spec, std::string_view value) {
  return InvalidArgument(fmt::format("Hyperparameter '{}' must be {}, got '{}'.", spec.name,
                                     Rule(spec), value));
}

// Checks `value` against `spec` and returns its canonical string.
Result<std::string> Check(const HyperparameterSpec& spec, const std::string& raw) {
  std::string value = Trim(raw);
  if (spec.allow_auto && Lower(value) == "auto") return std::string("auto");
  switch (spec.type) {
    case HpType::kString:
      return value;
    case HpType::kBool: {
      bool b;
      if (!ParseBool(value, &b)) return Invalid(spec, raw);
      return std::string(b ? "true" : "false");
    }
    case HpType::kCategorical: {
      for (const auto& c : spec.choices) {
        if (Lower(c) == Lower(value)) return c;
      }
      return Invalid(spec, raw);
    }
    case HpType::kInt:
    case HpType::kFloat: {
      double d;
      if (spec.type == HpType::kInt) {
        std::int64_t i;
        if (!ParseInt(value, &i)) return Invalid(spec, raw);
        d = static_cast<double>(i);
        value = std::to_string(i);
      } else if (!ParseDouble(value, &d)) {
        return Invalid(spec, raw);
      }
      if (spec.min && (spec.min_exclusive ? d <= *spec.min : d < *spec.min)) {
        return Invalid(spec, raw);
      }
      if (spec.max && d > *spec.max) return Invalid(spec, raw);
      return value;
    }
  }
  return Invalid(spec, raw);
}

bool IsPlatformKey(std::string_view name) {
  return name.starts_with("_") || name.starts_with("sagemaker_");
}

}  // namespace

Result<Hyperparameters> Hyperparameters::Parse(const std::vector<HyperparameterSpec>& specs,
                                               const std::map<std::string, std::string>& raw) {
  for (const auto& [name, value] : raw) {
    if (IsPlatformKey(name)) continue;
    bool known = false;
    for (const auto& spec : specs) known = known || spec.name == name;
    if (!known) {
      return InvalidArgument(fmt::format(
          "Hyperparameter '{}' is not a hyperparameter of this algorithm.", name));
    }
  }
  Hyperparameters out;
  for (const auto& spec : specs) {
    auto it = raw.find(spec.name);
    if (it == raw.end()) {
      if (spec.required) {
        return InvalidArgument(
            fmt::format("Missing required hyperparameter '{}' ({}).", spec.name, Rule(spec)));
      }
      if (spec.default_value) out.values_[spec.name] = *spec.default_value;
      continue;
    }
    ASSIGN_OR_RETURN(out.values_[spec.name], Check(spec, it->second));
  }
  return out;
}

bool Hyperparameters::Has(std::string_view name) const { return values_.contains(name); }

bool Hyperparameters::IsAuto(std::string_view name) const {
  auto it = values_.find(name);
  return it != values_.end() && it->second == "auto";
}

namespace {
[[noreturn]] void Misuse(std::string_view name, std::string_view what) {
  fmt::print(stderr, "hyperparameter '{}' read as {} but {}\n", name, what,
             "it is missing, 'auto' or of another type");
  std::abort();
}
}  // namespace

std::int64_t Hyperparameters::Int(std::string_view name) const {
  std::int64_t v;
  auto it = values_.find(name);
  if (it == values_.end() || !ParseInt(it->second, &v)) Misuse(name, "an integer");
  return v;
}

double Hyperparameters::Float(std::string_view name) const {
  double v;
  auto it = values_.find(name);
  if (it == values_.end() || !ParseDouble(it->second, &v)) Misuse(name, "a number");
  return v;
}

bool Hyperparameters::Bool(std::string_view name) const {
  bool v;
  auto it = values_.find(name);
  if (it == values_.end() || !ParseBool(it->second, &v)) Misuse(name, "a boolean");
  return v;
}

const std::string& Hyperparameters::String(std::string_view name) const {
  auto it = values_.find(name);
  if (it == values_.end()) Misuse(name, "a string");
  return it->second;
}

}  // namespace hearth::algorithms
