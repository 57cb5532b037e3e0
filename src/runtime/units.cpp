#include "hone/runtime/units.h"

#include <cctype>
#include <cmath>
#include <exception>

#include "hone/core/error.h"

namespace hone::runtime {

std::int64_t parse_bytes(const std::string& text) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  double scale = 0;
  if (unit.empty() || unit == "b") scale = 1;
  if (unit == "kb") scale = 1e3;
  if (unit == "mb") scale = 1e6;
  if (unit == "gb") scale = 1e9;
  if (unit == "kib" || unit == "k") scale = 1024.0;
  if (unit == "mib" || unit == "m") scale = 1024.0 * 1024;
  if (unit == "gib" || unit == "g") scale = 1024.0 * 1024 * 1024;
  if (used == 0 || scale == 0 || !(value > 0) || !std::isfinite(value * scale) || value * scale > 9e18) {
    fail_usage(
        "bad size '{}': expected a positive number with an optional unit B, KB, MB, GB, KiB, MiB or GiB "
        "(e.g. 8GiB)",
        text);
  }
  return static_cast<std::int64_t>(value * scale);
}

std::string bytes_text(std::int64_t bytes) {
  if (bytes < 0) return "-";
  if (bytes < 1024 * 1024) return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / 1024);
  if (bytes < 1024LL * 1024 * 1024) return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1024.0 * 1024));
  return fmt::format("{:.2f} GiB", static_cast<double>(bytes) / (1024.0 * 1024 * 1024));
}

}  // namespace hone::runtime
