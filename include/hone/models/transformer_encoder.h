#pragma once
/// @file One Transformer encoder layer (BERT layout by default: post-LayerNorm) whose attention is
/// at::scaled_dot_product_attention, with an optional key padding mask. Submodule names follow
/// BERT's (query, key, value, attention_output, attention_norm, intermediate, output, output_norm)
/// so pretrained encoders map onto it one-to-one.
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "hone/models/model.h"
#include "hone/nn/layer.h"
#include "hone/nn/prepacked_linear.h"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace hone::models {

struct TransformerEncoderLayerConfig {
  std::int64_t d_model = 64;
  std::int64_t num_heads = 4;
  std::int64_t ffn_dim = 128;
  double dropout = 0.1;
  bool norm_first = false;  ///< pre-LN when true, BERT's post-LN when false
  /// gelu (exact, erf form; on CUDA in fp16/bf16 at inference the tanh form, fused into the
  /// GEMM) | relu
  std::string activation = "gelu";
  double layer_norm_eps = 1e-12;  ///< BERT's value
};
void to_json(nlohmann::json& j, const TransformerEncoderLayerConfig& c);
void from_json(const nlohmann::json& j, TransformerEncoderLayerConfig& c);

/// Linears are layer slots (hone/nn/layer.h) that compression may replace; they run as one addmm
/// on the flattened rows. On CUDA at inference (no autograd), post-LN layers run each residual add
/// and LayerNorm as one hone::add_layer_norm kernel; on the CPU at fp32 inference, plain Linears run
/// on oneDNN with prepacked weights (and GELU fused into the feed-forward's first one).
class TransformerEncoderLayerImpl : public nn::Module {
 public:
  explicit TransformerEncoderLayerImpl(TransformerEncoderLayerConfig config);
  /// x: [B, T, d_model]. key_padding_mask: [B, T] bool, true where the token is padding
  /// (those keys get no attention). Returns [B, T, d_model].
  torch::Tensor forward(const torch::Tensor& x, const std::optional<torch::Tensor>& key_padding_mask = std::nullopt);
  /// The same with the mask already turned into an additive attention bias (attention_bias()):
  /// a stack of layers computes it once instead of once per layer.
  torch::Tensor forward_with_bias(const torch::Tensor& x, const torch::Tensor& attention_bias);
  /// key_padding_mask [B, T] bool (true = padding) -> [B, 1, 1, T] in `dtype`: 0 where a key may be
  /// attended, the dtype's lowest finite value where not (finite, so no row can become NaN).
  static torch::Tensor attention_bias(const torch::Tensor& key_padding_mask, c10::ScalarType dtype);
  const TransformerEncoderLayerConfig& config() const { return config_; }

 private:
  torch::Tensor attention(const torch::Tensor& x, const std::optional<torch::Tensor>& attend);
  torch::Tensor layer(const torch::Tensor& x, const std::optional<torch::Tensor>& attend);
  torch::Tensor feed_forward(const torch::Tensor& x);
  /// The slot's layer on x (then exact GELU when `gelu`): a plain Linear at CPU fp32 inference runs
  /// with its weight prepacked for oneDNN (nn::PrepackedLinear), anything else through the slot.
  torch::Tensor linear(const nn::LayerSlot& slot, const nn::PrepackedLinear& prepacked, const torch::Tensor& x,
                       bool gelu = false);
  TransformerEncoderLayerConfig config_;
  nn::LayerSlot *query_ = nullptr, *key_ = nullptr, *value_ = nullptr, *attention_output_ = nullptr;
  torch::nn::LayerNorm attention_norm_{nullptr};
  nn::LayerSlot *intermediate_ = nullptr, *output_ = nullptr;
  torch::nn::LayerNorm output_norm_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
  /// query, key, value, attention_output, intermediate, output
  std::array<nn::PrepackedLinear, 6> prepacked_;
};
TORCH_MODULE(TransformerEncoderLayer);

/// The feed-forward neurons (intermediate -> output) of layers.0 .. layers.{count-1}: what
/// structured pruning may shrink in a stack of these layers held as "layers".
std::vector<ChannelGroup> feed_forward_groups(std::int64_t count);

}  // namespace hone::models
