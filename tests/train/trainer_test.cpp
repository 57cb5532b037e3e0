#include "hone/train/trainer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "hone/train/evaluate.h"
#include "support/temp_dir.h"

namespace hone::train {
namespace {

TrainOptions digits_mlp(const std::filesystem::path& out) {
  TrainOptions o;
  o.model = "mlp";
  o.data = "digits";
  o.model_overrides = {{"hidden", {64}}};
  o.epochs = 3;
  o.batch_size = 32;
  o.learning_rate = 3e-3;
  o.seed = 11;
  o.workers = 2;
  o.out_dir = out;
  o.progress = false;
  return o;
}

TEST(TrainerTest, InitialModelRebuildsTheWeightsTrainingStartsFrom) {
  testing::TempDir dir;
  const TrainOptions o = digits_mlp(dir / "r");
  const TrainingSetup setup = prepare_training(o);
  run::RunConfig config;
  config.architecture = o.model;
  config.model_config = setup.model->config();
  config.dataset = o.data;
  config.train_options = to_json(o);
  config.train_options["initial_weights"] = setup.init;
  torch::manual_seed(999);  // whatever the global generator holds, the seed decides
  const auto again = initial_model(config);
  const auto other = initial_model(config, 1);
  const auto a = setup.model->parameters(), b = again->parameters(), c = other->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].cpu(), b[i])) << "parameter " << i;
  EXPECT_FALSE(torch::equal(a[0].cpu(), c[0])) << "another seed offset draws other weights";
}

TEST(TrainerTest, RealDigitsTrainingLowersTheLossAndLearns) {
  testing::TempDir dir;
  const TrainResult r = train(digits_mlp(dir / "run"));
  ASSERT_EQ(r.state.history.size(), 3u);
  const auto& h = r.state.history;
  EXPECT_LT(h.back().train_loss, 0.5 * h.front().first_step_loss) << "loss must fall";
  EXPECT_LT(h.back().val.loss, h.front().val.loss);
  EXPECT_GT(*h.back().val.accuracy, 0.85) << "an MLP learns 8x8 digits in three epochs";
  // The saved run reloads and reproduces the best epoch's validation numbers.
  const RunEvaluation ev = evaluate_run(dir / "run", "cpu", "val");
  const auto& best = h.at(static_cast<std::size_t>(r.state.best_epoch - 1)).val;
  EXPECT_NEAR(*ev.metrics.accuracy, *best.accuracy, 1e-12);
  EXPECT_NEAR(ev.metrics.loss, best.loss, 1e-5);
  const RunEvaluation test = evaluate_run(dir / "run", "cpu", "test");
  EXPECT_EQ(test.metrics.samples, 1797 - 1257 - 269);
}

TEST(TrainerTest, ResumeRepeatsTheUninterruptedRun) {
  testing::TempDir dir;
  const TrainResult whole = train(digits_mlp(dir / "whole"));
  TrainOptions first = digits_mlp(dir / "split");
  first.stop_after_epochs = 1;
  ASSERT_EQ(train(first).state.epochs_done, 1);
  TrainOptions rest = digits_mlp(dir / "split");
  rest.resume = true;
  const TrainResult resumed = train(rest);
  ASSERT_EQ(resumed.state.history.size(), 3u);
  for (std::size_t e = 1; e < 3; ++e) {
    const auto& a = whole.state.history[e];
    const auto& b = resumed.state.history[e];
    EXPECT_NEAR(a.first_step_loss, b.first_step_loss, 1e-6 * std::abs(a.first_step_loss)) << "epoch " << e + 1;
    EXPECT_NEAR(a.train_loss, b.train_loss, 1e-5 * std::abs(a.train_loss)) << "epoch " << e + 1;
  }
  EXPECT_EQ(whole.state.global_step, resumed.state.global_step);
}

