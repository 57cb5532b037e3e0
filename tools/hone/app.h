#pragma once
// The hone program as a library (hone_cli), so tests can build its command tree: make_app() wires
// every subcommand; run() parses, runs and maps errors to one line and an exit code.
#include <CLI/CLI.hpp>

#include <memory>

namespace hone::cli {

/// The root app with every subcommand registered (in the order --help lists them).
std::unique_ptr<CLI::App> make_app();

/// Parses argv, runs the command, prints errors as one line. Exit codes: 0 success, 1 runtime
/// error, 2 bad usage (an unknown command, a bad flag or value).
int run(int argc, char** argv);

}  // namespace hone::cli
