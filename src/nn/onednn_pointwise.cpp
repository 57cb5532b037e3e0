#include "onednn_pointwise.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <string_view>

#include "hone/core/error.h"

namespace hone::nn::onednn {
namespace {

using ConvPointwise = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                 c10::IntArrayRef, c10::IntArrayRef, c10::IntArrayRef, std::int64_t, std::string_view,
                                 c10::List<std::optional<at::Scalar>>, std::optional<std::string_view>);
using LinearPointwise = at::Tensor(const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                                   std::string_view, c10::List<std::optional<at::Scalar>>,
                                   std::optional<std::string_view>);
using ConvReorder = at::Tensor(const at::Tensor&, c10::IntArrayRef, c10::IntArrayRef, c10::IntArrayRef, std::int64_t,
                               at::OptionalIntArrayRef);
using LinearReorder = at::Tensor(const at::Tensor&, std::optional<std::int64_t>);

/// The ops' typed handles, or nullopt when this LibTorch does not register them. typed<>() checks
/// the C++ signature against the registered kernel's and throws on a mismatch.
struct Ops {
  std::optional<c10::TypedOperatorHandle<ConvPointwise>> conv;
  std::optional<c10::TypedOperatorHandle<ConvReorder>> conv_reorder;
  std::optional<c10::TypedOperatorHandle<LinearPointwise>> linear;
  std::optional<c10::TypedOperatorHandle<LinearReorder>> linear_reorder;
  bool available() const { return conv && conv_reorder && linear && linear_reorder; }
};

const Ops& ops() {
  static const Ops found = [] {
    Ops out;
    if (!at::hasMKLDNN()) return out;
    auto& dispatcher = c10::Dispatcher::singleton();
    if (auto op = dispatcher.findSchema({"mkldnn::_convolution_pointwise", ""})) out.conv = op->typed<ConvPointwise>();
    if (auto op = dispatcher.findSchema({"mkldnn::_reorder_convolution_weight", ""})) {
      out.conv_reorder = op->typed<ConvReorder>();
    }
    if (auto op = dispatcher.findSchema({"mkldnn::_linear_pointwise", ""})) out.linear = op->typed<LinearPointwise>();
    if (auto op = dispatcher.findSchema({"mkldnn::_reorder_linear_weight", ""})) {
      out.linear_reorder = op->typed<LinearReorder>();
    }
    return out;
  }();
  return found;
}

}  // namespace

bool fused_relu_available() { return ops().available(); }

bool fp32_inference_applies(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                            std::int64_t min_dim) {
  const bool records_gradient = at::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad() ||
                                                               (bias.defined() && bias.requires_grad()));
  return !records_gradient && x.layout() == at::kStrided && x.device().is_cpu() && weight.device().is_cpu() &&
         x.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat && x.dim() >= min_dim && x.numel() > 0 &&
         fused_relu_available();
}

at::Tensor conv2d_relu(const at::Tensor& x, const at::Tensor& packed_weight, const std::optional<at::Tensor>& bias,
                       c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation,
                       std::int64_t groups) {
  HONE_CHECK(ops().conv, "oneDNN's mkldnn::_convolution_pointwise is not available in this LibTorch");
  return ops().conv->call(x, packed_weight, bias, padding, stride, dilation, groups, "relu",
                          c10::List<std::optional<at::Scalar>>(), std::nullopt);
}

at::Tensor pack_conv2d_weight(const at::Tensor& weight, c10::IntArrayRef stride, c10::IntArrayRef padding,
                              c10::IntArrayRef dilation, std::int64_t groups, c10::IntArrayRef input_sizes) {
  HONE_CHECK(ops().conv_reorder, "oneDNN's mkldnn::_reorder_convolution_weight is not available in this LibTorch");
  return ops().conv_reorder->call(weight, padding, stride, dilation, groups, input_sizes);
}

at::Tensor linear_relu(const at::Tensor& x, const at::Tensor& packed_weight, const std::optional<at::Tensor>& bias) {
  return linear_pointwise(x, packed_weight, bias, "relu", std::nullopt);
}

at::Tensor linear_pointwise(const at::Tensor& x, const at::Tensor& packed_weight, const std::optional<at::Tensor>& bias,
                            std::string_view attr, std::optional<std::string_view> algorithm) {
  HONE_CHECK(ops().linear, "oneDNN's mkldnn::_linear_pointwise is not available in this LibTorch");
  return ops().linear->call(x, packed_weight, bias, attr, c10::List<std::optional<at::Scalar>>(), algorithm);
}

at::Tensor pack_linear_weight(const at::Tensor& weight, std::int64_t rows) {
  HONE_CHECK(ops().linear_reorder, "oneDNN's mkldnn::_reorder_linear_weight is not available in this LibTorch");
  return ops().linear_reorder->call(weight, rows);
}

at::Tensor PackedWeightCache::get(const at::Tensor& weight, std::vector<std::int64_t> key, const Pack& pack) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Inference tensors have no version counter (and cannot be written outside inference mode).
  const std::int64_t version = weight.is_inference() ? 0 : static_cast<std::int64_t>(weight._version());
  if (weight.data_ptr() != data_ || version != version_) {
    packs_.clear();
    data_ = weight.data_ptr();
    version_ = version;
  }
  for (const auto& [shape, packed] : packs_) {
    if (shape == key) return packed;
  }
  if (packs_.size() >= kMaxShapes) packs_.erase(packs_.begin());
  packs_.emplace_back(std::move(key), pack(weight));
  return packs_.back().second;
}

void PackedWeightCache::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  packs_.clear();
  data_ = nullptr;
  version_ = -1;
}

}  // namespace hone::nn::onednn
