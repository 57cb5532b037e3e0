// The loss scaler against PyTorch GradScaler's semantics (a reference state machine written out
// here), and an injected overflow through a whole TrainStep: the step is skipped, the scale halved.
#include "hone/train/grad_scaler.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <random>

#include "hone/train/optimizer.h"
#include "hone/train/train_step.h"

namespace hone::train {
namespace {

/// torch.cuda.amp.GradScaler's update rule, by the book.
struct ReferenceScaler {
  double scale = 65536.0;
  std::int64_t tracker = 0;
  std::int64_t interval = 2000;
  void update(bool found_inf) {
    if (found_inf) {
      scale *= 0.5;
      tracker = 0;
    } else if (++tracker == interval) {
      scale *= 2.0;
      tracker = 0;
    }
  }
};

TEST(GradScalerTest, FollowsPyTorchsStateMachineOverARandomSequence) {
  GradScalerOptions options;
  options.growth_interval = 3;
  GradScaler scaler(true, c10::kCPU, options);
  ReferenceScaler reference;
  reference.interval = 3;
  std::mt19937 rng(7);
  std::int64_t skipped = 0;
  for (int i = 0; i < 60; ++i) {
    const bool overflow = (rng() % 4) == 0;
    at::Tensor grad = torch::full({5}, 0.25f);
    if (overflow) grad[2] = std::numeric_limits<float>::infinity();
    const at::Tensor found_inf = scaler.unscale({grad});
    EXPECT_EQ(found_inf.item<float>(), overflow ? 1.0f : 0.0f) << "step " << i;
    scaler.update(found_inf);
    reference.update(overflow);
    skipped += overflow ? 1 : 0;
    ASSERT_DOUBLE_EQ(scaler.current_scale(), reference.scale) << "step " << i;
  }
  EXPECT_EQ(scaler.skipped_steps(), skipped);
  EXPECT_GT(skipped, 5);
}

TEST(GradScalerTest, UnscalesByTheExactReciprocalAndRoundTripsItsState) {
  GradScaler scaler(true, c10::kCPU);
  const at::Tensor loss = torch::tensor(3.0f);
  EXPECT_FLOAT_EQ(scaler.scale(loss).item<float>(), 3.0f * 65536.0f);
  at::Tensor grad = torch::full({4}, 65536.0f * 0.5f);
  EXPECT_EQ(scaler.unscale({grad}).item<float>(), 0.0f);
  EXPECT_TRUE(torch::equal(grad, torch::full({4}, 0.5f)));
  GradScaler other(true, c10::kCPU);
  scaler.update(torch::ones({1}));  // an overflow: 32768
  other.load(scaler.state());
  EXPECT_DOUBLE_EQ(other.current_scale(), 32768.0);
  EXPECT_EQ(other.skipped_steps(), 1);
  GradScaler disabled(false, c10::kCPU);
  EXPECT_TRUE(disabled.scale(loss).is_same(loss));
  EXPECT_FALSE(disabled.unscale({grad}).defined());
}

TEST(GradScalerTest, AnInjectedInfGradientSkipsTheStepAndHalvesTheScale) {
  torch::manual_seed(3);
  torch::nn::Linear linear(4, 3);
  auto groups = make_param_groups(*linear, {});
  auto optimizer = make_optimizer({}, groups);
  GradScaler scaler(true, c10::kCPU);
  bool inject = true;
  const ForwardFn forward = [&](const at::Tensor& x) {
    at::Tensor out = linear->forward(x);
    if (inject) out.register_hook([](at::Tensor g) { return g * std::numeric_limits<float>::infinity(); });
    return out;
  };
  const LossFn loss = [](const at::Tensor& out, const at::Tensor& y) { return torch::mse_loss(out, y); };
  TrainStep step(forward, loss, *optimizer, scaler, Precision::kFp32, /*grad_clip=*/1.0, c10::kCPU);
  const at::Tensor before = linear->weight.detach().clone();
  const Batch batch{torch::randn({6, 4}), torch::randn({6, 3})};
  const at::Tensor lr = torch::full({}, 0.01f);
  step.run({batch}, lr);
  EXPECT_TRUE(torch::equal(linear->weight.detach(), before)) << "the overflowing step must not move the weights";
  EXPECT_DOUBLE_EQ(scaler.current_scale(), 32768.0);
  EXPECT_EQ(scaler.skipped_steps(), 1);
  EXPECT_EQ(step.first_non_finite_step(), 0) << "the loss itself was finite";
  for (const auto& [name, tensor] : optimizer->state()) {
    EXPECT_EQ(tensor.abs().sum().item<double>(), 0.0) << name << " moved on a skipped step";
  }
  inject = false;
  step.run({batch}, lr);
  EXPECT_FALSE(torch::equal(linear->weight.detach(), before)) << "a clean step updates";
  EXPECT_EQ(scaler.skipped_steps(), 1);
}

}  // namespace
}  // namespace hone::train
