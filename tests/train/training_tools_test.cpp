// The LR range test, the batch search, presets and the trainer's option checks.
#include <c10/util/Exception.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "hone/core/error.h"
#include "hone/runtime/batch_search.h"
#include "hone/train/batch_finder.h"
#include "hone/train/lr_finder.h"
#include "hone/train/presets.h"
#include "hone/train/trainer.h"
#include "support/temp_dir.h"

namespace hone::train {
namespace {

TrainOptions digits_mlp(const std::filesystem::path& out) {
  TrainOptions o;
  o.model = "mlp";
  o.data = "digits";
  o.model_overrides = {{"hidden", {64}}};
  o.batch_size = 32;
  o.seed = 5;
  o.workers = 0;
  o.out_dir = out;
  o.progress = false;
  return o;
}

template <typename Fn>
std::string usage_option(Fn&& fn) {
  try {
    fn();
  } catch (const UsageError& e) {
    return e.option();
  }
  return "(no UsageError)";
}

TEST(LrFinderTest, SteepestDescentFindsTheDropOfAKnownCurve) {
  // A loss that falls like a logistic step centred at lr = 1e-3 (in log10 lr), flat on both sides.
  std::vector<double> lrs, loss;
  for (int i = 0; i < 81; ++i) {
    const double log_lr = -7 + 0.1 * i;
    lrs.push_back(std::pow(10.0, log_lr));
    loss.push_back(2.0 - 1.5 / (1 + std::exp(-4 * (log_lr + 3))));
  }
  const std::int64_t at = steepest_descent(lrs, loss, 10, 1);
  ASSERT_GE(at, 0);
  EXPECT_NEAR(std::log10(lrs[static_cast<std::size_t>(at)]), -3.0, 0.101);
  EXPECT_EQ(steepest_descent({1e-3, 1e-2}, {1.0, 0.5}, 10, 1), -1) << "too few points for a suggestion";
}

TEST(LrFinderTest, RangeTestOnRealDigitsRisesExponentiallyAndStopsOnDivergence) {
  testing::TempDir dir;
  LrFindOptions find;
  find.steps = 120;
  find.min_lr = 1e-6;
  find.max_lr = 100;  // far past any rate AdamW survives on this MLP: the curve must blow up
  const LrFindResult r = find_lr(digits_mlp(dir / "lr"), find);
  ASSERT_GE(r.lrs.size(), 20u);
  EXPECT_DOUBLE_EQ(r.lrs.front(), 1e-6);
  for (std::size_t i = 1; i < r.lrs.size(); ++i) {
    EXPECT_NEAR(r.lrs[i] / r.lrs[i - 1], std::pow(1e8, 1.0 / 119), 1e-9) << "exponential steps";
  }
  EXPECT_TRUE(r.diverged) << "an lr of 100 diverges";
  EXPECT_LT(r.lrs.size(), 120u);
  ASSERT_GT(r.suggested_lr, 0);
  EXPECT_GT(r.suggested_lr, 1e-5) << "the loss cannot fall fastest where the steps barely move the weights";
  EXPECT_LT(r.suggested_lr, r.lrs.back()) << "the suggestion lies before the divergence";
  const auto j = r.to_json();
  EXPECT_EQ(j["schema"], "hone-lr-find/1");
  EXPECT_EQ(j["lr"].size(), r.lrs.size());
  EXPECT_FALSE(std::filesystem::exists(dir / "lr" / "checkpoint")) << "a range test trains nothing to keep";
}

TEST(LrFinderTest, BadRangesNameTheOption) {
  testing::TempDir dir;
  LrFindOptions bad;
  bad.min_lr = 1;
  bad.max_lr = 0.1;
  EXPECT_EQ(usage_option([&] { find_lr(digits_mlp(dir / "x"), bad); }), "lr_find");
  bad = {};
  bad.steps = 1;
  EXPECT_EQ(usage_option([&] { find_lr(digits_mlp(dir / "x"), bad); }), "lr_find");
}

TEST(BatchSearchTest, DoublesThenBisectsToTheLargestBatchWithinBudget) {
  std::vector<std::int64_t> tried;
  const auto s = runtime::search_largest_batch(
      [&](std::int64_t batch) {
        tried.push_back(batch);
        return 1000 * batch + 500;  // peak grows linearly with the batch
      },
      {.budget_bytes = 100'000, .max_batch = 1 << 20});
  EXPECT_EQ(s.largest_batch, 99) << "1000*99 + 500 fits 100000, 1000*100 + 500 does not";
  EXPECT_EQ(s.largest_batch_peak_bytes, 99'500);
  EXPECT_EQ(tried.front(), 1);
  EXPECT_EQ(tried[7], 128) << "doubling up to the first failure";
  EXPECT_LE(tried.size(), 8u + 7u) << "then bisection between 64 and 128";
  EXPECT_EQ(s.trials.size(), tried.size());
}

TEST(BatchSearchTest, OutOfMemoryCountsAsNotFittingAndMaxBatchBounds) {
  const auto oom = runtime::search_largest_batch(
      [](std::int64_t batch) -> std::int64_t {
        if (batch > 50) throw c10::OutOfMemoryError({__func__, __FILE__, __LINE__}, "CUDA out of memory");
        return batch;
      },
      {.budget_bytes = 1 << 30, .max_batch = 1000});
  EXPECT_EQ(oom.largest_batch, 50);
  bool saw_oom = false;
  for (const auto& t : oom.trials) saw_oom = saw_oom || (t.peak_bytes == -1 && !t.fits);
  EXPECT_TRUE(saw_oom);
  const auto capped =
      runtime::search_largest_batch([](std::int64_t b) { return b; }, {.budget_bytes = 1 << 30, .max_batch = 37});
  EXPECT_EQ(capped.largest_batch, 37) << "everything fits: the answer is max_batch, not a power of two";
  const auto none = runtime::search_largest_batch([](std::int64_t) { return std::int64_t{10}; },
                                                  {.budget_bytes = 5, .max_batch = 64});
  EXPECT_EQ(none.largest_batch, 0);
  EXPECT_THROW(runtime::search_largest_batch([](std::int64_t b) { return b; }, {.budget_bytes = 0}), Error);
}

TEST(BatchFinderTest, TrainingBatchFinderNeedsCuda) {
  testing::TempDir dir;
  EXPECT_EQ(usage_option([&] { find_train_batch(digits_mlp(dir / "b"), 1 << 30); }), "find_batch");
}

TEST(PresetTest, PresetsSetWhatWasNotGivenAndSayWhat) {
  TrainOptions o;
  o.device = "cuda";
  const auto made = apply_preset(o, "fast-gpu", {"precision"});
  EXPECT_EQ(o.precision, "fp32") << "an explicit --precision wins";
  EXPECT_TRUE(o.cuda_graphs);
  EXPECT_TRUE(o.channels_last);
  EXPECT_NE(std::find(made.begin(), made.end(), "cuda_graphs=true"), made.end());
  EXPECT_EQ(std::find(made.begin(), made.end(), "precision=bf16"), made.end());

  TrainOptions low;
  apply_preset(low, "low-memory", {"batch_size"});
  EXPECT_TRUE(low.checkpoint_activations);
  EXPECT_EQ(low.accumulate, 4);
  EXPECT_EQ(low.batch_size, 128) << "explicit";

  TrainOptions cpu;
  apply_preset(cpu, "cpu", {"channels_last"});
  EXPECT_EQ(cpu.device, "cpu");
  EXPECT_FALSE(cpu.channels_last) << "explicit";

  TrainOptions fast;
  apply_preset(fast, "throughput", {});
  EXPECT_EQ(fast.batch_size, 512);
  EXPECT_DOUBLE_EQ(fast.learning_rate, 2 * TrainOptions{}.learning_rate);
  EXPECT_EQ(usage_option([&] { apply_preset(fast, "turbo", {}); }), "preset");
}

TEST(TrainerOptionsTest, ImpossibleCombinationsNameTheFlag) {
  testing::TempDir dir;
  TrainOptions graphs = digits_mlp(dir / "g");
  graphs.cuda_graphs = true;
  EXPECT_EQ(usage_option([&] { train(graphs); }), "cuda_graphs") << "CUDA graphs on the CPU";
  TrainOptions init = digits_mlp(dir / "i");
  init.init = "pretrained";
  EXPECT_EQ(usage_option([&] { train(init); }), "init") << "no pretrained MLP exists";
  init.init = "imagenet";
  EXPECT_EQ(usage_option([&] { train(init); }), "init");
  EXPECT_FALSE(std::filesystem::exists(dir / "g" / "checkpoint"));
}

}  // namespace
}  // namespace hone::train
