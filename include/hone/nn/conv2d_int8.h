#pragma once
/// @file conv2d_int8: a statically quantized Conv2d (quint8 activations, qint8 weights), optionally
/// with its ReLU fused, run by quantized::conv2d / quantized::conv2d_relu. It takes quantized
/// input (a float input is quantized with the input qparams observed at calibration) and returns a
/// quint8 tensor with the output qparams. Spec: {"kind": "conv2d_int8", "in", "out", "kernel",
/// "stride", "padding", "dilation", "groups", "bias", "per_channel", "relu"}.
#include <ATen/core/ivalue.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <nlohmann/json.hpp>

#include <vector>

#include "hone/nn/conv_geometry.h"
#include "hone/nn/layer_kinds.h"
#include "hone/nn/quantized_weight.h"

namespace hone::nn {

struct Conv2dInt8Options : Conv2dGeometry {
  bool per_channel = true;
  bool relu = false;  ///< output relu(conv(x))
};

class Conv2dInt8Impl : public torch::nn::Module, public TakesQuantizedInput, public Repackable {
 public:
  explicit Conv2dInt8Impl(Conv2dInt8Options options);
  /// Quantizes `conv` (explicit zero padding only; throws hone::Error otherwise).
  static std::shared_ptr<Conv2dInt8Impl> from_float(const torch::nn::Conv2dImpl& conv, bool per_channel, bool relu,
                                                    ActivationQParams input, ActivationQParams output);

  /// x [B, in, H, W], quint8 or float -> quint8 [B, out, H', W'].
  torch::Tensor forward(const torch::Tensor& x);
  void repack() override;
  nlohmann::json spec() const;

  const Conv2dInt8Options& options() const { return options_; }
  const Int8Weight& weight() const { return weight_; }
  const torch::Tensor& bias() const { return bias_; }
  ActivationQParams input_qparams() const;
  ActivationQParams output_qparams() const;

 private:
  Conv2dInt8Options options_;
  Int8Weight weight_;
  torch::Tensor bias_;
  torch::Tensor input_scale_, input_zero_point_, output_scale_, output_zero_point_;
  c10::IValue packed_;
};
TORCH_MODULE(Conv2dInt8);

LayerKind conv2d_int8_kind();

}  // namespace hone::nn
