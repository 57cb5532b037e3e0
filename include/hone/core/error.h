#pragma once
/// @file Errors are values with context: every hone failure is a hone::Error whose message names
/// the file, flag or tensor involved and what was expected. The CLI turns it into one line, exit 1.
#include "hone/core/format.h"

#include <stdexcept>
#include <string>
#include <utility>

namespace hone {

/// A failure the user can act on (bad file, bad shape, missing package...).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
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

}  // namespace hone

/// HONE_CHECK(cond, "format {}", args...): throws hone::Error with the message when cond is false.
#define HONE_CHECK(cond, ...)    \
  do {                           \
    if (!(cond)) {               \
      ::hone::fail(__VA_ARGS__); \
    }                            \
  } while (false)
