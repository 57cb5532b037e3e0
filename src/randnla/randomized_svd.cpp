// Randomized SVD (see include/hone/randnla/randomized_svd.h): range finder, power iterations with
// QR after every multiply, then an exact SVD of the small projected matrix.
#include "hone/randnla/randomized_svd.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "hone/core/error.h"

namespace hone::randnla {
namespace {

/// An orthonormal basis of y's columns (reduced QR).
at::Tensor orthonormal_basis(const at::Tensor& y) { return std::get<0>(at::linalg_qr(y, "reduced")); }

}  // namespace

RandomizedSvd randomized_svd(const at::Tensor& a, const RandomizedSvdOptions& options) {
  HONE_CHECK(a.dim() == 2 && a.numel() > 0, "randomized_svd: a must be a non-empty matrix (m, n), got shape {}",
             a.sizes());
  HONE_CHECK(a.scalar_type() == at::kFloat || a.scalar_type() == at::kDouble,
             "randomized_svd: a must be float or double, got {}", a.scalar_type());
  const std::int64_t m = a.size(0), n = a.size(1), smaller = std::min(m, n);
  HONE_CHECK(options.rank >= 1 && options.rank <= smaller,
             "randomized_svd: rank must be in [1, min(m, n)] = [1, {}] for a of shape {}, got {}", smaller, a.sizes(),
             options.rank);
  HONE_CHECK(options.oversampling >= 0, "randomized_svd: oversampling must be >= 0, got {}", options.oversampling);
  HONE_CHECK(options.power_iterations >= 0, "randomized_svd: power_iterations must be >= 0, got {}",
             options.power_iterations);

  const std::int64_t samples = std::min(options.rank + options.oversampling, smaller);
  SketchOptions sketch;
  sketch.kind = options.test_matrix;
  sketch.rows = samples;
  sketch.seed = options.seed;
  const auto test_matrix = SketchOperator::make(n, sketch, a.options());
  // Y = A·Ω with Ω = Sᵀ, i.e. Y = (S·Aᵀ)ᵀ: the sparse and fast kinds never form Ω.
  at::Tensor q = orthonormal_basis(test_matrix.apply(a.t()).t());
  for (std::int64_t i = 0; i < options.power_iterations; ++i) {
    const at::Tensor z = orthonormal_basis(at::matmul(a.t(), q));
    q = orthonormal_basis(at::matmul(a, z));
  }
  const at::Tensor projected = at::matmul(q.t(), a);
  const auto [u_projected, s, vh] = at::linalg_svd(projected, /*full_matrices=*/false);
  RandomizedSvd result;
  result.u = at::matmul(q, u_projected.narrow(1, 0, options.rank));
  result.s = s.narrow(0, 0, options.rank).contiguous();
  result.vh = vh.narrow(0, 0, options.rank).contiguous();
  return result;
}

}  // namespace hone::randnla
