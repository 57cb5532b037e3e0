// The knee search of `hone serve --bench` on made-up load results: which rate comes next, and
// what counts as meeting the budget (no server, no timing).
#include <gtest/gtest.h>

#include "hone/serve/serve_bench.h"

namespace hone::serve {
namespace {

RateStep step(double rate, bool passed) {
  RateStep s;
  s.rate = rate;
  s.passed = passed;
  return s;
}

TEST(KneeSearch, DoublesWhilePassingHalvesWhileFailingThenBisects) {
  std::vector<RateStep> steps;
  EXPECT_DOUBLE_EQ(next_rate(steps, 50), 50);
  steps.push_back(step(50, true));
  EXPECT_DOUBLE_EQ(next_rate(steps, 50), 100);
  steps.push_back(step(100, true));
  steps.push_back(step(200, false));
  EXPECT_NEAR(next_rate(steps, 50), 141.42, 0.01);  // geometric mean of 100 and 200
  steps.push_back(step(141.42, true));
  EXPECT_NEAR(next_rate(steps, 50), 168.18, 0.01);
  steps.push_back(step(168.18, false));
  steps.push_back(step(154.2, true));
  EXPECT_EQ(next_rate(steps, 50), 0) << "168 / 154 is within 10 %: done";
}

TEST(KneeSearch, StartingAboveTheKneeHalvesDownToOneRequestPerSecond) {
  std::vector<RateStep> steps{step(8, false)};
  EXPECT_DOUBLE_EQ(next_rate(steps, 8), 4);
  steps.push_back(step(4, false));
  steps.push_back(step(2, false));
  steps.push_back(step(1, false));
  EXPECT_EQ(next_rate(steps, 8), 0);
  steps.push_back(step(3, true));                  // a pass below the failures brackets the knee again
  EXPECT_NEAR(next_rate(steps, 8), 3.4641, 1e-3);  // sqrt(3 x 4)
}

LoadResult result(std::map<int, std::int64_t> codes, double p99, std::int64_t unsent = 0, std::int64_t errors = 0) {
  LoadResult r;
  r.status_counts = std::move(codes);
  for (const auto& [code, count] : r.status_counts) r.sent += count;
  r.sent += errors;
  r.errors = errors;
  r.unsent = unsent;
  r.latency_ms.p99 = p99;
  return r;
}

TEST(KneeSearch, MeetingTheBudgetNeedsEveryAnswer200AndP99WithinIt) {
  std::string why;
  EXPECT_TRUE(meets_budget(result({{200, 100}}, 19.9), 20, &why)) << why;
  EXPECT_TRUE(why.empty());
  EXPECT_FALSE(meets_budget(result({{200, 100}}, 20.1), 20, &why));
  EXPECT_NE(why.find("p99 20.10 ms > 20 ms"), std::string::npos) << why;
  EXPECT_FALSE(meets_budget(result({{200, 99}, {429, 1}}, 5), 20, &why));
  EXPECT_NE(why.find("status 429 x1"), std::string::npos) << why;
  EXPECT_FALSE(meets_budget(result({{200, 100}}, 5, /*unsent=*/3), 20, &why));
  EXPECT_NE(why.find("3 unsent"), std::string::npos) << why;
  EXPECT_FALSE(meets_budget(result({{200, 100}}, 5, 0, /*errors=*/2), 20, &why));
  EXPECT_NE(why.find("2 transport errors"), std::string::npos) << why;
  EXPECT_FALSE(meets_budget(result({}, 0), 20, &why));
  EXPECT_NE(why.find("nothing sent"), std::string::npos) << why;
}

}  // namespace
}  // namespace hone::serve
