#include "hone/nn/conv2d_int8.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <variant>

#include "hone/core/error.h"

namespace hone::nn {

Conv2dInt8Impl::Conv2dInt8Impl(Conv2dInt8Options options) : options_(std::move(options)) {
  const auto& o = options_;
  HONE_CHECK(o.in > 0 && o.out > 0 && o.groups > 0 && o.in % o.groups == 0 && o.out % o.groups == 0,
             "conv2d_int8: in {} and out {} must be positive multiples of groups {}", o.in, o.out, o.groups);
  HONE_CHECK(o.kernel.size() == 2 && o.stride.size() == 2 && o.padding.size() == 2 && o.dilation.size() == 2,
             "conv2d_int8: kernel, stride, padding and dilation must have 2 values each");
  weight_ = register_int8_weight(*this, "weight", {o.out, o.in / o.groups, o.kernel[0], o.kernel[1]}, o.per_channel);
  if (o.bias) bias_ = register_buffer("bias", at::zeros({o.out}, at::kFloat));
  input_scale_ = register_scalar_buffer(*this, "input_scale", at::kDouble);
  input_zero_point_ = register_scalar_buffer(*this, "input_zero_point", at::kLong);
  output_scale_ = register_scalar_buffer(*this, "output_scale", at::kDouble);
  output_zero_point_ = register_scalar_buffer(*this, "output_zero_point", at::kLong);
  repack();
}

std::shared_ptr<Conv2dInt8Impl> Conv2dInt8Impl::from_float(const torch::nn::Conv2dImpl& conv, bool per_channel,
                                                           bool relu, ActivationQParams input,
                                                           ActivationQParams output) {
  const auto& w = conv.weight;
  Conv2dInt8Options o{Conv2dGeometry::of(conv, "conv2d_int8")};
  o.per_channel = per_channel;
  o.relu = relu;
  auto layer = std::make_shared<Conv2dInt8Impl>(o);
  torch::NoGradGuard no_grad;
  assign_int8_weight(layer->weight_, quantize_weight_int8(w, per_channel));
  if (o.bias) layer->bias_.copy_(conv.bias.detach());
  assign_qparams(layer->input_scale_, layer->input_zero_point_, input);
  assign_qparams(layer->output_scale_, layer->output_zero_point_, output);
  layer->repack();
  return layer;
}

void Conv2dInt8Impl::repack() {
  const auto& o = options_;
  const auto bias = bias_.defined() ? c10::IValue(bias_.to(at::kFloat).contiguous()) : c10::IValue();
  packed_ = call_op("quantized::conv2d_prepack", "",
                    {to_qint8(weight_, o.per_channel), bias, c10::List<std::int64_t>(o.stride),
                     c10::List<std::int64_t>(o.padding), c10::List<std::int64_t>(o.dilation), o.groups})
                .at(0);
}

torch::Tensor Conv2dInt8Impl::forward(const torch::Tensor& x) {
  HONE_CHECK(x.dim() == 4 && x.size(1) == options_.in, "conv2d_int8: expected input [B, {}, H, W], got {}", options_.in,
             x.sizes());
  const auto input = x.is_quantized() ? x : quantize_activation(x, input_scale_, input_zero_point_);
  const auto* op = options_.relu ? "quantized::conv2d_relu" : "quantized::conv2d";
  return call_op(op, "new", {input, packed_, output_scale_.item<double>(), output_zero_point_.item<std::int64_t>()})
      .at(0)
      .toTensor();
}

ActivationQParams Conv2dInt8Impl::input_qparams() const { return read_qparams(input_scale_, input_zero_point_); }

ActivationQParams Conv2dInt8Impl::output_qparams() const { return read_qparams(output_scale_, output_zero_point_); }

nlohmann::json Conv2dInt8Impl::spec() const {
  const auto& o = options_;
  return o.with_spec({{"kind", "conv2d_int8"}, {"per_channel", o.per_channel}, {"relu", o.relu}});
}

LayerKind conv2d_int8_kind() {
  return {"conv2d_int8", [](const nlohmann::json& spec) {
            Conv2dInt8Options o{Conv2dGeometry::from_spec(spec)};
            o.per_channel = spec_bool(spec, "per_channel");
            o.relu = spec_bool(spec, "relu");
            return make_layer(Conv2dInt8(std::move(o)));
          }};
}

}  // namespace hone::nn
