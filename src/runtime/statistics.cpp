#include "hone/runtime/statistics.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "hone/core/error.h"

namespace hone::runtime {
namespace {

void check_samples(const std::vector<double>& samples) {
  HONE_CHECK(!samples.empty(), "statistics: expected at least one sample, got none");
  const auto nan = std::find_if(samples.begin(), samples.end(), [](double x) { return std::isnan(x); });
  HONE_CHECK(nan == samples.end(), "statistics: sample {} of {} is NaN", nan - samples.begin(), samples.size());
}

void check_percent(double p) { HONE_CHECK(p >= 0 && p <= 100, "percentile: expected p in [0, 100], got {}", p); }

/// numpy's "linear" method on already sorted samples.
double percentile_of_sorted(const std::vector<double>& sorted, double p) {
  const double rank = static_cast<double>(sorted.size() - 1) * p / 100.0;
  const auto below = static_cast<std::size_t>(std::floor(rank));
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  const double fraction = rank - static_cast<double>(below);
  return sorted[below] + fraction * (sorted[above] - sorted[below]);
}

}  // namespace

double percentile(std::vector<double> samples, double p) {
  check_samples(samples);
  check_percent(p);
  std::sort(samples.begin(), samples.end());
  return percentile_of_sorted(samples, p);
}

Summary summarize(const std::vector<double>& samples) {
  check_samples(samples);
  std::vector<double> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  const auto n = static_cast<double>(sorted.size());

  Summary summary;
  summary.count = static_cast<std::int64_t>(sorted.size());
  double sum = 0;
  for (double x : sorted) sum += x;
  summary.mean = sum / n;
  // Two passes (deviations from the mean) rather than sum of squares, which cancels badly.
  double squared_deviations = 0;
  for (double x : sorted) squared_deviations += (x - summary.mean) * (x - summary.mean);
  summary.stddev = sorted.size() > 1 ? std::sqrt(squared_deviations / (n - 1)) : 0.0;
  summary.min = sorted.front();
  summary.max = sorted.back();
  summary.p50 = percentile_of_sorted(sorted, 50);
  summary.p90 = percentile_of_sorted(sorted, 90);
  summary.p99 = percentile_of_sorted(sorted, 99);
  return summary;
}

nlohmann::json to_json(const Summary& summary) {
  return {{"count", summary.count}, {"mean", summary.mean}, {"stddev", summary.stddev}, {"min", summary.min},
          {"max", summary.max},     {"p50", summary.p50},   {"p90", summary.p90},       {"p99", summary.p99}};
}

}  // namespace hone::runtime
