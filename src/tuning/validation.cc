#include "tuning/validation.h"

namespace hearth::tuning {

void Violations::Add(std::string_view shown_value, std::string_view path, std::string_view rule) {
  errors_.push_back("Value " + std::string(shown_value) + " at '" + std::string(path) +
                    "' failed to satisfy constraint: " + std::string(rule));
}

void Violations::AddQuoted(std::string_view value, std::string_view path, std::string_view rule) {
  std::string shown;
  shown.reserve(value.size() + 2);
  shown.push_back('\'');
  shown.append(value);
  shown.push_back('\'');
  Add(shown, path, rule);
}

Status Violations::ToStatus() const {
  constexpr int kMaxListed = 10;
  const int n = static_cast<int>(errors_.size());
  std::string message =
      std::to_string(n) + (n == 1 ? " validation error" : " validation errors") + " detected: ";
  for (int i = 0; i < n && i < kMaxListed; ++i) {
    if (i > 0) message += "; ";
    message += errors_[i];
  }
  return InvalidArgument(std::move(message), "ValidationException");
}

}  // namespace hearth::tuning
