#include "hone/models/mlp.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

#include "config_fields.h"
#include "hone/core/error.h"

namespace hone::models {
namespace {

const std::string kWhat = "mlp config";

nn::Layer make_activation(const std::string& name) {
  if (name == "relu") return nn::make_layer(torch::nn::ReLU());
  if (name == "gelu") return nn::make_layer(torch::nn::GELU());  // exact (erf)
  return nn::make_layer(torch::nn::Tanh());
}

}  // namespace

void to_json(nlohmann::json& j, const MlpConfig& c) {
  j = nlohmann::json{{"in_features", c.in_features},
                     {"hidden", c.hidden},
                     {"out_features", c.out_features},
                     {"dropout", c.dropout},
                     {"activation", c.activation}};
}

void from_json(const nlohmann::json& j, MlpConfig& c) {
  check_config_keys(j, kWhat, {"in_features", "hidden", "out_features", "dropout", "activation"});
  detail::read_field(j, kWhat, "in_features", c.in_features);
  detail::read_field(j, kWhat, "hidden", c.hidden);
  detail::read_field(j, kWhat, "out_features", c.out_features);
  detail::read_field(j, kWhat, "dropout", c.dropout);
  detail::read_field(j, kWhat, "activation", c.activation);
  detail::check_positive(kWhat, "in_features", c.in_features);
  detail::check_positive_list(kWhat, "hidden", c.hidden, /*allow_empty=*/true);  // empty: a linear model
  detail::check_positive(kWhat, "out_features", c.out_features);
  detail::check_dropout(kWhat, "dropout", c.dropout);
  HONE_CHECK(c.activation == "relu" || c.activation == "gelu" || c.activation == "tanh",
             "{}: 'activation' must be relu, gelu or tanh, got '{}'", kWhat, c.activation);
}

Mlp::Mlp(MlpConfig config) : config_(std::move(config)) {
  // Validates a config built in code the same way as one read from JSON.
  config_ = nlohmann::json(config_).get<MlpConfig>();
  layers_ = register_module("layers", nn::Chain());
  std::int64_t width = config_.in_features;
  for (const auto hidden : config_.hidden) {
    layers_->push_back(torch::nn::Linear(width, hidden));
    layers_->push_back(make_activation(config_.activation));
    layers_->push_back(torch::nn::Dropout(config_.dropout));
    width = hidden;
  }
  layers_->push_back(torch::nn::Linear(width, config_.out_features));
}

torch::Tensor Mlp::forward(torch::Tensor input) {
  HONE_CHECK(input.dim() >= 1 && input.size(0) > 0 && input.numel() / input.size(0) == config_.in_features,
             "mlp: expected a batch of samples with {} features each, got shape {}", config_.in_features,
             input.sizes());
  return layers_->forward(input.reshape({input.size(0), config_.in_features}));
}

std::vector<ChannelGroup> Mlp::channel_groups() const {
  std::vector<ChannelGroup> groups;
  for (std::size_t i = 0; i < config_.hidden.size(); ++i) {
    const auto layer = "layers." + std::to_string(3 * i), next = "layers." + std::to_string(3 * i + 3);
    groups.push_back({"hidden " + std::to_string(i), {layer}, {}, {next}});
  }
  return groups;
}

}  // namespace hone::models
