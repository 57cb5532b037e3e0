#include "hone/models/mobilenet_cnn.h"

#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>

#include "config_fields.h"
#include "hone/core/error.h"

namespace hone::models {
namespace {

const std::string kWhat = "mobilenet config";

torch::nn::Conv2d conv(std::int64_t in, std::int64_t out, std::int64_t kernel, std::int64_t stride,
                       std::int64_t groups = 1) {
  // Bias-free: every conv here feeds a BatchNorm.
  torch::nn::Conv2d layer(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).groups(groups).bias(false));
  torch::nn::init::kaiming_normal_(layer->weight, 0.0, torch::kFanOut, torch::kReLU);
  return layer;
}

/// Depthwise 3x3 conv-BN-ReLU6, then pointwise 1x1 conv-BN-ReLU6.
class DepthwiseSeparableImpl : public nn::Module {
 public:
  DepthwiseSeparableImpl(std::int64_t in, std::int64_t out, std::int64_t stride)
      : depthwise_(register_layer("depthwise", conv(in, in, 3, stride, /*groups=*/in))),
        depthwise_norm_(register_layer("depthwise_norm", torch::nn::BatchNorm2d(in))),
        pointwise_(register_layer("pointwise", conv(in, out, 1, 1))),
        pointwise_norm_(register_layer("pointwise_norm", torch::nn::BatchNorm2d(out))) {
    declare_flow("depthwise", "depthwise_norm");
    declare_flow("pointwise", "pointwise_norm");
  }

  torch::Tensor forward(const torch::Tensor& x) {
    auto y = torch::hardtanh((*depthwise_norm_)((*depthwise_)(x)), 0.0, 6.0);
    return torch::hardtanh((*pointwise_norm_)((*pointwise_)(y)), 0.0, 6.0);
  }

 private:
  nn::LayerSlot* depthwise_;
  nn::LayerSlot* depthwise_norm_;
  nn::LayerSlot* pointwise_;
  nn::LayerSlot* pointwise_norm_;
};
TORCH_MODULE(DepthwiseSeparable);

}  // namespace

void to_json(nlohmann::json& j, const MobileNetCnnConfig& c) {
  j = nlohmann::json{{"in_channels", c.in_channels}, {"num_classes", c.num_classes}, {"stem_width", c.stem_width},
                     {"widths", c.widths},           {"strides", c.strides},         {"dropout", c.dropout}};
}

void from_json(const nlohmann::json& j, MobileNetCnnConfig& c) {
  check_config_keys(j, kWhat, {"in_channels", "num_classes", "stem_width", "widths", "strides", "dropout"});
  detail::read_field(j, kWhat, "in_channels", c.in_channels);
  detail::read_field(j, kWhat, "num_classes", c.num_classes);
  detail::read_field(j, kWhat, "stem_width", c.stem_width);
  detail::read_field(j, kWhat, "widths", c.widths);
  detail::read_field(j, kWhat, "strides", c.strides);
  detail::read_field(j, kWhat, "dropout", c.dropout);
  detail::check_positive(kWhat, "in_channels", c.in_channels);
  detail::check_positive(kWhat, "num_classes", c.num_classes);
  detail::check_positive(kWhat, "stem_width", c.stem_width);
  detail::check_positive_list(kWhat, "widths", c.widths);
  detail::check_positive_list(kWhat, "strides", c.strides);
  HONE_CHECK(c.strides.size() == c.widths.size(),
             "{}: 'strides' must have one entry per entry of 'widths' ({}), got {}", kWhat, c.widths.size(),
             c.strides.size());
  detail::check_dropout(kWhat, "dropout", c.dropout);
}

MobileNetCnn::MobileNetCnn(MobileNetCnnConfig config) : config_(std::move(config)) {
  config_ = nlohmann::json(config_).get<MobileNetCnnConfig>();
  features_ = register_module("features", nn::Chain());
  features_->push_back(conv(config_.in_channels, config_.stem_width, 3, 1));
  features_->push_back(torch::nn::BatchNorm2d(config_.stem_width));
  features_->push_back(torch::nn::ReLU6());
  std::int64_t width = config_.stem_width;
  for (std::size_t i = 0; i < config_.widths.size(); ++i) {
    features_->push_back(DepthwiseSeparable(width, config_.widths[i], config_.strides[i]));
    width = config_.widths[i];
  }
  dropout_ = register_layer("dropout", torch::nn::Dropout(config_.dropout));
  classifier_ = register_layer("classifier", torch::nn::Linear(width, config_.num_classes));
}

std::int64_t MobileNetCnn::block_count() const {
  return static_cast<std::int64_t>(features_->size()) - static_cast<std::int64_t>(kStemLayers);
}

torch::Tensor MobileNetCnn::forward(torch::Tensor input) {
  HONE_CHECK(input.dim() == 4 && input.size(1) == config_.in_channels,
             "mobilenet: expected images [B, {}, H, W], got shape {}", config_.in_channels, input.sizes());
  // The stem (conv, norm, relu6) runs as it is; each depthwise-separable block through run_block.
  auto x = run_chain(*features_, input, kStemLayers).mean({2, 3});
  return (*classifier_)((*dropout_)(x));
}

}  // namespace hone::models
