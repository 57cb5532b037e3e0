// Activation checkpointing gives the gradients of the plain backward: a transformer with dropout
// (the recomputation must replay the same masks), a ResNet (batch norm in train mode), and MiniLM's
// encoder shape; a model without blocks says so.
#include "hone/train/activation_checkpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/core/error.h"
#include "hone/models/registry.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone::train {
namespace {

using testing::relative_error;

/// Parameter gradients of loss(model(x)), with a fixed seed for dropout.
std::vector<at::Tensor> gradients(models::Model& model, const at::Tensor& x, bool checkpoint) {
  if (checkpoint) enable_activation_checkpointing(model);
  model.zero_grad();
  torch::manual_seed(77);
  model.forward(x).pow(2).mean().backward();
  disable_activation_checkpointing(model);
  std::vector<at::Tensor> grads;
  for (const auto& p : model.parameters()) grads.push_back(p.grad().defined() ? p.grad().clone() : at::Tensor());
  return grads;
}

void expect_same_gradients(models::Model& model, const at::Tensor& x) {
  model.train();
  const auto plain = gradients(model, x, false);
  const auto recomputed = gradients(model, x, true);
  ASSERT_EQ(plain.size(), recomputed.size());
  int checked = 0;
  for (std::size_t i = 0; i < plain.size(); ++i) {
    ASSERT_EQ(plain[i].defined(), recomputed[i].defined()) << "parameter " << i;
    if (!plain[i].defined()) continue;
    EXPECT_LT(relative_error(recomputed[i], plain[i]), testing::kFp32Reordered.relative) << "parameter " << i;
    ++checked;
  }
  EXPECT_GT(checked, 4);
}

TEST(ActivationCheckpointTest, TransformerWithDropoutGetsTheSameGradients) {
  torch::manual_seed(1);
  auto model = models::make_model("transformer", nlohmann::json{{"input_shape", {12, 5}},
                                                                {"out_features", 3},
                                                                {"d_model", 16},
                                                                {"num_heads", 2},
                                                                {"ffn_dim", 24},
                                                                {"num_layers", 3},
                                                                {"dropout", 0.3}});
  EXPECT_EQ(model->block_count(), 3);
  expect_same_gradients(*model, torch::randn({4, 12, 5}));
}

TEST(ActivationCheckpointTest, ResNetGetsTheSameGradients) {
  torch::manual_seed(2);
  auto model = models::make_model(
      "cnn", nlohmann::json{{"in_channels", 1}, {"num_classes", 4}, {"widths", {4, 8}}, {"blocks_per_stage", 1}});
  EXPECT_EQ(model->block_count(), 2);
  expect_same_gradients(*model, torch::randn({3, 1, 12, 12}));
}

TEST(ActivationCheckpointTest, BertEncoderGetsTheSameGradients) {
  torch::manual_seed(3);
  auto model = models::make_model("minilm", nlohmann::json{{"vocab_size", 50},
                                                           {"hidden_size", 16},
                                                           {"num_heads", 2},
                                                           {"intermediate_size", 32},
                                                           {"num_layers", 2},
                                                           {"max_positions", 16},
                                                           {"dropout", 0.2}});
  const at::Tensor ids = torch::randint(1, 50, {3, 9});
  expect_same_gradients(*model, ids);
}

TEST(ActivationCheckpointTest, AModelWithoutBlocksSaysSo) {
  auto model = models::make_model("mlp", nlohmann::json{{"in_features", 4}, {"hidden", {8}}, {"out_features", 2}});
  try {
    enable_activation_checkpointing(*model);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_EQ(e.option(), "checkpoint_activations");
    EXPECT_THAT(e.what(), ::testing::HasSubstr("mlp"));
  }
}

TEST(ActivationCheckpointTest, EvaluationRunsBlocksDirectly) {
  torch::manual_seed(4);
  auto model = models::make_model(
      "cnn", nlohmann::json{{"in_channels", 1}, {"num_classes", 4}, {"widths", {4}}, {"blocks_per_stage", 2}});
  model->eval();
  const at::Tensor x = torch::randn({2, 1, 10, 10});
  torch::NoGradGuard no_grad;
  const at::Tensor plain = model->forward(x);
  enable_activation_checkpointing(*model);
  EXPECT_TRUE(torch::equal(model->forward(x), plain));
}

}  // namespace
}  // namespace hone::train
