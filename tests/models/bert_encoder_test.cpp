// hone's BERT sentence encoder ("minilm" in the zoo): sizes, pooling over real tokens only,
// padding that changes nothing, strict config and input checks. The pretrained weights are tested
// against sentence-transformers in tests/text/sentence_encoder_test.cpp.
#include "hone/models/bert_encoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/models/registry.h"
#include "support/error_message.h"
#include "support/tolerances.h"

namespace hone::models {
namespace {

using hone::testing::error_message;
using ::testing::HasSubstr;

BertEncoderConfig small_config() {
  BertEncoderConfig c;
  c.vocab_size = 120;
  c.hidden_size = 32;
  c.num_layers = 2;
  c.num_heads = 4;
  c.intermediate_size = 64;
  c.max_positions = 40;
  c.dropout = 0.0;
  return c;
}

torch::Tensor random_ids(std::int64_t batch, std::int64_t tokens, std::int64_t vocab) {
  return torch::randint(1, vocab, {batch, tokens}, torch::kLong);  // never the pad id 0
}

TEST(BertEncoderTest, TheZooEntryHasAllMiniLmL6V2Sizes) {
  data::DatasetInfo tokens;
  tokens.name = "tokens";
  tokens.input_shape = {128};
  tokens.vocab_size = 30522;
  const auto model = make_model("minilm", tokens);
  EXPECT_EQ(model->architecture(), "minilm");
  // The real checkpoint's 22,713,216 parameters less its unused pooler (384 x 384 + 384).
  EXPECT_EQ(count_parameters(*model), 22'713'216 - (384 * 384 + 384));
  data::DatasetInfo images{"images", data::TaskKind::kClassification, {1, 28, 28}, 10, 0, {}};
  EXPECT_THAT(error_message([&] { make_model("minilm", images); }), HasSubstr("token ids"));
}

TEST(BertEncoderTest, EmbeddingsAreUnitVectorsPerSentence) {
  torch::manual_seed(3);
  BertEncoder model(small_config());
  model.eval();
  const auto out = model.forward(random_ids(5, 9, 120));
  EXPECT_EQ(out.sizes(), (std::vector<std::int64_t>{5, 32}));
  EXPECT_TRUE(torch::allclose(out.norm(2, 1), torch::ones({5}), 1e-5, 1e-6));
}

TEST(BertEncoderTest, TrailingPaddingChangesNothing) {
  torch::manual_seed(4);
  BertEncoder model(small_config());
  model.eval();
  torch::NoGradGuard no_grad;
  const auto ids = random_ids(3, 7, 120);
  const auto padded = torch::cat({ids, torch::zeros({3, 5}, torch::kLong)}, 1);
  const auto a = model.forward(ids), b = model.forward(padded);
  EXPECT_LT((a - b).norm().item<double>() / a.norm().item<double>(), testing::kFp32Reordered.relative);
  // Without the mask, the padding tokens would take part: the states of real tokens would differ.
  const auto states = model.token_states(padded).narrow(1, 0, 7);
  EXPECT_LT((states - model.token_states(ids)).abs().max().item<double>(), 1e-4);
}

TEST(BertEncoderTest, MeanPoolingAveragesOnlyRealTokensAndClsTakesTheFirst) {
  torch::manual_seed(5);
  auto config = small_config();
  config.normalize = false;
  BertEncoder mean_model(config);
  mean_model.eval();
  torch::NoGradGuard no_grad;
  auto ids = random_ids(2, 6, 120);
  ids[1].narrow(0, 4, 2).fill_(0);  // the second row has 4 real tokens
  const auto states = mean_model.token_states(ids);
  const auto pooled = mean_model.forward(ids);
  EXPECT_TRUE(torch::allclose(pooled[0], states[0].mean(0), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(pooled[1], states[1].narrow(0, 0, 4).mean(0), 1e-5, 1e-6));

  config.pooling = "cls";
  BertEncoder cls_model(config);
  cls_model.eval();
  const auto cls_states = cls_model.token_states(ids);
  EXPECT_TRUE(torch::allclose(cls_model.forward(ids), cls_states.select(1, 0)));
}

TEST(BertEncoderTest, ConfigAndInputsAreCheckedStrictly) {
  auto config = small_config();
  config.pooling = "max";
  EXPECT_THAT(error_message([&] { BertEncoder{config}; }), HasSubstr("'pooling' must be mean or cls"));
  config = small_config();
  config.pad_id = 500;
  EXPECT_THAT(error_message([&] { BertEncoder{config}; }), HasSubstr("pad_id"));
  EXPECT_THAT(error_message([&] { nlohmann::json{{"hidden", 3}}.get<BertEncoderConfig>(); }), HasSubstr("hidden"));

  BertEncoder model(small_config());
  EXPECT_THAT(error_message([&] { model.forward(torch::randn({2, 5})); }), HasSubstr("int64 or int32"));
  EXPECT_THAT(error_message([&] { model.forward(random_ids(1, 41, 120)); }), HasSubstr("max_positions"));
  // A saved config rebuilds the same architecture.
  const auto rebuilt = make_model("minilm", model.config());
  EXPECT_EQ(rebuilt->config(), model.config());
}

}  // namespace
}  // namespace hone::models
