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

}  // namespace hone::testing
