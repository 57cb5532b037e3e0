#pragma once
/// @file What `hone optimize` must reach, and how a measured model is judged against it: speed-up
/// at every target batch, file-size ratio, the largest validation-score drop, and optionally an
/// absolute latency. Accuracy drops are in points; a forecaster's "drop" is the RMSE increase in
/// percent of the baseline's RMSE (the unit of compress's accuracy_budget).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hone::optimize {

struct Targets {
  double speedup = 3.0;              ///< baseline latency / candidate latency, at every batch
  double size = 5.0;                 ///< baseline file bytes / candidate file bytes
  double max_accuracy_drop = 1.0;    ///< points (forecasting: % of RMSE)
  std::optional<double> latency_ms;  ///< p50 at `latency_batch` must not exceed this
  std::int64_t latency_batch = 1;
  std::vector<std::int64_t> batches{1, 64};  ///< where latency is measured
  nlohmann::json to_json() const;
  static Targets from_json(const nlohmann::json& j);
};

/// Throws hone::UsageError naming the option ("speedup", "size", "max_accuracy_drop",
/// "latency_ms", "batch") when a target cannot be expressed: zero, negative, not finite, or an
/// empty batch list.
void validate_targets(const Targets& targets);

/// How one candidate measures against the baseline and the targets.
struct Verdict {
  std::vector<std::pair<std::int64_t, double>> speedup;  ///< per batch
  double size_ratio = 0;
  double accuracy_drop = 0;  ///< points (forecasting: % RMSE increase); negative: better
  bool meets_speedup = false, meets_size = false, meets_accuracy = false, meets_latency = true;
  std::vector<std::string> missed;  ///< one line per target missed, with the numbers
  bool meets_all() const { return meets_speedup && meets_size && meets_accuracy && meets_latency; }
  nlohmann::json to_json() const;
};

/// The score drop in the targets' unit: accuracy points, or % RMSE increase when
/// `higher_is_better` is false.
double score_drop(double baseline, double candidate, bool higher_is_better);

/// Judges `latency`/`file_bytes`/`score` of a candidate against the baseline's.
Verdict judge(const std::vector<std::pair<std::int64_t, double>>& baseline_latency, std::int64_t baseline_file_bytes,
              double baseline_score, const std::vector<std::pair<std::int64_t, double>>& latency,
              std::int64_t file_bytes, double score, bool higher_is_better, const Targets& targets);

}  // namespace hone::optimize
