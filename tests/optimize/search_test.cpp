// hone optimize's parts that decide: the targets and how a measurement is judged, the Pareto front
// and the choice, and the candidate plans (every recipe parses in the compress registry; training
// plans cut for the short rung).
#include <gtest/gtest.h>

#include <string>

#include "hone/compress/compress.h"
#include "hone/core/error.h"
#include "hone/optimize/candidates.h"
#include "hone/optimize/pareto.h"
#include "hone/optimize/targets.h"

namespace hone::optimize {
namespace {

TEST(OptimizeTargets, RefusesTargetsThatCannotBeExpressedNamingTheOption) {
  const auto refused = [](Targets t, const std::string& option) {
    try {
      validate_targets(t);
      ADD_FAILURE() << option << " was accepted";
    } catch (const UsageError& e) {
      EXPECT_EQ(e.option(), option) << e.what();
    }
  };
  Targets t;
  EXPECT_NO_THROW(validate_targets(t));
  t.speedup = 0;
  refused(t, "speedup");
  t = {};
  t.size = -1;
  refused(t, "size");
  t = {};
  t.speedup = std::numeric_limits<double>::quiet_NaN();
  refused(t, "speedup");
  t = {};
  t.max_accuracy_drop = -0.5;
  refused(t, "max_accuracy_drop");
  t = {};
  t.batches = {};
  refused(t, "batch");
  t = {};
  t.batches = {1, 0};
  refused(t, "batch");
  t = {};
  t.latency_ms = 0.0;
  refused(t, "latency_ms");
}

TEST(OptimizeTargets, JudgesSpeedSizeAndAccuracyWithTheNumbersInTheMissedLines) {
  Targets t;  // 3x at 1 and 64, 5x smaller, 1 point
  const std::vector<std::pair<std::int64_t, double>> base{{1, 1.8}, {64, 60.0}};
  // 6x and 2.5x faster, 10x smaller, 0.4 points worse.
  auto v = judge(base, 1000, 0.9166, {{1, 0.3}, {64, 24.0}}, 100, 0.9126, true, t);
  ASSERT_EQ(v.speedup.size(), 2u);
  EXPECT_NEAR(v.speedup[0].second, 6.0, 1e-12);
  EXPECT_NEAR(v.speedup[1].second, 2.5, 1e-12);
  EXPECT_FALSE(v.meets_speedup);
  EXPECT_TRUE(v.meets_size);
  EXPECT_NEAR(v.size_ratio, 10.0, 1e-12);
  EXPECT_NEAR(v.accuracy_drop, 0.4, 1e-9);
  EXPECT_TRUE(v.meets_accuracy);
  EXPECT_FALSE(v.meets_all());
  ASSERT_EQ(v.missed.size(), 1u);
  EXPECT_NE(v.missed[0].find("batch 64: 2.50x < 3x"), std::string::npos) << v.missed[0];
  // All met.
  v = judge(base, 1000, 0.9166, {{1, 0.3}, {64, 10.0}}, 100, 0.9100, true, t);
  EXPECT_TRUE(v.meets_all()) << (v.missed.empty() ? "" : v.missed[0]);
  // An absolute latency target at batch 1.
  t.latency_ms = 0.25;
  v = judge(base, 1000, 0.9166, {{1, 0.3}, {64, 10.0}}, 100, 0.9100, true, t);
  EXPECT_FALSE(v.meets_latency);
  EXPECT_FALSE(v.meets_all());
}

TEST(OptimizeTargets, AForecastersDropIsItsRmseIncreaseInPercent) {
  EXPECT_NEAR(score_drop(0.5, 0.51, /*higher_is_better=*/false), 2.0, 1e-9);
  EXPECT_NEAR(score_drop(0.5, 0.49, false), -2.0, 1e-9);
  EXPECT_NEAR(score_drop(0.80, 0.79, true), 1.0, 1e-9);
  Targets t;
  t.max_accuracy_drop = 1.0;
  const auto v = judge({{1, 1.0}}, 100, 0.5, {{1, 0.2}}, 10, 0.51, false, t);
  EXPECT_FALSE(v.meets_accuracy);
  ASSERT_FALSE(v.missed.empty());
  EXPECT_NE(v.missed.back().find("RMSE increase: 2.00 %"), std::string::npos) << v.missed.back();
}

TEST(OptimizePareto, KeepsOnlyPlansNoOtherBeatsOnLatencyScoreAndSize) {
  const std::vector<ParetoPoint> points{
      {1.0, 0.90, 100},  // 0: front (fastest)
      {2.0, 0.92, 100},  // 1: front (most accurate)
      {2.5, 0.91, 100},  // 2: dominated by 1
      {1.0, 0.90, 50},   // 3: dominates 0 (smaller)
      {3.0, 0.92, 100},  // 4: dominated by 1
  };
  const auto front = pareto_front(points);
  EXPECT_EQ(front, (std::vector<bool>{false, true, false, true, false}));
  // Equal points keep each other.
  EXPECT_EQ(pareto_front({{1, 1, 1}, {1, 1, 1}}), (std::vector<bool>{true, true}));
}

TEST(OptimizePareto, ChoosesTheMostAccurateEligiblePlanThenTheFastest) {
  const std::vector<ParetoPoint> points{{1.0, 0.90, 10}, {0.5, 0.92, 10}, {0.4, 0.92, 10}, {0.1, 0.99, 10}};
  EXPECT_EQ(choose_best(points, {true, true, true, false}), std::optional<std::size_t>(2));
  EXPECT_EQ(choose_best(points, {true, false, false, false}), std::optional<std::size_t>(0));
  EXPECT_FALSE(choose_best(points, {false, false, false, false}).has_value());
}

void expect_parses(const std::vector<CandidatePlan>& plans) {
  for (const auto& plan : plans) {
    EXPECT_NO_THROW(compress::parse_recipe(plan.recipe, plan.id)) << plan.id << " " << plan.recipe.dump();
  }
}

TEST(OptimizeCandidates, PlansFitWhatTheModelHoldsAndEveryRecipeParses) {
  ModelTraits cnn{.conv = true, .linear = true, .lstm = false, .batch_norm = true, .channel_groups = true};
  const auto cpu = propose_candidates(cnn, {.cuda = false, .native_bf16 = false}, Targets{});
  expect_parses(cpu);
  const auto has = [](const std::vector<CandidatePlan>& plans, const std::string& pass) {
    for (const auto& plan : plans)
      for (const auto& p : plan.recipe["passes"])
        if (p["pass"] == pass) return true;
    return false;
  };
  EXPECT_TRUE(has(cpu, "quant_int8_static"));
  EXPECT_TRUE(has(cpu, "qat"));
  EXPECT_FALSE(has(cpu, "quant_float")) << "bf16 offered on a CPU without native bf16";
  const auto bf16_cpu = propose_candidates(cnn, {.cuda = false, .native_bf16 = true}, Targets{});
  EXPECT_TRUE(has(bf16_cpu, "quant_float"));
  expect_parses(bf16_cpu);
  const auto gpu = propose_candidates(cnn, {.cuda = true, .native_bf16 = true}, Targets{});
  expect_parses(gpu);
  EXPECT_FALSE(has(gpu, "quant_int8_static")) << "int8 static runs on LibTorch's CPU kernels only";
  EXPECT_FALSE(has(gpu, "qat"));
  // An LSTM forecaster: int8 dynamic, no structured pruning, no training plans.
  ModelTraits lstm{.conv = false, .linear = true, .lstm = true, .batch_norm = false, .channel_groups = false};
  const auto forecaster = propose_candidates(lstm, {.cuda = false, .native_bf16 = false}, Targets{});
  expect_parses(forecaster);
  EXPECT_TRUE(has(forecaster, "quant_int8_dynamic"));
  for (const auto& plan : forecaster) EXPECT_EQ(plan.stage, "post-training") << plan.id;
  // Ids are unique.
  std::set<std::string> ids;
  for (const auto& plan : cpu) EXPECT_TRUE(ids.insert(plan.id).second) << plan.id;
}

TEST(OptimizeCandidates, TheShortRungCutsTrainingPassesAndCountsTheirSteps) {
  ModelTraits cnn{.conv = true, .linear = true, .lstm = false, .batch_norm = true, .channel_groups = true};
  const auto plans = propose_candidates(cnn, {.cuda = false, .native_bf16 = false}, Targets{});
  const auto it = std::find_if(plans.begin(), plans.end(), [](const auto& p) { return p.stage == "training"; });
  ASSERT_NE(it, plans.end());
  // distill 3 epochs + qat 1 epoch at batch 128 on 1000 samples: 8 steps per epoch.
  EXPECT_EQ(training_steps(it->recipe, 1000), 3 * 8 + 1 * 8);
  const auto short_recipe = shorten_recipe(it->recipe, 5);
  EXPECT_EQ(training_steps(short_recipe, 1000), 5 + 5);
  for (const auto& p : short_recipe["passes"]) {
    if (!is_training_pass(p["pass"])) {
      EXPECT_FALSE(p.contains("max_steps_per_epoch")) << p.dump();
      continue;
    }
    EXPECT_EQ(p["epochs"], 1) << p.dump();
    EXPECT_EQ(p["max_steps_per_epoch"], 5) << p.dump();
  }
  const auto capped = cap_recipe_steps(it->recipe, 2);
  EXPECT_EQ(training_steps(capped, 1000), 3 * 2 + 1 * 2);
  expect_parses({{"x", "x", "training", short_recipe}, {"y", "y", "training", capped}});
}

}  // namespace
}  // namespace hone::optimize
