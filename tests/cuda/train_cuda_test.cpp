// The training engine on the GPU: a replayed whole-step CUDA graph equals the eager step, the
// device-cached input pipeline keeps the drawn order, fp16 loss scaling skips an overflowing step.
#include <ATen/Context.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "hone/core/device.h"
#include "hone/core/error.h"
#include "hone/models/mlp.h"
#include "hone/models/registry.h"
#include "hone/runtime/batch_search.h"
#include "hone/runtime/settings.h"
#include "hone/train/batch_finder.h"
#include "hone/train/graphed_step.h"
#include "hone/train/input_pipeline.h"
#include "hone/train/train_step.h"
#include "hone/train/trainer.h"
#include "support/relative_error.h"
#include "support/temp_dir.h"
#include "support/tolerances.h"

namespace hone::train {
namespace {

std::shared_ptr<models::Mlp> make_mlp() {
  models::MlpConfig c;
  c.in_features = 33;
  c.hidden = {65};
  c.out_features = 7;
  c.dropout = 0;
  return std::make_shared<models::Mlp>(c);
}

const LossFn kLoss = [](const at::Tensor& out, const at::Tensor& y) { return torch::cross_entropy_loss(out, y); };

TEST(TrainCudaTest, AReplayedGraphStepEqualsTheEagerStep) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  torch::manual_seed(1);
  auto a = make_mlp(), b = make_mlp();
  a->to(torch::kCUDA);
  b->to(torch::kCUDA);
  {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < a->parameters().size(); ++i) b->parameters()[i].copy_(a->parameters()[i]);
  }
  auto opt_a = make_optimizer({}, make_param_groups(*a, {}));
  auto opt_b = make_optimizer({}, make_param_groups(*b, {}));
  GradScaler off_a(false, torch::kCUDA), off_b(false, torch::kCUDA);
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  std::vector<Batch> batches;
  for (int i = 0; i < 4; ++i)
    batches.push_back({torch::randn({16, 33}, cuda), torch::randint(0, 7, {16}, cuda.dtype(torch::kLong))});
  const at::Tensor lr_a = torch::full({}, 1e-2, cuda.dtype(torch::kFloat)), lr_b = lr_a.clone();
  TrainStep eager([&](const at::Tensor& x) { return a->forward(x); }, kLoss, *opt_a, off_a, Precision::kFp32, 1.0,
                  torch::kCUDA);
  // Three warm-up steps that must leave no trace: the first replay is the first step.
  GraphedStep graphed([&](const at::Tensor& x) { return b->forward(x); }, kLoss, *opt_b, off_b, Precision::kFp32, 1.0,
                      batches[0], lr_b, /*warmup=*/3);
  for (int i = 0; i < 4; ++i) {
    lr_a.fill_(1e-2 / (i + 1));
    lr_b.fill_(1e-2 / (i + 1));
    eager.run({batches[i]}, lr_a);
    ASSERT_TRUE(graphed.fits(batches[i]));
    graphed.input().copy_(batches[i].input);
    graphed.target().copy_(batches[i].target);
    graphed.replay();
  }
  for (std::size_t i = 0; i < a->parameters().size(); ++i)
    EXPECT_LT(testing::relative_error(b->parameters()[i].detach(), a->parameters()[i].detach()),
              testing::kFp32Reordered.relative)
        << "parameter " << i;
}

