// hone::add_layer_norm on the CPU: LibTorch's at::layer_norm(x + residual). No custom kernel: the op
// is fused for CUDA (where the separate add and LayerNorm kernels cost memory passes); on the CPU
// the composite is fast enough and gives exactly the unfused path's answer.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "hone/ops/add_layer_norm.h"

namespace hone::ops {
namespace {

at::Tensor add_layer_norm_cpu(const at::Tensor& input, const at::Tensor& residual, const at::Tensor& weight,
                              const at::Tensor& bias, double eps) {
  check_add_layer_norm_inputs(input, residual, weight, bias, eps);
  return at::layer_norm(input + residual, {input.size(-1)}, weight, bias, eps);
}

}  // namespace

TORCH_LIBRARY_IMPL(hone, CPU, m) { m.impl("add_layer_norm", add_layer_norm_cpu); }

}  // namespace hone::ops
