#pragma once
/// @file linear_int8_dynamic: a Linear with int8 weights whose inputs are quantized on the fly
/// (per call, from the input's own min/max) by LibTorch's quantized::linear_dynamic (fbgemm).
/// Spec: {"kind": "linear_int8_dynamic", "in", "out", "bias": bool, "per_channel": bool}.
#include <ATen/core/ivalue.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <nlohmann/json.hpp>

#include "hone/nn/layer_kinds.h"
#include "hone/nn/quantized_weight.h"

namespace hone::nn {

/// True when this CPU needs 7-bit activations for int8 matmuls (no AVX-512 VNNI).
bool default_reduce_range();

class LinearInt8DynamicImpl : public torch::nn::Module, public Repackable {
 public:
  /// reduce_range: quantize inputs to 7 bits (needed where int8 products are summed in int16, i.e.
  /// without AVX-512 VNNI; default_reduce_range() says which this CPU needs).
  LinearInt8DynamicImpl(std::int64_t in, std::int64_t out, bool bias, bool per_channel, bool reduce_range);
  /// Quantizes `linear`'s weight (symmetric int8) and packs it.
  static std::shared_ptr<LinearInt8DynamicImpl> from_float(const torch::nn::LinearImpl& linear, bool per_channel,
                                                           bool reduce_range = default_reduce_range());

  /// x [..., in] (any float dtype) -> [..., out] in x's dtype.
  torch::Tensor forward(const torch::Tensor& x);
  void repack() override;
  nlohmann::json spec() const;

  const Int8Weight& weight() const { return weight_; }
  const torch::Tensor& bias() const { return bias_; }
  bool per_channel() const { return per_channel_; }

 private:
  std::int64_t in_, out_;
  bool per_channel_;
  bool reduce_range_;
  Int8Weight weight_;
  torch::Tensor bias_;  ///< kFloat [out], undefined without bias
  c10::IValue packed_;
};
TORCH_MODULE(LinearInt8Dynamic);

LayerKind linear_int8_dynamic_kind();

}  // namespace hone::nn
