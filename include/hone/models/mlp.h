#pragma once
/// @file Multi-layer perceptron: flattens each sample, then Linear -> activation -> dropout per hidden
/// layer, and a final Linear. Works for classification and forecasting.

#include "hone/models/model.h"

namespace hone::models {

struct MlpConfig {
  std::int64_t in_features = 0;
  std::vector<std::int64_t> hidden{256, 128};
  std::int64_t out_features = 0;
  double dropout = 0.1;
  std::string activation = "relu";  ///< relu | gelu | tanh
};
void to_json(nlohmann::json& j, const MlpConfig& c);
void from_json(const nlohmann::json& j, MlpConfig& c);  ///< strict: unknown keys and bad values throw

class Mlp : public Model {
 public:
  explicit Mlp(MlpConfig config);
  torch::Tensor forward(torch::Tensor input) override;
  std::string architecture() const override { return "mlp"; }
  nlohmann::json config() const override { return config_; }
  /// Each hidden layer's neurons (its Linear's outputs, the next Linear's inputs).
  std::vector<ChannelGroup> channel_groups() const override;

 private:
  MlpConfig config_;
  nn::Chain layers_{nullptr};
};

}  // namespace hone::models
