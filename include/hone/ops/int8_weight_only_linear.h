#pragma once
/// @file The weight-only int8 linear operator `hone::int8_weight_only_linear` (a TORCH_LIBRARY op;
/// Python torch calls it as torch.ops.hone.int8_weight_only_linear after loading libhone_kernels.so):
///
///   y = x · (W · diag(s))ᵀ + b,   W int8 [out, in], s [out] (one scale per output channel),
///
/// x [..., in] of a float dtype, s and b in x's dtype, y in x's dtype, accumulated in fp32.
/// Implementations:
/// - CPU: LibTorch's aten::_weight_int8pack_mm, then the bias;
/// - CUDA, up to 16 rows per call (decoding, small batches): hone's kernel, which streams each
///   weight byte from memory once (16-byte loads), converts in registers and accumulates in fp32
///   (LibTorch's own CUDA _weight_int8pack_mm takes ~12x longer than the dense bf16 matmul at one
///   row, docs/BENCHMARKS.md); more rows: the weight dequantized to x's dtype, then one GEMM.
/// No autograd: the int8 weight is not trainable (it is an inference format).
#include <ATen/core/Tensor.h>

#include <optional>

namespace hone::ops {

/// Calls the registered operator (dispatches on device).
at::Tensor int8_weight_only_linear(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scales,
                                   const std::optional<at::Tensor>& bias);

/// The test oracle in plain ATen ops, computed in fp64 and returned in the input's dtype.
at::Tensor int8_weight_only_linear_reference(const at::Tensor& input, const at::Tensor& weight,
                                             const at::Tensor& scales, const std::optional<at::Tensor>& bias);

/// Validates shapes, dtypes and devices; throws c10::Error naming the tensor and what was expected.
void check_int8_weight_only_linear_inputs(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& scales,
                                          const std::optional<at::Tensor>& bias);

}  // namespace hone::ops
