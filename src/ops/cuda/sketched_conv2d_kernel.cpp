// hone::sketched_conv2d on CUDA: the CPU kernel's fused form on the device. cuDNN runs the one
// stacked convolution (on tensor cores for bf16/fp16; fp32 stays fp32 unless the caller allowed
// tf32 for cuDNN) and cuBLAS the one channel projection with the bias. No custom kernel: the
// convolution dominates and cuDNN already picks the best algorithm for the device at run time.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "hone/ops/sketched_conv2d.h"

namespace hone::ops {
namespace {

at::Tensor sketched_conv2d_cuda(const at::Tensor& input, const at::Tensor& s, const at::Tensor& u,
                                const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                                at::IntArrayRef dilation) {
  check_sketched_conv2d_inputs(input, s, u, bias, stride, padding, dilation);
  TORCH_CHECK(input.is_cuda(), "sketched_conv2d (CUDA kernel): input is on ", input.device());
  const c10::cuda::CUDAGuard device_guard(input.device());
  const at::Tensor sketch = at::conv2d(input, sketched_conv2d_pack_weight(s), {}, stride, padding, dilation);
  return sketched_conv2d_project_channels(sketch, sketched_conv2d_pack_projection(u), bias,
                                          1.0 / static_cast<double>(s.size(0)));
}

}  // namespace

TORCH_LIBRARY_IMPL(hone, CUDA, m) { m.impl("sketched_conv2d", &sketched_conv2d_cuda); }

}  // namespace hone::ops
