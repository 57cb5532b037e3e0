// hone_interrupted_writer WRITER DIR            writes versions 1, 2, 3, ... of WRITER into DIR until
//                                              killed, printing "wrote K" after each
// hone_interrupted_writer WRITER DIR --once K  writes version K once (exit 1 with the error's message)
// hone_interrupted_writer WRITER DIR --check   prints "version K" for the version DIR holds (exit 1
//                                              if none is whole) and "unexpected: NAME" for each
//                                              entry a reader could take for a good file
// Without --once, the loop starts after the version DIR already holds ("start K" before its first write).
// The interrupted-write tests (interrupted_write_test.cpp) run it, kill it and check what is left.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "hone/core/error.h"
#include "hone/core/log.h"
#include "versioned_writers.h"

int main(int argc, char** argv) {
  if (argc != 3 && !(argc == 4 && std::string(argv[3]) == "--check") &&
      !(argc == 5 && std::string(argv[3]) == "--once")) {
    std::fprintf(stderr, "usage: hone_interrupted_writer WRITER DIR [--once K | --check]\n");
    return 2;
  }
  hone::set_log_level(hone::LogLevel::kWarn);  // a line per compress pass, hundreds of times, says nothing
  try {
    const auto& writer = hone::testing::find_versioned_writer(argv[1]);
    const std::filesystem::path dir = argv[2];
    if (argc == 4) {
      std::printf("version %d\n", writer.check(dir));
      for (const auto& name : hone::testing::unexpected_entries(dir, writer.entries))
        std::printf("unexpected: %s\n", name.c_str());
      return 0;
    }
    if (argc == 5) {
      writer.write(dir, std::stoi(argv[4]));
      return 0;
    }
    int first = 1;
    try {
      first = writer.check(dir) + 1;
    } catch (const hone::Error&) {
      // nothing whole yet: start at 1
    }
    std::printf("start %d\n", first);
    std::fflush(stdout);
    for (int version = first;; ++version) {
      writer.write(dir, version);
      std::printf("wrote %d\n", version);
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hone_interrupted_writer: %s\n", e.what());
    return 1;
  }
}
