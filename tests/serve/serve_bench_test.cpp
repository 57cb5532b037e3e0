// `hone serve --bench` end to end on a zoo MLP (random weights: the protocol, not accuracy) with
// real Fashion-MNIST bodies, on 127.0.0.1 only, a few short rates: the sweep follows the knee
// search, every step's verdict follows its numbers, the plan comes from a measured curve, and the
// JSON says all of it. No assertion on how fast anything is.
#include <gtest/gtest.h>

#include "hone/core/error.h"
#include "hone/serve/serve_bench.h"

namespace hone::serve {
namespace {

using namespace std::chrono_literals;

ServeBenchOptions small_bench() {
  ServeBenchOptions o;
  o.p99_budget_ms = 200;
  o.start_rate = 20;
  o.duration_per_rate = 300ms;
  o.connections = 4;
  o.max_rates = 3;
  o.bodies.count = 16;
  o.budget.iterations = 3;
  o.budget.warmup = 1;
  o.budget.max_batch_limit = 16;
  o.service.verify_samples = 4;
  return o;
}

TEST(ServeBench, SweepsRatesOnLoopbackAndJudgesEachStepByItsNumbers) {
  const ServeBenchOptions options = small_bench();
  const ServeBenchReport report = bench_serving("mlp", options);
  ASSERT_EQ(report.models.size(), 1u) << "a zoo model has no baseline";
  const KneeResult& k = report.models[0];
  EXPECT_EQ(k.role, "run");
  EXPECT_EQ(k.bodies_path, "/v2/models/mlp/infer");
  EXPECT_FALSE(k.plan.curve.empty()) << "batching was planned from a measured curve";
  EXPECT_EQ(k.max_batch, k.plan.max_batch);
  EXPECT_EQ(k.plan.curve.front().batch, 1);
  EXPECT_EQ(k.verification.samples, 4);
  ASSERT_GE(k.steps.size(), 1u);
  ASSERT_LE(k.steps.size(), 3u);
  std::vector<RateStep> so_far;
  for (const RateStep& step : k.steps) {
    EXPECT_DOUBLE_EQ(step.rate, next_rate(so_far, options.start_rate)) << "the sweep follows the knee search";
    std::string why;
    EXPECT_EQ(step.passed, meets_budget(step.result, options.p99_budget_ms, &why));
    EXPECT_EQ(step.why, why);
    EXPECT_GT(step.result.scheduled, 0);
    so_far.push_back(step);
  }
  const RateStep* knee = k.knee();
  EXPECT_EQ(k.knee_rate, knee != nullptr ? knee->rate : 0.0);
  const nlohmann::json j = report.to_json();
  EXPECT_EQ(j["schema"], "hone-serve-bench/1");
  EXPECT_EQ(j["models"][0]["sweep"].size(), k.steps.size());
  EXPECT_TRUE(j["models"][0].contains("plan"));
  EXPECT_NE(report.to_text().find("knee"), std::string::npos);
}

TEST(ServeBench, BadOptionsNameTheOption) {
  ServeBenchOptions o = small_bench();
  o.p99_budget_ms = 0;
  try {
    bench_serving("mlp", o);
    FAIL() << "a bench without a budget ran";
  } catch (const Error& e) {
    EXPECT_EQ(e.option(), "p99_budget_ms");
  }
  o = small_bench();
  o.max_rates = 0;
  try {
    bench_serving("mlp", o);
    FAIL() << "a bench of no rates ran";
  } catch (const Error& e) {
    EXPECT_EQ(e.option(), "max_rates");
  }
}

}  // namespace
}  // namespace hone::serve
