#include "transform/json_path.h"

#include <charconv>

#include <fmt/format.h>

namespace hearth::transform {
namespace {

bool IsNameChar(char c) {
  switch (c) {
    case '.': case '[': case ']': case '\'': case '"': case ',': case '*': case ' ':
    case '\t': case '(': case ')': case '?': case '@':
      return false;
    default:
      return static_cast<unsigned char>(c) >= 0x20;
  }
}

class Parser {
 public:
  Parser(std::string_view expr, std::string_view field) : s_(expr), field_(field) {}

  Status Error(std::string_view rule) const {
    return InvalidArgument(fmt::format(
        "1 validation error detected: Value '{}' at '{}' failed to satisfy constraint: {} (at "
        "character {})",
        s_, field_, rule, i_ + 1));
  }

  bool done() const { return i_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[i_]; }
  void SkipSpaces() {
    while (!done() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  bool Eat(char c) {
    if (peek() != c) return false;
    ++i_;
    return true;
  }

  Result<std::int64_t> Int() {
    std::size_t start = i_;
    if (peek() == '-') ++i_;
    while (!done() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(s_.data() + start, s_.data() + i_, v);
    if (ec != std::errc() || p != s_.data() + i_) {
      i_ = start;
      return Error("expected an integer index");
    }
    return v;
  }

  Result<std::string> Quoted() {
    char quote = s_[i_++];
    std::string out;
    while (!done() && s_[i_] != quote) {
      if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
      out.push_back(s_[i_++]);
    }
    if (!Eat(quote)) return Error("unterminated quoted name");
    return out;
  }

  std::size_t pos() const { return i_; }
  void set_pos(std::size_t i) { i_ = i; }
  std::string_view text() const { return s_; }

 private:
  std::string_view s_;
  std::string_view field_;
  std::size_t i_ = 0;
};

}  // namespace

bool JsonPath::Step::definite() const {
  switch (kind) {
    case kName:
    case kNames: return true;
    case kWildcard: return false;
    case kIndexes: return items.size() == 1 && !items[0].is_slice;
  }
  return false;
}

Result<JsonPath> JsonPath::Parse(std::string_view expr, std::string_view field) {
  JsonPath path;
  if (expr.size() > kMaxJsonPathLength) {
    return InvalidArgument(fmt::format(
        "1 validation error detected: Value '{}' at '{}' failed to satisfy constraint: Member "
        "must have length less than or equal to {}",
        expr, field, kMaxJsonPathLength));
  }
  if (expr.empty()) return path;
  Parser p(expr, field);
  if (!p.Eat('$')) return p.Error("a JSONPath must start with '$'");
  while (!p.done()) {
    if (!path.steps_.empty() && path.steps_.back().kind == Step::kNames) {
      return p.Error("a bracket with several names must be the last step");
    }
    Step step;
    bool bracket = false;
    if (p.Eat('.')) {
      if (p.peek() == '[') {
        bracket = true;
      } else if (p.Eat('*')) {
        step.kind = Step::kWildcard;
      } else {
        std::size_t start = p.pos();
        while (!p.done() && IsNameChar(p.peek())) p.set_pos(p.pos() + 1);
        if (p.pos() == start) return p.Error("expected a name or '*' after '.'");
        step.kind = Step::kName;
        step.names.emplace_back(p.text().substr(start, p.pos() - start));
      }
    } else if (p.peek() == '[') {
      bracket = true;
    } else {
      return p.Error(fmt::format("unexpected '{}': expected '.' or '['", p.peek()));
    }
    if (bracket) {
      p.Eat('[');
      p.SkipSpaces();
      if (p.Eat('*')) {
        step.kind = Step::kWildcard;
      } else if (p.peek() == '\'' || p.peek() == '"') {
        for (;;) {
          ASSIGN_OR_RETURN(std::string name, p.Quoted());
          step.names.push_back(std::move(name));
          p.SkipSpaces();
          if (!p.Eat(',')) break;
          p.SkipSpaces();
          if (p.peek() != '\'' && p.peek() != '"') return p.Error("expected a quoted name");
        }
        step.kind = step.names.size() == 1 ? Step::kName : Step::kNames;
      } else {
        step.kind = Step::kIndexes;
        for (;;) {
          p.SkipSpaces();
          Item item;
          if (p.peek() != ':') {
            ASSIGN_OR_RETURN(item.start, p.Int());
            item.has_start = true;
          }
          p.SkipSpaces();
          if (p.Eat(':')) {
            item.is_slice = true;
            p.SkipSpaces();
            if (p.peek() != ',' && p.peek() != ']') {
              ASSIGN_OR_RETURN(item.end, p.Int());
              item.has_end = true;
            }
          } else if (!item.has_start) {
            return p.Error("expected an index or a slice");
          }
          step.items.push_back(item);
          p.SkipSpaces();
          if (!p.Eat(',')) break;
        }
      }
      p.SkipSpaces();
      if (!p.Eat(']')) return p.Error("expected ']'");
    }
    path.steps_.push_back(std::move(step));
  }
  path.text_ = std::string(expr);
  path.field_ = std::string(field);
  return path;
}

bool JsonPath::is_positional() const {
  return steps_.empty() ||
         (steps_.size() == 1 &&
          (steps_[0].kind == Step::kIndexes || steps_[0].kind == Step::kWildcard));
}

bool JsonPath::is_definite() const {
  for (const Step& s : steps_) {
    if (!s.definite()) return false;
  }
  return true;
}

Status JsonPath::EvalError(std::string_view what, std::string_view why) const {
  return InvalidArgument(fmt::format("{} '{}' cannot be applied to {}: {}",
                                     field_.empty() ? "JSONPath" : field_, text_, what, why));
}

Result<std::vector<std::size_t>> JsonPath::Positions(const Step& step, std::size_t size,
                                                     std::string_view what) const {
  std::vector<std::size_t> out;
  const auto n = static_cast<std::int64_t>(size);
  auto resolve = [&](std::int64_t index, std::int64_t* at) -> Status {
    std::int64_t i = index < 0 ? index + n : index;
    if (i < 0 || i >= n) {
      return EvalError(what, fmt::format("index {} is outside an array of {} elements", index,
                                         size));
    }
    *at = i;
    return Status::Ok();
  };
  if (step.kind == Step::kWildcard) {
    for (std::size_t i = 0; i < size; ++i) out.push_back(i);
    return out;
  }
  for (const Item& item : step.items) {
    if (!item.is_slice) {
      std::int64_t i = 0;
      RETURN_IF_ERROR(resolve(item.start, &i));
      out.push_back(static_cast<std::size_t>(i));
      continue;
    }
    // Both ends included, as the developer guide describes slices.
    std::int64_t first = 0, last = n - 1;
    if (item.has_start) RETURN_IF_ERROR(resolve(item.start, &first));
    if (item.has_end) RETURN_IF_ERROR(resolve(item.end, &last));
    for (std::int64_t i = first; i <= last; ++i) out.push_back(static_cast<std::size_t>(i));
  }
  return out;
}

Result<std::vector<std::size_t>> JsonPath::SelectPositions(std::size_t size,
                                                           std::string_view what) const {
  if (steps_.empty()) {
    std::vector<std::size_t> all(size);
    for (std::size_t i = 0; i < size; ++i) all[i] = i;
    return all;
  }
  if (!is_positional()) {
    return EvalError(what, "a CSV row is an array: only index based paths such as $[0] or "
                           "$[1:] apply");
  }
  return Positions(steps_[0], size, what);
}

Status JsonPath::Apply(std::size_t step_index, const Json& value, bool definite,
                       std::string_view what, Json* matches) const {
  if (step_index == steps_.size()) {
    matches->push_back(value);
    return Status::Ok();
  }
  const Step& step = steps_[step_index];
  const bool next_definite = definite && step.definite();
  switch (step.kind) {
    case Step::kName: {
      const std::string& name = step.names[0];
      if (!value.is_object()) {
        if (!definite) return Status::Ok();  // indefinite paths skip what does not match
        return EvalError(what, fmt::format("member '{}' was asked of a {}", name,
                                           value.type_name()));
      }
      auto it = value.find(name);
      if (it == value.end()) {
        if (!definite) return Status::Ok();
        return EvalError(what, fmt::format("there is no member '{}'", name));
      }
      return Apply(step_index + 1, *it, next_definite, what, matches);
    }
    case Step::kNames: {
      if (!value.is_object()) {
        if (!definite) return Status::Ok();
        return EvalError(what, fmt::format("members were asked of a {}", value.type_name()));
      }
      Json picked = Json::object();
      for (const std::string& name : step.names) {
        auto it = value.find(name);
        if (it == value.end()) {
          if (!definite) continue;
          return EvalError(what, fmt::format("there is no member '{}'", name));
        }
        picked[name] = *it;
      }
      return Apply(step_index + 1, picked, next_definite, what, matches);
    }
    case Step::kWildcard:
      if (value.is_object() || value.is_array()) {
        for (const Json& child : value) {
          RETURN_IF_ERROR(Apply(step_index + 1, child, false, what, matches));
        }
      }
      return Status::Ok();
    case Step::kIndexes: {
      if (!value.is_array()) {
        if (!definite) return Status::Ok();
        return EvalError(what, fmt::format("an index was asked of a {}", value.type_name()));
      }
      ASSIGN_OR_RETURN(std::vector<std::size_t> positions,
                       Positions(step, value.size(), what));
      for (std::size_t i : positions) {
        RETURN_IF_ERROR(Apply(step_index + 1, value[i], next_definite, what, matches));
      }
      return Status::Ok();
    }
  }
  return Status::Ok();
}

Result<Json> JsonPath::Evaluate(const Json& value, std::string_view what) const {
  if (steps_.empty()) return value;
  Json matches = Json::array();
  RETURN_IF_ERROR(Apply(0, value, true, what, &matches));
  if (is_definite()) {
    if (matches.size() != 1) return EvalError(what, "nothing matched");
    return std::move(matches[0]);
  }
  return matches;
}

}  // namespace hearth::transform
