#pragma once
/// @file SKConv2d: a groups = 1 Conv2d replaced by an unbiased average of 2L one-sided sketched
/// convolutions (Panther's sketched convolution),
///
///   y = 1/(2L) · Σᵢ Uᵢᵀ · conv(x, Sᵢ) + b,     i = 1..2L,
///
/// where Uᵢ [k, out] are fixed random sign sketches (entries ±1/√k, a buffer), Uᵢᵀ is applied over
/// the channel dimension (a 1×1 projection) and Sᵢ [k, C, kh, kw] are trainable. Made from a trained
/// Conv2d with weight W [out, C, kh, kw], flattened to W_f [out, C·kh·kw], Sᵢ = Uᵢ·W_f reshaped to a
/// conv weight; since E[UᵢᵀUᵢ] = I each term Uᵢᵀ·conv(x, Sᵢ) = conv(x, UᵢᵀUᵢ·W) is an unbiased
/// estimate of conv(x, W). Its variance falls as 1/(L·k); sketched layers are meant to be fine-tuned
/// after replacement.
///
/// Stored as s [2L, k, C, kh, kw] (s.view({2L·k, C, kh, kw}) is one conv weight), u [2L, k, out] and
/// bias [out]; forward is hone::sketched_conv2d (hone/ops/sketched_conv2d.h), one convolution and one
/// channel projection whatever L is.
///
/// Cost per output pixel: 2Lk·(C·kh·kw + out) multiply-adds instead of out·C·kh·kw (less when
/// 2Lk < out·C·kh·kw / (C·kh·kw + out)). Storage: 2Lk·C·kh·kw trainable parameters (+ out for the
/// bias) and 2Lk·out in sketch buffers; both are counted (parameter_count(), buffer_count()) and both
/// are saved.
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "hone/nn/layer_kinds.h"

namespace hone::nn {

struct SketchedConv2dOptions {
  std::int64_t in_channels = 0, out_channels = 0;
  std::vector<std::int64_t> kernel_size{3, 3}, stride{1, 1}, padding{0, 0}, dilation{1, 1};
  std::int64_t terms = 1;  ///< L (the layer averages 2L terms)
  std::int64_t rank = 8;   ///< k
  bool bias = true;
  std::uint64_t seed = 0;  ///< seeds the sign sketches
};

class SketchedConv2dImpl : public torch::nn::Module {
 public:
  /// Random sketches from the seed; S from a Kaiming-uniform weight like torch's Conv2d.
  explicit SketchedConv2dImpl(const SketchedConv2dOptions& options);
  /// Sketches of an existing groups = 1 convolution: weight [out, C, kh, kw], optional bias [out];
  /// keeps their dtype and device.
  SketchedConv2dImpl(const SketchedConv2dOptions& options, const torch::Tensor& weight,
                     const std::optional<torch::Tensor>& bias);
  /// Sketches of `conv` with its geometry (hone::Error unless groups = 1 and zero padding).
  static std::shared_ptr<SketchedConv2dImpl> from_conv(const torch::nn::Conv2dImpl& conv, std::int64_t terms,
                                                       std::int64_t rank, std::uint64_t seed);

  /// x [B, C, H, W] -> [B, out, H', W'] through hone::sketched_conv2d (CPU, CUDA and autograd kernels).
  torch::Tensor forward(const torch::Tensor& x);
  /// The dense [out, C, kh, kw] weight this layer computes: 1/(2L)·Σᵢ Uᵢᵀ·Sᵢ.
  torch::Tensor effective_weight() const;
  /// {"kind": "sketched_conv2d", "in", "out", "kernel", "stride", "padding", "dilation", "terms",
  /// "rank", "bias"}: what sketched_conv2d_kind() rebuilds this layer's shapes from.
  nlohmann::json spec() const;

  const SketchedConv2dOptions& options() const { return options_; }
  std::int64_t parameter_count() const;
  std::int64_t buffer_count() const;

  torch::Tensor s, u, bias;

  void pretty_print(std::ostream& stream) const override;

 private:
  void init_from(const torch::Tensor& weight, const std::optional<torch::Tensor>& bias_value);
  SketchedConv2dOptions options_;
};
TORCH_MODULE(SketchedConv2d);

/// Multiply-adds per output pixel of the sketched layer: 2Lk·C·kh·kw + 2Lk·out (the dense Conv2d
/// it replaces does out·C·kh·kw).
std::int64_t sketched_conv2d_macs_per_pixel(const SketchedConv2dOptions& options);

/// Spec: {"kind": "sketched_conv2d", "in", "out", "kernel", "stride", "padding", "dilation",
/// "terms", "rank", "bias"}.
LayerKind sketched_conv2d_kind();

}  // namespace hone::nn
