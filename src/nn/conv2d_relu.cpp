#include "hone/nn/conv2d_relu.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <ostream>
#include <utility>

#include "hone/core/error.h"
#include "onednn_pointwise.h"

namespace hone::nn {

Conv2dReluImpl::Conv2dReluImpl(Conv2dGeometry geometry)
    : geometry_(std::move(geometry)), packed_(std::make_unique<onednn::PackedWeightCache>()) {
  const auto& g = geometry_;
  HONE_CHECK(g.in > 0 && g.out > 0 && g.groups > 0 && g.in % g.groups == 0 && g.out % g.groups == 0,
             "conv2d_relu: in {} and out {} must be positive multiples of groups {}", g.in, g.out, g.groups);
  HONE_CHECK(g.kernel.size() == 2 && g.stride.size() == 2 && g.padding.size() == 2 && g.dilation.size() == 2,
             "conv2d_relu: kernel, stride, padding and dilation must have 2 values each");
  weight = register_parameter("weight", at::zeros({g.out, g.in / g.groups, g.kernel[0], g.kernel[1]}));
  if (g.bias) bias = register_parameter("bias", at::zeros({g.out}));
}

Conv2dReluImpl::~Conv2dReluImpl() = default;

std::shared_ptr<Conv2dReluImpl> Conv2dReluImpl::from_conv(const torch::nn::Conv2dImpl& conv) {
  auto layer = std::make_shared<Conv2dReluImpl>(Conv2dGeometry::of(conv, "conv2d_relu"));
  torch::NoGradGuard no_grad;
  layer->weight.set_data(conv.weight.detach().clone());
  if (layer->geometry_.bias) layer->bias.set_data(conv.bias.detach().clone());
  return layer;
}

bool Conv2dReluImpl::runs_fused(const torch::Tensor& x) const {
  return x.dim() == 4 && onednn::fp32_inference_applies(x, weight, bias, /*min_dim=*/4);
}

torch::Tensor Conv2dReluImpl::forward(const torch::Tensor& x) {
  const auto& g = geometry_;
  HONE_CHECK(x.dim() == 4 && x.size(1) == g.in, "conv2d_relu: expected input [B, {}, H, W], got {}", g.in, x.sizes());
  if (!runs_fused(x)) return forward_unfused(x);
  const auto packed = packed_->get(weight, x.sizes().vec(), [&](const at::Tensor& w) {
    at::NoGradGuard no_grad;
    return onednn::pack_conv2d_weight(w.detach(), g.stride, g.padding, g.dilation, g.groups, x.sizes());
  });
  return onednn::conv2d_relu(x, packed, bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt, g.stride,
                             g.padding, g.dilation, g.groups);
}

torch::Tensor Conv2dReluImpl::forward_unfused(const torch::Tensor& x) const {
  const auto& g = geometry_;
  return at::conv2d(x, weight, bias, g.stride, g.padding, g.dilation, g.groups).relu_();
}

void Conv2dReluImpl::repack() { packed_->clear(); }

nlohmann::json Conv2dReluImpl::spec() const { return geometry_.with_spec({{"kind", "conv2d_relu"}}); }

void Conv2dReluImpl::pretty_print(std::ostream& stream) const {
  const auto& g = geometry_;
  stream << "hone::nn::Conv2dRelu(" << g.in << ", " << g.out << ", kernel_size=" << c10::IntArrayRef(g.kernel)
         << ", stride=" << c10::IntArrayRef(g.stride) << ", groups=" << g.groups << ")";
}

bool fused_relu_kernels_available() { return onednn::fused_relu_available(); }

LayerKind conv2d_relu_kind() {
  return {"conv2d_relu",
          [](const nlohmann::json& spec) { return make_layer(Conv2dRelu(Conv2dGeometry::from_spec(spec))); }};
}

}  // namespace hone::nn
