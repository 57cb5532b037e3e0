#pragma once
// What a pass reports for each layer it replaces: how far the replacement's weight is from the
// original, ‖W − W'‖ / ‖W‖ computed in fp64 (W' may be of another dtype or on another device).
#include <ATen/ATen.h>

namespace hone::compress {

inline double relative_weight_change(const at::Tensor& original, const at::Tensor& replacement) {
  const auto w = original.detach().to(at::kDouble);
  return ((w - replacement.detach().to(w.device(), at::kDouble)).norm() / w.norm().clamp_min(1e-30)).item<double>();
}

}  // namespace hone::compress
