#pragma once
/// @file MobileNet-style CNN: a 3x3 stem (conv-BN-ReLU6) then depthwise-separable blocks
/// (depthwise 3x3 conv-BN-ReLU6, pointwise 1x1 conv-BN-ReLU6), one per entry of `widths` with the
/// matching stride; global average pooling, dropout, Linear. Registry name: "mobilenet".
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

#include "hone/models/model.h"

namespace hone::models {

struct MobileNetCnnConfig {
  std::int64_t in_channels = 1;
  std::int64_t num_classes = 10;
  std::int64_t stem_width = 32;
  std::vector<std::int64_t> widths{64, 128, 128, 256};
  std::vector<std::int64_t> strides{1, 2, 1, 2};  ///< same length as widths
  double dropout = 0.1;
};
void to_json(nlohmann::json& j, const MobileNetCnnConfig& c);
void from_json(const nlohmann::json& j, MobileNetCnnConfig& c);

class MobileNetCnn : public Model {
 public:
  explicit MobileNetCnn(MobileNetCnnConfig config);
  torch::Tensor forward(torch::Tensor input) override;
  std::int64_t block_count() const override;
  /// features.0-2: the stem; every later slot of `features` is a depthwise-separable block.
  static constexpr std::size_t kStemLayers = 3;
  std::string architecture() const override { return "mobilenet"; }
  nlohmann::json config() const override { return config_; }

 private:
  MobileNetCnnConfig config_;
  nn::Chain features_{nullptr};
  nn::LayerSlot* dropout_ = nullptr;
  nn::LayerSlot* classifier_ = nullptr;
};

}  // namespace hone::models
