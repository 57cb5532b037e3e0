#pragma once
/// @file LSTM forecaster: a batch-first LSTM over a window [B, T, F]; the last time step's hidden
/// state goes through a Linear to [B, output_size]. The output layer starts at zero, so an untrained
/// model predicts "no change" (the naive forecast when targets are returns). Registry name: "lstm".
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>

#include "hone/models/model.h"

namespace hone::models {

struct LstmForecasterConfig {
  std::int64_t input_size = 1;
  std::int64_t hidden_size = 64;
  std::int64_t num_layers = 2;
  std::int64_t output_size = 1;
  double dropout = 0.1;  ///< between LSTM layers (ignored for one layer)
};
void to_json(nlohmann::json& j, const LstmForecasterConfig& c);
void from_json(const nlohmann::json& j, LstmForecasterConfig& c);

class LstmForecaster : public Model {
 public:
  explicit LstmForecaster(LstmForecasterConfig config);
  torch::Tensor forward(torch::Tensor input) override;
  std::string architecture() const override { return "lstm"; }
  nlohmann::json config() const override { return config_; }

 private:
  LstmForecasterConfig config_;
  nn::LayerSlot* lstm_ = nullptr;  ///< [B, T, F] -> output sequence [B, T, hidden]
  nn::LayerSlot* head_ = nullptr;
};

}  // namespace hone::models
