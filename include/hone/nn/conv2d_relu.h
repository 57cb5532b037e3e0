#pragma once
/// @file conv2d_relu: relu(conv2d(x)) as one layer, made by the fuse_relu pass from a Conv2d and
/// the ReLU after it. On CPU, for fp32 input and weights with no gradient to record, it runs
/// oneDNN's fused convolution + ReLU (the mkldnn::_convolution_pointwise op Inductor uses) on a
/// copy of the weight prepacked for the input's shape; its output is then channels-last (oneDNN's
/// layout; same values). Anywhere else (CUDA, other dtypes, autograd, a LibTorch without oneDNN)
/// it runs at::conv2d followed by an in-place relu_.
///
/// Its parameters are named "weight" and "bias" as in torch::nn::Conv2d, so a conv's weights load
/// into it unchanged. Spec: {"kind": "conv2d_relu", "in", "out", "kernel", "stride", "padding",
/// "dilation", "groups", "bias"}.
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <nlohmann/json.hpp>

#include <memory>

#include "hone/nn/conv_geometry.h"
#include "hone/nn/layer_kinds.h"

namespace hone::nn {

namespace onednn {
class PackedWeightCache;
}

class Conv2dReluImpl : public torch::nn::Module, public Repackable {
 public:
  explicit Conv2dReluImpl(Conv2dGeometry geometry);
  ~Conv2dReluImpl() override;
  /// A copy of `conv`'s weights on its device (explicit zero padding only; hone::Error otherwise).
  static std::shared_ptr<Conv2dReluImpl> from_conv(const torch::nn::Conv2dImpl& conv);

  /// x [B, in, H, W] -> relu(conv2d(x)) [B, out, H', W'].
  torch::Tensor forward(const torch::Tensor& x);
  /// at::conv2d then relu_: the fallback, and the reference the fused path is tested against.
  torch::Tensor forward_unfused(const torch::Tensor& x) const;
  /// True when forward(x) runs oneDNN's fused kernel.
  bool runs_fused(const torch::Tensor& x) const;
  /// Drops the prepacked weights (they are rebuilt on the next call); the weight's version counter
  /// already does this after in-place writes such as loading.
  void repack() override;

  nlohmann::json spec() const;
  const Conv2dGeometry& geometry() const { return geometry_; }
  void pretty_print(std::ostream& stream) const override;

  torch::Tensor weight, bias;

 private:
  Conv2dGeometry geometry_;
  std::unique_ptr<onednn::PackedWeightCache> packed_;
};
TORCH_MODULE(Conv2dRelu);

LayerKind conv2d_relu_kind();

/// True when this LibTorch has oneDNN's fused convolution / linear + ReLU kernels; without them
/// conv2d_relu and linear_relu always run their unfused fallback.
bool fused_relu_kernels_available();

}  // namespace hone::nn
