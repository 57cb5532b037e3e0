#include "hone/models/bert_encoder.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/normalization.h>

#include <cmath>

#include "config_fields.h"
#include "hone/core/error.h"

namespace hone::models {
namespace {

const std::string kWhat = "minilm (BERT encoder) config";

}  // namespace

void to_json(nlohmann::json& j, const BertEncoderConfig& c) {
  j = nlohmann::json{{"vocab_size", c.vocab_size},
                     {"hidden_size", c.hidden_size},
                     {"num_layers", c.num_layers},
                     {"num_heads", c.num_heads},
                     {"intermediate_size", c.intermediate_size},
                     {"max_positions", c.max_positions},
                     {"type_vocab_size", c.type_vocab_size},
                     {"layer_norm_eps", c.layer_norm_eps},
                     {"dropout", c.dropout},
                     {"pad_id", c.pad_id},
                     {"pooling", c.pooling},
                     {"normalize", c.normalize},
                     {"num_classes", c.num_classes}};
}

void from_json(const nlohmann::json& j, BertEncoderConfig& c) {
  check_config_keys(j, kWhat,
                    {"vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size", "max_positions",
                     "type_vocab_size", "layer_norm_eps", "dropout", "pad_id", "pooling", "normalize", "num_classes"});
  detail::read_field(j, kWhat, "vocab_size", c.vocab_size);
  detail::read_field(j, kWhat, "hidden_size", c.hidden_size);
  detail::read_field(j, kWhat, "num_layers", c.num_layers);
  detail::read_field(j, kWhat, "num_heads", c.num_heads);
  detail::read_field(j, kWhat, "intermediate_size", c.intermediate_size);
  detail::read_field(j, kWhat, "max_positions", c.max_positions);
  detail::read_field(j, kWhat, "type_vocab_size", c.type_vocab_size);
  detail::read_field(j, kWhat, "layer_norm_eps", c.layer_norm_eps);
  detail::read_field(j, kWhat, "dropout", c.dropout);
  detail::read_field(j, kWhat, "pad_id", c.pad_id);
  detail::read_field(j, kWhat, "pooling", c.pooling);
  detail::read_field(j, kWhat, "normalize", c.normalize);
  detail::read_field(j, kWhat, "num_classes", c.num_classes);
  detail::check_positive(kWhat, "vocab_size", c.vocab_size);
  detail::check_positive(kWhat, "hidden_size", c.hidden_size);
  detail::check_positive(kWhat, "num_layers", c.num_layers);
  detail::check_heads_divide(kWhat, "num_heads", c.num_heads, "hidden_size", c.hidden_size);
  detail::check_positive(kWhat, "intermediate_size", c.intermediate_size);
  detail::check_positive(kWhat, "max_positions", c.max_positions);
  detail::check_positive(kWhat, "type_vocab_size", c.type_vocab_size);
  detail::check_dropout(kWhat, "dropout", c.dropout);
  HONE_CHECK(c.layer_norm_eps > 0.0 && std::isfinite(c.layer_norm_eps), "{}: 'layer_norm_eps' must be positive, got {}",
             kWhat, c.layer_norm_eps);
  HONE_CHECK(c.pad_id >= 0 && c.pad_id < c.vocab_size, "{}: 'pad_id' must be in [0, vocab_size={}), got {}", kWhat,
             c.vocab_size, c.pad_id);
  HONE_CHECK(c.num_classes >= 0, "{}: 'num_classes' must be >= 0 (0: embeddings), got {}", kWhat, c.num_classes);
  HONE_CHECK(c.pooling == "mean" || c.pooling == "cls", "{}: 'pooling' must be mean or cls, got '{}'", kWhat,
             c.pooling);
}

BertEmbeddingsImpl::BertEmbeddingsImpl(const BertEncoderConfig& config) : dropout_(config.dropout) {
  const auto hidden = config.hidden_size;
  word_ = register_module("word", torch::nn::Embedding(config.vocab_size, hidden));
  position_ = register_module("position", torch::nn::Embedding(config.max_positions, hidden));
  token_type_ = register_module("token_type", torch::nn::Embedding(config.type_vocab_size, hidden));
  norm_ =
      register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden}).eps(config.layer_norm_eps)));
}

