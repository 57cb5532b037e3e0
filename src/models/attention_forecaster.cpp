#include "hone/models/attention_forecaster.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include <tuple>

#include "config_fields.h"
#include "hone/core/error.h"

namespace hone::models {
namespace {

const std::string kWhat = "attention config";

}  // namespace

void to_json(nlohmann::json& j, const AttentionForecasterConfig& c) {
  j = nlohmann::json{{"input_size", c.input_size}, {"hidden_size", c.hidden_size}, {"num_layers", c.num_layers},
                     {"num_heads", c.num_heads},   {"output_size", c.output_size}, {"dropout", c.dropout}};
}

void from_json(const nlohmann::json& j, AttentionForecasterConfig& c) {
  check_config_keys(j, kWhat, {"input_size", "hidden_size", "num_layers", "num_heads", "output_size", "dropout"});
  detail::read_field(j, kWhat, "input_size", c.input_size);
  detail::read_field(j, kWhat, "hidden_size", c.hidden_size);
  detail::read_field(j, kWhat, "num_layers", c.num_layers);
  detail::read_field(j, kWhat, "num_heads", c.num_heads);
  detail::read_field(j, kWhat, "output_size", c.output_size);
  detail::read_field(j, kWhat, "dropout", c.dropout);
  detail::check_positive(kWhat, "input_size", c.input_size);
  detail::check_positive(kWhat, "hidden_size", c.hidden_size);
  detail::check_positive(kWhat, "num_layers", c.num_layers);
  detail::check_heads_divide(kWhat, "num_heads", c.num_heads, "hidden_size", c.hidden_size);
  detail::check_positive(kWhat, "output_size", c.output_size);
  detail::check_dropout(kWhat, "dropout", c.dropout);
}

AttentionForecaster::AttentionForecaster(AttentionForecasterConfig config) : config_(std::move(config)) {
  config_ = nlohmann::json(config_).get<AttentionForecasterConfig>();
  const auto h = config_.hidden_size;
  const double between_layers = config_.num_layers > 1 ? config_.dropout : 0.0;  // torch warns otherwise
  lstm_ = register_layer("lstm", torch::nn::LSTM(torch::nn::LSTMOptions(config_.input_size, h)
                                                     .num_layers(config_.num_layers)
                                                     .batch_first(true)
                                                     .dropout(between_layers)));
  query_ = register_layer("query", torch::nn::Linear(h, h));
  key_ = register_layer("key", torch::nn::Linear(h, h));
  value_ = register_layer("value", torch::nn::Linear(h, h));
  attention_output_ = register_layer("attention_output", torch::nn::Linear(h, h));
  hidden_ = register_layer("hidden", torch::nn::Linear(2 * h, h));
  torch::nn::Linear head(h, config_.output_size);
  head_ = register_layer("head", head);
  torch::NoGradGuard no_grad;
  torch::nn::init::zeros_(head->weight);
  torch::nn::init::zeros_(head->bias);
}

torch::Tensor AttentionForecaster::forward(torch::Tensor input) {
  HONE_CHECK(input.dim() == 3 && input.size(1) > 0 && input.size(2) == config_.input_size,
             "attention: expected windows [B, T, {}], got shape {}", config_.input_size, input.sizes());
  const auto batch = input.size(0), steps = input.size(1);
  const auto heads = config_.num_heads, head_dim = config_.hidden_size / config_.num_heads;
  const auto sequence = (*lstm_)(input);     // [B, T, hidden]
  const auto last = sequence.select(1, -1);  // [B, hidden]
  const auto split_heads = [&](const torch::Tensor& t, std::int64_t length) {
    return t.view({batch, length, heads, head_dim}).transpose(1, 2);  // [B, heads, length, head_dim]
  };
  const auto context = at::scaled_dot_product_attention(
      split_heads((*query_)(last.unsqueeze(1)), 1), split_heads((*key_)(sequence), steps),
      split_heads((*value_)(sequence), steps), /*attn_mask=*/std::nullopt,
      is_training() ? config_.dropout : 0.0);  // [B, heads, 1, head_dim]
  const auto attended = (*attention_output_)(context.reshape({batch, config_.hidden_size}));
  auto x = torch::relu((*hidden_)(torch::cat({attended, last}, 1)));
  x = torch::dropout(x, config_.dropout, is_training());
  return (*head_)(x);
}

}  // namespace hone::models
