#pragma once
/// @file Errors are values with context: every hone failure is a hone::Error whose message names
/// the file, option or tensor involved and what was expected. The CLI turns it into one line, exit 1
/// (exit 2 for a UsageError). Library messages never spell command-line flags: an error about an
/// option names the option (an options struct's field, e.g. "epochs") and carries it in option(),
/// and only tools/hone maps it to the flag (--epochs) through its flag table.
///
///   fail_usage_option("epochs", "epochs must be >= 1, got {}", epochs);
///   // hone train --epochs 0  ->  "hone: error: epochs must be >= 1, got 0 (flag --epochs)", exit 2
#include "hone/core/format.h"

#include <stdexcept>
#include <string>
#include <utility>

namespace hone {

/// A failure the user can act on (bad file, bad shape, missing package...).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, std::string option = {})
      : std::runtime_error(message), option_(std::move(option)) {}
  /// The library option the message is about ("epochs", "cuda_graphs"), or empty.
  const std::string& option() const { return option_; }

 private:
  std::string option_;
};

/// A mistake in how a command was called (bad flag value); the CLI exits with code 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

/// Throws hone::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

/// Throws hone::UsageError with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail_usage(fmt::format_string<Args...> format, Args&&... args) {
  throw UsageError(fmt::format(format, std::forward<Args>(args)...));
}

/// Throws hone::Error about the library option `option` (the CLI names its flag).
template <typename... Args>
[[noreturn]] void fail_option(const char* option, fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...), option);
}

/// Throws hone::UsageError about the library option `option` (the CLI names its flag).
template <typename... Args>
[[noreturn]] void fail_usage_option(const char* option, fmt::format_string<Args...> format, Args&&... args) {
  throw UsageError(fmt::format(format, std::forward<Args>(args)...), option);
}

}  // namespace hone

/// HONE_CHECK(cond, "format {}", args...): throws hone::Error with the message when cond is false.
#define HONE_CHECK(cond, ...)    \
  do {                           \
    if (!(cond)) {               \
      ::hone::fail(__VA_ARGS__); \
    }                            \
  } while (false)
