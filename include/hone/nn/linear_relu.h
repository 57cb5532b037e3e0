#pragma once
/// @file linear_relu: relu(x · Wᵀ + b) as one layer, made by the fuse_relu pass from a Linear and
/// the ReLU after it. On CPU, for fp32 input and weights with no gradient to record, it runs
/// oneDNN's fused inner product + ReLU (the mkldnn::_linear_pointwise op Inductor uses) on a copy
/// of the weight prepacked for the input's row count; anywhere else (CUDA, other dtypes, autograd,
/// a LibTorch without oneDNN) it runs one addmm followed by an in-place relu_.
///
/// Its parameters are named "weight" and "bias" as in torch::nn::Linear, so a Linear's weights
/// load into it unchanged. Spec: {"kind": "linear_relu", "in", "out", "bias"}.
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>

#include "hone/nn/layer_kinds.h"

namespace hone::nn {

namespace onednn {
class PackedWeightCache;
}

class LinearReluImpl : public torch::nn::Module, public Repackable {
 public:
  LinearReluImpl(std::int64_t in, std::int64_t out, bool bias);
  ~LinearReluImpl() override;
  /// A copy of `linear`'s weights on its device.
  static std::shared_ptr<LinearReluImpl> from_linear(const torch::nn::LinearImpl& linear);

  /// x [..., in] -> relu(x · Wᵀ + b) [..., out].
  torch::Tensor forward(const torch::Tensor& x);
  /// addmm then relu_: the fallback, and the reference the fused path is tested against.
  torch::Tensor forward_unfused(const torch::Tensor& x) const;
  /// True when forward(x) runs oneDNN's fused kernel.
  bool runs_fused(const torch::Tensor& x) const;
  /// Drops the prepacked weights (rebuilt on the next call).
  void repack() override;

  nlohmann::json spec() const;
  std::int64_t in_features() const { return in_; }
  std::int64_t out_features() const { return out_; }
  void pretty_print(std::ostream& stream) const override;

  torch::Tensor weight, bias;

 private:
  std::int64_t in_, out_;
  std::unique_ptr<onednn::PackedWeightCache> packed_;
};
TORCH_MODULE(LinearRelu);

LayerKind linear_relu_kind();

}  // namespace hone::nn
