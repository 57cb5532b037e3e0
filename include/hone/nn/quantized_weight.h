#pragma once
/// @file What hone's int8 layers share: symmetric int8 weights kept as plain tensors (so a weights
/// file holds them), the qint8 tensor fbgemm packs from them, and boxed calls into LibTorch's
/// quantized operators (quantized::linear_prepack, quantized::conv2d...).
///
/// Engine: hone leaves at::globalContext().qEngine() as LibTorch chooses it; on x86 that is
/// "x86" (fbgemm for linear/LSTM, fbgemm or oneDNN per conv shape). Packed weights belong to the
/// engine that packed them, so layers re-pack (nn::Repackable) after loading.
#include <ATen/core/ivalue.h>
#include <torch/nn/module.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace hone::nn {

/// int8 values with their per-channel (dim 0) or per-tensor scale and zero point.
struct Int8Weight {
  torch::Tensor values;      ///< kChar, the weight's shape
  torch::Tensor scale;       ///< kDouble, [channels] or [1]
  torch::Tensor zero_point;  ///< kLong, same shape as scale (zeros: symmetric)
};

/// The quantization parameters of a quint8 activation (x ≈ scale * (q - zero_point)).
struct ActivationQParams {
  double scale = 1.0;
  std::int64_t zero_point = 0;
};

/// Symmetric int8: scale = max|w| / 127 per output channel (dim 0) or for the whole tensor, zero
/// point 0, values in [-127, 127] (never -128, so u8 x s8 products cannot saturate int16 pairs).
Int8Weight quantize_weight_int8(const torch::Tensor& weight, bool per_channel);

/// The qint8 tensor (per-channel on dim 0 when `per_channel`) that quantized::*_prepack takes.
torch::Tensor to_qint8(const Int8Weight& weight, bool per_channel);

/// ‖w − dequantize(quantize(w))‖ / ‖w‖, for pass reports.
double weight_error(const torch::Tensor& weight, const Int8Weight& quantized, bool per_channel);

/// Registers `<name>`, `<name>_scale`, `<name>_zero_point` on `module` as buffers holding
/// placeholders of the right shapes and dtypes (values come from a weights file or assign()).
Int8Weight register_int8_weight(torch::nn::Module& module, const std::string& name, at::IntArrayRef shape,
                                bool per_channel);

/// Copies `source`'s values into the registered tensors `target` (same shapes), in place.
void assign_int8_weight(Int8Weight& target, const Int8Weight& source);

/// A one-element buffer holding an activation's quantization scale (kDouble) or zero point (kLong).
torch::Tensor register_scalar_buffer(torch::nn::Module& module, const std::string& name, at::ScalarType dtype);

/// Calls `quantized::<name>` or `aten::<name>` (`op` as "ns::name") through the dispatcher with
/// every schema argument given, and returns the outputs.
std::vector<c10::IValue> call_op(const char* op, const char* overload, std::vector<c10::IValue> arguments);

/// `x` as quint8 with (scale, zero point) from one-element buffers; `x` may be of any float dtype.
torch::Tensor quantize_activation(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& zero_point);
/// Fills the one-element buffers with `qparams`.
void assign_qparams(torch::Tensor& scale, torch::Tensor& zero_point, ActivationQParams qparams);
ActivationQParams read_qparams(const torch::Tensor& scale, const torch::Tensor& zero_point);

/// [a, b] as a vector (LibTorch's ExpandingArray<2> holds a std::array).
inline std::vector<std::int64_t> two(const std::array<std::int64_t, 2>& values) { return {values[0], values[1]}; }

}  // namespace hone::nn
