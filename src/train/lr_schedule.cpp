#include "hone/train/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "hone/core/error.h"

namespace hone::train {
namespace {

/// From a to b along a half cosine as t goes 0 -> 1.
double cosine_between(double a, double b, double t) { return b + (a - b) * 0.5 * (1 + std::cos(std::numbers::pi * t)); }

/// t in [0, 1] over `steps` steps (one step: already at the end).
double progress(std::int64_t step, std::int64_t steps) {
  if (steps <= 1) return 1.0;
  return std::clamp(static_cast<double>(step) / static_cast<double>(steps - 1), 0.0, 1.0);
}

}  // namespace

LrSchedule::LrSchedule(LrScheduleOptions options, std::int64_t total_steps)
    : options_(std::move(options)), total_steps_(total_steps) {
  const auto& o = options_;
  if (o.kind != "constant" && o.kind != "linear" && o.kind != "cosine" && o.kind != "one-cycle")
    fail_usage_option("lr_schedule", "unknown schedule '{}'; valid: constant, linear, cosine, one-cycle", o.kind);
  if (!(o.peak > 0) || !std::isfinite(o.peak))
    fail_usage_option("learning_rate", "learning rate must be > 0, got {}", o.peak);
  if (o.warmup_steps < 0) fail_usage_option("warmup_steps", "warm-up steps must be >= 0, got {}", o.warmup_steps);
  if (!(o.final_fraction >= 0 && o.final_fraction <= 1))
    fail_usage_option("final_fraction", "final lr fraction must be in [0, 1], got {}", o.final_fraction);
  if (!(o.pct_start > 0 && o.pct_start < 1))
    fail_usage_option("pct_start", "one-cycle's pct_start must be in (0, 1), got {}", o.pct_start);
  HONE_CHECK(total_steps >= 1, "a schedule needs at least one step, got {}", total_steps);
}

double LrSchedule::at(std::int64_t step) const {
  const auto& o = options_;
  step = std::clamp<std::int64_t>(step, 0, total_steps_ - 1);
  if (o.kind == "one-cycle") {
    // PyTorch OneCycleLR(anneal_strategy="cos", div_factor=25, final_div_factor=1e4, three_phase=False).
    const double initial = o.peak / 25.0, minimum = initial / 1e4;
    const double rise_end = o.pct_start * static_cast<double>(total_steps_) - 1;
    const double s = static_cast<double>(step);
    if (s <= rise_end) return cosine_between(initial, o.peak, rise_end > 0 ? s / rise_end : 1.0);
    const double fall = static_cast<double>(total_steps_ - 1) - rise_end;
    return cosine_between(o.peak, minimum, fall > 0 ? (s - rise_end) / fall : 1.0);
  }
  if (step < o.warmup_steps) return o.peak * static_cast<double>(step + 1) / static_cast<double>(o.warmup_steps + 1);
  if (o.kind == "constant") return o.peak;
  const double t = progress(step - o.warmup_steps, total_steps_ - o.warmup_steps);
  const double floor = o.final_fraction * o.peak;
  if (o.kind == "linear") return o.peak + (floor - o.peak) * t;
  return cosine_between(o.peak, floor, t);
}

}  // namespace hone::train
