// hone::sketched_conv2d on CPU, in fused form: ONE convolution of x with all T·k sketched filters
// stacked ([T·k, C, kh, kw]), then ONE projection of its T·k channels by [U₁ᵀ | … | U_Tᵀ]/T with the
// bias added in the same addmm (channels-last) or baddbmm (NCHW).
#include <ATen/ATen.h>
#include <torch/library.h>

#include "hone/ops/sketched_conv2d.h"

namespace hone::ops {
namespace {

at::Tensor sketched_conv2d_cpu(const at::Tensor& input, const at::Tensor& s, const at::Tensor& u,
                               const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                               at::IntArrayRef dilation) {
  check_sketched_conv2d_inputs(input, s, u, bias, stride, padding, dilation);
  TORCH_CHECK(input.device().is_cpu(), "sketched_conv2d (CPU kernel): input is on ", input.device());
  const at::Tensor sketch = at::conv2d(input, sketched_conv2d_pack_weight(s), {}, stride, padding, dilation);
  return sketched_conv2d_project_channels(sketch, sketched_conv2d_pack_projection(u), bias,
                                          1.0 / static_cast<double>(s.size(0)));
}

}  // namespace

TORCH_LIBRARY_IMPL(hone, CPU, m) { m.impl("sketched_conv2d", &sketched_conv2d_cpu); }

}  // namespace hone::ops
