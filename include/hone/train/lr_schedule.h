#pragma once
/// @file Learning-rate schedules, as a pure function of the optimizer step (so a resumed run
/// continues the curve exactly). Each starts with an optional linear warm-up from 0.
///
///   constant   lr after warm-up
///   linear     lr decays linearly to final_fraction × lr at the last step
///   cosine     lr decays along a half cosine to final_fraction × lr (hone's default, 5 %)
///   one-cycle  PyTorch OneCycleLR (cosine annealing): from lr/25 up to lr over the first
///              pct_start of the steps, then down to lr/25/1e4 (warm-up is its own first phase)
///
///   train::LrSchedule schedule({.kind = "cosine", .peak = 2e-3, .warmup_steps = 100}, total_steps);
///   double lr = schedule.at(step);   // step counts from 0
#include <cstdint>
#include <string>

namespace hone::train {

struct LrScheduleOptions {
  std::string kind = "cosine";  ///< constant, linear, cosine, one-cycle
  double peak = 2e-3;
  std::int64_t warmup_steps = 0;
  double final_fraction = 0.05;  ///< linear/cosine: the last step's lr as a fraction of peak
  double pct_start = 0.3;        ///< one-cycle: share of the steps spent rising
};

class LrSchedule {
 public:
  /// Throws hone::UsageError naming the option (lr_schedule, warmup_steps...) for bad values.
  LrSchedule(LrScheduleOptions options, std::int64_t total_steps);
  /// The learning rate of step `step` (0-based); steps past the end keep the last value.
  double at(std::int64_t step) const;
  const LrScheduleOptions& options() const { return options_; }
  std::int64_t total_steps() const { return total_steps_; }

 private:
  LrScheduleOptions options_;
  std::int64_t total_steps_;
};

}  // namespace hone::train
