#pragma once
/// @file The sketched linear operator `hone::sketched_linear` (a TORCH_LIBRARY op; Python torch can
/// call it as torch.ops.hone.sketched_linear after torch.ops.load_library("libhone_kernels.so")).
///
///   y = 1/(2L) · Σᵢ (x·S1ᵢ·U1ᵢ + x·U2ᵢ·S2ᵢ) + b
///
/// with L terms of rank k: S1 [L, in, k], S2 [L, k, out] (trainable), U1 [L, k, out], U2 [L, in, k]
/// (fixed random sketches), b [out] optional, x [..., in] -> y [..., out]. Implementations:
/// - CPU: one pass over x for both paths (x·[S1 | U2] then ·[U1 ; S2], row blocks in parallel, the
///   rank-2Lk intermediate stays in cache);
/// - CUDA: the same two packed products through cuBLAS (fp32 stays fp32 unless the caller enabled
///   tf32); for bf16/fp16 on compute capability ≥ 8.0, hone's own tensor-core kernels (WMMA, fp32
///   accumulation, any shape, one rounding of the output) with HONE_SKETCH_KERNEL=tensor_cores —
///   correct and tested, but slower than cuBLAS today, so not the default (docs/sketch.md);
/// - Autograd: explicit gradients for x, S1, S2 and b (none for the sketches).
#include <ATen/core/Tensor.h>

#include <optional>

namespace hone::ops {

/// Calls the registered operator (dispatches on device, dtype and autograd).
at::Tensor sketched_linear(const at::Tensor& input, const at::Tensor& s1, const at::Tensor& s2, const at::Tensor& u1,
                           const at::Tensor& u2, const std::optional<at::Tensor>& bias);

/// The test oracle: the formula term by term in plain ATen ops (4L products, no packing).
at::Tensor sketched_linear_reference(const at::Tensor& input, const at::Tensor& s1, const at::Tensor& s2,
                                     const at::Tensor& u1, const at::Tensor& u2, const std::optional<at::Tensor>& bias);

/// Validates shapes, dtypes and devices; throws c10::Error naming the tensor and what was expected.
void check_sketched_linear_inputs(const at::Tensor& input, const at::Tensor& s1, const at::Tensor& s2,
                                  const at::Tensor& u1, const at::Tensor& u2, const std::optional<at::Tensor>& bias);

/// [S1 | U2] as one [in, 2Lk] matrix and [U1 ; S2] as one [2Lk, out] matrix (the fused form).
at::Tensor sketched_linear_pack_left(const at::Tensor& s1, const at::Tensor& u2);
at::Tensor sketched_linear_pack_right(const at::Tensor& u1, const at::Tensor& s2);

/// The fused form's two products from packed operands: (rows·left)·right / (2L) + b, rows [n, in]
/// contiguous (the CUDA op's cuBLAS path, and nn::SketchedLinear's inference with cached packing).
at::Tensor sketched_linear_packed(const at::Tensor& rows, const at::Tensor& left, const at::Tensor& right,
                                  int64_t terms, const std::optional<at::Tensor>& bias);

/// True when HONE_SKETCH_KERNEL=tensor_cores asks CUDA calls for hone's tensor-core kernels.
bool sketched_linear_tensor_cores_requested();

}  // namespace hone::ops
