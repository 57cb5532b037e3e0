// hone's optimizers against LibTorch's torch::optim (AdamW, SGD) and a plain-ops Lion reference,
// over several steps on the same gradients; found_inf skips; state round-trips; param groups.
#include "hone/train/optimizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/core/error.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone::train {
namespace {

using testing::kFp32Reordered;
using testing::relative_error;

/// Two copies of the same parameters (odd sizes), and a fixed gradient sequence.
struct Twin {
  std::vector<at::Tensor> ours, theirs;
  std::vector<std::vector<at::Tensor>> grads;
  explicit Twin(int steps) {
    torch::manual_seed(11);
    for (auto shape : {std::vector<std::int64_t>{7, 5}, {5}, {3, 2, 3}}) {
      at::Tensor p = torch::randn(shape);
      ours.push_back(p.clone().requires_grad_(true));
      theirs.push_back(p.clone().requires_grad_(true));
    }
    for (int s = 0; s < steps; ++s) {
      std::vector<at::Tensor> g;
      for (const auto& p : ours) g.push_back(torch::randn(p.sizes()) * (s + 1));
      grads.push_back(g);
    }
  }
  std::vector<ParamGroup> groups(double weight_decay) const {
    return {ParamGroup{"all", {"a", "b", "c"}, ours, weight_decay, 1.0}};
  }
  void set_grads(int s) {
    for (std::size_t i = 0; i < ours.size(); ++i) {
      ours[i].mutable_grad() = grads[s][i].clone();
      theirs[i].mutable_grad() = grads[s][i].clone();
    }
  }
  void expect_close(double tolerance) const {
    for (std::size_t i = 0; i < ours.size(); ++i)
      EXPECT_LE(relative_error(ours[i].detach(), theirs[i].detach()), tolerance) << "parameter " << i;
  }
};

TEST(OptimizerTest, FusedAdamWMatchesTorchOptimAdamW) {
  Twin twin(6);
  auto ours = make_optimizer({}, twin.groups(0.05));
  torch::optim::AdamW theirs(twin.theirs, torch::optim::AdamWOptions(3e-3).weight_decay(0.05));
  const at::Tensor lr = torch::full({}, 3e-3f);
  for (int s = 0; s < 6; ++s) {
    twin.set_grads(s);
    ours->step(lr, {});
    theirs.step();
  }
  twin.expect_close(kFp32Reordered.relative);
}

TEST(OptimizerTest, FusedSgdWithNesterovMatchesTorchOptimSgd) {
  Twin twin(5);
  OptimizerOptions o;
  o.kind = "sgd";
  o.momentum = 0.9;
  o.nesterov = true;
  auto ours = make_optimizer(o, twin.groups(1e-3));
  torch::optim::SGD theirs(twin.theirs, torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(true).weight_decay(1e-3));
  const at::Tensor lr = torch::full({}, 0.05f);
  for (int s = 0; s < 5; ++s) {
    twin.set_grads(s);
    ours->step(lr, {});
    theirs.step();
  }
  twin.expect_close(kFp32Reordered.relative);
}

TEST(OptimizerTest, LionMatchesItsDefinition) {
  Twin twin(4);
  OptimizerOptions o;
  o.kind = "lion";
  o.beta1 = 0.9;
  o.beta2 = 0.99;
  auto ours = make_optimizer(o, twin.groups(0.1));
  std::vector<at::Tensor> m;
  for (const auto& p : twin.theirs) m.push_back(torch::zeros_like(p));
  const double lr = 1e-2;
  for (int s = 0; s < 4; ++s) {
    twin.set_grads(s);
    ours->step(torch::full({}, static_cast<float>(lr)), {});
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < m.size(); ++i) {
      const at::Tensor g = twin.grads[s][i];
      const at::Tensor update = torch::sign(0.9 * m[i] + 0.1 * g);
      twin.theirs[i].mul_(1 - lr * 0.1).sub_(lr * update);
      m[i] = 0.99 * m[i] + 0.01 * g;
    }
  }
  twin.expect_close(kFp32Reordered.relative);
}

