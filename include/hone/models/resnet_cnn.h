#pragma once
/// @file Small ResNet-style CNN for images: a 3x3 stem (conv-BN-ReLU), then one stage per width of
/// `blocks_per_stage` basic residual blocks (conv3x3-BN-ReLU-conv3x3-BN + shortcut, 1x1 conv + BN
/// on the shortcut when the shape changes; every stage after the first starts with stride 2),
/// global average pooling, dropout and a Linear classifier. Registry name: "cnn".

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
  /// Each block's inner channels (conv1 -> bn1 -> conv2), and each stage's residual stream
  /// (every conv and shortcut that writes it, every conv and the classifier that reads it).
  std::vector<ChannelGroup> channel_groups() const override;
  std::int64_t block_count() const override;
  /// features.0-2: the stem; every later slot of `features` is a residual block.
  static constexpr std::size_t kStemLayers = 3;

 private:
  ResNetCnnConfig config_;
  nn::Chain features_{nullptr};
  nn::LayerSlot* dropout_ = nullptr;
  nn::LayerSlot* classifier_ = nullptr;
};

}  // namespace hone::models
