#include "hone/models/lstm_forecaster.h"

#include <torch/nn/init.h>

#include <tuple>

#include "config_fields.h"
#include "hone/core/error.h"

namespace hone::models {
namespace {

const std::string kWhat = "lstm config";

}  // namespace

void to_json(nlohmann::json& j, const LstmForecasterConfig& c) {
  j = nlohmann::json{{"input_size", c.input_size},
                     {"hidden_size", c.hidden_size},
                     {"num_layers", c.num_layers},
                     {"output_size", c.output_size},
                     {"dropout", c.dropout}};
}

void from_json(const nlohmann::json& j, LstmForecasterConfig& c) {
  check_config_keys(j, kWhat, {"input_size", "hidden_size", "num_layers", "output_size", "dropout"});
  detail::read_field(j, kWhat, "input_size", c.input_size);
  detail::read_field(j, kWhat, "hidden_size", c.hidden_size);
  detail::read_field(j, kWhat, "num_layers", c.num_layers);
  detail::read_field(j, kWhat, "output_size", c.output_size);
  detail::read_field(j, kWhat, "dropout", c.dropout);
  detail::check_positive(kWhat, "input_size", c.input_size);
  detail::check_positive(kWhat, "hidden_size", c.hidden_size);
  detail::check_positive(kWhat, "num_layers", c.num_layers);
  detail::check_positive(kWhat, "output_size", c.output_size);
  detail::check_dropout(kWhat, "dropout", c.dropout);
}

LstmForecaster::LstmForecaster(LstmForecasterConfig config) : config_(std::move(config)) {
  config_ = nlohmann::json(config_).get<LstmForecasterConfig>();
  // torch only applies dropout between layers; with one layer it would warn, so pass 0 there.
  const double between_layers = config_.num_layers > 1 ? config_.dropout : 0.0;
  torch::nn::LSTM lstm(torch::nn::LSTMOptions(config_.input_size, config_.hidden_size)
                           .num_layers(config_.num_layers)
                           .batch_first(true)
                           .dropout(between_layers));
  lstm_ = register_layer("lstm", lstm);
  torch::nn::Linear head(config_.hidden_size, config_.output_size);
  head_ = register_layer("head", head);
  torch::NoGradGuard no_grad;
  torch::nn::init::zeros_(head->weight);
  torch::nn::init::zeros_(head->bias);
}

torch::Tensor LstmForecaster::forward(torch::Tensor input) {
  HONE_CHECK(input.dim() == 3 && input.size(1) > 0 && input.size(2) == config_.input_size,
             "lstm: expected windows [B, T, {}], got shape {}", config_.input_size, input.sizes());
  const auto sequence = (*lstm_)(input);  // [B, T, hidden]
  return (*head_)(sequence.select(1, -1));
}

}  // namespace hone::models
