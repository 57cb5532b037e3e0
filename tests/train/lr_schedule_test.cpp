// The schedules' values at known steps, PyTorch OneCycleLR's formula, and bad options.
#include "hone/train/lr_schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "hone/core/error.h"

namespace hone::train {
namespace {

TEST(LrScheduleTest, CosineRunsFromPeakToTheFloorAsHonesOldLoopDid) {
  const LrSchedule s({.kind = "cosine", .peak = 2e-3}, 101);
  EXPECT_DOUBLE_EQ(s.at(0), 2e-3);
  EXPECT_NEAR(s.at(50), 0.05 * 2e-3 + (2e-3 - 0.05 * 2e-3) * 0.5, 1e-15);
  EXPECT_DOUBLE_EQ(s.at(100), 0.05 * 2e-3);
  EXPECT_DOUBLE_EQ(s.at(1000), 0.05 * 2e-3) << "past the end keeps the last value";
  for (std::int64_t i = 1; i <= 100; ++i) EXPECT_LE(s.at(i), s.at(i - 1));
}

TEST(LrScheduleTest, WarmupRisesLinearlyThenTheScheduleStarts) {
  const LrSchedule s({.kind = "linear", .peak = 1.0, .warmup_steps = 4, .final_fraction = 0.0}, 14);
  EXPECT_DOUBLE_EQ(s.at(0), 0.2);
  EXPECT_DOUBLE_EQ(s.at(3), 0.8);
  EXPECT_DOUBLE_EQ(s.at(4), 1.0);
  EXPECT_NEAR(s.at(9), 1.0 - 5.0 / 9.0, 1e-15);
  EXPECT_DOUBLE_EQ(s.at(13), 0.0);
  const LrSchedule c({.kind = "constant", .peak = 0.5, .warmup_steps = 1}, 10);
  EXPECT_DOUBLE_EQ(c.at(0), 0.25);
  EXPECT_DOUBLE_EQ(c.at(7), 0.5);
}

TEST(LrScheduleTest, OneCycleFollowsPyTorchsOneCycleLR) {
  // torch.optim.lr_scheduler.OneCycleLR(max_lr=1, total_steps=100, pct_start=0.3) (cos): phase
  // ends at 29 and 99; initial 1/25, final 1/25/1e4.
  const LrSchedule s({.kind = "one-cycle", .peak = 1.0, .pct_start = 0.3}, 100);
  auto cos_anneal = [](double start, double end, double pct) {
    return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1);
  };
  EXPECT_NEAR(s.at(0), 0.04, 1e-12);
  EXPECT_NEAR(s.at(10), cos_anneal(0.04, 1.0, 10.0 / 29.0), 1e-12);
  EXPECT_NEAR(s.at(29), 1.0, 1e-12);
  EXPECT_NEAR(s.at(60), cos_anneal(1.0, 0.04 / 1e4, (60.0 - 29.0) / 70.0), 1e-12);
  EXPECT_NEAR(s.at(99), 0.04 / 1e4, 1e-15);
}

TEST(LrScheduleTest, BadOptionsNameTheOption) {
  auto option_of = [](LrScheduleOptions o) {
    try {
      LrSchedule s(o, 10);
    } catch (const UsageError& e) {
      return e.option();
    }
    return std::string("none");
  };
  EXPECT_EQ(option_of({.kind = "step"}), "lr_schedule");
  EXPECT_EQ(option_of({.kind = "cosine", .peak = -1}), "learning_rate");
  EXPECT_EQ(option_of({.kind = "cosine", .peak = 1, .warmup_steps = -2}), "warmup_steps");
}

}  // namespace
}  // namespace hone::train
