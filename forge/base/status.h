// Status and Result<T>: forge's error model at every I/O and user-input boundary.
//
// A Status carries one line of text (what rule was broken), where it happened (file, tensor) and the
// process exit code the CLI maps it to. Never thrown: exceptions from nlohmann/CLI11 are caught at the
// boundary and turned into a Status. (std::expected is not used: clang 14, needed for libFuzzer, lacks it.)
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace forge {

// Documented process exit codes (README "Exit codes").
enum class ExitCode : int {
  kOk = 0,
  kInvalidInput = 1,   // unreadable or invalid input, I/O failure
  kNothingToDo = 2,    // nothing to do / no MTP head
  kMtpMismatch = 3,    // MTP config and tensors disagree, or graft refused (fit)
  kStructural = 4,     // structural problem in a checkpoint (mixed norms, shapes vs config, missing tensors)
  kVerifyFailed = 5,   // verification failed (divergence, manifest mismatch)
  kBusy = 75,          // another forge process is writing the same output (EX_TEMPFAIL: try again later)
  kUsage = 64,         // bad command line
};

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  static Status Error(ExitCode code, std::string message, std::string file = {}, std::string tensor = {});
  static Status Invalid(std::string message, std::string file = {}, std::string tensor = {}) {
    return Error(ExitCode::kInvalidInput, std::move(message), std::move(file), std::move(tensor));
  }

  bool ok() const { return code_ == ExitCode::kOk; }
  ExitCode code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& file() const { return file_; }
  const std::string& tensor() const { return tensor_; }

  // "FILE: tensor 'T': MESSAGE" on one line (parts omitted when unknown).
  std::string ToString() const;

  // Adds a file name if none is set yet (callers that know the file wrap lower-level errors).
  Status WithFile(const std::string& file) const;

 private:
  ExitCode code_ = ExitCode::kOk;
  std::string message_, file_, tensor_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design, like StatusOr
  Result(Status status) : status_(std::move(status)) {}  // NOLINT

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace forge

// Early-return helpers for Status and Result.
#define FORGE_RETURN_IF_ERROR(expr)       \
  do {                                    \
    ::forge::Status _st = (expr);         \
    if (!_st.ok()) return _st;            \
  } while (0)

// Declares a temporary: use it as a statement of its own (inside braces after an if).
#define FORGE_CONCAT_INNER(a, b) a##b
#define FORGE_CONCAT(a, b) FORGE_CONCAT_INNER(a, b)
#define FORGE_ASSIGN_OR_RETURN(lhs, expr) FORGE_ASSIGN_OR_RETURN_IMPL(FORGE_CONCAT(_res_, __LINE__), lhs, expr)
#define FORGE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
