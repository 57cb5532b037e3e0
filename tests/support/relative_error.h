#pragma once
/// @file ‖a − b‖ / ‖b‖ in double precision (the measure tolerances.h's relative rows are for).
#include <ATen/ATen.h>

namespace hone::testing {

inline double relative_error(const at::Tensor& a, const at::Tensor& b) {
  return ((a.to(at::kDouble) - b.to(at::kDouble)).norm() / b.to(at::kDouble).norm().clamp_min(1e-30)).item<double>();
}

}  // namespace hone::testing
