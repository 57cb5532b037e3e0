#pragma once
/// @file Small ResNet-style CNN for images: a 3x3 stem (conv-BN-ReLU), then one stage per width of
/// `blocks_per_stage` basic residual blocks (conv3x3-BN-ReLU-conv3x3-BN + shortcut, 1x1 conv + BN
/// on the shortcut when the shape changes; every stage after the first starts with stride 2),
/// global average pooling, dropout and a Linear classifier. Registry name: "cnn".
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

#include "hone/models/model.h"

namespace hone::models {

struct ResNetCnnConfig {
  std::int64_t in_channels = 1;
  std::int64_t num_classes = 10;
  std::vector<std::int64_t> widths{32, 64, 128};
  std::int64_t blocks_per_stage = 1;
  double dropout = 0.1;
};
void to_json(nlohmann::json& j, const ResNetCnnConfig& c);
void from_json(const nlohmann::json& j, ResNetCnnConfig& c);

class ResNetCnn : public Model {
 public:
  explicit ResNetCnn(ResNetCnnConfig config);
  torch::Tensor forward(torch::Tensor input) override;
  std::string architecture() const override { return "cnn"; }
  nlohmann::json config() const override { return config_; }

 private:
  ResNetCnnConfig config_;
  torch::nn::Sequential features_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
  torch::nn::Linear classifier_{nullptr};
};

}  // namespace hone::models
