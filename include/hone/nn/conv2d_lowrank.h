#pragma once
/// @file A 1×1 Conv2d (groups = 1) factorized into two thinner ones: x -> second(first(x)) with
/// first: 1×1 conv in -> rank with the original stride, padding and dilation (no bias) and second:
/// 1×1 conv rank -> out, stride 1, with the original bias. A 1×1 convolution is a matmul over the
/// channels of every (subsampled) pixel, so this is linear_lowrank applied per pixel; zero padding
/// stays exact because `first` has no bias (padded pixels give 0, then `second` adds the bias).
/// Holds in*out weights as rank*(in+out). Made by the lowrank_svd pass.
///
/// Both factors are layer slots ("first", "second") holding torch::nn::Conv2d, so later passes can
/// replace them like any other Conv2d (fuse_conv_bn folds a following batch norm into `second`);
/// their parameters are named "<path>.first.weight", "<path>.second.weight", "<path>.second.bias".
#include <torch/nn/modules/conv.h>

#include <cstdint>
#include <vector>

#include "hone/nn/layer.h"
#include "hone/nn/layer_kinds.h"

namespace hone::nn {

struct Conv2dLowRankOptions {
  std::int64_t in = 0, rank = 0, out = 0;
  std::vector<std::int64_t> stride{1, 1}, padding{0, 0}, dilation{1, 1};
  bool bias = true;
};

class Conv2dLowRankImpl : public Module {
 public:
  explicit Conv2dLowRankImpl(Conv2dLowRankOptions options);
  /// x [B, in, H, W] -> [B, out, H', W'].
  torch::Tensor forward(const torch::Tensor& x);

  const Conv2dLowRankOptions& options() const { return options_; }
  /// {"kind": "conv2d_lowrank", "in", "rank", "out", "stride", "padding", "dilation", "bias"}.
  nlohmann::json spec() const;
  /// The factors' slots (they hold Conv2d layers until another pass replaces them).
  LayerSlot& first() const { return *first_; }
  LayerSlot& second() const { return *second_; }

  void pretty_print(std::ostream& stream) const override;

 private:
  Conv2dLowRankOptions options_;
  LayerSlot* first_;
  LayerSlot* second_;
};
TORCH_MODULE(Conv2dLowRank);

LayerKind conv2d_lowrank_kind();

}  // namespace hone::nn
