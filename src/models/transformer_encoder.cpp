#include "hone/models/transformer_encoder.h"

#include <ATen/ATen.h>

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string_view>

#include "config_fields.h"
#include "hone/core/error.h"
#include "hone/models/model.h"
#include "hone/ops/add_layer_norm.h"

namespace hone::models {
namespace {

const std::string kWhat = "transformer encoder layer config";

/// Which CUDA inference fusions run: HONE_ENCODER_FUSION = all (unset) | none | layer_norm | gelu,
/// for measuring what each is worth (docs/BENCHMARKS.md).
bool fusion_enabled(std::string_view which) {
  static const std::string setting = [] {
    const char* value = std::getenv("HONE_ENCODER_FUSION");
    return std::string(value != nullptr ? value : "all");
  }();
  return setting == "all" || setting == which;
}

/// Inference on CUDA: no autograd is needed through any of `tensors`.
bool cuda_inference(bool training, std::initializer_list<const torch::Tensor*> tensors) {
  if (training || !tensors.begin()[0]->is_cuda()) return false;
  if (!at::GradMode::is_enabled()) return true;
  for (const auto* t : tensors) {
    if (t->requires_grad()) return false;
  }
  return true;
}

/// The dtype's most negative finite value: exp() of it is 0, and a row of it is still not NaN.
double lowest_finite(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kDouble:
      return std::numeric_limits<double>::lowest();
    case c10::kFloat:
      return std::numeric_limits<float>::lowest();
    case c10::kBFloat16:
      return static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest());
    case c10::kHalf:
      return static_cast<double>(std::numeric_limits<c10::Half>::lowest());
    default:
      fail("attention_bias: dtype {} is not a floating type", dtype);
  }
}

}  // namespace

void to_json(nlohmann::json& j, const TransformerEncoderLayerConfig& c) {
  j = nlohmann::json{{"d_model", c.d_model},
                     {"num_heads", c.num_heads},
                     {"ffn_dim", c.ffn_dim},
                     {"dropout", c.dropout},
                     {"norm_first", c.norm_first},
                     {"activation", c.activation},
                     {"layer_norm_eps", c.layer_norm_eps}};
}

void from_json(const nlohmann::json& j, TransformerEncoderLayerConfig& c) {
  check_config_keys(j, kWhat,
                    {"d_model", "num_heads", "ffn_dim", "dropout", "norm_first", "activation", "layer_norm_eps"});
  detail::read_field(j, kWhat, "d_model", c.d_model);
  detail::read_field(j, kWhat, "num_heads", c.num_heads);
  detail::read_field(j, kWhat, "ffn_dim", c.ffn_dim);
  detail::read_field(j, kWhat, "dropout", c.dropout);
  detail::read_field(j, kWhat, "norm_first", c.norm_first);
  detail::read_field(j, kWhat, "activation", c.activation);
  detail::read_field(j, kWhat, "layer_norm_eps", c.layer_norm_eps);
  detail::check_positive(kWhat, "d_model", c.d_model);
  detail::check_heads_divide(kWhat, "num_heads", c.num_heads, "d_model", c.d_model);
  detail::check_positive(kWhat, "ffn_dim", c.ffn_dim);
  detail::check_dropout(kWhat, "dropout", c.dropout);
  HONE_CHECK(c.activation == "gelu" || c.activation == "relu", "{}: 'activation' must be gelu or relu, got '{}'", kWhat,
             c.activation);
  HONE_CHECK(c.layer_norm_eps > 0.0 && std::isfinite(c.layer_norm_eps), "{}: 'layer_norm_eps' must be positive, got {}",
             kWhat, c.layer_norm_eps);
}

