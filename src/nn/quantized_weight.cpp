#include "hone/nn/quantized_weight.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/utils.h>

#include "hone/core/error.h"

namespace hone::nn {

Int8Weight quantize_weight_int8(const torch::Tensor& weight, bool per_channel) {
  HONE_CHECK(weight.dim() >= 1 && weight.numel() > 0, "quantize_weight_int8: expected a non-empty weight, got {}",
             weight.sizes());
  torch::NoGradGuard no_grad;
  const auto w = weight.detach().to(at::kDouble);
  const auto rows = w.reshape({w.size(0), -1});
  // A channel of zeros gets scale 1 (any scale represents it exactly).
  auto amax = per_channel ? rows.abs().amax(1) : rows.abs().max().reshape({1});
  const auto scale = at::where(amax > 0, amax / 127.0, at::ones_like(amax));
  const auto broadcast = per_channel ? scale.reshape({-1, 1}) : scale;
  const auto values = at::clamp(at::round(rows / broadcast), -127, 127).to(at::kChar).reshape(weight.sizes());
  return {values, scale, at::zeros(scale.sizes(), at::kLong)};
}

torch::Tensor to_qint8(const Int8Weight& weight, bool per_channel) {
  const auto values = weight.values.to(at::kChar).contiguous();
  if (per_channel) {
    return at::_make_per_channel_quantized_tensor(values, weight.scale.to(at::kDouble), weight.zero_point.to(at::kLong),
                                                  /*axis=*/0);
  }
  return at::_make_per_tensor_quantized_tensor(values, weight.scale.item<double>(),
                                               weight.zero_point.item<std::int64_t>());
}

double weight_error(const torch::Tensor& weight, const Int8Weight& quantized, bool per_channel) {
  const auto w = weight.detach().to(at::kDouble);
  const auto restored = to_qint8(quantized, per_channel).dequantize().to(at::kDouble);
  return ((w - restored).norm() / w.norm().clamp_min(1e-30)).item<double>();
}

Int8Weight register_int8_weight(torch::nn::Module& module, const std::string& name, at::IntArrayRef shape,
                                bool per_channel) {
  const std::int64_t channels = per_channel ? shape[0] : 1;
  Int8Weight weight;
  weight.values = module.register_buffer(name, at::zeros(shape, at::kChar));
  weight.scale = module.register_buffer(name + "_scale", at::ones({channels}, at::kDouble));
  weight.zero_point = module.register_buffer(name + "_zero_point", at::zeros({channels}, at::kLong));
  return weight;
}

void assign_int8_weight(Int8Weight& target, const Int8Weight& source) {
  torch::NoGradGuard no_grad;
  HONE_CHECK(target.values.sizes() == source.values.sizes() && target.scale.sizes() == source.scale.sizes(),
             "assign_int8_weight: shape {} (scales {}) does not match {} (scales {})", source.values.sizes(),
             source.scale.sizes(), target.values.sizes(), target.scale.sizes());
  target.values.copy_(source.values);
  target.scale.copy_(source.scale);
  target.zero_point.copy_(source.zero_point);
}

torch::Tensor register_scalar_buffer(torch::nn::Module& module, const std::string& name, at::ScalarType dtype) {
  return module.register_buffer(name, dtype == at::kLong ? at::zeros({1}, dtype) : at::ones({1}, dtype));
}

std::vector<c10::IValue> call_op(const char* op, const char* overload, std::vector<c10::IValue> arguments) {
  const auto handle = c10::Dispatcher::singleton().findSchemaOrThrow(op, overload);
  handle.callBoxed(arguments);
  return arguments;
}

torch::Tensor quantize_activation(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& zero_point) {
  return at::quantize_per_tensor(x.to(at::kFloat), scale.item<double>(), zero_point.item<std::int64_t>(), at::kQUInt8);
}

void assign_qparams(torch::Tensor& scale, torch::Tensor& zero_point, ActivationQParams qparams) {
  torch::NoGradGuard no_grad;
  scale.fill_(qparams.scale);
  zero_point.fill_(qparams.zero_point);
}

ActivationQParams read_qparams(const torch::Tensor& scale, const torch::Tensor& zero_point) {
  return {scale.item<double>(), zero_point.item<std::int64_t>()};
}

}  // namespace hone::nn
