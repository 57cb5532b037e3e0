#pragma once
#include <gtest/gtest.h>

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

}  // namespace hone::testing
