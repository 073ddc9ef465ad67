// Status and Result<T>: the error values every module returns for expected failures.
// Exceptions never cross a module boundary; programmer errors use BRICK_ASSERT instead.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace brickrt {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // the caller passed something malformed (bad flag, bad shape, bad YAML)
  kNotFound,         // a file, tensor, brick or key that should exist does not
  kCorrupt,          // stored data is damaged: truncated file, bad header, digest mismatch
  kUnsupported,      // well-formed but outside what brickrt implements (dtype, architecture variant)
  kIoError,          // the OS refused: open/read/write failed
  kOutOfRange,       // an index or size beyond a limit
  kUnavailable,      // a peer or resource is not reachable right now
  kInternal,         // a bug or an unexpected library failure
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "NotFound: tensor 'x' missing in model.safetensors" or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "<prefix>: <message>"; keeps the code. For adding context
  // (which file, which brick) as an error travels up.
  Status WithContext(const std::string& prefix) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status Corrupt(std::string m) { return {StatusCode::kCorrupt, std::move(m)}; }
inline Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design, like absl::StatusOr
  Result(Status status) : v_(std::move(status)) {
    if (std::get<Status>(v_).ok()) v_ = Status(StatusCode::kInternal, "Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  // REQUIRES: ok().
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

[[noreturn]] void AssertFail(const char* expr, const char* file, int line, const char* msg);

}  // namespace brickrt

#define BRICK_CONCAT_INNER(a, b) a##b
#define BRICK_CONCAT(a, b) BRICK_CONCAT_INNER(a, b)

#define BRICK_RETURN_IF_ERROR(expr)                  \
  do {                                               \
    ::brickrt::Status brick_status_ = (expr);        \
    if (!brick_status_.ok()) return brick_status_;   \
  } while (0)

#define BRICK_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

// BRICK_ASSIGN_OR_RETURN(auto x, MakeX()); returns the error status from the enclosing function.
#define BRICK_ASSIGN_OR_RETURN(lhs, expr) \
  BRICK_ASSIGN_OR_RETURN_IMPL(BRICK_CONCAT(brick_result_, __LINE__), lhs, expr)

// For programmer errors only: never reachable from user input.
#define BRICK_ASSERT(cond, msg) \
  do {                          \
    if (!(cond)) ::brickrt::AssertFail(#cond, __FILE__, __LINE__, msg); \
  } while (0)
