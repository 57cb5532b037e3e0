#pragma once
#include <gtest/gtest.h>

#include <c10/util/Exception.h>

#include <functional>
#include <string>

#include "hone/core/error.h"

namespace hone::testing {

/// Runs `body`, expects it to throw hone::Error, and returns the message (for HasSubstr checks).
template <typename Body>
std::string error_message(Body&& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a hone::Error";
  return {};
}

/// Runs `body`, expects a hone::UsageError (bad flags or options), and returns its message.
template <typename Body>
std::string usage_error_message(Body&& body) {
  try {
    body();
  } catch (const UsageError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a hone::UsageError";
  return {};
}

/// Runs `call` and expects a c10::Error (TORCH_CHECK in an operator) whose message contains `words`.
inline void expect_c10_error_mentioning(const std::function<void()>& call, const std::string& words) {
  try {
    call();
    ADD_FAILURE() << "no error; expected one mentioning '" << words << "'";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what_without_backtrace()).find(words), std::string::npos) << e.what_without_backtrace();
  }
}

}  // namespace hone::testing
