#include "hone/nn/conv2d_float.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <variant>

#include "hone/core/error.h"
#include "hone/nn/linear_float.h"
#include "hone/nn/quantized_weight.h"

namespace hone::nn {

Conv2dFloatImpl::Conv2dFloatImpl(Conv2dFloatOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  HONE_CHECK(o.in > 0 && o.out > 0 && o.groups > 0 && o.in % o.groups == 0 && o.out % o.groups == 0,
             "conv2d_float: in {} and out {} must be positive multiples of groups {}", o.in, o.out, o.groups);
  HONE_CHECK(o.kernel.size() == 2 && o.stride.size() == 2 && o.padding.size() == 2 && o.dilation.size() == 2,
             "conv2d_float: kernel, stride, padding and dilation must have 2 values each");
  const auto tensor_options = at::TensorOptions().dtype(o.dtype);
  weight = register_parameter("weight", at::zeros({o.out, o.in / o.groups, o.kernel[0], o.kernel[1]}, tensor_options));
  if (o.bias) bias = register_parameter("bias", at::zeros({o.out}, tensor_options));
}

std::shared_ptr<Conv2dFloatImpl> Conv2dFloatImpl::from_float(const torch::nn::Conv2dImpl& conv, c10::ScalarType dtype) {
  const auto& w = conv.weight;
  Conv2dFloatOptions o{Conv2dGeometry::of(conv, "conv2d_float")};
  o.dtype = dtype;
  auto layer = std::make_shared<Conv2dFloatImpl>(o);
  torch::NoGradGuard no_grad;
  layer->weight.copy_(w);
  if (o.bias) layer->bias.copy_(conv.bias);
  layer->to(w.device());
  return layer;
}

torch::Tensor Conv2dFloatImpl::forward(const torch::Tensor& x) {
  const auto& o = options_;
  HONE_CHECK(x.dim() == 4 && x.size(1) == o.in, "conv2d_float: expected input [B, {}, H, W], got {}", o.in, x.sizes());
  return at::conv2d(x.to(o.dtype), weight, bias, o.stride, o.padding, o.dilation, o.groups).to(x.scalar_type());
}

nlohmann::json Conv2dFloatImpl::spec() const {
  const auto& o = options_;
  return o.with_spec({{"kind", "conv2d_float"}, {"dtype", low_precision_name(o.dtype)}});
}

LayerKind conv2d_float_kind() {
  return {"conv2d_float", [](const nlohmann::json& spec) {
            Conv2dFloatOptions o{Conv2dGeometry::from_spec(spec)};
            o.dtype = low_precision_dtype(spec_string(spec, "dtype"), "layer spec 'conv2d_float'");
            return make_layer(Conv2dFloat(std::move(o)));
          }};
}

}  // namespace hone::nn