torch::Tensor BertEmbeddingsImpl::forward(const torch::Tensor& ids) {
  const auto tokens = ids.size(1);
  // Positions 0..T-1 and token type 0 are the same for every row: add them once, broadcast over B.
  auto x = word_->forward(ids) + (position_->weight.slice(0, 0, tokens) + token_type_->weight[0]).unsqueeze(0);
  x = norm_->forward(x);
  return is_training() && dropout_ > 0 ? at::dropout(x, dropout_, true) : x;
}

BertEncoder::BertEncoder(BertEncoderConfig config) : config_(std::move(config)) {
  config_ = nlohmann::json(config_).get<BertEncoderConfig>();
  embeddings_ = register_module("embeddings", BertEmbeddings(config_));
  layers_ = register_module("layers", torch::nn::ModuleList());
  TransformerEncoderLayerConfig layer;
  layer.d_model = config_.hidden_size;
  layer.num_heads = config_.num_heads;
  layer.ffn_dim = config_.intermediate_size;
  layer.dropout = config_.dropout;
  layer.norm_first = false;  // BERT is post-LN
  layer.activation = "gelu";
  layer.layer_norm_eps = config_.layer_norm_eps;
  for (std::int64_t i = 0; i < config_.num_layers; ++i) layers_->push_back(TransformerEncoderLayer(layer));
  if (config_.num_classes > 0) {
    head_ = register_module("head", torch::nn::Linear(config_.hidden_size, config_.num_classes));
  }
}

torch::Tensor BertEncoder::check_ids(const torch::Tensor& ids) const {
  HONE_CHECK(ids.dim() == 2 && (ids.scalar_type() == torch::kLong || ids.scalar_type() == torch::kInt),
             "minilm: expected token ids [B, T] of int64 or int32, got {} {}", ids.scalar_type(), ids.sizes());
  HONE_CHECK(ids.size(1) >= 1 && ids.size(1) <= config_.max_positions,
             "minilm: sequence length {} is outside [1, {}] (the model's max_positions); truncate first", ids.size(1),
             config_.max_positions);
  return ids;
}

torch::Tensor BertEncoder::token_states(const torch::Tensor& ids, const std::optional<torch::Tensor>& padding) {
  check_ids(ids);
  const torch::Tensor mask = padding ? *padding : ids.eq(config_.pad_id);  // [B, T], true = padding
  HONE_CHECK(mask.scalar_type() == torch::kBool && mask.sizes() == ids.sizes(),
             "minilm: padding must be bool {} like the ids, got {} {}", ids.sizes(), mask.scalar_type(), mask.sizes());
  auto x = embeddings_->forward(ids);
  // One additive bias for all layers (not a bool mask per layer: fewer kernels per forward).
  const auto bias = TransformerEncoderLayerImpl::attention_bias(mask, x.scalar_type());
  for (const auto& layer : *layers_) {
    auto* encoder = layer->as<TransformerEncoderLayer>();
    // By value: a checkpointed block runs again in backward, after this frame is gone.
    x = run_block([encoder, bias](const torch::Tensor& t) { return encoder->forward_with_bias(t, bias); }, x);
  }
  return x;
}

std::vector<ChannelGroup> BertEncoder::channel_groups() const { return feed_forward_groups(config_.num_layers); }

torch::Tensor BertEncoder::forward(torch::Tensor ids) { return forward(ids, ids.eq(config_.pad_id)); }

torch::Tensor BertEncoder::forward(const torch::Tensor& ids, const torch::Tensor& padding) {
  const torch::Tensor states = token_states(ids, padding);
  torch::Tensor pooled;
  if (config_.pooling == "cls") {
    pooled = states.select(1, 0);
  } else {
    // sentence-transformers' mean pooling: sum of real tokens' states / max(count, 1e-9).
    const auto keep = padding.logical_not().unsqueeze(-1).to(states.scalar_type());
    pooled = (states * keep).sum(1) / keep.sum(1).clamp_min(1e-9);
  }
  if (head_) {
    return head_->forward(is_training() && config_.dropout > 0 ? at::dropout(pooled, config_.dropout, true) : pooled);
  }
  if (!config_.normalize) return pooled;
  namespace F = torch::nn::functional;
  return F::normalize(pooled, F::NormalizeFuncOptions().p(2).dim(1).eps(1e-12));
}

}  // namespace hone::models
