#include "hone/nn/linear_int8.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "hone/core/error.h"

namespace hone::nn {

LinearInt8Impl::LinearInt8Impl(LinearInt8Options options) : options_(options) {
  HONE_CHECK(options_.in > 0 && options_.out > 0, "linear_int8: in and out must be positive, got {} and {}",
             options_.in, options_.out);
  weight_ = register_int8_weight(*this, "weight", {options_.out, options_.in}, options_.per_channel);
  if (options_.bias) bias_ = register_buffer("bias", at::zeros({options_.out}, at::kFloat));
  input_scale_ = register_scalar_buffer(*this, "input_scale", at::kDouble);
  input_zero_point_ = register_scalar_buffer(*this, "input_zero_point", at::kLong);
  output_scale_ = register_scalar_buffer(*this, "output_scale", at::kDouble);
  output_zero_point_ = register_scalar_buffer(*this, "output_zero_point", at::kLong);
  repack();
}

std::shared_ptr<LinearInt8Impl> LinearInt8Impl::from_float(const torch::nn::LinearImpl& linear,
                                                           LinearInt8Options options, ActivationQParams input,
                                                           ActivationQParams output) {
  const auto& w = linear.weight;
  options.in = w.size(1);
  options.out = w.size(0);
  options.bias = linear.bias.defined();
  auto layer = std::make_shared<LinearInt8Impl>(options);
  torch::NoGradGuard no_grad;
  assign_int8_weight(layer->weight_, quantize_weight_int8(w, options.per_channel));
  if (options.bias) layer->bias_.copy_(linear.bias.detach());
  assign_qparams(layer->input_scale_, layer->input_zero_point_, input);
  assign_qparams(layer->output_scale_, layer->output_zero_point_, output);
  layer->repack();
  return layer;
}

void LinearInt8Impl::repack() {
  const auto bias = bias_.defined() ? c10::IValue(bias_.to(at::kFloat).contiguous()) : c10::IValue();
  packed_ = call_op("quantized::linear_prepack", "", {to_qint8(weight_, options_.per_channel), bias}).at(0);
}

torch::Tensor LinearInt8Impl::forward(const torch::Tensor& x) {
  HONE_CHECK(x.dim() >= 1 && x.size(-1) == options_.in, "linear_int8: expected input [..., {}], got {}", options_.in,
             x.sizes());
  const auto input = x.is_quantized() ? x : quantize_activation(x, input_scale_, input_zero_point_);
  auto out_shape = input.sizes().vec();
  out_shape.back() = options_.out;
  const auto rows = input.reshape({-1, options_.in}).contiguous();
  const auto* op = options_.relu ? "quantized::linear_relu" : "quantized::linear";
  const auto y = call_op(op, "", {rows, packed_, output_scale_.item<double>(), output_zero_point_.item<std::int64_t>()})
                     .at(0)
                     .toTensor()
                     .reshape(out_shape);
  if (!options_.dequantize_output) return y;
  return y.dequantize().to(x.is_quantized() ? at::kFloat : x.scalar_type());
}

nlohmann::json LinearInt8Impl::spec() const {
  const auto& o = options_;
  return {{"kind", "linear_int8"},
          {"in", o.in},
          {"out", o.out},
          {"bias", o.bias},
          {"per_channel", o.per_channel},
          {"relu", o.relu},
          {"dequantize_output", o.dequantize_output}};
}

LayerKind linear_int8_kind() {
  return {"linear_int8", [](const nlohmann::json& spec) {
            LinearInt8Options o;
            o.in = spec_int(spec, "in");
            o.out = spec_int(spec, "out");
            o.bias = spec_bool(spec, "bias");
            o.per_channel = spec_bool(spec, "per_channel");
            o.relu = spec_bool(spec, "relu");
            o.dequantize_output = spec_bool(spec, "dequantize_output");
            return make_layer(LinearInt8(o));
          }};
}

}  // namespace hone::nn