TEST(TrainerTest, RefusesToOverwriteARunWithoutResume) {
  testing::TempDir dir;
  TrainOptions o = digits_mlp(dir / "run");
  o.epochs = 1;
  o.max_steps_per_epoch = 2;
  train(o);
  EXPECT_THROW(train(o), Error);
  o.resume = true;
  o.model_overrides = {{"hidden", {32}}};
  EXPECT_THROW(train(o), Error) << "resuming with another model config";
}

TEST(TrainerTest, ForecasterReportsPriceErrorsBesideTheNaiveBaseline) {
  testing::TempDir dir;
  TrainOptions o;
  o.model = "lstm";
  o.data = "goldsilver";
  o.epochs = 1;
  o.max_steps_per_epoch = 10;
  o.batch_size = 64;
  o.out_dir = dir / "run";
  o.progress = false;
  const TrainResult r = train(o);
  const EvalMetrics& val = r.state.history.at(0).val;
  ASSERT_TRUE(val.rmse && val.naive_rmse);
  EXPECT_GT(*val.naive_rmse, 0);
  EXPECT_TRUE(std::isfinite(*val.rmse));
  // A forecaster that predicts roughly "no change" lands near the naive error, not orders away.
  EXPECT_LT(*val.rmse, 2.0 * *val.naive_rmse);
}

TEST(TrainerTest, BadOptionsAreUsageErrors) {
  testing::TempDir dir;
  TrainOptions o = digits_mlp(dir / "run");
  o.epochs = 0;
  EXPECT_THROW(train(o), UsageError);
  o = digits_mlp(dir / "run");
  o.model = "no-such-model";
  EXPECT_THROW(train(o), UsageError);
  o = digits_mlp(dir / "run");
  o.model = "lstm";  // needs forecasting windows, digits are images
  EXPECT_THROW(train(o), Error);
  auto option_of = [&](const std::function<void(TrainOptions&)>& change) {
    TrainOptions bad = digits_mlp(dir / "bad");
    change(bad);
    try {
      train(bad);
    } catch (const UsageError& e) {
      return e.option();
    }
    return std::string("accepted");
  };
  EXPECT_EQ(option_of([](TrainOptions& t) { t.accumulate = 0; }), "accumulate");
  EXPECT_EQ(option_of([](TrainOptions& t) { t.precision = "fp16"; }), "precision") << "fp16 needs CUDA";
  EXPECT_EQ(option_of([](TrainOptions& t) { t.precision = "tf32"; }), "precision") << "tf32 needs CUDA";
  EXPECT_EQ(option_of([](TrainOptions& t) { t.optimizer = "adagrad"; }), "optimizer");
  EXPECT_EQ(option_of([](TrainOptions& t) { t.lr_schedule = "step"; }), "lr_schedule");
}

TEST(TrainerTest, TwoCpuRunsWithTheSameSeedAreBitIdentical) {
  testing::TempDir dir;
  TrainOptions a = digits_mlp(dir / "a");
  a.epochs = 2;
  a.accumulate = 2;
  a.optimizer = "sgd";
  a.nesterov = true;
  a.lr_schedule = "one-cycle";
  TrainOptions b = a;
  b.out_dir = dir / "b";
  train(a);
  train(b);
  EXPECT_EQ(read_file(dir / "a/model.safetensors"), read_file(dir / "b/model.safetensors"));
  EXPECT_EQ(read_file(dir / "a/checkpoint/optimizer.safetensors"),
            read_file(dir / "b/checkpoint/optimizer.safetensors"));
}

TEST(TrainerTest, AccumulationRecordsTheEffectiveBatchAndStepsPerEpoch) {
  testing::TempDir dir;
  TrainOptions o = digits_mlp(dir / "run");
  o.epochs = 1;
  o.accumulate = 3;
  const TrainResult r = train(o);
  // digits' 1257 training samples in batches of 32: 40 micro-batches, 14 steps of 3 (the last of 1).
  EXPECT_EQ(r.state.history.at(0).steps, 14);
  const auto config = run::load_run_config(dir / "run");
  EXPECT_EQ(config.train_options.at("effective_batch_size"), 96);
  EXPECT_EQ(config.train_options.at("accumulate"), 3);
}

}  // namespace
}  // namespace hone::train
