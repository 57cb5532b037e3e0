// The p99 budget's rule on hand-made latency curves (no model, no timing): which batch and queue
// delay it chooses, what an explicit setting keeps, and the tolerance rows verification uses.
#include "hone/serve/latency_budget.h"

#include <gtest/gtest.h>

#include "hone/core/error.h"
#include "support/tolerances.h"

namespace hone::serve {
namespace {

using namespace std::chrono_literals;

// batch -> p50, p99 (ms): 2 x p99 = 4, 6, 10, 18, 34
const std::vector<LatencyPoint> kCurve = {{1, 1.5, 2}, {2, 2.5, 3}, {4, 4, 5}, {8, 8, 9}, {16, 16, 17}};

BudgetOptions budget(double ms) {
  BudgetOptions o;
  o.p99_budget_ms = ms;
  o.headroom = 1.0;
  o.tokens_per_row = 0;
  return o;
}

TEST(LatencyBudget, ChoosesTheLargestBatchWhoseTwoP99FitAndADelayFromWhatIsLeft) {
  const BatchingPlan plan = choose_batching(kCurve, budget(12));
  EXPECT_EQ(plan.max_batch, 4u);  // 2 x 5 = 10 <= 12 < 18
  EXPECT_TRUE(plan.fits);
  EXPECT_EQ(plan.max_queue_delay, 2000us);  // min(12 - 10, p50 4) = 2 ms
  EXPECT_DOUBLE_EQ(plan.predicted_worst_ms, 12);
  EXPECT_FALSE(plan.max_batch_explicit);
}

TEST(LatencyBudget, TheDelayIsAtMostOneBatchsMedianCompute) {
  const BatchingPlan plan = choose_batching(kCurve, budget(30));
  EXPECT_EQ(plan.max_batch, 8u);            // 18 <= 30 < 34
  EXPECT_EQ(plan.max_queue_delay, 8000us);  // min(30 - 18, p50 8)
}

TEST(LatencyBudget, HeadroomLeavesPartOfTheBudgetToHttp) {
  BudgetOptions o = budget(12);
  o.headroom = 0.5;  // usable 6 ms
  const BatchingPlan plan = choose_batching(kCurve, o);
  EXPECT_DOUBLE_EQ(plan.usable_ms, 6);
  EXPECT_EQ(plan.max_batch, 2u);
  EXPECT_EQ(plan.max_queue_delay, 0us);
}

TEST(LatencyBudget, ABudgetNothingMeetsSaysSoAndFallsBackToBatchOne) {
  const BatchingPlan plan = choose_batching(kCurve, budget(3));
  EXPECT_FALSE(plan.fits);
  EXPECT_EQ(plan.max_batch, 1u);
  EXPECT_EQ(plan.max_queue_delay, 0us);
  EXPECT_NE(plan.reason.find("cannot be met"), std::string::npos) << plan.reason;
}

TEST(LatencyBudget, ExplicitSettingsWinOverTheBudget) {
  BudgetOptions o = budget(12);
  o.fixed_max_batch = 16;
  o.fixed_queue_delay = 500us;
  const BatchingPlan plan = choose_batching(kCurve, o);
  EXPECT_EQ(plan.max_batch, 16u);
  EXPECT_TRUE(plan.max_batch_explicit);
  EXPECT_EQ(plan.max_queue_delay, 500us);
  EXPECT_TRUE(plan.queue_delay_explicit);
  EXPECT_FALSE(plan.fits) << "2 x 17 ms is over 12 ms, and the plan must say so";
  EXPECT_NE(plan.reason.find("explicitly"), std::string::npos) << plan.reason;
}

TEST(LatencyBudget, TokenModelsBoundABatchByTokensOfTheMeasuredLength) {
  BudgetOptions o = budget(12);
  o.tokens_per_row = 128;
  const BatchingPlan plan = choose_batching(kCurve, o);
  EXPECT_EQ(plan.max_batch_tokens, 4 * 128);
  ModelServiceOptions service;
  apply_batching_plan(plan, service);
  EXPECT_EQ(service.max_batch_size, 4u);
  EXPECT_EQ(service.max_queue_delay, 2000us);
  EXPECT_EQ(service.max_batch_tokens, 512);
  ModelServiceOptions kept;
  kept.max_batch_tokens = 9000;
  apply_batching_plan(plan, kept, /*keep_max_batch_tokens=*/true);
  EXPECT_EQ(kept.max_batch_tokens, 9000);
}

TEST(LatencyBudget, TheCurveOrderDoesNotMatterAndTheJsonCarriesIt) {
  std::vector<LatencyPoint> shuffled = {kCurve[3], kCurve[0], kCurve[4], kCurve[2], kCurve[1]};
  const BatchingPlan plan = choose_batching(shuffled, budget(12));
  EXPECT_EQ(plan.max_batch, 4u);
  const nlohmann::json j = plan.to_json();
  ASSERT_EQ(j["curve"].size(), 5u);
  EXPECT_EQ(j["curve"][0]["batch"], 1);
  EXPECT_EQ(j["max_batch"], 4);
  EXPECT_EQ(j["max_queue_delay_us"], 2000);
  EXPECT_NE(plan.to_text().find("<- max batch"), std::string::npos);
}

TEST(LatencyBudget, BadOptionsNameTheOption) {
  try {
    choose_batching(kCurve, budget(0));
    FAIL() << "a zero budget was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.option(), "p99_budget_ms");
  }
  BudgetOptions o = budget(10);
  o.headroom = 1.5;
  try {
    choose_batching(kCurve, o);
    FAIL() << "headroom over 1 was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.option(), "headroom");
  }
  EXPECT_THROW(choose_batching({}, budget(10)), Error);
}

static_assert(kVerifyBf16.relative == testing::kBf16.relative && kVerifyBf16.absolute == testing::kBf16.absolute,
              "one tolerance table");
static_assert(kVerifyFp16.relative == testing::kFp16.relative && kVerifyFp16.absolute == testing::kFp16.absolute,
              "one tolerance table");

TEST(LatencyBudget, VerificationUsesTheTablesRowForTheServedDtype) {
  ModelServiceOptions o;
  EXPECT_EQ(verify_tolerance(o).relative, testing::kFp32Reordered.relative);
  o.dtype = "bf16";
  EXPECT_EQ(verify_tolerance(o).relative, testing::kBf16.relative);
  o.dtype = "fp16";
  EXPECT_EQ(verify_tolerance(o).absolute, testing::kFp16.absolute);
}

}  // namespace
}  // namespace hone::serve
