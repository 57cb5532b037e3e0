#include "hone/models/resnet_cnn.h"

#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

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

/// conv3x3-BN-ReLU-conv3x3-BN plus the shortcut (1x1 conv + BN when the shape changes), then the
/// residual add and ReLU. Layers are slots (hone/nn/layer.h) so compression can replace them.
class BasicBlockImpl : public nn::Module {
 public:
  BasicBlockImpl(std::int64_t in, std::int64_t out, std::int64_t stride)
      : conv1_(register_layer("conv1", conv(in, out, 3, stride))),
        bn1_(register_layer("bn1", torch::nn::BatchNorm2d(out))),
        relu1_(register_layer("relu1", torch::nn::ReLU())),
        conv2_(register_layer("conv2", conv(out, out, 3, 1))),
        bn2_(register_layer("bn2", torch::nn::BatchNorm2d(out))) {
    if (stride != 1 || in != out) {
      shortcut_ = register_module("shortcut", nn::Chain());
      shortcut_->push_back(conv(in, out, 1, stride));
      shortcut_->push_back(torch::nn::BatchNorm2d(out));
    }
    add_ = register_layer("add", nn::ResidualAdd(/*relu=*/true));
    declare_flow("conv1", "bn1");
    declare_flow("bn1", "relu1");
    declare_flow("relu1", "conv2");
    declare_flow("conv2", "bn2");
  }

  torch::Tensor forward(const torch::Tensor& x) {
    const auto y = (*bn2_)((*conv2_)((*relu1_)((*bn1_)((*conv1_)(x)))));
    return add_->as<nn::ResidualAddImpl>()->forward(y, shortcut_ ? shortcut_->forward(x) : x);
  }

 private:
  nn::LayerSlot* conv1_;
  nn::LayerSlot* bn1_;
  nn::LayerSlot* relu1_;
  nn::LayerSlot* conv2_;
  nn::LayerSlot* bn2_;
  nn::Chain shortcut_{nullptr};
  nn::LayerSlot* add_ = nullptr;
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
  features_ = register_module("features", nn::Chain());
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
  dropout_ = register_layer("dropout", torch::nn::Dropout(config_.dropout));
  classifier_ = register_layer("classifier", torch::nn::Linear(width, config_.num_classes));
}

torch::Tensor ResNetCnn::forward(torch::Tensor input) {
  HONE_CHECK(input.dim() == 4 && input.size(1) == config_.in_channels,
             "cnn: expected images [B, {}, H, W], got shape {}", config_.in_channels, input.sizes());
  // The stem (conv, norm, relu) runs as it is; each residual block through run_block.
  const auto x = run_chain(*features_, input, kStemLayers).mean({2, 3});
  return (*classifier_)((*dropout_)(x));
}

std::int64_t ResNetCnn::block_count() const {
  return static_cast<std::int64_t>(features_->size()) - static_cast<std::int64_t>(kStemLayers);
}

std::vector<ChannelGroup> ResNetCnn::channel_groups() const {
  std::vector<ChannelGroup> groups;
  // The stem writes the first residual stream; a block with a shortcut conv starts a new one.
  ChannelGroup stream{"stream 0 (stem)", {"features.0"}, {"features.1"}, {}};
  std::int64_t in = config_.widths.front();
  std::size_t index = 3;  // features.0-2 are the stem's conv, BN, ReLU
  for (std::size_t stage = 0; stage < config_.widths.size(); ++stage) {
    for (std::int64_t block = 0; block < config_.blocks_per_stage; ++block, ++index) {
      const auto out = config_.widths[stage];
      const auto path = "features." + std::to_string(index);
      const bool has_shortcut = (stage > 0 && block == 0) || in != out;
      groups.push_back({path + " inner", {path + ".conv1"}, {path + ".bn1"}, {path + ".conv2"}});
      stream.consumers.push_back(path + ".conv1");
      if (has_shortcut) {
        stream.consumers.push_back(path + ".shortcut.0");
        groups.push_back(std::move(stream));
        stream = {"stream " + std::to_string(groups.size()) + " (" + path + ")",
                  {path + ".conv2", path + ".shortcut.0"},
                  {path + ".bn2", path + ".shortcut.1"},
                  {}};
      } else {
        stream.producers.push_back(path + ".conv2");
        stream.norms.push_back(path + ".bn2");
      }
      in = out;
    }
  }
  stream.consumers.push_back("classifier");
  groups.push_back(std::move(stream));
  return groups;
}

}  // namespace hone::models
