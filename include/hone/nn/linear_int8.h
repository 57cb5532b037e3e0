#pragma once
/// @file linear_int8: a statically quantized Linear (quint8 activations with calibrated qparams,
/// qint8 weights), optionally with its ReLU fused, run by quantized::linear / linear_relu. Takes
/// quantized input (a float input is quantized with the input qparams); returns quint8, or float
/// when `dequantize_output` (the model's last layer). Spec: {"kind": "linear_int8", "in", "out",
/// "bias", "per_channel", "relu", "dequantize_output"}.
#include <ATen/core/ivalue.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <nlohmann/json.hpp>

#include "hone/nn/layer_kinds.h"
#include "hone/nn/quantized_weight.h"

namespace hone::nn {

struct LinearInt8Options {
  std::int64_t in = 0, out = 0;
  bool bias = true;
  bool per_channel = true;
  bool relu = false;
  bool dequantize_output = false;
};

class LinearInt8Impl : public torch::nn::Module, public TakesQuantizedInput, public Repackable {
 public:
  explicit LinearInt8Impl(LinearInt8Options options);
  static std::shared_ptr<LinearInt8Impl> from_float(const torch::nn::LinearImpl& linear, LinearInt8Options options,
                                                    ActivationQParams input, ActivationQParams output);

  /// x [..., in], quint8 or float -> [..., out], quint8 (or float with dequantize_output).
  torch::Tensor forward(const torch::Tensor& x);
  void repack() override;
  nlohmann::json spec() const;

  const LinearInt8Options& options() const { return options_; }
  const Int8Weight& weight() const { return weight_; }
  const torch::Tensor& bias() const { return bias_; }
  ActivationQParams input_qparams() const { return read_qparams(input_scale_, input_zero_point_); }
  ActivationQParams output_qparams() const { return read_qparams(output_scale_, output_zero_point_); }

 private:
  LinearInt8Options options_;
  Int8Weight weight_;
  torch::Tensor bias_;
  torch::Tensor input_scale_, input_zero_point_, output_scale_, output_zero_point_;
  c10::IValue packed_;
};
TORCH_MODULE(LinearInt8);

LayerKind linear_int8_kind();

}  // namespace hone::nn
