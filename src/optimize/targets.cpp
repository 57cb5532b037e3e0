#include "hone/optimize/targets.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "hone/core/error.h"

namespace hone::optimize {

nlohmann::json Targets::to_json() const {
  return {{"speedup", speedup},
          {"size", size},
          {"max_accuracy_drop", max_accuracy_drop},
          {"latency_ms", latency_ms ? nlohmann::json(*latency_ms) : nlohmann::json(nullptr)},
          {"latency_batch", latency_batch},
          {"batches", batches}};
}

Targets Targets::from_json(const nlohmann::json& j) {
  Targets t;
  t.speedup = j.at("speedup").get<double>();
  t.size = j.at("size").get<double>();
  t.max_accuracy_drop = j.at("max_accuracy_drop").get<double>();
  if (j.contains("latency_ms") && !j["latency_ms"].is_null()) t.latency_ms = j["latency_ms"].get<double>();
  t.latency_batch = j.value("latency_batch", std::int64_t{1});
  t.batches = j.at("batches").get<std::vector<std::int64_t>>();
  return t;
}

void validate_targets(const Targets& targets) {
  const auto positive = [](const char* option, double value, const char* what) {
    if (!std::isfinite(value) || value <= 0) {
      fail_usage_option(option, "the {} target must be a positive number, got {} ({})", option, value, what);
    }
  };
  positive("speedup", targets.speedup, "e.g. 3 for 3x lower latency; 1 keeps the baseline's speed");
  positive("size", targets.size, "e.g. 5 for a 5x smaller file; 1 keeps the baseline's size");
  if (!std::isfinite(targets.max_accuracy_drop) || targets.max_accuracy_drop < 0) {
    fail_usage_option("max_accuracy_drop", "the accuracy drop allowed must be >= 0 points (0: no loss at all), got {}",
                      targets.max_accuracy_drop);
  }
  if (targets.latency_ms) positive("latency_ms", *targets.latency_ms, "milliseconds at the latency batch");
  if (targets.batches.empty()) fail_usage_option("batch", "give at least one batch size to measure latency at");
  for (const auto batch : targets.batches) {
    if (batch <= 0) fail_usage_option("batch", "batch sizes must be >= 1, got {}", batch);
  }
  if (targets.latency_ms && targets.latency_batch <= 0) {
    fail_usage_option("latency_batch", "the latency target's batch must be >= 1, got {}", targets.latency_batch);
  }
}

nlohmann::json Verdict::to_json() const {
  nlohmann::json speed = nlohmann::json::object();
  for (const auto& [batch, ratio] : speedup) speed[std::to_string(batch)] = ratio;
  return {
      {"speedup", speed},
      {"size_ratio", size_ratio},
      {"accuracy_drop", accuracy_drop},
      {"meets",
       {{"speedup", meets_speedup}, {"size", meets_size}, {"accuracy", meets_accuracy}, {"latency", meets_latency}}},
      {"missed", missed}};
}

double score_drop(double baseline, double candidate, bool higher_is_better) {
  if (higher_is_better) return (baseline - candidate) * 100.0;  // fractions -> points
  if (baseline <= 0) return candidate > baseline ? 100.0 : 0.0;
  return (candidate / baseline - 1.0) * 100.0;  // % RMSE increase
}

Verdict judge(const std::vector<std::pair<std::int64_t, double>>& baseline_latency, std::int64_t baseline_file_bytes,
              double baseline_score, const std::vector<std::pair<std::int64_t, double>>& latency,
              std::int64_t file_bytes, double score, bool higher_is_better, const Targets& targets) {
  Verdict v;
  v.meets_speedup = true;
  for (const auto& [batch, base_ms] : baseline_latency) {
    const auto it = std::find_if(latency.begin(), latency.end(), [&](const auto& p) { return p.first == batch; });
    if (it == latency.end() || it->second <= 0) continue;
    const double ratio = base_ms / it->second;
    v.speedup.emplace_back(batch, ratio);
    if (ratio < targets.speedup) {
      v.meets_speedup = false;
      v.missed.push_back(fmt::format("speed-up at batch {}: {:.2f}x < {:g}x ({:.3f} -> {:.3f} ms)", batch, ratio,
                                     targets.speedup, base_ms, it->second));
    }
    if (targets.latency_ms && batch == targets.latency_batch && it->second > *targets.latency_ms) {
      v.meets_latency = false;
      v.missed.push_back(
          fmt::format("latency at batch {}: {:.3f} ms > {:g} ms", batch, it->second, *targets.latency_ms));
    }
  }
  if (v.speedup.empty()) {
    v.meets_speedup = false;
    v.missed.push_back("no latency measured at the target batches");
  }
  v.size_ratio = file_bytes > 0 ? static_cast<double>(baseline_file_bytes) / static_cast<double>(file_bytes) : 0.0;
  v.meets_size = v.size_ratio >= targets.size;
  if (!v.meets_size) {
    v.missed.push_back(fmt::format("size: {:.2f}x smaller < {:g}x ({} -> {} bytes)", v.size_ratio, targets.size,
                                   baseline_file_bytes, file_bytes));
  }
  v.accuracy_drop = score_drop(baseline_score, score, higher_is_better);
  v.meets_accuracy = v.accuracy_drop <= targets.max_accuracy_drop;
  if (!v.meets_accuracy) {
    v.missed.push_back(fmt::format("{}: {:.2f} {} > {:g} allowed", higher_is_better ? "accuracy drop" : "RMSE increase",
                                   v.accuracy_drop, higher_is_better ? "points" : "%", targets.max_accuracy_drop));
  }
  return v;
}

}  // namespace hone::optimize
