// hone::int8_weight_only_linear on CUDA: hone's streaming kernel up to 16 rows per call; more rows
// run one GEMM on the weight dequantized to the input's dtype (faster than LibTorch's CUDA
// _weight_int8pack_mm at every measured shape, docs/BENCHMARKS.md "Weight-only").
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "hone/ops/int8_weight_only_linear.h"
#include "int8_weight_only_linear_kernel.cuh"

namespace hone::ops {
namespace {

at::Tensor int8_weight_only_linear_cuda(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scales,
                                        const std::optional<at::Tensor>& bias_in) {
  check_int8_weight_only_linear_inputs(input, weight, scales, bias_in);
  TORCH_CHECK(input.is_cuda(), "int8_weight_only_linear (CUDA kernel): input is on ", input.device());
  const c10::cuda::CUDAGuard device_guard(input.device());
  const int64_t in = weight.size(1), out = weight.size(0);
  auto out_shape = input.sizes().vec();
  out_shape.back() = out;
  const at::Tensor x = input.reshape({-1, in}).contiguous();
  const bool has_bias = bias_in.has_value() && bias_in->defined();
  const int64_t rows = x.size(0);
  if (rows > cuda_detail::kInt8WeightOnlyMaxRows) {
    const at::Tensor dequantized = weight.to(input.scalar_type()).mul_(scales.unsqueeze(1));
    const at::Tensor y = has_bias ? at::addmm(*bias_in, x, dequantized.t()) : at::mm(x, dequantized.t());
    return y.view(out_shape);
  }
  const at::Tensor w = weight.contiguous(), s = scales.contiguous();
  const at::Tensor bias = has_bias ? bias_in->contiguous() : at::Tensor();
  at::Tensor y = at::empty({rows, out}, x.options());
  const auto kind = x.scalar_type() == at::kFloat      ? cuda_detail::FloatKind::fp32
                    : x.scalar_type() == at::kBFloat16 ? cuda_detail::FloatKind::bf16
                                                       : cuda_detail::FloatKind::fp16;
  const cuda_detail::Int8WeightOnlyProblem problem{
      x.data_ptr(), w.data_ptr<int8_t>(), s.data_ptr(), has_bias ? bias.data_ptr() : nullptr, y.data_ptr(), rows, in,
      out};
  const cudaError_t status =
      cuda_detail::launch_int8_weight_only_linear(problem, kind, at::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(status == cudaSuccess, "int8_weight_only_linear: kernel launch failed: ", cudaGetErrorString(status));
  return y.view(out_shape);
}

}  // namespace

TORCH_LIBRARY_IMPL(hone, CUDA, m) { m.impl("int8_weight_only_linear", int8_weight_only_linear_cuda); }

}  // namespace hone::ops
