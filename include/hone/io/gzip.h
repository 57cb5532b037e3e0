#pragma once
/// @file gzip through zlib: whole-buffer inflate with a size cap, and deflate (tests, caches).
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace hone::io {

/// Default cap on a decompressed stream: large enough for every dataset hone reads.
inline constexpr std::size_t kMaxInflatedBytes = std::size_t{4} << 30;

/// Decompresses a gzip stream. `source` names it in errors (a truncated or corrupt stream, a bad
/// CRC or length, or trailing bytes that are not another gzip member throw hone::Error
/// "<source>: ..."); output larger than `max_bytes` throws too. Concatenated members (what
/// `cat a.gz b.gz` makes) are accepted and joined, as RFC 1952 and gzip(1) do.
std::string gunzip(std::string_view compressed, const std::string& source, std::size_t max_bytes = kMaxInflatedBytes);

/// Compresses `bytes` as a gzip stream.
std::string gzip(std::string_view bytes);

/// True when `bytes` starts with the gzip magic (1f 8b).
bool is_gzip(std::string_view bytes);

/// Reads a file, decompressing it when it is gzip'd (by magic, not by name).
std::string read_maybe_gzipped(const std::filesystem::path& path);

}  // namespace hone::io