TransformerEncoderLayerImpl::TransformerEncoderLayerImpl(TransformerEncoderLayerConfig config)
    : config_(std::move(config)) {
  config_ = nlohmann::json(config_).get<TransformerEncoderLayerConfig>();
  const auto d = config_.d_model;
  const auto norm = torch::nn::LayerNormOptions({d}).eps(config_.layer_norm_eps);
  query_ = register_layer("query", torch::nn::Linear(d, d));
  key_ = register_layer("key", torch::nn::Linear(d, d));
  value_ = register_layer("value", torch::nn::Linear(d, d));
  attention_output_ = register_layer("attention_output", torch::nn::Linear(d, d));
  attention_norm_ = register_module("attention_norm", torch::nn::LayerNorm(norm));
  intermediate_ = register_layer("intermediate", torch::nn::Linear(d, config_.ffn_dim));
  output_ = register_layer("output", torch::nn::Linear(config_.ffn_dim, d));
  output_norm_ = register_module("output_norm", torch::nn::LayerNorm(norm));
  dropout_ = register_module("dropout", torch::nn::Dropout(config_.dropout));
}

torch::Tensor TransformerEncoderLayerImpl::forward(const torch::Tensor& x,
                                                   const std::optional<torch::Tensor>& key_padding_mask) {
  HONE_CHECK(x.dim() == 3 && x.size(2) == config_.d_model,
             "transformer encoder layer: expected input [B, T, {}], got shape {}", config_.d_model, x.sizes());
  std::optional<torch::Tensor> attend;  // true = may attend; broadcasts to [B, heads, T_query, T_key]
  if (key_padding_mask) {
    const auto& mask = *key_padding_mask;
    HONE_CHECK(
        mask.scalar_type() == torch::kBool && mask.dim() == 2 && mask.size(0) == x.size(0) && mask.size(1) == x.size(1),
        "transformer encoder layer: key_padding_mask must be bool [B, T] = {}, got {} {}", x.sizes().slice(0, 2),
        mask.scalar_type(), mask.sizes());
    attend = mask.logical_not().view({x.size(0), 1, 1, x.size(1)});
  }
  return layer(x, attend);
}

torch::Tensor TransformerEncoderLayerImpl::forward_with_bias(const torch::Tensor& x,
                                                             const torch::Tensor& attention_bias) {
  HONE_CHECK(x.dim() == 3 && x.size(2) == config_.d_model,
             "transformer encoder layer: expected input [B, T, {}], got shape {}", config_.d_model, x.sizes());
  HONE_CHECK(attention_bias.dim() == 4 && attention_bias.size(0) == x.size(0) && attention_bias.size(3) == x.size(1) &&
                 attention_bias.scalar_type() == x.scalar_type(),
             "transformer encoder layer: attention_bias must be {} [{}, 1, 1, {}], got {} {}", x.scalar_type(),
             x.size(0), x.size(1), attention_bias.scalar_type(), attention_bias.sizes());
  return layer(x, attention_bias);
}

torch::Tensor TransformerEncoderLayerImpl::attention_bias(const torch::Tensor& key_padding_mask,
                                                          c10::ScalarType dtype) {
  HONE_CHECK(key_padding_mask.scalar_type() == torch::kBool && key_padding_mask.dim() == 2,
             "attention_bias: key_padding_mask must be bool [B, T], got {} {}", key_padding_mask.scalar_type(),
             key_padding_mask.sizes());
  const auto lowest = c10::Scalar(lowest_finite(dtype));
  return at::zeros({key_padding_mask.size(0), 1, 1, key_padding_mask.size(1)}, key_padding_mask.options().dtype(dtype))
      .masked_fill_(key_padding_mask.view({key_padding_mask.size(0), 1, 1, key_padding_mask.size(1)}), lowest);
}

