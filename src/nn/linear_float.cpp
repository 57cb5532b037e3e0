#include "hone/nn/linear_float.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "hone/core/error.h"

namespace hone::nn {

c10::ScalarType low_precision_dtype(const std::string& name, const std::string& what) {
  if (name == "fp16") return at::kHalf;
  if (name == "bf16") return at::kBFloat16;
  fail("{}: dtype must be fp16 or bf16, got '{}'", what, name);
}

std::string low_precision_name(c10::ScalarType dtype) { return dtype == at::kHalf ? "fp16" : "bf16"; }

LinearFloatImpl::LinearFloatImpl(std::int64_t in, std::int64_t out, bool has_bias, c10::ScalarType dtype)
    : in_(in), out_(out), dtype_(dtype) {
  HONE_CHECK(in > 0 && out > 0, "linear_float: in and out must be positive, got {} and {}", in, out);
  weight = register_parameter("weight", at::zeros({out, in}, at::TensorOptions().dtype(dtype)));
  if (has_bias) bias = register_parameter("bias", at::zeros({out}, at::TensorOptions().dtype(dtype)));
}

std::shared_ptr<LinearFloatImpl> LinearFloatImpl::from_float(const torch::nn::LinearImpl& linear,
                                                             c10::ScalarType dtype) {
  const auto& w = linear.weight;
  auto layer = std::make_shared<LinearFloatImpl>(w.size(1), w.size(0), linear.bias.defined(), dtype);
  torch::NoGradGuard no_grad;
  layer->weight.copy_(w);
  if (linear.bias.defined()) layer->bias.copy_(linear.bias);
  layer->to(w.device());
  return layer;
}

torch::Tensor LinearFloatImpl::forward(const torch::Tensor& x) {
  HONE_CHECK(x.dim() >= 1 && x.size(-1) == in_, "linear_float: expected input [..., {}], got {}", in_, x.sizes());
  auto out_shape = x.sizes().vec();
  out_shape.back() = out_;
  const auto rows = x.reshape({-1, in_}).to(dtype_);
  const auto y = bias.defined() ? at::addmm(bias, rows, weight.t()) : at::mm(rows, weight.t());
  return y.view(out_shape).to(x.scalar_type());
}

nlohmann::json LinearFloatImpl::spec() const {
  return {{"kind", "linear_float"},
          {"in", in_},
          {"out", out_},
          {"bias", bias.defined()},
          {"dtype", low_precision_name(dtype_)}};
}

LayerKind linear_float_kind() {
  return {
      "linear_float", [](const nlohmann::json& spec) {
        return make_layer(LinearFloat(spec_int(spec, "in"), spec_int(spec, "out"), spec_bool(spec, "bias"),
                                      low_precision_dtype(spec_string(spec, "dtype"), "layer spec 'linear_float'")));
      }};
}

}  // namespace hone::nn
