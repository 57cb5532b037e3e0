#pragma once
// Latency of alternative layers, for passes that keep a change only where it is measurably faster.
#include <c10/core/Device.h>

#include <functional>
#include <string>
#include <vector>

namespace hone::compress {

struct TimingPlan {
  int warmup_calls = 3;
  int rounds = 9;
  /// One timed sample repeats a call until it lasts about this long (short calls are below the
  /// clock's and the scheduler's noise).
  double min_sample_ms = 0.5;
  std::int64_t max_calls_per_sample = 1000;
  /// "3 warm-up calls, median of 9 interleaved rounds on cpu".
  std::string describe(const c10::Device& device) const;
};

/// Median milliseconds per call of each of `runs`, timed in interleaved rounds so that every run
/// sees the same machine load; the device is synchronized around each sample.
std::vector<double> median_ms(const std::vector<std::function<void()>>& runs, const c10::Device& device,
                              const TimingPlan& plan = {});

}  // namespace hone::compress
