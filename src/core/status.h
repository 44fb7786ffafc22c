// Status and Result<T>: the one error type of ferry. Errors are returned, never thrown across
// module boundaries. A message says what failed, on what object, and what to do.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace ferry {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,  // the caller's input is wrong: fix the request
    kNotFound,         // the named object does not exist
    kAlreadyExists,    // the name is taken
    kFailedPrecondition,  // the object is in the wrong state for this operation
    kResourceExhausted,   // memory, disk or a port is not available
    kCorruption,          // stored or received data failed a check
    kUnavailable,         // a peer (QEMU, guest, agent) did not answer or went away
    kDeadlineExceeded,    // a timeout elapsed
    kInternal,            // an invariant of ours broke, or the OS failed unexpectedly
    kPermissionDenied,    // a policy or a peer's identity forbids it
    kCancelled,           // a user cancelled the operation
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return Status(Code::kInvalidArgument, std::move(m)); }
  static Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
  static Status AlreadyExists(std::string m) { return Status(Code::kAlreadyExists, std::move(m)); }
  static Status FailedPrecondition(std::string m) {
    return Status(Code::kFailedPrecondition, std::move(m));
  }
  static Status ResourceExhausted(std::string m) {
    return Status(Code::kResourceExhausted, std::move(m));
  }
  static Status Corruption(std::string m) { return Status(Code::kCorruption, std::move(m)); }
  static Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
  static Status DeadlineExceeded(std::string m) {
    return Status(Code::kDeadlineExceeded, std::move(m));
  }
  static Status Internal(std::string m) { return Status(Code::kInternal, std::move(m)); }
  static Status PermissionDenied(std::string m) {
    return Status(Code::kPermissionDenied, std::move(m));
  }
  static Status Cancelled(std::string m) { return Status(Code::kCancelled, std::move(m)); }
  // For errors that crossed a process boundary as (code name, message); kOk becomes kInternal.
  static Status FromCode(Code code, std::string m) {
    return Status(code == Code::kOk ? Code::kInternal : code, std::move(m));
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Stable, machine-readable name of the code ("not_found", ...), used by the API.
  const char* CodeName() const;
  static Code CodeFromName(const std::string& name);

  // Returns a copy whose message is "context: message", for adding the object an error is about.
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// Result<T> holds either a value or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "Result constructed from an OK status without a value");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace ferry

#define FERRY_RETURN_IF_ERROR(expr)      \
  do {                                   \
    ::ferry::Status _st = (expr);        \
    if (!_st.ok()) return _st;           \
  } while (0)

#define FERRY_CONCAT_INNER(a, b) a##b
#define FERRY_CONCAT(a, b) FERRY_CONCAT_INNER(a, b)
#define FERRY_ASSIGN_OR_RETURN(lhs, expr) \
  FERRY_ASSIGN_OR_RETURN_IMPL(FERRY_CONCAT(_res_, __LINE__), lhs, expr)
#define FERRY_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
