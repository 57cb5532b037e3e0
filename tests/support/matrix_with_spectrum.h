#pragma once
/// @file Test matrices with a known spectrum, for randomized linear algebra.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstdint>

namespace hone::testing {

/// m x n (double) with singular values `s` (length k <= min(m, n)) and random orthonormal singular
/// vectors drawn from `seed`.
inline at::Tensor matrix_with_spectrum(std::int64_t m, std::int64_t n, const at::Tensor& s, std::uint64_t seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const std::int64_t k = s.size(0);
  const at::Tensor u = std::get<0>(at::linalg_qr(at::randn({m, k}, generator, at::kDouble)));
  const at::Tensor v = std::get<0>(at::linalg_qr(at::randn({n, k}, generator, at::kDouble)));
  return at::matmul(u * s, v.t());
}

}  // namespace hone::testing