TEST(OptimizerTest, FoundInfSkipsTheStepForEveryOptimizer) {
  for (const char* kind : {"adamw", "sgd", "lion"}) {
    Twin twin(1);
    OptimizerOptions o;
    o.kind = kind;
    auto optimizer = make_optimizer(o, twin.groups(0.01));
    twin.set_grads(0);
    optimizer->step(torch::full({}, 0.1f), torch::ones({1}));
    twin.expect_close(0.0);  // theirs never stepped: ours must equal them exactly
    for (const auto& [name, t] : optimizer->state())
      EXPECT_EQ(t.abs().sum().item<double>(), 0.0) << kind << " " << name;
    optimizer->step(torch::full({}, 0.1f), torch::zeros({1}));
    EXPECT_GT(relative_error(twin.ours[0].detach(), twin.theirs[0].detach()), 1e-4) << kind << " must step";
  }
}

TEST(OptimizerTest, StateRoundTripsSoAResumedOptimizerContinuesIdentically) {
  Twin a(4), b(4);
  auto first = make_optimizer({}, a.groups(0.01));
  const at::Tensor lr = torch::full({}, 1e-2f);
  for (int s = 0; s < 2; ++s) {
    a.set_grads(s);
    first->step(lr, {});
  }
  // b's parameters take a's values, and a new optimizer takes first's state.
  for (std::size_t i = 0; i < a.ours.size(); ++i) b.ours[i].detach().copy_(a.ours[i].detach());
  auto second = make_optimizer({}, b.groups(0.01));
  second->load_state(first->state());
  for (int s = 2; s < 4; ++s) {
    a.set_grads(s);
    b.set_grads(s);
    first->step(lr, {});
    second->step(lr, {});
  }
  for (std::size_t i = 0; i < a.ours.size(); ++i) EXPECT_TRUE(torch::equal(a.ours[i], b.ours[i]));
  auto wrong = make_optimizer({.kind = "sgd"}, b.groups(0.0));
  EXPECT_THROW(wrong->load_state(first->state()), Error);
}

TEST(OptimizerTest, ParamGroupsSkipDecayOnNormsAndBiasesAndScaleAPrefix) {
  torch::nn::Sequential model(torch::nn::Linear(4, 3), torch::nn::LayerNorm(torch::nn::LayerNormOptions({3})));
  ParamGroupOptions o;
  o.weight_decay = 0.1;
  o.decay_norms_and_biases = false;
  const auto groups = make_param_groups(*model, o);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].names, (std::vector<std::string>{"0.weight"}));
  EXPECT_EQ(groups[0].weight_decay, 0.1);
  EXPECT_THAT(groups[1].names, ::testing::UnorderedElementsAre("0.bias", "1.weight", "1.bias"));
  EXPECT_EQ(groups[1].weight_decay, 0.0);
  o.prefixes = {"1."};
  o.prefix_lr_scale = 0.1;
  const auto scaled = make_param_groups(*model, o);
  ASSERT_EQ(scaled.size(), 3u);
  EXPECT_EQ(scaled[2].lr_scale, 0.1);
  EXPECT_THAT(scaled[2].names, ::testing::UnorderedElementsAre("1.weight", "1.bias"));
}

TEST(OptimizerTest, BadChoicesNameTheOption) {
  Twin twin(1);
  try {
    make_optimizer({.kind = "adagrad"}, twin.groups(0));
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_EQ(e.option(), "optimizer");
  }
  OptimizerOptions bad;
  bad.kind = "sgd";
  bad.momentum = 0;
  bad.nesterov = true;
  EXPECT_THROW(make_optimizer(bad, twin.groups(0)), UsageError);
}

}  // namespace
}  // namespace hone::train
