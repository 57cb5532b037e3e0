#include "hone/nn/linear_relu.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <ostream>

#include "hone/core/error.h"
#include "onednn_pointwise.h"

namespace hone::nn {

LinearReluImpl::LinearReluImpl(std::int64_t in, std::int64_t out, bool bias)
    : in_(in), out_(out), packed_(std::make_unique<onednn::PackedWeightCache>()) {
  HONE_CHECK(in > 0 && out > 0, "linear_relu: in and out must be positive, got {} and {}", in, out);
  weight = register_parameter("weight", at::zeros({out, in}));
  if (bias) this->bias = register_parameter("bias", at::zeros({out}));
}

LinearReluImpl::~LinearReluImpl() = default;

std::shared_ptr<LinearReluImpl> LinearReluImpl::from_linear(const torch::nn::LinearImpl& linear) {
  const auto& w = linear.weight;
  auto layer = std::make_shared<LinearReluImpl>(w.size(1), w.size(0), linear.bias.defined());
  torch::NoGradGuard no_grad;
  layer->weight.set_data(w.detach().clone());
  if (linear.bias.defined()) layer->bias.set_data(linear.bias.detach().clone());
  return layer;
}

bool LinearReluImpl::runs_fused(const torch::Tensor& x) const {
  return onednn::fp32_inference_applies(x, weight, bias, /*min_dim=*/2);
}

torch::Tensor LinearReluImpl::forward(const torch::Tensor& x) {
  HONE_CHECK(x.dim() >= 1 && x.size(-1) == in_, "linear_relu: expected input [..., {}], got {}", in_, x.sizes());
  if (!runs_fused(x)) return forward_unfused(x);
  const auto rows = x.numel() / in_;
  const auto packed = packed_->get(weight, {rows}, [&](const at::Tensor& w) {
    at::NoGradGuard no_grad;
    return onednn::pack_linear_weight(w.detach(), rows);
  });
  return onednn::linear_relu(x, packed, bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt);
}

torch::Tensor LinearReluImpl::forward_unfused(const torch::Tensor& x) const {
  auto out_shape = x.sizes().vec();
  out_shape.back() = out_;
  const auto rows = x.reshape({-1, in_});
  const auto y = bias.defined() ? at::addmm(bias, rows, weight.t()) : at::mm(rows, weight.t());
  return y.relu_().view(out_shape);
}

void LinearReluImpl::repack() { packed_->clear(); }

nlohmann::json LinearReluImpl::spec() const {
  return {{"kind", "linear_relu"}, {"in", in_}, {"out", out_}, {"bias", bias.defined()}};
}

void LinearReluImpl::pretty_print(std::ostream& stream) const {
  stream << "hone::nn::LinearRelu(in_features=" << in_ << ", out_features=" << out_
         << ", bias=" << (bias.defined() ? "true" : "false") << ")";
}

LayerKind linear_relu_kind() {
  return {"linear_relu", [](const nlohmann::json& spec) {
            return make_layer(LinearRelu(spec_int(spec, "in"), spec_int(spec, "out"), spec_bool(spec, "bias")));
          }};
}

}  // namespace hone::nn
