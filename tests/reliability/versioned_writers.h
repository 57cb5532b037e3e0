#pragma once
/// @file hone's writers, each able to write "version K" of its file or directory and to say which
/// version a directory holds. The interrupted-write tests kill a process that writes versions
/// 1, 2, 3, ... in a loop (hone_interrupted_writer) and then check that what is left is a whole
/// version no older than the one that was complete before the process started: never a mix, never
/// a truncated file taken for a good one, never nothing.
///
///   const auto& writer = find_versioned_writer("checkpoint");
///   writer.write(dir, 1);
///   EXPECT_EQ(writer.check(dir), 1);   // throws hone::Error if dir holds no whole version
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace hone::testing {

struct VersionedWriter {
  std::string name;
  std::string what;  ///< the hone function under test
  /// What a written `dir` holds besides hidden temporaries ('.'-prefixed), which no reader takes.
  std::vector<std::string> entries;
  /// Writes version `version` (>= 1) into `dir` through the real hone writer.
  std::function<void(const std::filesystem::path& dir, int version)> write;
  /// The version `dir` holds; throws hone::Error when it holds none, a partial one or a mix.
  std::function<int(const std::filesystem::path& dir)> check;
};

/// weights (run::save_weights), checkpoint (run::save_checkpoint), compressed-run
/// (compress::compress_model), export (export_::export_model without verification).
const std::vector<VersionedWriter>& versioned_writers();
const VersionedWriter& find_versioned_writer(const std::string& name);

/// Names of entries in `dir` that are neither `expected` nor hidden ('.'-prefixed temporaries):
/// a file a reader could take for a good one.
std::vector<std::string> unexpected_entries(const std::filesystem::path& dir, const std::vector<std::string>& expected);

}  // namespace hone::testing
