#pragma once
/// @file The one-sided sketched convolution operator `hone::sketched_conv2d` (a TORCH_LIBRARY op;
/// Python torch can call it as torch.ops.hone.sketched_conv2d after
/// torch.ops.load_library("libhone_kernels.so")).
///
/// For a groups = 1 Conv2d with weight W [out, C, kh, kw], flattened to W_f [out, C·kh·kw], and
/// T = 2L terms with fixed random sign sketches Uᵢ [k, out] and trainable Sᵢ = Uᵢ·W_f reshaped to
/// conv weights [k, C, kh, kw]:
///
///   y = 1/T · Σᵢ Uᵢᵀ · conv(x, Sᵢ) + b
///
/// where conv has the Conv2d's stride, padding and dilation and Uᵢᵀ [out, k] is applied over the
/// channel dimension (a 1×1 projection). Operands: x [B, C, H, W]; s [T, k, C, kh, kw] (so that
/// s.view({T·k, C, kh, kw}) is one conv weight); u [T, k, out]; b [out] optional; y [B, out, H', W']
/// in the memory format at::conv2d gives for x (channels-last in, channels-last out). The op
/// averages over however many terms s holds; the layer (hone/nn/sketched_conv2d.h) always uses 2L.
///
/// Implementations: one fused form for every device (a CompositeExplicitAutograd kernel): ONE
/// convolution with all T·k output channels stacked, then ONE channel projection by the stacked
/// [out, T·k] matrix scaled by 1/T, bias added in the same addmm (channels-last) or baddbmm (NCHW):
/// - on CPU: ATen's convolution (oneDNN where available) and BLAS;
/// - on CUDA: cuDNN for the convolution, which runs on tensor cores for bf16/fp16 (and for fp32 only
///   if the caller allowed tf32 for cuDNN), cuBLAS for the projection; no custom kernel;
/// - Autograd: explicit gradients for x, s and b through at::convolution_backward and one matmul
///   (none for the sketches u).
#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <optional>

namespace hone::ops {

/// Calls the registered operator (dispatches on device, dtype and autograd).
at::Tensor sketched_conv2d(const at::Tensor& input, const at::Tensor& s, const at::Tensor& u,
                           const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                           at::IntArrayRef dilation);

/// The test oracle: the formula term by term in plain ATen ops (T convolutions, T einsums).
at::Tensor sketched_conv2d_reference(const at::Tensor& input, const at::Tensor& s, const at::Tensor& u,
                                     const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                     at::IntArrayRef padding, at::IntArrayRef dilation);

/// Validates shapes, dtypes, devices and the geometry; throws c10::Error naming the tensor or
/// argument and what was expected.
void check_sketched_conv2d_inputs(const at::Tensor& input, const at::Tensor& s, const at::Tensor& u,
                                  const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                  at::IntArrayRef padding, at::IntArrayRef dilation);

/// s [T, k, C, kh, kw] as one conv weight [T·k, C, kh, kw] (a view when s is contiguous).
at::Tensor sketched_conv2d_pack_weight(const at::Tensor& s);
/// u [T, k, out] as the stacked projection [out, T·k] = [U₁ᵀ | … | U_Tᵀ] (unscaled).
at::Tensor sketched_conv2d_pack_projection(const at::Tensor& u);

/// y[b, o, h, w] = scale · Σ_c matrix[o, c] · z[b, c, h, w] (+ bias[o]) as one addmm over all
/// pixels when z is channels-last, otherwise one baddbmm over the batch; matrix [O, Cz], z
/// [B, Cz, H, W] -> y [B, O, H, W] in z's memory format. Used by the forward kernels and the backward.
at::Tensor sketched_conv2d_project_channels(const at::Tensor& z, const at::Tensor& matrix,
                                            const std::optional<at::Tensor>& bias, double scale);

}  // namespace hone::ops
