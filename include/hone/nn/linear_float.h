#pragma once
/// @file linear_float: a Linear whose weight and bias are stored in fp16 or bf16; forward casts the
/// input to that dtype, computes there, and casts the result back to the input's dtype.
/// Spec: {"kind": "linear_float", "in", "out", "bias", "dtype": "fp16" | "bf16"}.
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <nlohmann/json.hpp>

#include <string>

#include "hone/nn/layer_kinds.h"

namespace hone::nn {

/// "fp16" -> kHalf, "bf16" -> kBFloat16; anything else throws hone::Error naming `what`.
c10::ScalarType low_precision_dtype(const std::string& name, const std::string& what);
std::string low_precision_name(c10::ScalarType dtype);

class LinearFloatImpl : public torch::nn::Module {
 public:
  LinearFloatImpl(std::int64_t in, std::int64_t out, bool bias, c10::ScalarType dtype);
  static std::shared_ptr<LinearFloatImpl> from_float(const torch::nn::LinearImpl& linear, c10::ScalarType dtype);

  /// x [..., in] -> [..., out] in x's dtype.
  torch::Tensor forward(const torch::Tensor& x);
  nlohmann::json spec() const;

  torch::Tensor weight, bias;

 private:
  std::int64_t in_, out_;
  c10::ScalarType dtype_;
};
TORCH_MODULE(LinearFloat);

LayerKind linear_float_kind();

}  // namespace hone::nn