TEST(TrainCudaTest, AGraphedChannelsLastConvStepEqualsTheEagerNchwStep) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  // What `--preset fast-gpu` runs for a conv net: NHWC weights and batches, the step as one graph.
  // TF32 off (fp32 on both sides), so only the kernels' summation order differs.
  auto& context = at::globalContext();
  const bool tf32 = context.allowTF32CuDNN();
  context.setAllowTF32CuDNN(false);
  struct Restore {
    bool tf32;
    ~Restore() { at::globalContext().setAllowTF32CuDNN(tf32); }
  } restore{tf32};
  const nlohmann::json config{
      {"in_channels", 1}, {"num_classes", 5}, {"widths", {8, 16}}, {"blocks_per_stage", 1}, {"dropout", 0.0}};
  torch::manual_seed(6);
  auto a = models::make_model("cnn", config), b = models::make_model("cnn", config);
  a->to(torch::kCUDA);
  b->to(torch::kCUDA);
  {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < a->parameters().size(); ++i) b->parameters()[i].copy_(a->parameters()[i]);
  }
  runtime::to_channels_last(*b);
  a->train();
  b->train();
  auto opt_a = make_optimizer({}, make_param_groups(*a, {}));
  auto opt_b = make_optimizer({}, make_param_groups(*b, {}));
  GradScaler off_a(false, torch::kCUDA), off_b(false, torch::kCUDA);
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  std::vector<Batch> batches;
  for (int i = 0; i < 3; ++i)
    batches.push_back({torch::randn({8, 1, 12, 12}, cuda), torch::randint(0, 5, {8}, cuda.dtype(torch::kLong))});
  const at::Tensor lr_a = torch::full({}, 1e-3, cuda.dtype(torch::kFloat)), lr_b = lr_a.clone();
  TrainStep eager([&](const at::Tensor& x) { return a->forward(x); }, kLoss, *opt_a, off_a, Precision::kFp32, 1.0,
                  torch::kCUDA);
  GraphedStep graphed([&](const at::Tensor& x) { return b->forward(runtime::channels_last_input(x)); }, kLoss, *opt_b,
                      off_b, Precision::kFp32, 1.0, batches[0], lr_b, /*warmup=*/3, b->buffers());
  for (const auto& batch : batches) {
    eager.run({batch}, lr_a);
    graphed.input().copy_(batch.input);
    graphed.target().copy_(batch.target);
    graphed.replay();
  }
  for (std::size_t i = 0; i < a->parameters().size(); ++i)
    EXPECT_LT(testing::relative_error(b->parameters()[i].detach(), a->parameters()[i].detach()),
              testing::kFp32Reordered.relative)
        << "parameter " << i;
  EXPECT_TRUE(b->parameters()[0].is_contiguous(at::MemoryFormat::ChannelsLast)) << "the graph kept the NHWC weights";
}

TEST(TrainCudaTest, TheDeviceCacheKeepsTheDrawnOrder) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  const data::TensorDataset dataset(torch::arange(50, torch::kFloat).unsqueeze(1), torch::arange(50, torch::kLong));
  PipelineOptions o;
  o.batch_size = 8;
  o.device = torch::kCUDA;
  InputPipeline pipeline(dataset, o);
  ASSERT_TRUE(pipeline.cached_on_device());
  torch::manual_seed(4);
  const at::Tensor drawn = torch::randperm(50, torch::kLong);
  torch::manual_seed(4);
  std::vector<at::Tensor> seen;
  pipeline.for_each_epoch_batch([&](Batch& b) {
    EXPECT_TRUE(b.input.is_cuda());
    seen.push_back(b.target.cpu());
  });
  EXPECT_TRUE(torch::equal(torch::cat(seen), drawn));
}

TEST(TrainCudaTest, Fp16ScalingSkipsAnOverflowingStepOnTheGpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  torch::manual_seed(2);
  auto model = make_mlp();
  model->to(torch::kCUDA);
  auto opt = make_optimizer({}, make_param_groups(*model, {}));
  GradScaler scaler(true, torch::kCUDA);
  bool inject = true;
  TrainStep step(
      [&](const at::Tensor& x) {
        at::Tensor out = model->forward(x);
        if (inject) out.register_hook([](at::Tensor g) { return g * std::numeric_limits<float>::infinity(); });
        return out;
      },
      kLoss, *opt, scaler, Precision::kFp16, 1.0, torch::kCUDA);
  const auto cuda = torch::TensorOptions().device(torch::kCUDA);
  const Batch batch{torch::randn({8, 33}, cuda), torch::randint(0, 7, {8}, cuda.dtype(torch::kLong))};
  const at::Tensor before = model->parameters()[0].detach().clone();
  step.run({batch}, torch::full({}, 1e-3, cuda.dtype(torch::kFloat)));
  EXPECT_TRUE(torch::equal(model->parameters()[0].detach(), before));
  EXPECT_DOUBLE_EQ(scaler.current_scale(), 32768.0);
  inject = false;
  step.run({batch}, torch::full({}, 1e-3, cuda.dtype(torch::kFloat)));
  EXPECT_FALSE(torch::equal(model->parameters()[0].detach(), before));
  EXPECT_EQ(scaler.skipped_steps(), 1);
}

