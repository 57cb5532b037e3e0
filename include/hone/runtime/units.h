#pragma once
/// @file Byte sizes as people write them, both ways.
#include <cstdint>
#include <string>

namespace hone::runtime {

/// "8GiB", "512MiB", "1.5GB", "1000000" -> bytes. Throws hone::UsageError on anything else.
std::int64_t parse_bytes(const std::string& text);
/// 1536 -> "1.5 KiB"; negative -> "-".
std::string bytes_text(std::int64_t bytes);

}  // namespace hone::runtime
