#include "hone/nn/linear_int8_dynamic.h"

#include <ATen/ATen.h>
#include <ATen/cpu/Utils.h>

#include "hone/core/error.h"

namespace hone::nn {

// reduce_range: 7-bit input activations, as PyTorch's dynamic Linear always uses: fbgemm's AVX2
// path sums u8 x s8 products in int16 pairs, which can saturate with full-range inputs. With
// AVX-512 VNNI the products accumulate in int32, so the pass keeps all 8 bits there (on
// all-MiniLM-L6-v2 that halves the activation rounding error: mean cosine 0.968 -> see
// docs/BENCHMARKS.md).
bool default_reduce_range() { return !at::cpu::is_avx512_vnni_supported(); }

LinearInt8DynamicImpl::LinearInt8DynamicImpl(std::int64_t in, std::int64_t out, bool bias, bool per_channel,
                                             bool reduce_range)
    : in_(in), out_(out), per_channel_(per_channel), reduce_range_(reduce_range) {
  HONE_CHECK(in > 0 && out > 0, "linear_int8_dynamic: in and out must be positive, got {} and {}", in, out);
  weight_ = register_int8_weight(*this, "weight", {out, in}, per_channel);
  if (bias) bias_ = register_buffer("bias", at::zeros({out}, at::kFloat));
  repack();
}

std::shared_ptr<LinearInt8DynamicImpl> LinearInt8DynamicImpl::from_float(const torch::nn::LinearImpl& linear,
                                                                         bool per_channel, bool reduce_range) {
  const auto& w = linear.weight;
  auto layer =
      std::make_shared<LinearInt8DynamicImpl>(w.size(1), w.size(0), linear.bias.defined(), per_channel, reduce_range);
  assign_int8_weight(layer->weight_, quantize_weight_int8(w, per_channel));
  if (linear.bias.defined()) layer->bias_.copy_(linear.bias.detach());
  layer->repack();
  return layer;
}

void LinearInt8DynamicImpl::repack() {
  const auto bias = bias_.defined() ? c10::IValue(bias_.to(at::kFloat).contiguous()) : c10::IValue();
  packed_ = call_op("quantized::linear_prepack", "", {to_qint8(weight_, per_channel_), bias}).at(0);
}

torch::Tensor LinearInt8DynamicImpl::forward(const torch::Tensor& x) {
  HONE_CHECK(x.dim() >= 1 && x.size(-1) == in_, "linear_int8_dynamic: expected input [..., {}], got {}", in_,
             x.sizes());
  const auto input = x.is_quantized() ? x.dequantize() : x;
  auto out_shape = input.sizes().vec();
  out_shape.back() = out_;
  const auto rows = input.reshape({-1, in_}).to(at::kFloat).contiguous();
  const auto y = call_op("quantized::linear_dynamic", "", {rows, packed_, reduce_range_}).at(0).toTensor();
  return y.view(out_shape).to(input.scalar_type());
}

nlohmann::json LinearInt8DynamicImpl::spec() const {
  return {{"kind", "linear_int8_dynamic"},
          {"in", in_},
          {"out", out_},
          {"bias", bias_.defined()},
          {"per_channel", per_channel_},
          {"reduce_range", reduce_range_}};
}

LayerKind linear_int8_dynamic_kind() {
  return {"linear_int8_dynamic", [](const nlohmann::json& spec) {
            return make_layer(LinearInt8Dynamic(spec_int(spec, "in"), spec_int(spec, "out"), spec_bool(spec, "bias"),
                                                spec_bool(spec, "per_channel"), spec_bool(spec, "reduce_range")));
          }};
}

}  // namespace hone::nn
