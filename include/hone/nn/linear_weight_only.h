#pragma once
/// @file linear_weight_only: a Linear whose weight is stored in int8 (per output channel) or in
/// grouped int4 and whose activations stay in floating point. int8 runs in hone's operator
/// hone::int8_weight_only_linear (hone's streaming CUDA kernel for few rows, LibTorch's
/// _weight_int8pack_mm on the CPU); int4 in LibTorch's aten::_weight_int4pack_mm (CUDA
/// "tinygemm", bf16) / _weight_int4pack_mm_for_cpu. These pay off where reading the weight
/// dominates (few rows per call: small batches, decoding); with many rows the dense GEMM wins, and
/// the verdict says so.
///
/// Stored (the weights file holds these, device-independent):
///   bits 8: weight int8 [out, in] (symmetric, values in [-127, 127]), scales fp32 [out];
///   bits 4: weight uint8 [out, in/2] (two 4-bit codes per byte, even input index in the high
///           nibble), scales_and_zeros fp32 [in/group, out, 2]: w ≈ (q − 8)·scale + zero, q ∈ [0, 15];
///   bias fp32 [out] when there is one.
/// The int4 kernels want the weight in a device-specific tiled layout; the layer builds it on first
/// use on a device (and after loading, through repack()), so the file stays portable.
/// Spec: {"kind": "linear_weight_only", "in", "out", "bias", "bits": 8 | 4, "group_size"}.
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "hone/nn/layer_kinds.h"

namespace hone::nn {

struct WeightOnlyShape {
  std::int64_t in = 0, out = 0;
  int bits = 8;
  std::int64_t group_size = 0;  ///< int4 only: input features per (scale, zero) pair
};

/// Why LibTorch's weight-only kernels cannot take this shape (empty when they can): int4 needs
/// group_size in {32, 64, 128, 256} dividing `in`, `in` a multiple of 32 and `out` a multiple of 16.
std::string weight_only_unsupported(const WeightOnlyShape& shape);

/// int8 symmetric per output channel: {values int8 [out, in], scales fp32 [out]}.
std::pair<torch::Tensor, torch::Tensor> quantize_weight_only_int8(const torch::Tensor& weight);
/// Grouped asymmetric int4: {codes uint8 [out, in/2] (nibbles), scales_and_zeros fp32 [in/g, out, 2]}.
std::pair<torch::Tensor, torch::Tensor> quantize_weight_only_int4(const torch::Tensor& weight, std::int64_t group_size);
/// The fp32 weight [out, in] the stored tensors stand for (the reference the kernels are tested on).
torch::Tensor dequantize_weight_only(const WeightOnlyShape& shape, const torch::Tensor& weight,
                                     const torch::Tensor& scales);

class LinearWeightOnlyImpl : public torch::nn::Module, public Repackable {
 public:
  /// Throws hone::Error when weight_only_unsupported(shape) is not empty or bits is not 4 or 8.
  LinearWeightOnlyImpl(const WeightOnlyShape& shape, bool bias);
  static std::shared_ptr<LinearWeightOnlyImpl> from_float(const torch::nn::LinearImpl& linear, int bits,
                                                          std::int64_t group_size);

  /// x [..., in] of a float dtype -> [..., out] in x's dtype. On CUDA the int4 kernel computes in
  /// bf16 (its only dtype): other inputs are cast to bf16 and the result back.
  torch::Tensor forward(const torch::Tensor& x);
  /// Drops the device-specific packed forms; the next forward rebuilds them from the stored tensors.
  void repack() override;
  nlohmann::json spec() const;

  const WeightOnlyShape& shape() const { return shape_; }
  /// The fp32 weight these codes stand for.
  torch::Tensor dequantized_weight() const;

  torch::Tensor weight, scales, bias;  ///< as stored (see the file comment); bias undefined without one

 private:
  /// The weight and scales in the form and dtype the kernel wants for inputs of `dtype` on `device`.
  struct Packed {
    c10::Device device{c10::kCPU};
    c10::ScalarType dtype = c10::kFloat;
    torch::Tensor weight, scales, bias;
  };
  const Packed& packed_for(c10::Device device, c10::ScalarType dtype);

  WeightOnlyShape shape_;
  std::optional<Packed> packed_;
};
TORCH_MODULE(LinearWeightOnly);

LayerKind linear_weight_only_kind();

}  // namespace hone::nn
