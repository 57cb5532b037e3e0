#pragma once
/// @file SKLinear: a Linear replaced by an unbiased sum of 2L rank-k sketched terms (Panther's
/// sketched linear layer),
///
///   y = 1/(2L) · Σᵢ (x·S1ᵢ·U1ᵢ + x·U2ᵢ·S2ᵢ) + b,
///
/// where U1ᵢ [k, out] and U2ᵢ [in, k] are fixed random sign sketches (entries ±1/√k, buffers) and
/// S1ᵢ [in, k], S2ᵢ [k, out] are trainable. Made from a trained Linear with weight W ([out, in] as
/// torch stores it; Wᵀ is the [in, out] map x·Wᵀ), S1ᵢ = Wᵀ·U1ᵢᵀ and S2ᵢ = U2ᵢᵀ·Wᵀ, so that
/// E[U1ᵢᵀU1ᵢ] = I and E[U2ᵢU2ᵢᵀ] = I make every term an unbiased estimate of x·Wᵀ. Its variance
/// falls as 1/(L·k); sketched layers are meant to be fine-tuned after replacement.
///
/// Cost per row: 2Lk·(in + out) multiply-adds instead of in·out (less when 2Lk < in·out/(in+out)).
/// Storage: L·k·(in + out) trainable parameters (+ out for the bias) and as many again in sketch
/// buffers; both are counted (parameter_count(), buffer_count()) and both are saved.
#include <ATen/core/Generator.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <cstdint>
#include <optional>

#include "hone/nn/layer_kinds.h"

namespace hone::nn {

struct SketchedLinearOptions {
  std::int64_t in = 0, out = 0;
  std::int64_t terms = 1;  ///< L
  std::int64_t rank = 16;  ///< k
  bool bias = true;
  std::uint64_t seed = 0;  ///< seeds the sign sketches
};

class SketchedLinearImpl : public torch::nn::Module {
 public:
  /// Random sketches from the seed; S1, S2 from a Kaiming-uniform weight like torch's Linear.
  explicit SketchedLinearImpl(const SketchedLinearOptions& options);
  /// Sketches of an existing layer: weight [out, in], optional bias [out]; keeps their dtype/device.
  SketchedLinearImpl(const SketchedLinearOptions& options, const torch::Tensor& weight,
                     const std::optional<torch::Tensor>& bias);

  /// x [..., in] -> [..., out] through hone::sketched_linear (CPU, CUDA and autograd kernels).
  /// Inference on CUDA (no gradient wanted) skips the op's per-call packing: the layer keeps
  /// [S1|U2] and [U1;S2] packed (rebuilt when a parameter or sketch changes: its version counter,
  /// storage or device) and runs the op's own cuBLAS products on them, so results are identical.
  /// HONE_SKETCH_KERNEL=tensor_cores sends every call to the op.
  torch::Tensor forward(const torch::Tensor& x);
  /// The dense [out, in] weight this layer computes (1/(2L)·Σ (S1ᵢU1ᵢ + U2ᵢS2ᵢ))ᵀ.
  torch::Tensor effective_weight() const;

  const SketchedLinearOptions& options() const { return options_; }
  std::int64_t parameter_count() const;
  std::int64_t buffer_count() const;

  torch::Tensor s1, s2, u1, u2, bias;

  void pretty_print(std::ostream& stream) const override;

 private:
  void init_from(const torch::Tensor& weight, const std::optional<torch::Tensor>& bias_value);
  /// The packed operands for inference, valid while `sources` are unchanged.
  struct Packed {
    std::array<const void*, 4> data{};
    std::array<std::int64_t, 4> versions{};
    torch::Tensor left, right;  ///< [in, 2Lk], [2Lk, out]
  };
  const Packed& packed();
  SketchedLinearOptions options_;
  std::optional<Packed> packed_;
};
TORCH_MODULE(SketchedLinear);

/// [count, rows, cols] of independent ±1/√rank entries from `generator` (drawn on the CPU, so the
/// same seed gives the same sketches on every device), converted to `options`: the fixed sketches
/// of SketchedLinear and SketchedConv2d.
torch::Tensor sign_sketches(std::int64_t count, std::int64_t rows, std::int64_t cols, std::int64_t rank,
                            at::Generator& generator, const torch::TensorOptions& options);

/// Multiply-adds per input row: dense in·out, sketched 2Lk·(in + out).
std::int64_t sketched_linear_macs(std::int64_t in, std::int64_t out, std::int64_t terms, std::int64_t rank);

/// Spec: {"kind": "sketched_linear", "in", "out", "terms", "rank", "bias"}.
LayerKind sketched_linear_kind();

}  // namespace hone::nn
