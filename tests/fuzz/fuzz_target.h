#pragma once
/// @file One fuzz harness per reader, written once and built two ways:
///   - with HONE_FUZZ (clang, `make fuzz`): each harness is a libFuzzer program `fuzz_<name>`;
///   - in every build: all harnesses link into `hone_fuzz_replay <name> PATH...`, which runs the
///     harness over the checked-in seed corpus and regression inputs (ctest `fuzz.replay.<name>`).
///
/// A harness feeds arbitrary bytes to a reader. The reader may reject them only with the errors its
/// header promises (hone::Error, naming the source); anything else — another exception type, a
/// crash, a sanitizer report, an allocation beyond libFuzzer's limit — is a finding.
///
///   HONE_FUZZ_TARGET(gzip) {
///     hone::fuzz::expect_rejection_only([&] { hone::io::gunzip(as_view(data, size), "fuzz"); });
///     return 0;
///   }
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string_view>
#include <type_traits>
#include <typeinfo>

#include "hone/core/error.h"

namespace hone::fuzz {

using TargetFunction = int (*)(const std::uint8_t* data, std::size_t size);

/// The replay build's table of harnesses (name -> function); returns true so it can initialize a static.
bool register_target(const char* name, TargetFunction function);

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

/// How many reader calls accepted or rejected their input (the replay prints them, and fails a
/// corpus that never reaches a reader's success path).
inline std::size_t accepted_calls = 0;
inline std::size_t rejected_calls = 0;

/// Counts a rejection; HONE_FUZZ_VERBOSE=1 prints its message (to see why a seed is rejected).
template <typename Exception>
void note_rejection(const Exception& e) {
  ++rejected_calls;
  static const bool verbose = std::getenv("HONE_FUZZ_VERBOSE") != nullptr;
  if constexpr (std::is_base_of_v<std::exception, Exception>) {
    if (verbose) std::fprintf(stderr, "rejected: %s\n", e.what());
  }
}

/// No other exception type is accepted (the default of expect_rejection_only).
struct NoOtherException {};

/// Runs `parse`; a hone::Error (or an `Accepted` exception) is the reader rejecting bad input and
/// is fine; any other exception aborts, so libFuzzer records the input as a crash.
template <typename Accepted = NoOtherException, typename Parse>
void expect_rejection_only(Parse&& parse) {
  try {
    parse();
    ++accepted_calls;
  } catch (const hone::Error& e) {
    note_rejection(e);
  } catch (const Accepted& e) {
    note_rejection(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hone fuzz: reader let through %s: %s\n", typeid(e).name(), e.what());
    std::abort();
  }
}

}  // namespace hone::fuzz

#ifdef HONE_FUZZ_REPLAY
#define HONE_FUZZ_TARGET(name)                                                    \
  static int hone_fuzz_target_##name(const std::uint8_t* data, std::size_t size); \
  [[maybe_unused]] static const bool hone_fuzz_registered_##name =                \
      ::hone::fuzz::register_target(#name, hone_fuzz_target_##name);              \
  static int hone_fuzz_target_##name(const std::uint8_t* data, std::size_t size)
#else
#define HONE_FUZZ_TARGET(name) extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
#endif
