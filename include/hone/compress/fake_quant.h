#pragma once
/// @file Fake quantization for quantization-aware training: values rounded to the int8 grid that
/// hone's int8 layers will use and returned in float, with the straight-through estimator for the
/// gradient (ATen's fake_quantize ops: the gradient passes where the value is inside the range,
/// zero where it was clipped).
///
///   at::Tensor w = compress::fake_quantize_weight(conv->weight, /*per_channel=*/true);
///   at::Tensor x = compress::fake_quantize_activation(input, qparams, 0, 255);
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "hone/nn/quantized_weight.h"

namespace hone::compress {

/// Exactly nn::quantize_weight_int8 then dequantize: symmetric, scale = max|w| / 127 per output
/// channel (dim 0) or per tensor, values in [-127, 127]. The scale follows the current weights
/// (it is not learned).
at::Tensor fake_quantize_weight(const at::Tensor& weight, bool per_channel);

/// quint8 affine with `qparams` on [quant_min, quant_max], dequantized: what an int8 layer's
/// quantize_per_tensor does to its input (or output).
at::Tensor fake_quantize_activation(const at::Tensor& x, const nn::ActivationQParams& qparams, std::int64_t quant_min,
                                    std::int64_t quant_max);

}  // namespace hone::compress
