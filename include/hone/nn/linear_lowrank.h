#pragma once
/// @file A Linear factorized into two thinner ones: x -> second(first(x)) with first: in -> rank
/// (no bias) and second: rank -> out (the original bias, if any). Holds in*out parameters as
/// rank*(in+out), which is smaller when rank < in*out/(in+out). Made by the lowrank_svd pass.
///
/// Both factors are layer slots ("first", "second"), so later passes (e.g. int8 quantization)
/// can replace them like any other Linear; their parameters are named "<path>.first.weight",
/// "<path>.second.weight", "<path>.second.bias".
#include <torch/nn/modules/linear.h>

#include <cstdint>

#include "hone/nn/layer.h"
#include "hone/nn/layer_kinds.h"

namespace hone::nn {

class LinearLowRankImpl : public Module {
 public:
  LinearLowRankImpl(std::int64_t in, std::int64_t rank, std::int64_t out, bool bias);
  /// x [..., in] -> [..., out].
  torch::Tensor forward(const torch::Tensor& x);

  std::int64_t in_features() const { return in_; }
  std::int64_t rank() const { return rank_; }
  std::int64_t out_features() const { return out_; }
  /// The factors' slots (they hold Linears until another pass replaces them).
  LayerSlot& first() const { return *first_; }
  LayerSlot& second() const { return *second_; }

  void pretty_print(std::ostream& stream) const override;

 private:
  std::int64_t in_, rank_, out_;
  LayerSlot* first_;
  LayerSlot* second_;
};
TORCH_MODULE(LinearLowRank);

/// Spec: {"kind": "linear_lowrank", "in", "rank", "out", "bias"}.
LayerKind linear_lowrank_kind();

}  // namespace hone::nn