torch::Tensor TransformerEncoderLayerImpl::layer(const torch::Tensor& x, const std::optional<torch::Tensor>& attend) {
  if (config_.norm_first) {
    auto y = x + dropout_->forward(attention(attention_norm_->forward(x), attend));
    return y + dropout_->forward(feed_forward(output_norm_->forward(y)));
  }
  // Post-LN: norm(x + sublayer(x)). On CUDA at inference the add and the LayerNorm are one kernel
  // (hone::add_layer_norm: 3 passes over the activations instead of 5).
  const auto add_norm = [&](torch::nn::LayerNorm& norm, const torch::Tensor& residual, const torch::Tensor& update) {
    if (fusion_enabled("layer_norm") && norm->weight.defined() && norm->bias.defined() &&
        cuda_inference(is_training(), {&residual, &update, &norm->weight}) &&
        norm->weight.scalar_type() == residual.scalar_type() && update.scalar_type() == residual.scalar_type()) {
      return ops::add_layer_norm(update, residual, norm->weight, norm->bias, config_.layer_norm_eps);
    }
    return norm->forward(residual + dropout_->forward(update));
  };
  auto y = add_norm(attention_norm_, x, attention(x, attend));
  return add_norm(output_norm_, y, feed_forward(y));
}

torch::Tensor TransformerEncoderLayerImpl::attention(const torch::Tensor& x,
                                                     const std::optional<torch::Tensor>& attend) {
  const auto batch = x.size(0), tokens = x.size(1);
  const auto heads = config_.num_heads, head_dim = config_.d_model / config_.num_heads;
  const auto split_heads = [&](const torch::Tensor& t) {
    return t.view({batch, tokens, heads, head_dim}).transpose(1, 2);  // [B, heads, T, head_dim]
  };
  const auto context = at::scaled_dot_product_attention(
      split_heads(linear(*query_, prepacked_[0], x)), split_heads(linear(*key_, prepacked_[1], x)),
      split_heads(linear(*value_, prepacked_[2], x)), attend, is_training() ? config_.dropout : 0.0);
  return linear(*attention_output_, prepacked_[3], context.transpose(1, 2).reshape({batch, tokens, config_.d_model}));
}

torch::Tensor TransformerEncoderLayerImpl::linear(const nn::LayerSlot& slot, const nn::PrepackedLinear& prepacked,
                                                  const torch::Tensor& x, bool gelu) {
  const auto* plain = slot.as<torch::nn::LinearImpl>();
  if (plain != nullptr && !is_training() && nn::PrepackedLinear::applies(x, *plain)) return prepacked(*plain, x, gelu);
  auto y = slot(x);
  return gelu ? torch::gelu(y) : y;
}

torch::Tensor TransformerEncoderLayerImpl::feed_forward(const torch::Tensor& x) {
  torch::Tensor hidden;
  const auto* plain = intermediate_->as<torch::nn::LinearImpl>();
  if (config_.activation == "gelu" && fusion_enabled("gelu") && plain != nullptr && plain->bias.defined() &&
      (x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf) &&
      x.scalar_type() == plain->weight.scalar_type() && cuda_inference(is_training(), {&x, &plain->weight})) {
    // fp16/bf16 on CUDA: GELU in the GEMM's epilogue (cuBLASLt), saving a pass over the widest
    // activation. It is GELU's tanh form, within 5e-4 of the exact erf form: below bf16's and
    // fp16's resolution at the magnitudes that matter (tests/cuda: MiniLM stays >= 0.999 cosine).
    auto out_shape = x.sizes().vec();
    out_shape.back() = plain->weight.size(0);
    hidden = at::_addmm_activation(plain->bias, x.reshape({-1, x.size(-1)}), plain->weight.t(), 1, 1,
                                   /*use_gelu=*/true)
                 .view(out_shape);
  } else if (config_.activation == "gelu") {
    hidden = linear(*intermediate_, prepacked_[4], x, /*gelu=*/true);
  } else {
    hidden = torch::relu(linear(*intermediate_, prepacked_[4], x));
  }
  return linear(*output_, prepacked_[5], dropout_->forward(hidden));
}

std::vector<ChannelGroup> feed_forward_groups(std::int64_t count) {
  std::vector<ChannelGroup> groups;
  for (std::int64_t i = 0; i < count; ++i) {
    const auto layer = "layers." + std::to_string(i);
    groups.push_back({layer + " feed-forward", {layer + ".intermediate"}, {}, {layer + ".output"}});
  }
  return groups;
}

}  // namespace hone::models
