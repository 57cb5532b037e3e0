#pragma once
// oneDNN's fused "convolution / linear, then ReLU" kernels as PyTorch registers them for Inductor
// (mkldnn::_convolution_pointwise, mkldnn::_linear_pointwise; aten/src/ATen/native/mkldnn/
// {Conv,Linear}.cpp), and weights prepacked for them. Private to src/nn (conv2d_relu, linear_relu).
//
// The ops take plain fp32 weights too, but then reorder them into oneDNN's blocked layout on every
// call (measured slower than conv + relu); prepacked weights are oneDNN-layout tensors
// (Tensor::is_mkldnn()) that cannot be saved, so layers keep the plain weight as their parameter
// and a PackedWeightCache beside it.
#include <ATen/core/Tensor.h>
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace hone::nn::onednn {

/// True when this LibTorch was built with oneDNN and registers both fused ops (looked up once).
bool fused_relu_available();

/// Whether oneDNN's fp32 inference kernels may take `x` with `weight` (and `bias`, may be
/// undefined): the ops are available, x and the weight are dense fp32 CPU tensors, x has at least
/// `min_dim` dimensions and some elements, and no gradient is being recorded through them.
bool fp32_inference_applies(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                            std::int64_t min_dim);

/// relu(conv2d(x, weight, bias)) in one oneDNN primitive. `packed_weight` comes from
/// pack_conv2d_weight. The output is channels-last (oneDNN's layout for prepacked weights).
at::Tensor conv2d_relu(const at::Tensor& x, const at::Tensor& packed_weight, const std::optional<at::Tensor>& bias,
                       c10::IntArrayRef stride, c10::IntArrayRef padding, c10::IntArrayRef dilation,
                       std::int64_t groups);
/// `weight` [out, in/groups, kh, kw] reordered for inputs of `input_sizes` [B, C, H, W].
at::Tensor pack_conv2d_weight(const at::Tensor& weight, c10::IntArrayRef stride, c10::IntArrayRef padding,
                              c10::IntArrayRef dilation, std::int64_t groups, c10::IntArrayRef input_sizes);

/// relu(x · weightᵀ + bias) for x [..., in], in one oneDNN primitive. `packed_weight` comes from
/// pack_linear_weight.
at::Tensor linear_relu(const at::Tensor& x, const at::Tensor& packed_weight, const std::optional<at::Tensor>& bias);
/// The same with oneDNN's post-op `attr` ("none", "relu", "gelu", ...; `algorithm` "none" = exact
/// erf GELU, "tanh").
at::Tensor linear_pointwise(const at::Tensor& x, const at::Tensor& packed_weight, const std::optional<at::Tensor>& bias,
                            std::string_view attr, std::optional<std::string_view> algorithm);
/// `weight` [out, in] reordered for inputs of `rows` rows.
at::Tensor pack_linear_weight(const at::Tensor& weight, std::int64_t rows);

/// Packed copies of one weight for a few input shapes. A shape's pack is made on first use; all
/// are dropped when the weight changes (another storage, or an in-place write bumping its version
/// counter, as loading weights does) or on clear(). Safe to call from several threads.
class PackedWeightCache {
 public:
  using Pack = std::function<at::Tensor(const at::Tensor& weight)>;
  /// The pack of `weight` for `key` (an input shape), made with `pack` when missing.
  at::Tensor get(const at::Tensor& weight, std::vector<std::int64_t> key, const Pack& pack);
  void clear();

 private:
  static constexpr std::size_t kMaxShapes = 4;  ///< oldest dropped first
  std::mutex mutex_;
  const void* data_ = nullptr;
  std::int64_t version_ = -1;
  std::vector<std::pair<std::vector<std::int64_t>, at::Tensor>> packs_;
};

}  // namespace hone::nn::onednn
