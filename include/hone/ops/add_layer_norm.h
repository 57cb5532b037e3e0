#pragma once
/// @file The fused residual-add LayerNorm operator `hone::add_layer_norm` (a TORCH_LIBRARY op;
/// Python torch calls it as torch.ops.hone.add_layer_norm after loading libhone_kernels.so):
///
///   out = layer_norm(x + residual, [H], weight, bias, eps)   over the last dimension,
///
/// x and residual [..., H] of one float dtype (fp32, bf16, fp16) and device, weight and bias [H] in
/// x's dtype, out in x's dtype; mean and variance are computed in fp32.
/// Implementations:
/// - CPU: LibTorch's at::layer_norm(x + residual) (no custom kernel: the op exists for CUDA, and the
///   CPU answer is then bit-identical to the unfused path);
/// - CUDA, H <= 8192: hone's kernel, which reads x and residual once (16-byte loads where the rows
///   allow), adds them in fp32, keeps the row in registers for a two-pass mean and variance, and
///   writes out once: 3 tensor passes over memory where LibTorch's add kernel and LayerNorm kernel
///   take 5; larger H: LibTorch's at::layer_norm(x + residual), as on the CPU.
/// Numerics: the CUDA kernel never rounds x + residual; LibTorch's unfused path (and so the CPU
/// kernel and the CUDA large-H fallback) rounds the sum to x's dtype before normalizing, which for
/// bf16 costs up to ~2^-9 of |x + residual| / std. The fp32 reference below is therefore the oracle
/// for every implementation; the unfused path agrees with it within the dtype's tolerance.
/// No autograd: this is an inference op (the encoder's forward pass).
#include <ATen/core/Tensor.h>

namespace hone::ops {

/// Calls the registered operator (dispatches on device).
at::Tensor add_layer_norm(const at::Tensor& input, const at::Tensor& residual, const at::Tensor& weight,
                          const at::Tensor& bias, double eps);

/// The test oracle in plain ATen ops: x + residual and the LayerNorm computed in fp32 (no
/// intermediate rounding), returned in the input's dtype.
at::Tensor add_layer_norm_reference(const at::Tensor& input, const at::Tensor& residual, const at::Tensor& weight,
                                    const at::Tensor& bias, double eps);

/// Validates shapes, dtypes and devices; throws c10::Error naming the tensor and what was expected.
void check_add_layer_norm_inputs(const at::Tensor& input, const at::Tensor& residual, const at::Tensor& weight,
                                 const at::Tensor& bias, double eps);

}  // namespace hone::ops
