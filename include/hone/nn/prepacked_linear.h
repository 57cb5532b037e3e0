#pragma once
/// @file A plain torch::nn::Linear (optionally followed by exact GELU) run on the CPU at inference
/// through oneDNN with its weight reordered once into oneDNN's blocked layout
/// (mkldnn::_linear_pointwise on a weight from mkldnn::_reorder_linear_weight), instead of
/// LibTorch's addmm, which re-packs the weight inside the sgemm on every call. On MiniLM's shapes
/// (384 × 384, 384 × 1536, 1536 × 384; 128-4096 rows) on a 2-core AMD EPYC this measured 1.16-1.59×
/// faster per Linear, and 1.15-1.88× with the GELU fused (docs/BENCHMARKS.md); smaller weights are
/// slower this way and keep addmm (applies()). fp32 throughout: the same numbers up to summation
/// order.
///
/// The pack is made on first use and rebuilt when the weight changes (another storage, or an
/// in-place write such as loading weights); it is not saved. HONE_CPU_PREPACK=0 turns it off.
#include <torch/nn/modules/linear.h>

#include <cstdint>
#include <memory>

namespace hone::nn {

namespace onednn {
class PackedWeightCache;
}

class PrepackedLinear {
 public:
  static constexpr std::int64_t kMinWeightElements = 384 * 384;
  static constexpr std::int64_t kMinMultiplyAdds = std::int64_t{1} << 20;
  static constexpr std::int64_t kManyMultiplyAdds = std::int64_t{1} << 24;
  PrepackedLinear();
  /// Whether it applies to `linear` on `x`: a CPU fp32 input, oneDNN present, no autograd needed
  /// through x or the weight, not turned off, and a call large enough to win back oneDNN's per-call
  /// cost: at least 2^24 multiply-adds, or 2^20 with a weight of at least 384 x 384.
  static bool applies(const torch::Tensor& x, const torch::nn::LinearImpl& linear);
  /// linear(x), then exact GELU when `gelu`, for x [..., in]; call only where applies().
  torch::Tensor operator()(const torch::nn::LinearImpl& linear, const torch::Tensor& x, bool gelu) const;

 private:
  std::shared_ptr<onednn::PackedWeightCache> cache_;
};

}  // namespace hone::nn
