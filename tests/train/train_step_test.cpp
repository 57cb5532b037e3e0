// One TrainStep: accumulation equals the large batch, clipping equals torch's clip_grad_norm_,
// the precision scope restores autocast, and the losses stay on the device until read.
#include "hone/train/train_step.h"

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "hone/core/error.h"
#include "hone/models/mlp.h"
#include "hone/models/registry.h"
#include "hone/runtime/settings.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone::train {
namespace {

using testing::kFp32Reordered;
using testing::relative_error;

std::shared_ptr<models::Mlp> make_mlp() {
  models::MlpConfig c;
  c.in_features = 9;
  c.hidden = {13};
  c.out_features = 4;
  c.dropout = 0;
  return std::make_shared<models::Mlp>(c);
}

const LossFn kCrossEntropy = [](const at::Tensor& out, const at::Tensor& y) {
  return torch::cross_entropy_loss(out, y);
};

TEST(TrainStepTest, FourMicroBatchesEqualOneLargeBatch) {
  torch::manual_seed(2);
  auto a = make_mlp(), b = make_mlp();
  {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < a->parameters().size(); ++i) b->parameters()[i].copy_(a->parameters()[i]);
  }
  const at::Tensor x = torch::randn({12, 9});
  const at::Tensor y = torch::randint(0, 4, {12});
  auto opt_a = make_optimizer({}, make_param_groups(*a, {}));
  auto opt_b = make_optimizer({}, make_param_groups(*b, {}));
  GradScaler off_a(false, c10::kCPU), off_b(false, c10::kCPU);
  TrainStep large([&](const at::Tensor& in) { return a->forward(in); }, kCrossEntropy, *opt_a, off_a, Precision::kFp32,
                  1.0, c10::kCPU);
  TrainStep accumulated([&](const at::Tensor& in) { return b->forward(in); }, kCrossEntropy, *opt_b, off_b,
                        Precision::kFp32, 1.0, c10::kCPU);
  const at::Tensor lr = torch::full({}, 1e-2f);
  for (int step = 0; step < 3; ++step) {
    large.run({{x, y}}, lr);
    std::vector<Batch> micro;
    for (int k = 0; k < 4; ++k) micro.push_back({x.narrow(0, 3 * k, 3), y.narrow(0, 3 * k, 3)});
    accumulated.run(micro, lr);
  }
  for (std::size_t i = 0; i < a->parameters().size(); ++i)
    EXPECT_LT(relative_error(b->parameters()[i].detach(), a->parameters()[i].detach()), kFp32Reordered.relative);
  EXPECT_NEAR(accumulated.take_loss_sum(), large.take_loss_sum(), 1e-5);
}

TEST(TrainStepTest, ChannelsLastStepsEqualContiguousSteps) {
  // The same ResNet trained three AdamW steps in NCHW and in NHWC (conv weights and inputs): the
  // memory format changes the kernels' summation order, never the result beyond reordering.
  const nlohmann::json config{
      {"in_channels", 2}, {"num_classes", 4}, {"widths", {8, 16}}, {"blocks_per_stage", 1}, {"dropout", 0.0}};
  torch::manual_seed(4);
  auto plain = models::make_model("cnn", config);
  auto nhwc = models::make_model("cnn", config);
  {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < plain->parameters().size(); ++i) nhwc->parameters()[i].copy_(plain->parameters()[i]);
  }
  runtime::to_channels_last(*nhwc);
  int converted = 0;
  for (const auto& p : nhwc->parameters()) {
    if (p.dim() != 4) continue;
    EXPECT_TRUE(p.is_contiguous(at::MemoryFormat::ChannelsLast));
    if (p.size(2) * p.size(3) == 1) continue;  // a 1x1 conv's weight is both layouts at once
    EXPECT_FALSE(p.is_contiguous()) << "a 3x3 conv weight in NHWC is not NCHW-contiguous";
    ++converted;
  }
  EXPECT_GE(converted, 4);
  const at::Tensor x = torch::randn({6, 2, 10, 10});
  const at::Tensor y = torch::randint(0, 4, {6});
  auto opt_plain = make_optimizer({}, make_param_groups(*plain, {}));
  auto opt_nhwc = make_optimizer({}, make_param_groups(*nhwc, {}));
  GradScaler off_a(false, c10::kCPU), off_b(false, c10::kCPU);
  TrainStep a([&](const at::Tensor& in) { return plain->forward(in); }, kCrossEntropy, *opt_plain, off_a,
              Precision::kFp32, 1.0, c10::kCPU);
  TrainStep b([&](const at::Tensor& in) { return nhwc->forward(runtime::channels_last_input(in)); }, kCrossEntropy,
              *opt_nhwc, off_b, Precision::kFp32, 1.0, c10::kCPU);
  const at::Tensor lr = torch::full({}, 1e-2f);
  for (int step = 0; step < 3; ++step) {
    a.run({{x, y}}, lr);
    b.run({{x, y}}, lr);
  }
  for (std::size_t i = 0; i < plain->parameters().size(); ++i)
    EXPECT_LT(relative_error(nhwc->parameters()[i].detach(), plain->parameters()[i].detach()), kFp32Reordered.relative)
        << "parameter " << i;
  EXPECT_NEAR(b.take_loss_sum(), a.take_loss_sum(), 1e-4);
}

