#include "hone/nn/residual_add_int8.h"

#include <ATen/ATen.h>

#include "hone/core/error.h"

namespace hone::nn {

ResidualAddInt8Impl::ResidualAddInt8Impl(bool relu) : ResidualAddImpl(relu) {
  a_scale_ = register_scalar_buffer(*this, "a_scale", at::kDouble);
  a_zero_point_ = register_scalar_buffer(*this, "a_zero_point", at::kLong);
  b_scale_ = register_scalar_buffer(*this, "b_scale", at::kDouble);
  b_zero_point_ = register_scalar_buffer(*this, "b_zero_point", at::kLong);
  output_scale_ = register_scalar_buffer(*this, "output_scale", at::kDouble);
  output_zero_point_ = register_scalar_buffer(*this, "output_zero_point", at::kLong);
}

std::shared_ptr<ResidualAddInt8Impl> ResidualAddInt8Impl::from_float(bool relu, ActivationQParams a,
                                                                     ActivationQParams b, ActivationQParams output) {
  auto layer = std::make_shared<ResidualAddInt8Impl>(relu);
  assign_qparams(layer->a_scale_, layer->a_zero_point_, a);
  assign_qparams(layer->b_scale_, layer->b_zero_point_, b);
  assign_qparams(layer->output_scale_, layer->output_zero_point_, output);
  return layer;
}

torch::Tensor ResidualAddInt8Impl::forward(const torch::Tensor& a, const torch::Tensor& b) {
  HONE_CHECK(a.sizes() == b.sizes(), "residual_add_int8: inputs must have the same shape, got {} and {}", a.sizes(),
             b.sizes());
  const auto qa = a.is_quantized() ? a : quantize_activation(a, a_scale_, a_zero_point_);
  const auto qb = b.is_quantized() ? b : quantize_activation(b, b_scale_, b_zero_point_);
  const auto* op = relu() ? "quantized::add_relu" : "quantized::add";
  return call_op(op, "", {qa, qb, output_scale_.item<double>(), output_zero_point_.item<std::int64_t>()})
      .at(0)
      .toTensor();
}

LayerKind residual_add_int8_kind() {
  return {"residual_add_int8",
          [](const nlohmann::json& spec) { return make_layer(ResidualAddInt8(spec_bool(spec, "relu"))); }};
}

}  // namespace hone::nn
