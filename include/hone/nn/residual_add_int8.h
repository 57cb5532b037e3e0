#pragma once
/// @file residual_add_int8: relu(a + b) or a + b on quint8 tensors (quantized::add_relu / add),
/// with the output qparams observed at calibration. A float input is quantized with the qparams
/// observed for that input. Spec: {"kind": "residual_add_int8", "relu": bool}.
#include <torch/nn/pimpl.h>

#include <nlohmann/json.hpp>

#include "hone/nn/layer_kinds.h"
#include "hone/nn/quantized_weight.h"

namespace hone::nn {

class ResidualAddInt8Impl : public ResidualAddImpl, public TakesQuantizedInput {
 public:
  explicit ResidualAddInt8Impl(bool relu);
  static std::shared_ptr<ResidualAddInt8Impl> from_float(bool relu, ActivationQParams a, ActivationQParams b,
                                                         ActivationQParams output);

  /// quint8 (or float) a, b of the same shape -> quint8.
  torch::Tensor forward(const torch::Tensor& a, const torch::Tensor& b) override;
  nlohmann::json spec() const { return {{"kind", "residual_add_int8"}, {"relu", relu()}}; }
  ActivationQParams output_qparams() const { return read_qparams(output_scale_, output_zero_point_); }

 private:
  torch::Tensor a_scale_, a_zero_point_, b_scale_, b_zero_point_, output_scale_, output_zero_point_;
};
TORCH_MODULE(ResidualAddInt8);

LayerKind residual_add_int8_kind();

}  // namespace hone::nn
