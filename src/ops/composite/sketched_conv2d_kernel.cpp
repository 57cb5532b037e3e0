// hone::sketched_conv2d for every device, in fused form: ONE convolution of x with all T·k sketched
// filters stacked ([T·k, C, kh, kw]), then ONE projection of its T·k channels by [U₁ᵀ | … | U_Tᵀ]/T
// with the bias added in the same addmm (channels-last) or baddbmm (NCHW). Registered as
// CompositeExplicitAutograd: the same ATen ops serve CPU (oneDNN/BLAS) and CUDA (cuDNN, on tensor
// cores for bf16/fp16; fp32 stays fp32 unless the caller allowed tf32 for cuDNN, and cuBLAS for the
// projection), each picking its algorithm for the device at run time; the Autograd kernel
// (ops/autograd) supplies the gradients.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "hone/ops/sketched_conv2d.h"

namespace hone::ops {
namespace {

at::Tensor sketched_conv2d_fused(const at::Tensor& input, const at::Tensor& s, const at::Tensor& u,
                                 const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                                 at::IntArrayRef dilation) {
  check_sketched_conv2d_inputs(input, s, u, bias, stride, padding, dilation);
  const at::Tensor sketch = at::conv2d(input, sketched_conv2d_pack_weight(s), {}, stride, padding, dilation);
  return sketched_conv2d_project_channels(sketch, sketched_conv2d_pack_projection(u), bias,
                                          1.0 / static_cast<double>(s.size(0)));
}

}  // namespace

TORCH_LIBRARY_IMPL(hone, CompositeExplicitAutograd, m) { m.impl("sketched_conv2d", &sketched_conv2d_fused); }

}  // namespace hone::ops
