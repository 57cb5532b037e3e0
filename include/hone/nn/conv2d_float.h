#pragma once
/// @file conv2d_float: a Conv2d whose weight and bias are stored in fp16 or bf16; forward casts the
/// input to that dtype, convolves there, and casts the result back to the input's dtype.
/// Spec: {"kind": "conv2d_float", "in", "out", "kernel", "stride", "padding", "dilation", "groups",
/// "bias", "dtype": "fp16" | "bf16"}.
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <nlohmann/json.hpp>

#include <vector>

#include "hone/nn/conv_geometry.h"
#include "hone/nn/layer_kinds.h"

namespace hone::nn {

struct Conv2dFloatOptions : Conv2dGeometry {
  c10::ScalarType dtype = c10::kBFloat16;
};

class Conv2dFloatImpl : public torch::nn::Module {
 public:
  explicit Conv2dFloatImpl(Conv2dFloatOptions options);
  /// Explicit zero padding only (throws hone::Error otherwise).
  static std::shared_ptr<Conv2dFloatImpl> from_float(const torch::nn::Conv2dImpl& conv, c10::ScalarType dtype);

  /// x [B, in, H, W] -> [B, out, H', W'] in x's dtype.
  torch::Tensor forward(const torch::Tensor& x);
  nlohmann::json spec() const;
  const Conv2dFloatOptions& options() const { return options_; }

  torch::Tensor weight, bias;

 private:
  Conv2dFloatOptions options_;
};
TORCH_MODULE(Conv2dFloat);

LayerKind conv2d_float_kind();

}  // namespace hone::nn
