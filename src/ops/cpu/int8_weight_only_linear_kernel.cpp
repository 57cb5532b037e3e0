// hone::int8_weight_only_linear on the CPU: LibTorch's _weight_int8pack_mm, then the bias (bf16
// inputs with in % 16 != 0 go through fp32, see below).
#include <ATen/ATen.h>
#include <torch/library.h>

#include "hone/ops/int8_weight_only_linear.h"

namespace hone::ops {
namespace {

at::Tensor int8_weight_only_linear_cpu(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scales,
                                       const std::optional<at::Tensor>& bias) {
  check_int8_weight_only_linear_inputs(input, weight, scales, bias);
  const int64_t in = weight.size(1), out = weight.size(0);
  auto out_shape = input.sizes().vec();
  out_shape.back() = out;
  const auto rows = input.reshape({-1, in}).contiguous();
  at::Tensor y;
  if (rows.scalar_type() == at::kBFloat16 && in % 16 != 0) {
    // LibTorch 2.11's bf16 _weight_int8pack_mm on the CPU crashes (segfault) when in % 16 != 0,
    // found by this op's tests: dequantize to fp32 and multiply there instead.
    const auto dequantized = weight.to(at::kFloat) * scales.to(at::kFloat).unsqueeze(1);
    y = at::mm(rows.to(at::kFloat), dequantized.t()).to(rows.scalar_type());
  } else {
    y = at::_weight_int8pack_mm(rows, weight.contiguous(), scales.contiguous());
  }
  if (bias.has_value() && bias->defined()) y.add_(*bias);
  return y.view(out_shape);
}

}  // namespace

TORCH_LIBRARY_IMPL(hone, CPU, m) { m.impl("int8_weight_only_linear", int8_weight_only_linear_cpu); }

}  // namespace hone::ops
