#include "hone/nn/prepacked_linear.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>

#include "onednn_pointwise.h"

namespace hone::nn {

PrepackedLinear::PrepackedLinear() : cache_(std::make_shared<onednn::PackedWeightCache>()) {}

bool PrepackedLinear::applies(const torch::Tensor& x, const torch::nn::LinearImpl& linear) {
  static const bool enabled = [] {
    const char* value = std::getenv("HONE_CPU_PREPACK");
    return value == nullptr || std::strcmp(value, "0") != 0;
  }();
  const auto& w = linear.weight;
  if (!enabled || !w.defined() || !onednn::fp32_inference_applies(x, w, linear.bias, /*min_dim=*/2) ||
      x.size(-1) != w.size(1)) {
    return false;
  }
  // oneDNN's call costs ~12-15 µs more than LibTorch's addmm, won back by large weights or many rows
  // (measured on the 2-core EPYC: 384 x 384 1.10-1.30x faster from 8 rows; 64 x 64 to 256 x 256
  // 0.3-0.98x up to ~2^23 multiply-adds per call, 1.03-1.24x from 2^24).
  const std::int64_t multiply_adds = x.numel() / x.size(-1) * w.numel();
  return multiply_adds >= kManyMultiplyAdds || (w.numel() >= kMinWeightElements && multiply_adds >= kMinMultiplyAdds);
}

torch::Tensor PrepackedLinear::operator()(const torch::nn::LinearImpl& linear, const torch::Tensor& x,
                                          bool gelu) const {
  // One pack per weight whatever the row count: oneDNN takes any rows with it (the hint only
  // picks the blocked layout), so varying sequence lengths do not re-pack.
  const auto rows = x.numel() / x.size(-1);
  const auto packed = cache_->get(
      linear.weight, {0}, [rows](const at::Tensor& w) { return onednn::pack_linear_weight(w.contiguous(), rows); });
  const auto bias = linear.bias.defined() ? std::optional<at::Tensor>(linear.bias) : std::nullopt;
  return onednn::linear_pointwise(x.contiguous(), packed, bias, gelu ? "gelu" : "none",
                                  gelu ? std::optional<std::string_view>("none") : std::nullopt);
}

}  // namespace hone::nn
