#pragma once
/// @file A BERT sentence encoder: token ids [B, T] -> one embedding per sentence [B, hidden].
/// Word + position + token-type embeddings and LayerNorm, then `num_layers` post-LN
/// TransformerEncoderLayers (at::scaled_dot_product_attention with the padding mask), then mean
/// (or [CLS]) pooling over the real tokens and optional L2 normalization, as sentence-transformers
/// does. The default config is all-MiniLM-L6-v2's; registry name "minilm". Pretrained weights are
/// loaded by text::SentenceEncoder (include/hone/text/sentence_encoder.h).
///
/// Padding is read from the ids themselves: every position whose id equals `pad_id` is masked, so
/// the model keeps hone's one-tensor-in, one-tensor-out shape. With num_classes > 0 the pooled
/// embedding feeds a classification head instead (`hone train -m minilm -d fine-foods-text`). Token-type ids are all 0
/// (single sentences), as in sentence-transformers' encode().
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "hone/models/model.h"
#include "hone/models/transformer_encoder.h"

namespace hone::models {

struct BertEncoderConfig {
  std::int64_t vocab_size = 30522;
  std::int64_t hidden_size = 384;
  std::int64_t num_layers = 6;
  std::int64_t num_heads = 12;
  std::int64_t intermediate_size = 1536;
  std::int64_t max_positions = 512;
  std::int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  double dropout = 0.1;
  std::int64_t pad_id = 0;
  std::string pooling = "mean";  ///< mean (over non-padding tokens) | cls
  bool normalize = true;         ///< L2-normalize the pooled embedding
  /// > 0: a classifier — dropout and a linear head ("head") on the pooled, unnormalized embedding
  /// give num_classes logits (fine-tuning on a labelled text dataset); 0: the embedding itself.
  std::int64_t num_classes = 0;
};
void to_json(nlohmann::json& j, const BertEncoderConfig& c);
void from_json(const nlohmann::json& j, BertEncoderConfig& c);  ///< strict

class BertEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit BertEmbeddingsImpl(const BertEncoderConfig& config);
  /// ids [B, T] -> [B, T, hidden]
  torch::Tensor forward(const torch::Tensor& ids);

 private:
  torch::nn::Embedding word_{nullptr}, position_{nullptr}, token_type_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
  double dropout_ = 0;
};
TORCH_MODULE(BertEmbeddings);

class BertEncoder : public Model {
 public:
  explicit BertEncoder(BertEncoderConfig config);
  /// ids [B, T] (int64 or int32, padded with pad_id) -> pooled embeddings [B, hidden].
  torch::Tensor forward(torch::Tensor ids) override;
  std::int64_t block_count() const override { return config_.num_layers; }
  /// The same with padding given explicitly: padding [B, T] bool, true at padding positions. A
  /// tokenizer that knows each row's length uses this, so a [PAD] written in a text stays a token.
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& padding);
  /// The last layer's token states [B, T, hidden] (padding positions included, unpooled);
  /// padding defaults to ids == pad_id.
  torch::Tensor token_states(const torch::Tensor& ids, const std::optional<torch::Tensor>& padding = std::nullopt);
  std::string architecture() const override { return "minilm"; }
  nlohmann::json config() const override { return config_; }
  /// Each layer's feed-forward neurons.
  std::vector<ChannelGroup> channel_groups() const override;
  const BertEncoderConfig& bert_config() const { return config_; }

 private:
  torch::Tensor check_ids(const torch::Tensor& ids) const;
  BertEncoderConfig config_;
  BertEmbeddings embeddings_{nullptr};
  torch::nn::ModuleList layers_{nullptr};
  torch::nn::Linear head_{nullptr};  ///< num_classes > 0 only
};

}  // namespace hone::models