TEST(TrainStepTest, ClippingMatchesTorchClipGradNorm) {
  torch::manual_seed(4);
  std::vector<at::Tensor> ours, theirs;
  for (auto n : {5, 17, 3}) {
    at::Tensor p = torch::randn({n}, torch::requires_grad());
    p.mutable_grad() = torch::randn({n}) * 10;
    ours.push_back(p.grad());
    at::Tensor q = p.detach().clone().requires_grad_(true);
    q.mutable_grad() = p.grad().clone();
    theirs.push_back(q);
  }
  const double expected_norm = torch::nn::utils::clip_grad_norm_(theirs, 2.0);
  const at::Tensor norm = clip_grad_norm(ours, 2.0);
  EXPECT_NEAR(norm.item<double>(), expected_norm, 1e-4 * expected_norm);
  for (std::size_t i = 0; i < ours.size(); ++i)
    EXPECT_LT(relative_error(ours[i], theirs[i].grad()), testing::kFp32.relative);
}

TEST(TrainStepTest, ANonFiniteLossIsRecordedOnTheDeviceWithItsStep) {
  torch::manual_seed(5);
  auto model = make_mlp();
  auto opt = make_optimizer({}, make_param_groups(*model, {}));
  GradScaler off(false, c10::kCPU);
  int calls = 0;
  const LossFn loss = [&](const at::Tensor& out, const at::Tensor& y) {
    at::Tensor l = torch::cross_entropy_loss(out, y);
    return ++calls == 3 ? l * std::numeric_limits<float>::quiet_NaN() : l;
  };
  TrainStep step([&](const at::Tensor& in) { return model->forward(in); }, loss, *opt, off, Precision::kFp32, 1.0,
                 c10::kCPU);
  const Batch batch{torch::randn({4, 9}), torch::randint(0, 4, {4})};
  for (int i = 0; i < 4; ++i) step.run({batch}, torch::full({}, 1e-3f));
  EXPECT_EQ(step.first_non_finite_step(), 3);
  EXPECT_GT(step.first_loss(), 0);
}

TEST(TrainStepTest, PrecisionScopeRestoresAutocastAndRejectsWhatTheDeviceCannotDo) {
  const bool before = at::autocast::is_autocast_enabled(c10::kCPU);
  {
    PrecisionScope scope(Precision::kFp32, c10::kCPU);
    EXPECT_EQ(at::autocast::is_autocast_enabled(c10::kCPU), before);
  }
  {
    PrecisionScope scope(Precision::kBf16, c10::kCPU);
    EXPECT_TRUE(at::autocast::is_autocast_enabled(c10::kCPU));
    EXPECT_EQ(at::autocast::get_autocast_dtype(c10::kCPU), at::kBFloat16);
    const at::Tensor out = torch::mm(torch::randn({3, 4}), torch::randn({4, 2}));
    EXPECT_EQ(out.scalar_type(), at::kBFloat16) << "matmuls run in bf16 inside the scope";
  }
  EXPECT_EQ(at::autocast::is_autocast_enabled(c10::kCPU), before);
  EXPECT_THROW(check_precision_supported(Precision::kFp16, c10::kCPU), UsageError);
  EXPECT_THROW(check_precision_supported(Precision::kTf32, c10::kCPU), UsageError);
  EXPECT_NO_THROW(check_precision_supported(Precision::kFp32, c10::kCPU));
  EXPECT_THROW(parse_precision("fp8"), UsageError);
}

}  // namespace
}  // namespace hone::train
