// TransformerEncoderLayer (scaled_dot_product_attention) against a slow reference written with plain
// ATen ops: per-sequence, per-head softmax(Q Kᵀ / √d + mask) V, explicit LayerNorm and GELU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "hone/core/error.h"
#include "hone/models/transformer_encoder.h"
#include "support/tolerances.h"

namespace hone::models {
namespace {

using testing::Tolerance;

// Odd sizes: 3 heads of 7, a feed-forward width that is not a multiple of anything.
constexpr std::int64_t kBatch = 3, kTokens = 9, kModel = 21, kHeads = 3, kFfn = 37;

TransformerEncoderLayerConfig layer_config(bool norm_first, const std::string& activation) {
  TransformerEncoderLayerConfig config;
  config.d_model = kModel;
  config.num_heads = kHeads;
  config.ffn_dim = kFfn;
  config.dropout = 0.2;  // eval mode must ignore it
  config.norm_first = norm_first;
  config.activation = activation;
  config.layer_norm_eps = 1e-5;
  return config;
}

/// Sequence b has lengths[b] real tokens; the rest is padding (true).
torch::Tensor padding_mask(const std::vector<std::int64_t>& lengths) {
  auto mask = torch::zeros({static_cast<std::int64_t>(lengths.size()), kTokens}, torch::kBool);
  for (std::size_t b = 0; b < lengths.size(); ++b) mask[b].slice(0, lengths[b]).fill_(true);
  return mask;
}

torch::Tensor linear(const torch::Tensor& x, torch::nn::Module& layer, const std::string& name) {
  const auto parameters = layer.named_parameters();
  return x.matmul(parameters[name + ".weight"].t()) + parameters[name + ".bias"];
}

torch::Tensor layer_norm(const torch::Tensor& x, torch::nn::Module& layer, const std::string& name, double eps) {
  const auto parameters = layer.named_parameters();
  const auto mean = x.mean(-1, true);
  const auto variance = (x - mean).square().mean(-1, true);  // biased, as LayerNorm
  return (x - mean) / (variance + eps).sqrt() * parameters[name + ".weight"] + parameters[name + ".bias"];
}

torch::Tensor reference_attention(const torch::Tensor& x, const torch::Tensor& mask, torch::nn::Module& layer) {
  const auto q = linear(x, layer, "query"), k = linear(x, layer, "key"), v = linear(x, layer, "value");
  const std::int64_t head_dim = kModel / kHeads;
  auto context = torch::empty_like(x);
  for (std::int64_t b = 0; b < x.size(0); ++b) {
    for (std::int64_t h = 0; h < kHeads; ++h) {
      const auto columns = torch::indexing::Slice(h * head_dim, (h + 1) * head_dim);
      const auto qh = q[b].index({torch::indexing::Slice(), columns});  // [T, head_dim]
      const auto kh = k[b].index({torch::indexing::Slice(), columns});
      const auto vh = v[b].index({torch::indexing::Slice(), columns});
      auto scores = qh.matmul(kh.t()) / std::sqrt(static_cast<double>(head_dim));  // [T_query, T_key]
      if (mask.defined()) scores = scores.masked_fill(mask[b].unsqueeze(0), -INFINITY);
      context[b].index_put_({torch::indexing::Slice(), columns}, torch::softmax(scores, -1).matmul(vh));
    }
  }
  return linear(context, layer, "attention_output");
}

torch::Tensor reference_feed_forward(const torch::Tensor& x, torch::nn::Module& layer, const std::string& activation) {
  auto hidden = linear(x, layer, "intermediate");
  hidden = activation == "gelu" ? 0.5 * hidden * (1.0 + torch::erf(hidden / std::sqrt(2.0))) : hidden.clamp_min(0.0);
  return linear(hidden, layer, "output");
}

torch::Tensor reference_layer(const torch::Tensor& x, const torch::Tensor& mask, TransformerEncoderLayerImpl& layer) {
  const auto& config = layer.config();
  const double eps = config.layer_norm_eps;
  if (config.norm_first) {
    auto y = x + reference_attention(layer_norm(x, layer, "attention_norm", eps), mask, layer);
    return y + reference_feed_forward(layer_norm(y, layer, "output_norm", eps), layer, config.activation);
  }
  auto y = layer_norm(x + reference_attention(x, mask, layer), layer, "attention_norm", eps);
  return layer_norm(y + reference_feed_forward(y, layer, config.activation), layer, "output_norm", eps);
}

double relative_error(const torch::Tensor& actual, const torch::Tensor& expected) {
  return (actual - expected).norm().item<double>() / expected.norm().item<double>();
}

/// Random LayerNorm affine parameters, so the reference checks they are applied (defaults are 1 and 0).
void randomize_norms(TransformerEncoderLayerImpl& layer) {
  torch::NoGradGuard no_grad;
  for (auto& item : layer.named_parameters()) {
    if (item.key().find("norm") != std::string::npos) item.value().uniform_(0.5, 1.5);
  }
}

struct Variant {
  bool norm_first;
  std::string activation;
};

const std::vector<Variant> kVariants{{false, "gelu"}, {true, "gelu"}, {false, "relu"}, {true, "relu"}};

void expect_matches_reference(torch::ScalarType dtype, const Tolerance& tolerance) {
  for (const auto& variant : kVariants) {
    torch::manual_seed(21);
    TransformerEncoderLayer layer(layer_config(variant.norm_first, variant.activation));
    randomize_norms(*layer);
    layer->to(dtype);
    layer->eval();
    const auto x = torch::randn({kBatch, kTokens, kModel}, dtype);
    const auto mask = padding_mask({kTokens, 5, 1});
    const auto what = "norm_first=" + std::to_string(variant.norm_first) + " " + variant.activation;
    torch::NoGradGuard no_grad;
    EXPECT_LE(relative_error(layer->forward(x, mask), reference_layer(x, mask, *layer)), tolerance.relative)
        << what << " with padding";
    EXPECT_LE(relative_error(layer->forward(x), reference_layer(x, torch::Tensor(), *layer)), tolerance.relative)
        << what << " without a mask";
  }
}

TEST(TransformerEncoderTest, MatchesReferenceFp32) { expect_matches_reference(torch::kFloat, testing::kFp32); }

TEST(TransformerEncoderTest, MatchesReferenceFp64) { expect_matches_reference(torch::kDouble, testing::kFp64); }

TEST(TransformerEncoderTest, PaddedPositionsDoNotAffectRealTokens) {
  for (const auto& variant : kVariants) {
    torch::manual_seed(22);
    TransformerEncoderLayer layer(layer_config(variant.norm_first, variant.activation));
    layer->eval();
    const std::vector<std::int64_t> lengths{6, kTokens, 2};
    const auto mask = padding_mask(lengths);
    const auto x = torch::randn({kBatch, kTokens, kModel});
    // Different values (larger ones, too) wherever the mask says padding.
    const auto changed = torch::where(mask.unsqueeze(-1), 10.0 * torch::randn_like(x), x);
    torch::NoGradGuard no_grad;
    const auto before = layer->forward(x, mask), after = layer->forward(changed, mask);
    for (std::int64_t b = 0; b < kBatch; ++b) {
      const auto real = torch::indexing::Slice(0, lengths[b]);
      EXPECT_TRUE(torch::allclose(after[b].index({real}), before[b].index({real}), testing::kFp32.relative,
                                  testing::kFp32.absolute))
          << "sequence " << b << ", norm_first=" << variant.norm_first;
    }
    // The check has teeth: without the mask the change does reach the real tokens.
    EXPECT_FALSE(torch::allclose(layer->forward(changed)[0].slice(0, 0, lengths[0]),
                                 layer->forward(x)[0].slice(0, 0, lengths[0])));
  }
}

TEST(TransformerEncoderTest, AllFalseMaskEqualsNoMask) {
  torch::manual_seed(23);
  TransformerEncoderLayer layer(layer_config(false, "gelu"));
  layer->eval();
  const auto x = torch::randn({kBatch, kTokens, kModel});
  torch::NoGradGuard no_grad;
  EXPECT_LE(relative_error(layer->forward(x, torch::zeros({kBatch, kTokens}, torch::kBool)), layer->forward(x)),
            testing::kFp32Reordered.relative);
}

TEST(TransformerEncoderTest, DropoutOnlyInTraining) {
  torch::manual_seed(24);
  TransformerEncoderLayer layer(layer_config(true, "gelu"));
  const auto x = torch::randn({kBatch, kTokens, kModel});
  torch::NoGradGuard no_grad;
  layer->eval();
  EXPECT_TRUE(torch::equal(layer->forward(x), layer->forward(x)));
  layer->train();
  EXPECT_FALSE(torch::allclose(layer->forward(x), layer->forward(x)));

  auto config = layer_config(true, "gelu");
  config.dropout = 0.0;
  TransformerEncoderLayer no_dropout(config);
  no_dropout->train();
  const auto training = no_dropout->forward(x);
  no_dropout->eval();
  EXPECT_LE(relative_error(training, no_dropout->forward(x)), testing::kFp32Reordered.relative);
}

TEST(TransformerEncoderTest, ParameterNamesFollowBert) {
  TransformerEncoderLayer layer(layer_config(false, "gelu"));
  const auto parameters = layer->named_parameters();
  for (const std::string name :
       {"query", "key", "value", "attention_output", "attention_norm", "intermediate", "output", "output_norm"}) {
    EXPECT_TRUE(parameters.contains(name + ".weight")) << name;
    EXPECT_TRUE(parameters.contains(name + ".bias")) << name;
  }
  EXPECT_EQ(parameters["intermediate.weight"].sizes(), (std::vector<std::int64_t>{kFfn, kModel}));
  EXPECT_EQ(parameters.size(), 16u);
}

TEST(TransformerEncoderTest, BadConfigsAndInputsAreRejected) {
  auto config = layer_config(false, "gelu");
  config.num_heads = 4;  // does not divide 21
  EXPECT_THROW(TransformerEncoderLayer{config}, Error);
  config = layer_config(false, "swish");
  EXPECT_THROW(TransformerEncoderLayer{config}, Error);
  config = layer_config(false, "gelu");
  config.dropout = 1.0;
  EXPECT_THROW(TransformerEncoderLayer{config}, Error);

  nlohmann::json json = layer_config(true, "relu");
  EXPECT_EQ(json.get<TransformerEncoderLayerConfig>().activation, "relu");
  json["heads"] = 3;
  try {
    json.get<TransformerEncoderLayerConfig>();
    ADD_FAILURE() << "unknown key accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("'heads'"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("num_heads"), std::string::npos) << error.what();
  }

  TransformerEncoderLayer layer(layer_config(false, "gelu"));
  const auto x = torch::randn({kBatch, kTokens, kModel});
  EXPECT_THROW(layer->forward(torch::randn({kBatch, kTokens, kModel + 1})), Error);
  EXPECT_THROW(layer->forward(x, torch::zeros({kBatch, kTokens + 1}, torch::kBool)), Error);
  EXPECT_THROW(layer->forward(x, torch::zeros({kBatch, kTokens})), Error);  // float, not bool
}

}  // namespace
}  // namespace hone::models
