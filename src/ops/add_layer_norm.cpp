// The schema of hone::add_layer_norm, its dispatcher wrapper, input checks and the ATen reference.
#include "hone/ops/add_layer_norm.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

namespace hone::ops {

TORCH_LIBRARY_FRAGMENT(hone, m) {
  m.def("add_layer_norm(Tensor input, Tensor residual, Tensor weight, Tensor bias, float eps) -> Tensor");
}

at::Tensor add_layer_norm(const at::Tensor& input, const at::Tensor& residual, const at::Tensor& weight,
                          const at::Tensor& bias, double eps) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("hone::add_layer_norm", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, double)>();
  return op.call(input, residual, weight, bias, eps);
}

void check_add_layer_norm_inputs(const at::Tensor& input, const at::Tensor& residual, const at::Tensor& weight,
                                 const at::Tensor& bias, double eps) {
  TORCH_CHECK(input.dim() >= 1 && input.size(-1) >= 1, "add_layer_norm: input must be [..., H] with H >= 1, got ",
              input.sizes());
  const int64_t hidden = input.size(-1);
  TORCH_CHECK(
      input.scalar_type() == at::kFloat || input.scalar_type() == at::kBFloat16 || input.scalar_type() == at::kHalf,
      "add_layer_norm: input must be fp32, bf16 or fp16, got ", input.scalar_type());
  TORCH_CHECK(residual.sizes() == input.sizes(), "add_layer_norm: residual must have the input's shape ", input.sizes(),
              ", got ", residual.sizes());
  TORCH_CHECK(residual.scalar_type() == input.scalar_type(), "add_layer_norm: residual must have the input's dtype ",
              input.scalar_type(), ", got ", residual.scalar_type());
  TORCH_CHECK(weight.dim() == 1 && weight.size(0) == hidden, "add_layer_norm: weight must be [H=", hidden, "], got ",
              weight.sizes());
  TORCH_CHECK(weight.scalar_type() == input.scalar_type(), "add_layer_norm: weight must have the input's dtype ",
              input.scalar_type(), ", got ", weight.scalar_type());
  TORCH_CHECK(bias.dim() == 1 && bias.size(0) == hidden, "add_layer_norm: bias must be [H=", hidden, "], got ",
              bias.sizes());
  TORCH_CHECK(bias.scalar_type() == input.scalar_type(), "add_layer_norm: bias must have the input's dtype ",
              input.scalar_type(), ", got ", bias.scalar_type());
  TORCH_CHECK(
      residual.device() == input.device() && weight.device() == input.device() && bias.device() == input.device(),
      "add_layer_norm: input, residual, weight and bias must be on one device, got ", input.device(), ", ",
      residual.device(), ", ", weight.device(), ", ", bias.device());
  TORCH_CHECK(eps >= 0, "add_layer_norm: eps must be >= 0, got ", eps);
}

at::Tensor add_layer_norm_reference(const at::Tensor& input, const at::Tensor& residual, const at::Tensor& weight,
                                    const at::Tensor& bias, double eps) {
  check_add_layer_norm_inputs(input, residual, weight, bias, eps);
  const auto sum = input.to(at::kFloat) + residual.to(at::kFloat);
  return at::layer_norm(sum, {input.size(-1)}, weight.to(at::kFloat), bias.to(at::kFloat), eps).to(input.scalar_type());
}

}  // namespace hone::ops
