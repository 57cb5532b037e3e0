#pragma once
/// @file LSTM + attention forecaster (the commodity seed's model): an LSTM encodes the window
/// [B,T,F]; multi-head attention (at::scaled_dot_product_attention) with the last hidden state as
/// the query looks back over every step; [context, last hidden] -> Linear -> ReLU -> Linear to
/// [B, output_size]. The final layer starts at zero (predicts "no change"). Registry name: "attention".
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>

#include "hone/models/model.h"

namespace hone::models {

struct AttentionForecasterConfig {
  std::int64_t input_size = 1;
  std::int64_t hidden_size = 64;
  std::int64_t num_layers = 1;
  std::int64_t num_heads = 4;  ///< must divide hidden_size
  std::int64_t output_size = 1;
  double dropout = 0.1;
};
void to_json(nlohmann::json& j, const AttentionForecasterConfig& c);
void from_json(const nlohmann::json& j, AttentionForecasterConfig& c);

class AttentionForecaster : public Model {
 public:
  explicit AttentionForecaster(AttentionForecasterConfig config);
  torch::Tensor forward(torch::Tensor input) override;
  std::string architecture() const override { return "attention"; }
  nlohmann::json config() const override { return config_; }

 private:
  AttentionForecasterConfig config_;
  nn::LayerSlot* lstm_ = nullptr;  ///< [B, T, F] -> output sequence [B, T, hidden]
  nn::LayerSlot *query_ = nullptr, *key_ = nullptr, *value_ = nullptr, *attention_output_ = nullptr;
  nn::LayerSlot *hidden_ = nullptr, *head_ = nullptr;
};

}  // namespace hone::models
