#include "hone/models/transformer_classifier.h"

#include <torch/nn/init.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "config_fields.h"
#include "hone/core/error.h"

namespace hone::models {
namespace {

const std::string kWhat = "transformer config";

}  // namespace

void to_json(nlohmann::json& j, const TransformerClassifierConfig& c) {
  j = nlohmann::json{{"input_shape", c.input_shape}, {"out_features", c.out_features}, {"d_model", c.d_model},
                     {"num_heads", c.num_heads},     {"ffn_dim", c.ffn_dim},           {"num_layers", c.num_layers},
                     {"dropout", c.dropout}};
}

void from_json(const nlohmann::json& j, TransformerClassifierConfig& c) {
  check_config_keys(j, kWhat,
                    {"input_shape", "out_features", "d_model", "num_heads", "ffn_dim", "num_layers", "dropout"});
  detail::read_field(j, kWhat, "input_shape", c.input_shape);
  detail::read_field(j, kWhat, "out_features", c.out_features);
  detail::read_field(j, kWhat, "d_model", c.d_model);
  detail::read_field(j, kWhat, "num_heads", c.num_heads);
  detail::read_field(j, kWhat, "ffn_dim", c.ffn_dim);
  detail::read_field(j, kWhat, "num_layers", c.num_layers);
  detail::read_field(j, kWhat, "dropout", c.dropout);
  HONE_CHECK(c.input_shape.size() == 2 || c.input_shape.size() == 3,
             "{}: 'input_shape' must be [C, H, W] (images) or [T, F] (windows), got [{}]", kWhat,
             fmt::join(c.input_shape, ", "));
  detail::check_positive_list(kWhat, "input_shape", c.input_shape);
  detail::check_positive(kWhat, "out_features", c.out_features);
  detail::check_positive(kWhat, "d_model", c.d_model);
  detail::check_heads_divide(kWhat, "num_heads", c.num_heads, "d_model", c.d_model);
  detail::check_positive(kWhat, "ffn_dim", c.ffn_dim);
  detail::check_positive(kWhat, "num_layers", c.num_layers);
  detail::check_dropout(kWhat, "dropout", c.dropout);
}

TransformerClassifier::TransformerClassifier(TransformerClassifierConfig config) : config_(std::move(config)) {
  config_ = nlohmann::json(config_).get<TransformerClassifierConfig>();
  const auto& shape = config_.input_shape;
  // Images: each of the H rows is a token of C*W features. Windows: each time step is a token.
  tokens_ = shape.size() == 3 ? shape[1] : shape[0];
  token_features_ = shape.size() == 3 ? shape[0] * shape[2] : shape[1];

  embed_ = register_layer("embed", torch::nn::Linear(token_features_, config_.d_model));
  positions_ = register_parameter("positions", torch::empty({1, tokens_, config_.d_model}));
  {
    torch::NoGradGuard no_grad;
    torch::nn::init::normal_(positions_, 0.0, 0.02);  // as ViT/BERT learned positions
  }
  TransformerEncoderLayerConfig layer;
  layer.d_model = config_.d_model;
  layer.num_heads = config_.num_heads;
  layer.ffn_dim = config_.ffn_dim;
  layer.dropout = config_.dropout;
  layer.norm_first = true;
  layer.activation = "gelu";
  layer.layer_norm_eps = 1e-5;  // small models train from scratch here; BERT's 1e-12 buys nothing
  layers_ = register_module("layers", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < config_.num_layers; ++i) layers_->push_back(TransformerEncoderLayer(layer));
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({config_.d_model}).eps(1e-5)));
  head_ = register_layer("head", torch::nn::Linear(config_.d_model, config_.out_features));
}

torch::Tensor TransformerClassifier::forward(torch::Tensor input) {
  HONE_CHECK(input.dim() == static_cast<std::int64_t>(config_.input_shape.size()) + 1 &&
                 input.sizes().slice(1) == c10::IntArrayRef(config_.input_shape),
             "transformer: expected input [B, {}], got shape {}", fmt::join(config_.input_shape, ", "), input.sizes());
  const auto batch = input.size(0);
  // [B, C, H, W] -> [B, H, C, W] -> [B, H, C*W]; [B, T, F] stays.
  auto tokens = input.dim() == 4 ? input.permute({0, 2, 1, 3}).reshape({batch, tokens_, token_features_}) : input;
  auto x = (*embed_)(tokens) + positions_;
  for (const auto& layer : *layers_) {
    auto* encoder = layer->as<TransformerEncoderLayerImpl>();
    x = run_block([encoder](const torch::Tensor& t) { return encoder->forward(t); }, x);
  }
  return (*head_)(norm_->forward(x.mean(1)));
}

std::vector<ChannelGroup> TransformerClassifier::channel_groups() const {
  return feed_forward_groups(config_.num_layers);
}

}  // namespace hone::models
