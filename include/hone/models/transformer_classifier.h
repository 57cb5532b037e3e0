#pragma once
/// @file A small Transformer encoder over a sequence of tokens: images [C,H,W] become H tokens of
/// C*W features, windows [T,F] are T tokens already. Linear token embedding + learned positions,
/// `num_layers` TransformerEncoderLayers (pre-LN), mean pooling, LayerNorm, Linear to the outputs
/// (classes, or forecast values). Registry name: "transformer".
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "hone/models/model.h"
#include "hone/models/transformer_encoder.h"

namespace hone::models {

struct TransformerClassifierConfig {
  std::vector<std::int64_t> input_shape;  ///< [C,H,W] or [T,F]
  std::int64_t out_features = 0;
  std::int64_t d_model = 64;
  std::int64_t num_heads = 4;
  std::int64_t ffn_dim = 128;
  std::int64_t num_layers = 2;
  double dropout = 0.1;
};
void to_json(nlohmann::json& j, const TransformerClassifierConfig& c);
void from_json(const nlohmann::json& j, TransformerClassifierConfig& c);

class TransformerClassifier : public Model {
 public:
  explicit TransformerClassifier(TransformerClassifierConfig config);
  torch::Tensor forward(torch::Tensor input) override;
  std::string architecture() const override { return "transformer"; }
  nlohmann::json config() const override { return config_; }
  /// Each layer's feed-forward neurons.
  std::vector<ChannelGroup> channel_groups() const override;
  std::int64_t block_count() const override { return config_.num_layers; }

 private:
  TransformerClassifierConfig config_;
  std::int64_t tokens_ = 0, token_features_ = 0;
  nn::LayerSlot* embed_ = nullptr;
  torch::Tensor positions_;
  torch::nn::ModuleList layers_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
  nn::LayerSlot* head_ = nullptr;
};

}  // namespace hone::models
