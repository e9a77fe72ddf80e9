// Status and Result<T>: the one error vocabulary of Hearth.
//
// Expected failures (a missing object, a duplicate name, bad input) are values, never
// exceptions. A Status carries a coarse code, a human message, and an optional `reason`: a
// machine-readable sub-code that a front end may need to pick the exact wire error (S3's
// "NoSuchBucket" vs "NoSuchKey", say). Codes map to wire errors in exactly one function per
// front end (api/error_map.h, s3api/s3_errors.h).
//
// Thread safety: Status and Result are values; distinct objects may be used concurrently.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace hearth {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad input; message names the field and the rule
  kNotFound,            // the named resource does not exist
  kAlreadyExists,       // a resource with that name exists
  kFailedPrecondition,  // the resource is in the wrong state for the request
  kResourceExhausted,   // a limit was reached
  kUnauthenticated,     // credentials missing or invalid
  kPermissionDenied,    // authenticated but not allowed
  kUnimplemented,       // the operation is not supported
  kUnavailable,         // try again later
  kDeadlineExceeded,    // no answer in time
  kAborted,             // cut off midway: whether it took effect is unknown
  kInternal,            // a bug or an environment failure
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message, std::string reason = {})
      : code_(code), message_(std::move(message)), reason_(std::move(reason)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& reason() const { return reason_; }

  // "NotFound: no such bucket" — for logs and tests.
  std::string ToString() const;

  // Ignores the status deliberately (best-effort clean-up paths).
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string reason_;
};

inline Status InvalidArgument(std::string msg, std::string reason = {}) {
  return {StatusCode::kInvalidArgument, std::move(msg), std::move(reason)};
}
inline Status NotFound(std::string msg, std::string reason = {}) {
  return {StatusCode::kNotFound, std::move(msg), std::move(reason)};
}
inline Status AlreadyExists(std::string msg, std::string reason = {}) {
  return {StatusCode::kAlreadyExists, std::move(msg), std::move(reason)};
}
inline Status FailedPrecondition(std::string msg, std::string reason = {}) {
  return {StatusCode::kFailedPrecondition, std::move(msg), std::move(reason)};
}
inline Status ResourceExhausted(std::string msg, std::string reason = {}) {
  return {StatusCode::kResourceExhausted, std::move(msg), std::move(reason)};
}
inline Status Unauthenticated(std::string msg, std::string reason = {}) {
  return {StatusCode::kUnauthenticated, std::move(msg), std::move(reason)};
}
inline Status Unimplemented(std::string msg, std::string reason = {}) {
  return {StatusCode::kUnimplemented, std::move(msg), std::move(reason)};
}
inline Status Unavailable(std::string msg, std::string reason = {}) {
  return {StatusCode::kUnavailable, std::move(msg), std::move(reason)};
}
inline Status Internal(std::string msg, std::string reason = {}) {
  return {StatusCode::kInternal, std::move(msg), std::move(reason)};
}

// Result<T> holds either a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(v_).ok()) v_ = Status(StatusCode::kInternal, "Result built from OK");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace hearth

#define HEARTH_CONCAT_INNER(a, b) a##b
#define HEARTH_CONCAT(a, b) HEARTH_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::hearth::Status hearth_status_ = (expr);        \
    if (!hearth_status_.ok()) return hearth_status_; \
  } while (0)

#define HEARTH_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

// ASSIGN_OR_RETURN(auto x, Foo()); — returns Foo()'s status if it failed.
#define ASSIGN_OR_RETURN(lhs, expr) \
  HEARTH_ASSIGN_OR_RETURN_IMPL(HEARTH_CONCAT(hearth_result_, __LINE__), lhs, expr)
