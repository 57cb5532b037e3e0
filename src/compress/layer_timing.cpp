#include "layer_timing.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "hone/core/error.h"
#include "hone/runtime/device_probe.h"
#include "hone/runtime/forward_runner.h"
#include "hone/runtime/settings.h"
#include "hone/runtime/statistics.h"
#include "hone/runtime/target.h"
#include "hone/runtime/units.h"

namespace hone::compress {

std::string TimingPlan::describe(const c10::Device& device) const {
  return fmt::format("{} warm-up calls, median of {} interleaved rounds (>= {} ms per sample) on {}", warmup_calls,
                     rounds, min_sample_ms, device.str());
}

std::vector<double> median_ms(const std::vector<std::function<void()>>& runs, const c10::Device& device,
                              const TimingPlan& plan) {
  HONE_CHECK(!runs.empty() && plan.rounds > 0, "median_ms: nothing to time");
  using Clock = std::chrono::steady_clock;
  const auto elapsed_ms = [](Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  };
  for (const auto& run : runs) {
    for (int i = 0; i < plan.warmup_calls; ++i) run();
  }
  runtime::synchronize(device);
  // Calls per sample from the first run (the baseline), the same number for every run.
  const auto first = Clock::now();
  runs.front()();
  runtime::synchronize(device);
  const double once = std::max(elapsed_ms(first), 1e-6);
  const auto calls = std::clamp<std::int64_t>(static_cast<std::int64_t>(std::ceil(plan.min_sample_ms / once)), 1,
                                              plan.max_calls_per_sample);
  std::vector<std::vector<double>> samples(runs.size());
  for (int round = 0; round < plan.rounds; ++round) {
    for (std::size_t r = 0; r < runs.size(); ++r) {
      const auto start = Clock::now();
      for (std::int64_t call = 0; call < calls; ++call) runs[r]();
      runtime::synchronize(device);
      samples[r].push_back(elapsed_ms(start) / static_cast<double>(calls));
    }
  }
  std::vector<double> medians;
  for (auto& series : samples) medians.push_back(runtime::percentile(std::move(series), 50));
  return medians;
}

}  // namespace hone::compress
