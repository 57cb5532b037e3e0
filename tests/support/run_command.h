#pragma once
/// @file Runs a shell command line for CLI tests: its exit code, standard output and standard error.
#include <filesystem>
#include <string>

namespace hone::testing {

struct CommandResult {
  int code = -1;  ///< exit status; -1 when it could not start or did not exit normally
  std::string out;
  std::string err;
};

/// Runs `command_line` through the shell; standard error goes through `stderr_file` (overwritten).
CommandResult run_command(const std::string& command_line, const std::filesystem::path& stderr_file);

}  // namespace hone::testing
