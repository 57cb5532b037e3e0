// The schema of hone::int8_weight_only_linear, its dispatcher wrapper, input checks and the ATen
// reference.
#include "hone/ops/int8_weight_only_linear.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

namespace hone::ops {

TORCH_LIBRARY_FRAGMENT(hone, m) {
  m.def("int8_weight_only_linear(Tensor input, Tensor weight, Tensor scales, Tensor? bias) -> Tensor");
}

at::Tensor int8_weight_only_linear(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scales,
                                   const std::optional<at::Tensor>& bias) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("hone::int8_weight_only_linear", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const std::optional<at::Tensor>&)>();
  return op.call(input, weight, scales, bias);
}

void check_int8_weight_only_linear_inputs(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scales,
                                          const std::optional<at::Tensor>& bias) {
  TORCH_CHECK(weight.dim() == 2 && weight.scalar_type() == at::kChar,
              "int8_weight_only_linear: weight must be int8 [out, in], got ", weight.scalar_type(), " ",
              weight.sizes());
  const int64_t out = weight.size(0), in = weight.size(1);
  TORCH_CHECK(input.dim() >= 1 && input.size(-1) == in, "int8_weight_only_linear: input must be [..., in=", in,
              "], got ", input.sizes());
  TORCH_CHECK(
      input.scalar_type() == at::kFloat || input.scalar_type() == at::kBFloat16 || input.scalar_type() == at::kHalf,
      "int8_weight_only_linear: input must be fp32, bf16 or fp16, got ", input.scalar_type());
  TORCH_CHECK(scales.dim() == 1 && scales.size(0) == out, "int8_weight_only_linear: scales must be [out=", out,
              "], got ", scales.sizes());
  TORCH_CHECK(scales.scalar_type() == input.scalar_type(),
              "int8_weight_only_linear: scales must have the input's dtype ", input.scalar_type(), ", got ",
              scales.scalar_type());
  TORCH_CHECK(weight.device() == input.device() && scales.device() == input.device(),
              "int8_weight_only_linear: input, weight and scales must be on one device, got ", input.device(), ", ",
              weight.device(), ", ", scales.device());
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == out && bias->scalar_type() == input.scalar_type() &&
                    bias->device() == input.device(),
                "int8_weight_only_linear: bias must be [out=", out, "] of the input's dtype and device, got ",
                bias->scalar_type(), " ", bias->sizes(), " on ", bias->device());
  }
}

at::Tensor int8_weight_only_linear_reference(const at::Tensor& input, const at::Tensor& weight,
                                             const at::Tensor& scales, const std::optional<at::Tensor>& bias) {
  check_int8_weight_only_linear_inputs(input, weight, scales, bias);
  const auto w = weight.to(at::kDouble) * scales.to(at::kDouble).unsqueeze(1);
  auto y = at::matmul(input.to(at::kDouble), w.t());
  if (bias.has_value() && bias->defined()) y = y + bias->to(at::kDouble);
  return y.to(input.scalar_type());
}

}  // namespace hone::ops
