#pragma once
/// @file Summary statistics of benchmark samples (timings, throughputs): mean, sample standard
/// deviation, extremes and percentiles, so reports quote medians and tails rather than one number.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace hone::runtime {

/// What a benchmark reports about one series of samples (all in the samples' own unit).
struct Summary {
  std::int64_t count = 0;
  double mean = 0;
  double stddev = 0;  ///< sample standard deviation (divides by n - 1); 0 for a single sample
  double min = 0;
  double max = 0;
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
};

/// The p-th percentile (p in [0, 100]) with linear interpolation between the closest ranks, as
/// numpy.percentile's default "linear" method: on the sorted samples x[0..n-1], the value at the
/// fractional rank (n - 1) * p / 100. Throws hone::Error on empty input, a NaN sample, or p outside
/// [0, 100].
double percentile(std::vector<double> samples, double p);

/// Count, mean, sample standard deviation, min, max and the 50th/90th/99th percentiles (as
/// percentile()). Throws hone::Error on empty input or a NaN sample.
Summary summarize(const std::vector<double>& samples);

/// {"count", "mean", "stddev", "min", "max", "p50", "p90", "p99"}.
nlohmann::json to_json(const Summary& summary);

}  // namespace hone::runtime
