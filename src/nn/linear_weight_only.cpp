#include "hone/nn/linear_weight_only.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "hone/core/error.h"
#include "hone/nn/quantized_weight.h"
#include "hone/ops/int8_weight_only_linear.h"

namespace hone::nn {
namespace {

bool valid_group(std::int64_t g) { return g == 32 || g == 64 || g == 128 || g == 256; }

/// tinygemm's inner K tiles: the largest of 8, 4, 2 whose 16-wide tiles divide `in`.
std::int64_t inner_k_tiles(std::int64_t in) {
  for (const std::int64_t tiles : {8, 4, 2}) {
    if (in % (tiles * 16) == 0) return tiles;
  }
  return 2;  // unreachable for supported shapes (in % 32 == 0)
}

/// The 4-bit codes [out, in] (int32, 0..15) from the nibble bytes [out, in/2].
torch::Tensor unpack_nibbles(const torch::Tensor& bytes) {
  const auto b = bytes.to(at::kInt);
  return at::stack({at::bitwise_right_shift(b, 4), at::bitwise_and(b, 15)}, -1).reshape({b.size(0), -1});
}

}  // namespace

std::string weight_only_unsupported(const WeightOnlyShape& shape) {
  if (shape.bits != 8 && shape.bits != 4) return fmt::format("bits must be 8 or 4, got {}", shape.bits);
  if (shape.in <= 0 || shape.out <= 0)
    return fmt::format("in and out must be positive, got {} and {}", shape.in, shape.out);
  if (shape.bits == 8) return {};
  if (!valid_group(shape.group_size)) {
    return fmt::format("int4 group_size must be 32, 64, 128 or 256, got {}", shape.group_size);
  }
  if (shape.in % shape.group_size != 0 || shape.in % 32 != 0) {
    return fmt::format("int4 needs in_features ({}) divisible by 32 and by group_size {}", shape.in, shape.group_size);
  }
  // CUDA's packing wants out % 8 == 0, the CPU's out % 16 == 0: a file must load on both.
  if (shape.out % 16 != 0) return fmt::format("int4 needs out_features ({}) divisible by 16", shape.out);
  return {};
}

std::pair<torch::Tensor, torch::Tensor> quantize_weight_only_int8(const torch::Tensor& weight) {
  // The same symmetric per-channel int8 as hone's other int8 layers; scales kept in fp32.
  const Int8Weight q = quantize_weight_int8(weight, /*per_channel=*/true);
  return {q.values, q.scale.to(at::kFloat)};
}

std::pair<torch::Tensor, torch::Tensor> quantize_weight_only_int4(const torch::Tensor& weight,
                                                                  std::int64_t group_size) {
  torch::NoGradGuard no_grad;
  const auto w = weight.detach().to(at::kFloat);
  const std::int64_t out = w.size(0), in = w.size(1), groups = in / group_size;
  const auto grouped = w.reshape({out, groups, group_size});
  const auto low = grouped.amin(2), high = grouped.amax(2);
  // A constant group gets scale 1 (its codes are all 0 and zero reproduces it exactly).
  const auto range = high - low;
  const auto scale = at::where(range > 0, range / 15.0, at::ones_like(range));
  const auto codes = at::round((grouped - low.unsqueeze(2)) / scale.unsqueeze(2)).clamp(0, 15).to(at::kInt);
  const auto zero = low + 8.0 * scale;  // (q - 8)·scale + zero = q·scale + low
  const auto flat = codes.reshape({out, in});
  const auto bytes = at::bitwise_or(at::bitwise_left_shift(flat.slice(1, 0, in, 2), 4), flat.slice(1, 1, in, 2))
                         .to(at::kByte)
                         .contiguous();
  const auto scales_and_zeros = at::stack({scale, zero}, -1).transpose(0, 1).contiguous();  // [groups, out, 2]
  return {bytes, scales_and_zeros};
}

torch::Tensor dequantize_weight_only(const WeightOnlyShape& shape, const torch::Tensor& weight,
                                     const torch::Tensor& scales) {
  torch::NoGradGuard no_grad;
  if (shape.bits == 8) return weight.to(at::kFloat) * scales.to(at::kFloat).unsqueeze(1);
  const auto codes = unpack_nibbles(weight).to(at::kFloat);  // [out, in]
  const std::int64_t groups = shape.in / shape.group_size;
  const auto sz = scales.to(at::kFloat).transpose(0, 1);  // [out, groups, 2]
  const auto grouped = codes.reshape({shape.out, groups, shape.group_size});
  return ((grouped - 8.0) * sz.select(2, 0).unsqueeze(2) + sz.select(2, 1).unsqueeze(2)).reshape({shape.out, shape.in});
}

LinearWeightOnlyImpl::LinearWeightOnlyImpl(const WeightOnlyShape& shape, bool has_bias) : shape_(shape) {
  const auto why = weight_only_unsupported(shape);
  HONE_CHECK(why.empty(), "linear_weight_only [{} -> {}]: {}", shape.in, shape.out, why);
  if (shape.bits == 8) {
    weight = register_buffer("weight", at::zeros({shape.out, shape.in}, at::kChar));
    scales = register_buffer("scales", at::ones({shape.out}, at::kFloat));
  } else {
    weight = register_buffer("weight", at::zeros({shape.out, shape.in / 2}, at::kByte));
    scales = register_buffer("scales_and_zeros", at::zeros({shape.in / shape.group_size, shape.out, 2}, at::kFloat));
  }
  if (has_bias) bias = register_buffer("bias", at::zeros({shape.out}, at::kFloat));
}

std::shared_ptr<LinearWeightOnlyImpl> LinearWeightOnlyImpl::from_float(const torch::nn::LinearImpl& linear, int bits,
                                                                       std::int64_t group_size) {
  const auto& w = linear.weight;
  const WeightOnlyShape shape{w.size(1), w.size(0), bits, bits == 4 ? group_size : 0};
  auto layer = std::make_shared<LinearWeightOnlyImpl>(shape, linear.bias.defined());
  torch::NoGradGuard no_grad;
  const auto [values, scales] = bits == 8 ? quantize_weight_only_int8(w) : quantize_weight_only_int4(w, group_size);
  layer->weight.copy_(values);
  layer->scales.copy_(scales);
  if (linear.bias.defined()) layer->bias.copy_(linear.bias.detach());
  layer->to(w.device());
  return layer;
}

torch::Tensor LinearWeightOnlyImpl::dequantized_weight() const {
  return dequantize_weight_only(shape_, weight, scales);
}

void LinearWeightOnlyImpl::repack() { packed_.reset(); }

const LinearWeightOnlyImpl::Packed& LinearWeightOnlyImpl::packed_for(c10::Device device, c10::ScalarType dtype) {
  if (packed_ && packed_->device == device && packed_->dtype == dtype && packed_->weight.defined()) return *packed_;
  torch::NoGradGuard no_grad;
  Packed packed;
  packed.device = device;
  packed.dtype = dtype;
  const auto on = [&](const torch::Tensor& t) { return t.to(device, dtype).contiguous(); };
  if (shape_.bits == 8) {
    packed.weight = weight.to(device).contiguous();
    packed.scales = on(scales);
  } else if (device.is_cuda()) {
    packed.weight = at::_convert_weight_to_int4pack(weight.to(device).contiguous(), inner_k_tiles(shape_.in));
    packed.scales = on(scales);
  } else {
    packed.weight = at::_convert_weight_to_int4pack_for_cpu(unpack_nibbles(weight).contiguous(), 2);
    packed.scales = on(scales);
  }
  if (bias.defined()) packed.bias = on(bias);
  packed_ = std::move(packed);
  return *packed_;
}

torch::Tensor LinearWeightOnlyImpl::forward(const torch::Tensor& x) {
  HONE_CHECK(x.dim() >= 1 && x.size(-1) == shape_.in, "linear_weight_only: expected input [..., {}], got {}", shape_.in,
             x.sizes());
  const auto input = x.is_quantized() ? x.dequantize() : x;
  HONE_CHECK(at::isFloatingType(input.scalar_type()), "linear_weight_only: expected a float input, got {}",
             c10::toString(input.scalar_type()));
  auto out_shape = input.sizes().vec();
  out_shape.back() = shape_.out;
  // The CUDA int4 kernel takes bf16 only; fp64 has no weight-only kernel anywhere.
  const bool int4_cuda = shape_.bits == 4 && input.is_cuda();
  const auto compute =
      int4_cuda ? at::kBFloat16 : (input.scalar_type() == at::kDouble ? at::kFloat : input.scalar_type());
  const Packed& p = packed_for(input.device(), compute);
  const auto rows = input.reshape({-1, shape_.in}).to(compute).contiguous();
  if (shape_.bits == 8) {
    const auto bias_arg = p.bias.defined() ? std::optional<torch::Tensor>(p.bias) : std::nullopt;
    return ops::int8_weight_only_linear(rows, p.weight, p.scales, bias_arg).view(out_shape).to(input.scalar_type());
  }
  torch::Tensor y;
  if (int4_cuda) {
    y = at::_weight_int4pack_mm(rows, p.weight, shape_.group_size, p.scales);
  } else {
    y = at::_weight_int4pack_mm_for_cpu(rows, p.weight, shape_.group_size, p.scales);
  }
  if (p.bias.defined()) y.add_(p.bias);
  return y.view(out_shape).to(input.scalar_type());
}

nlohmann::json LinearWeightOnlyImpl::spec() const {
  return {{"kind", "linear_weight_only"}, {"in", shape_.in},     {"out", shape_.out},
          {"bias", bias.defined()},       {"bits", shape_.bits}, {"group_size", shape_.group_size}};
}

LayerKind linear_weight_only_kind() {
  return {"linear_weight_only", [](const nlohmann::json& spec) {
            const WeightOnlyShape shape{spec_int(spec, "in"), spec_int(spec, "out"),
                                        static_cast<int>(spec_int(spec, "bits")), spec_int(spec, "group_size")};
            return make_layer(LinearWeightOnly(shape, spec_bool(spec, "bias")));
          }};
}

}  // namespace hone::nn
