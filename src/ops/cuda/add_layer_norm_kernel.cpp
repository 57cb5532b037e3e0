// hone::add_layer_norm on CUDA: hone's one-pass kernel for rows of up to kAddLayerNormMaxHidden
// elements; longer rows run LibTorch's at::layer_norm(x + residual) (the CPU kernel's composite).
// Nothing here synchronizes or allocates beyond the output, so the op can be captured in a CUDA
// graph.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "add_layer_norm_kernel.cuh"
#include "hone/ops/add_layer_norm.h"

namespace hone::ops {
namespace {

at::Tensor add_layer_norm_cuda(const at::Tensor& input, const at::Tensor& residual, const at::Tensor& weight,
                               const at::Tensor& bias, double eps) {
  check_add_layer_norm_inputs(input, residual, weight, bias, eps);
  TORCH_CHECK(input.is_cuda(), "add_layer_norm (CUDA kernel): input is on ", input.device());
  const c10::cuda::CUDAGuard device_guard(input.device());
  const int64_t hidden = input.size(-1);
  if (hidden > cuda_detail::kAddLayerNormMaxHidden)
    return at::layer_norm(input + residual, {hidden}, weight, bias, eps);
  const at::Tensor x = input.contiguous(), r = residual.contiguous(), w = weight.contiguous(), b = bias.contiguous();
  at::Tensor out = at::empty_like(x, x.options(), at::MemoryFormat::Contiguous);
  if (out.numel() == 0) return out;
  const auto dtype = x.scalar_type() == at::kFloat      ? cuda_detail::AddLayerNormDtype::fp32
                     : x.scalar_type() == at::kBFloat16 ? cuda_detail::AddLayerNormDtype::bf16
                                                        : cuda_detail::AddLayerNormDtype::fp16;
  const cuda_detail::AddLayerNormProblem problem{x.const_data_ptr(),
                                                 r.const_data_ptr(),
                                                 w.const_data_ptr(),
                                                 b.const_data_ptr(),
                                                 out.mutable_data_ptr(),
                                                 x.numel() / hidden,
                                                 hidden,
                                                 static_cast<float>(eps)};
  const cudaError_t status =
      cuda_detail::launch_add_layer_norm(problem, dtype, at::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(status == cudaSuccess, "add_layer_norm: kernel launch failed: ", cudaGetErrorString(status));
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(hone, CUDA, m) { m.impl("add_layer_norm", add_layer_norm_cuda); }

}  // namespace hone::ops
