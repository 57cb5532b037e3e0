#include "hone/nn/linear_semi_structured.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>

#ifdef HONE_WITH_CUDA
#include <c10/cuda/CUDAGraphsC10Utils.h>
#endif

#include "hone/core/error.h"
#include "hone/nn/linear_float.h"

namespace hone::nn {
namespace {

constexpr std::int64_t kRowMultiple = 8;  // cuSPARSELt's fp16/bf16 dense-operand constraint

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

bool search_enabled() {
  static const bool enabled = [] {
    const char* value = std::getenv("HONE_CSLT_SEARCH");
    return value != nullptr && std::strcmp(value, "1") == 0;
  }();
  return enabled;
}

/// Whether the current CUDA stream is being captured into a graph (no timing search there).
bool capturing() {
#ifdef HONE_WITH_CUDA
  return c10::cuda::currentStreamCaptureStatusMayInitCtx() != c10::cuda::CaptureStatus::None;
#else
  return false;
#endif
}

}  // namespace

std::string semi_structured_unsupported(std::int64_t in, std::int64_t out) {
  if (in < 16 || in % 16 != 0) return fmt::format("in_features ({}) must be a multiple of 16", in);
  if (out < 16 || out % 16 != 0) return fmt::format("out_features ({}) must be a multiple of 16", out);
  return {};
}

torch::Tensor semi_structured_mask(const torch::Tensor& weight) {
  HONE_CHECK(weight.dim() == 2 && weight.size(1) % 4 == 0,
             "2:4 mask: weight must be [out, in] with in % 4 == 0, got {}", weight.sizes());
  torch::NoGradGuard no_grad;
  const auto groups = weight.detach().abs().reshape({weight.size(0), -1, 4});
  // A stable descending sort keeps the earlier of two equal magnitudes.
  const auto order = std::get<1>(at::sort(groups, /*stable=*/true, /*dim=*/2, /*descending=*/true));
  return at::zeros_like(groups, at::kBool).scatter_(2, order.narrow(2, 0, 2), true).reshape(weight.sizes());
}

std::pair<torch::Tensor, torch::Tensor> compress_semi_structured(const torch::Tensor& weight,
                                                                 const torch::Tensor& mask) {
  HONE_CHECK(weight.dim() == 2 && weight.size(1) % 4 == 0 && mask.sizes() == weight.sizes(),
             "2:4 compress: weight [out, in % 4 == 0] and a mask of its shape expected, got {} and {}", weight.sizes(),
             mask.sizes());
  torch::NoGradGuard no_grad;
  const std::int64_t out = weight.size(0), groups = weight.size(1) / 4;
  const auto kept = mask.reshape({out, groups, 4});
  HONE_CHECK(kept.sum(2).eq(2).all().item<bool>(), "2:4 compress: the mask must keep exactly 2 of every 4 inputs");
  // Ascending stable sort of "pruned" puts the two kept positions first, in input order.
  const auto positions =
      std::get<1>(at::sort(kept.logical_not().to(at::kInt), /*stable=*/true, /*dim=*/2, /*descending=*/false))
          .narrow(2, 0, 2);
  const auto values = weight.detach().reshape({out, groups, 4}).gather(2, positions).reshape({out, groups * 2});
  const auto meta = at::bitwise_or(positions.select(2, 0), at::bitwise_left_shift(positions.select(2, 1), 2));
  return {values.contiguous(), meta.to(at::kByte).contiguous()};
}

torch::Tensor expand_semi_structured(const torch::Tensor& values, const torch::Tensor& meta) {
  HONE_CHECK(meta.dim() == 2 && meta.scalar_type() == at::kByte && values.dim() == 2 &&
                 values.size(0) == meta.size(0) && values.size(1) == 2 * meta.size(1),
             "2:4 expand: values [out, in/2] and meta uint8 [out, in/4] expected, got {} and {} {}", values.sizes(),
             c10::toString(meta.scalar_type()), meta.sizes());
  torch::NoGradGuard no_grad;
  const auto m = meta.to(at::kLong);
  const auto i0 = at::bitwise_and(m, 3), i1 = at::bitwise_and(at::bitwise_right_shift(m, 2), 3);
  HONE_CHECK(at::bitwise_right_shift(m, 4).eq(0).logical_and(i0.lt(i1)).all().item<bool>(),
             "2:4 expand: meta holds a byte that is not a pair of positions i0 < i1 in 0..3 (corrupt file?)");
  const std::int64_t out = meta.size(0), groups = meta.size(1);
  return at::zeros({out, groups, 4}, values.options())
      .scatter_(2, at::stack({i0, i1}, 2), values.reshape({out, groups, 2}))
      .reshape({out, groups * 4});
}

LinearSemiStructuredImpl::LinearSemiStructuredImpl(std::int64_t in, std::int64_t out, bool has_bias,
                                                   c10::ScalarType compute)
    : in_(in), out_(out), compute_(compute) {
  const auto why = semi_structured_unsupported(in, out);
  HONE_CHECK(why.empty(), "linear_semi_structured [{} -> {}]: {}", in, out, why);
  HONE_CHECK(compute == at::kFloat || compute == at::kHalf || compute == at::kBFloat16,
             "linear_semi_structured: compute dtype must be fp16, bf16 or the input's, got {}", c10::toString(compute));
  const auto stored = at::TensorOptions().dtype(compute == at::kFloat ? at::kFloat : compute);
  values = register_buffer("values", at::zeros({out, in / 2}, stored));
  // Every group keeps positions 0 and 1 until real values are loaded.
  meta = register_buffer("meta", at::full({out, in / 4}, 0b0100, at::kByte));
  if (has_bias) bias = register_buffer("bias", at::zeros({out}, stored));
}

std::shared_ptr<LinearSemiStructuredImpl> LinearSemiStructuredImpl::from_float(const torch::nn::LinearImpl& linear,
                                                                               c10::ScalarType compute) {
  const auto& w = linear.weight;
  auto layer = std::make_shared<LinearSemiStructuredImpl>(w.size(1), w.size(0), linear.bias.defined(), compute);
  torch::NoGradGuard no_grad;
  const auto [v, m] = compress_semi_structured(w, semi_structured_mask(w));
  layer->values.copy_(v);
  layer->meta.copy_(m);
  if (linear.bias.defined()) layer->bias.copy_(linear.bias.detach());
  layer->to(w.device());
  return layer;
}

torch::Tensor LinearSemiStructuredImpl::dense_weight() const {
  return expand_semi_structured(values.to(at::kFloat), meta);
}

void LinearSemiStructuredImpl::repack() { packed_.reset(); }

LinearSemiStructuredImpl::Packed& LinearSemiStructuredImpl::packed_for(c10::Device device, c10::ScalarType dtype) {
  if (packed_ && packed_->device == device && packed_->dtype == dtype) return *packed_;
  torch::NoGradGuard no_grad;
  Packed p;
  p.device = device;
  p.dtype = dtype;
  const auto dense = expand_semi_structured(values.to(device, dtype), meta.to(device)).contiguous();
  if (bias.defined()) p.bias = bias.to(device, dtype).contiguous();
  if (!device.is_cuda()) {
    p.kernel = fmt::format("dense ({}: LibTorch has no 2:4 sparse kernel there)", device.str());
  } else if (dtype != at::kHalf && dtype != at::kBFloat16) {
    p.kernel = fmt::format("dense ({}: cuSPARSELt's 2:4 kernels take fp16/bf16; quantize to or run in bf16)",
                           c10::toString(dtype));
  } else {
    try {
      auto compressed = at::_cslt_compress(dense);
      // One trial product: a GPU without sparse tensor cores fails here, not inside a captured graph.
      (void)at::_cslt_sparse_mm(compressed, at::zeros({kRowMultiple, in_}, dense.options()).t(), std::nullopt,
                                std::nullopt, std::nullopt, /*transpose_result=*/true);
      p.weight = std::move(compressed);
      p.sparse = true;
      p.kernel = "cusparselt";
    } catch (const c10::Error& e) {
      p.kernel = fmt::format("dense (cuSPARSELt failed: {})", first_line(e.what_without_backtrace()));
    }
  }
  if (!p.sparse) p.weight = dense;
  packed_ = std::move(p);
  return *packed_;
}

torch::Tensor LinearSemiStructuredImpl::forward(const torch::Tensor& x) {
  HONE_CHECK(x.dim() >= 1 && x.size(-1) == in_, "linear_semi_structured: expected input [..., {}], got {}", in_,
             x.sizes());
  const auto input = x.is_quantized() ? x.dequantize() : x;
  HONE_CHECK(at::isFloatingType(input.scalar_type()), "linear_semi_structured: expected a float input, got {}",
             c10::toString(input.scalar_type()));
  const auto compute = compute_ != at::kFloat ? compute_ : input.scalar_type();
  Packed& p = packed_for(input.device(), compute);
  kernel_ = p.kernel;
  auto out_shape = input.sizes().vec();
  out_shape.back() = out_;
  auto rows = input.reshape({-1, in_}).to(compute);
  torch::Tensor y;
  if (p.sparse) {
    const std::int64_t n = rows.size(0), padded = (n + kRowMultiple - 1) / kRowMultiple * kRowMultiple;
    if (padded != n) rows = at::constant_pad_nd(rows, {0, 0, 0, padded - n});
    rows = rows.contiguous();
    // cuSPARSELt computes W · xᵀ (the sparse operand first); transpose_result hands back its
    // transpose, [rows, out], which is y.
    const auto bias_arg = p.bias.defined() ? std::optional<torch::Tensor>(p.bias) : std::nullopt;
    std::int64_t algorithm = 0;
    if (const auto it = p.algorithms.find(padded); it != p.algorithms.end()) {
      algorithm = it->second;
    } else if (search_enabled() && !capturing()) {
      algorithm = at::_cslt_sparse_mm_search(p.weight, rows.t(), bias_arg, std::nullopt, std::nullopt,
                                             /*transpose_result=*/true);
      p.algorithms[padded] = algorithm;
    }
    y = at::_cslt_sparse_mm(p.weight, rows.t(), bias_arg, std::nullopt, std::nullopt, /*transpose_result=*/true,
                            algorithm);
    HONE_CHECK(y.dim() == 2 && y.size(0) == padded && y.size(1) == out_,
               "linear_semi_structured: cuSPARSELt returned {} for {} rows of {} outputs", y.sizes(), padded, out_);
    if (padded != n) y = y.narrow(0, 0, n);
  } else {
    y = p.bias.defined() ? at::addmm(p.bias, rows, p.weight.t()) : at::mm(rows, p.weight.t());
  }
  return y.reshape(out_shape).to(input.scalar_type());
}

nlohmann::json LinearSemiStructuredImpl::spec() const {
  return {{"kind", "linear_semi_structured"},
          {"in", in_},
          {"out", out_},
          {"bias", bias.defined()},
          {"dtype", compute_ == at::kFloat ? "input" : low_precision_name(compute_)}};
}

LayerKind linear_semi_structured_kind() {
  return {"linear_semi_structured", [](const nlohmann::json& spec) {
            const auto dtype = spec_string(spec, "dtype");
            const auto compute =
                dtype == "input" ? at::kFloat : low_precision_dtype(dtype, "layer spec 'linear_semi_structured'");
            return make_layer(
                LinearSemiStructured(spec_int(spec, "in"), spec_int(spec, "out"), spec_bool(spec, "bias"), compute));
          }};
}

}  // namespace hone::nn