TrainOptions digits_on_gpu(const std::filesystem::path& out) {
  TrainOptions o;
  o.model = "mlp";
  o.data = "digits";
  o.model_overrides = {{"hidden", {64}}, {"dropout", 0.0}};
  o.epochs = 3;
  o.batch_size = 32;
  o.learning_rate = 3e-3;
  o.seed = 3;
  o.device = "cuda";
  o.deterministic = true;
  o.out_dir = out;
  o.progress = false;
  return o;
}

TEST(TrainCudaTest, TrainingWithCudaGraphsFollowsTheEagerRun) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  testing::TempDir dir;
  const TrainResult eager = train(digits_on_gpu(dir / "eager"));
  TrainOptions o = digits_on_gpu(dir / "graphs");
  o.cuda_graphs = true;
  const TrainResult graphed = train(o);
  ASSERT_EQ(graphed.state.history.size(), 3u);
  const auto& a = eager.state.history;
  const auto& b = graphed.state.history;
  // The warm-up leaves no trace, so the first step is the eager run's first step.
  EXPECT_NEAR(b[0].first_step_loss, a[0].first_step_loss, 1e-5 * std::abs(a[0].first_step_loss));
  EXPECT_EQ(b[0].steps, a[0].steps) << "the short last batch still runs (eagerly)";
  for (std::size_t e = 0; e < 3; ++e) {
    EXPECT_NEAR(b[e].train_loss, a[e].train_loss, 0.02 * a[e].train_loss + 1e-3) << "epoch " << e + 1;
    EXPECT_NEAR(*b[e].val.accuracy, *a[e].val.accuracy, 0.02) << "epoch " << e + 1;
  }
}

TEST(TrainCudaTest, AResumedGpuRunRepeatsTheUninterruptedOne) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  testing::TempDir dir;
  const TrainResult whole = train(digits_on_gpu(dir / "whole"));
  TrainOptions first = digits_on_gpu(dir / "split");
  first.stop_after_epochs = 1;
  ASSERT_EQ(train(first).state.epochs_done, 1);
  TrainOptions rest = digits_on_gpu(dir / "split");
  rest.resume = true;
  const TrainResult resumed = train(rest);
  ASSERT_EQ(resumed.state.history.size(), 3u);
  for (std::size_t e = 1; e < 3; ++e) {
    const auto& a = whole.state.history[e];
    const auto& b = resumed.state.history[e];
    EXPECT_NEAR(b.first_step_loss, a.first_step_loss, 1e-5 * std::abs(a.first_step_loss)) << "epoch " << e + 1;
    EXPECT_NEAR(b.train_loss, a.train_loss, 1e-5 * a.train_loss) << "epoch " << e + 1;
    EXPECT_EQ(*b.val.accuracy, *a.val.accuracy) << "epoch " << e + 1;
  }
}

TEST(TrainCudaTest, TheTrainingBatchFinderStaysWithinASmallBudget) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  testing::TempDir dir;
  TrainOptions o = digits_on_gpu(dir / "find");
  o.model_overrides = {{"hidden", {4096, 4096}}, {"dropout", 0.0}};  // ~17M parameters: AdamW state dominates
  const std::int64_t budget = std::int64_t{1} << 30;
  const runtime::BatchSearch s = find_train_batch(o, budget, 1 << 14);
  ASSERT_GT(s.largest_batch, 1) << s.to_text();
  EXPECT_LE(s.largest_batch_peak_bytes, budget);
  bool over = false;
  for (const auto& t : s.trials) over = over || !t.fits;
  EXPECT_TRUE(over || s.largest_batch == (1 << 14)) << "the search must have found the edge";
  try {
    find_train_batch(o, std::int64_t{1} << 50);
    ADD_FAILURE() << "a budget above the device's memory must be refused";
  } catch (const UsageError& e) {
    EXPECT_EQ(e.option(), "memory_budget");
  }
}

}  // namespace
}  // namespace hone::train
