// CompressReport's JSON (schema hone-compress/1) and its human table.
#include <fmt/format.h>

#include <sstream>

#include "hone/compress/compress.h"
#include "hone/runtime/device_probe.h"
#include "hone/runtime/forward_runner.h"
#include "hone/runtime/settings.h"
#include "hone/runtime/target.h"
#include "hone/runtime/units.h"

namespace hone::compress {
namespace {

std::string ratio_text(double before, double after, const char* better) {
  if (before <= 0 || after <= 0) return "-";
  const double ratio = before / after;
  return ratio >= 1.0 ? fmt::format("{:.2f}x {}", ratio, better) : fmt::format("{:.2f}x (worse)", ratio);
}

std::string count_text(std::int64_t n) {
  auto digits = std::to_string(n);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(static_cast<std::size_t>(i), ",");
  return digits;
}

}  // namespace

nlohmann::json CompressReport::to_json() const {
  nlohmann::json passes_json = nlohmann::json::array();
  for (const auto& pass : passes) {
    passes_json.push_back({{"pass", pass.pass},
                           {"options", pass.options},
                           {"changed", pass.changed},
                           {"skipped", pass.skipped},
                           {"details", pass.details}});
  }
  nlohmann::json j = {{"schema", "hone-compress/1"},  {"source", source},      {"output", output},
                      {"architecture", architecture}, {"dataset", dataset},    {"device", device},
                      {"passes", passes_json},        {"diagnosis", diagnosis}};
  j["before"] = before ? before->to_json() : nlohmann::json(nullptr);
  j["after"] = after ? after->to_json() : nlohmann::json(nullptr);
  if (before && after) {
    nlohmann::json ratios = {
        {"file", static_cast<double>(before->file_bytes) / std::max<std::int64_t>(1, after->file_bytes)},
        {"memory", static_cast<double>(before->memory_bytes) / std::max<std::int64_t>(1, after->memory_bytes)}};
    nlohmann::json speedups = nlohmann::json::array();
    for (std::size_t i = 0; i < before->latency_ms.size() && i < after->latency_ms.size(); ++i) {
      speedups.push_back({{"batch", before->latency_ms[i].first},
                          {"speedup", before->latency_ms[i].second / after->latency_ms[i].second}});
    }
    ratios["latency"] = speedups;
    if (before->accuracy && after->accuracy)
      ratios["accuracy_change_points"] = 100.0 * (*after->accuracy - *before->accuracy);
    if (before->rmse && after->rmse) ratios["rmse_change_percent"] = 100.0 * (*after->rmse / *before->rmse - 1.0);
    j["ratios"] = ratios;
  }
  return j;
}

std::string CompressReport::to_text() const {
  std::ostringstream out;
  out << fmt::format("compressed {} -> {} ({} on {})\n", source, output, architecture, dataset);
  for (const auto& pass : passes) {
    out << fmt::format("pass {}: {} layer(s) changed, {} left as they were\n", pass.pass, pass.changed.size(),
                       pass.skipped.size());
    for (const auto& line : pass.changed) out << "  + " << line << "\n";
    for (const auto& line : pass.skipped) out << "  - " << line << "\n";
  }
  if (!before || !after) return out.str();
  out << fmt::format(
      "\nverdict on {} (latency: p50 on random inputs of the data's shape, timing only; accuracy: "
      "real test split, {} samples)\n",
      device, after->samples);
  const auto row = [&](const std::string& name, const std::string& a, const std::string& b, const std::string& r) {
    out << fmt::format("  {:<20} {:>14} {:>14}  {}\n", name, a, b, r);
  };
  row("", "before", "after", "");
  row("parameters", count_text(before->parameters), count_text(after->parameters),
      ratio_text(static_cast<double>(before->parameters), static_cast<double>(after->parameters), "fewer"));
  row("buffer elements", count_text(before->buffer_elements), count_text(after->buffer_elements), "");
  row("weights in memory", runtime::bytes_text(before->memory_bytes), runtime::bytes_text(after->memory_bytes),
      ratio_text(static_cast<double>(before->memory_bytes), static_cast<double>(after->memory_bytes), "smaller"));
  row("file", runtime::bytes_text(before->file_bytes), runtime::bytes_text(after->file_bytes),
      ratio_text(static_cast<double>(before->file_bytes), static_cast<double>(after->file_bytes), "smaller"));
  for (std::size_t i = 0; i < before->latency_ms.size() && i < after->latency_ms.size(); ++i) {
    row(fmt::format("latency batch {}", before->latency_ms[i].first),
        fmt::format("{:.3f} ms", before->latency_ms[i].second), fmt::format("{:.3f} ms", after->latency_ms[i].second),
        ratio_text(before->latency_ms[i].second, after->latency_ms[i].second, "faster"));
  }
  row("peak RSS (process)", runtime::bytes_text(before->peak_rss_bytes), runtime::bytes_text(after->peak_rss_bytes),
      "");
  if (before->accuracy && after->accuracy) {
    row("accuracy (test)", fmt::format("{:.2f} %", 100 * *before->accuracy),
        fmt::format("{:.2f} %", 100 * *after->accuracy),
        fmt::format("{:+.2f} points", 100 * (*after->accuracy - *before->accuracy)));
  }
  if (before->rmse && after->rmse) {
    row("RMSE (test)", fmt::format("{:.4f}", *before->rmse), fmt::format("{:.4f}", *after->rmse),
        fmt::format("{:+.2f} %", 100 * (*after->rmse / *before->rmse - 1.0)));
  }
  if (!before->accuracy && !before->rmse) row("accuracy", "n/a", "n/a", "(no dataset: a zoo name has random weights)");
  if (!diagnosis.empty()) {
    out << "\nwhy it did not pay everywhere:\n";
    for (const auto& line : diagnosis) out << "  - " << line << "\n";
  }
  return out.str();
}

}  // namespace hone::compress
