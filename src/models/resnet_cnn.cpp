#include "hone/models/resnet_cnn.h"

#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>

#include "config_fields.h"
#include "hone/core/error.h"

namespace hone::models {
namespace {

const std::string kWhat = "cnn config";

torch::nn::Conv2d conv(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride) {
  // Bias-free: every conv here feeds a BatchNorm, whose shift makes a bias redundant.
  torch::nn::Conv2d layer(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
  torch::nn::init::kaiming_normal_(layer->weight, 0.0, torch::kFanOut, torch::kReLU);
  return layer;
}

/// conv3x3-BN-ReLU-conv3x3-BN plus the shortcut (1x1 conv + BN when the shape changes), then ReLU.
class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(std::int64_t in, std::int64_t out, std::int64_t stride)
      : conv1_(register_module("conv1", conv(in, out, 3, stride))),
        bn1_(register_module("bn1", torch::nn::BatchNorm2d(out))),
        conv2_(register_module("conv2", conv(out, out, 3, 1))),
        bn2_(register_module("bn2", torch::nn::BatchNorm2d(out))) {
    if (stride != 1 || in != out) {
      shortcut_ =
          register_module("shortcut", torch::nn::Sequential(conv(in, out, 1, stride), torch::nn::BatchNorm2d(out)));
    }
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::relu(bn1_->forward(conv1_->forward(x)));
    y = bn2_->forward(conv2_->forward(y));
    return torch::relu(y + (shortcut_ ? shortcut_->forward(x) : x));
  }

 private:
  torch::nn::Conv2d conv1_;
  torch::nn::BatchNorm2d bn1_;
  torch::nn::Conv2d conv2_;
  torch::nn::BatchNorm2d bn2_;
  torch::nn::Sequential shortcut_{nullptr};
};
TORCH_MODULE(BasicBlock);

}  // namespace

void to_json(nlohmann::json& j, const ResNetCnnConfig& c) {
  j = nlohmann::json{{"in_channels", c.in_channels},
                     {"num_classes", c.num_classes},
                     {"widths", c.widths},
                     {"blocks_per_stage", c.blocks_per_stage},
                     {"dropout", c.dropout}};
}

void from_json(const nlohmann::json& j, ResNetCnnConfig& c) {
  check_config_keys(j, kWhat, {"in_channels", "num_classes", "widths", "blocks_per_stage", "dropout"});
  detail::read_field(j, kWhat, "in_channels", c.in_channels);
  detail::read_field(j, kWhat, "num_classes", c.num_classes);
  detail::read_field(j, kWhat, "widths", c.widths);
  detail::read_field(j, kWhat, "blocks_per_stage", c.blocks_per_stage);
  detail::read_field(j, kWhat, "dropout", c.dropout);
  detail::check_positive(kWhat, "in_channels", c.in_channels);
  detail::check_positive(kWhat, "num_classes", c.num_classes);
  detail::check_positive_list(kWhat, "widths", c.widths);
  detail::check_positive(kWhat, "blocks_per_stage", c.blocks_per_stage);
  detail::check_dropout(kWhat, "dropout", c.dropout);
}

ResNetCnn::ResNetCnn(ResNetCnnConfig config) : config_(std::move(config)) {
  config_ = nlohmann::json(config_).get<ResNetCnnConfig>();
  features_ = register_module("features", torch::nn::Sequential());
  std::int64_t width = config_.widths.front();
  features_->push_back(conv(config_.in_channels, width, 3, 1));
  features_->push_back(torch::nn::BatchNorm2d(width));
  features_->push_back(torch::nn::ReLU());
  for (std::size_t stage = 0; stage < config_.widths.size(); ++stage) {
    for (std::int64_t block = 0; block < config_.blocks_per_stage; ++block) {
      const std::int64_t stride = (stage > 0 && block == 0) ? 2 : 1;
      features_->push_back(BasicBlock(width, config_.widths[stage], stride));
      width = config_.widths[stage];
    }
  }
  dropout_ = register_module("dropout", torch::nn::Dropout(config_.dropout));
  classifier_ = register_module("classifier", torch::nn::Linear(width, config_.num_classes));
}

torch::Tensor ResNetCnn::forward(torch::Tensor input) {
  HONE_CHECK(input.dim() == 4 && input.size(1) == config_.in_channels,
             "cnn: expected images [B, {}, H, W], got shape {}", config_.in_channels, input.sizes());
  auto x = features_->forward(input).mean({2, 3});
  return classifier_->forward(dropout_->forward(x));
}

}  // namespace hone::models
