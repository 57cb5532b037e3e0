// CQRRPT (see include/hone/randnla/cqrrpt.h). LibTorch's QR (at::linalg_qr) has no column pivoting
// (no geqp3), so the sketch's pivoted QR is a plain Householder QR here: it runs on the small d x n
// sketch only, with ATen ops on A's device and one host sync per column (the pivot's index).
#include "hone/randnla/cqrrpt.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <utility>
#include <vector>

#include "hone/core/error.h"

namespace hone::randnla {
namespace {

struct PivotedQr {
  at::Tensor r;                      ///< (n, n) upper triangular, diagonal non-increasing in magnitude
  std::vector<std::int64_t> pivots;  ///< w[:, pivots] = Q·R
};

/// Householder QR with column pivoting of w (d x n, d >= n), overwriting w: at step j the remaining
/// column with the largest trailing norm (recomputed, not downdated, so it is exact to rounding)
/// moves to position j, and a reflector zeroes its entries below the diagonal.
PivotedQr householder_qr_column_pivoting(at::Tensor w) {
  const std::int64_t d = w.size(0), n = w.size(1);
  PivotedQr result;
  result.pivots.resize(static_cast<std::size_t>(n));
  std::iota(result.pivots.begin(), result.pivots.end(), std::int64_t{0});
  for (std::int64_t j = 0; j < n; ++j) {
    at::Tensor trailing = w.narrow(0, j, d - j).narrow(1, j, n - j);
    const std::int64_t pivot =
        j + at::linalg_vector_norm(trailing, 2, at::IntArrayRef{0}).argmax().item<std::int64_t>();
    if (pivot != j) {
      const at::Tensor column = w.select(1, j).clone();
      w.select(1, j).copy_(w.select(1, pivot));
      w.select(1, pivot).copy_(column);
      std::swap(result.pivots[j], result.pivots[pivot]);
    }
    // Reflector I - 2vvᵀ mapping x = w[j:, j] to (alpha, 0, ...), alpha = -sign(x0)‖x‖ (no cancellation).
    const at::Tensor x = trailing.select(1, 0);
    const at::Tensor alpha = -x.norm() * (x[0].ge(0).to(x.scalar_type()) * 2 - 1);
    at::Tensor v = x.clone();
    v.narrow(0, 0, 1).sub_(alpha);
    v.div_(v.norm().clamp_min(std::numeric_limits<double>::min()));
    trailing.sub_(at::outer(v, at::matmul(v, trailing)), 2);
  }
  result.r = w.narrow(0, 0, n).triu();
  return result;
}

}  // namespace

Cqrrpt cqrrpt(const at::Tensor& a, const CqrrptOptions& options) {
  HONE_CHECK(a.dim() == 2 && a.numel() > 0, "cqrrpt: a must be a non-empty matrix (m, n), got shape {}", a.sizes());
  HONE_CHECK(a.size(0) >= a.size(1), "cqrrpt: a must be tall (m >= n), got shape {}; factor its transpose instead",
             a.sizes());
  HONE_CHECK(a.scalar_type() == at::kFloat || a.scalar_type() == at::kDouble,
             "cqrrpt: a must be float or double, got {}", a.scalar_type());
  const std::int64_t m = a.size(0), n = a.size(1);
  const std::int64_t d = options.sketch_rows == 0 ? 2 * n : options.sketch_rows;
  HONE_CHECK(d >= n, "cqrrpt: sketch_rows must be >= n = {} (or 0 for 2n), got {}", n, options.sketch_rows);
  HONE_CHECK(!options.rank_tolerance || *options.rank_tolerance >= 0, "cqrrpt: rank_tolerance must be >= 0, got {}",
             options.rank_tolerance.value_or(0.0));

  SketchOptions sketch_options;
  sketch_options.kind = options.sketch;
  sketch_options.rows = d;
  sketch_options.nnz = options.nnz;
  sketch_options.seed = options.seed;
  const auto sketch = SketchOperator::make(m, sketch_options, a.options());
  const PivotedQr sketch_qr = householder_qr_column_pivoting(sketch.apply(a));

  const double epsilon =
      a.scalar_type() == at::kDouble ? std::numeric_limits<double>::epsilon() : std::numeric_limits<float>::epsilon();
  const double tolerance =
      options.rank_tolerance.value_or(kDefaultRankToleranceUlps * epsilon * static_cast<double>(std::max(d, n)));
  const at::Tensor diagonal = sketch_qr.r.diagonal().abs();
  // Pivoting makes |R_sk[j][j]| non-increasing, so the rank is the length of the leading run above.
  const std::int64_t rank = diagonal.gt(diagonal[0] * tolerance).to(at::kLong).cumprod(0).sum().item<std::int64_t>();

  Cqrrpt result;
  result.rank = rank;
  result.pivots = at::tensor(sketch_qr.pivots, at::kLong).to(a.device());
  if (rank == 0) {  // A == 0
    result.q = at::zeros({m, 0}, a.options());
    result.r = at::zeros({0, n}, a.options());
    return result;
  }
  const at::Tensor r_sketch = sketch_qr.r.narrow(0, 0, rank);
  const at::Tensor preconditioned =
      at::linalg_solve_triangular(r_sketch.narrow(1, 0, rank), a.index_select(1, result.pivots.narrow(0, 0, rank)),
                                  /*upper=*/true, /*left=*/false);
  const auto [r_cholesky, info] =
      at::linalg_cholesky_ex(at::matmul(preconditioned.t(), preconditioned), /*upper=*/true);
  HONE_CHECK(info.item<std::int64_t>() == 0,
             "cqrrpt: Cholesky QR broke down on the preconditioned a (numerical rank {} of {} columns with "
             "rank_tolerance {}): raise rank_tolerance or sketch_rows",
             rank, n, tolerance);
  result.q = at::linalg_solve_triangular(r_cholesky, preconditioned, /*upper=*/true, /*left=*/false);
  result.r = at::matmul(r_cholesky, r_sketch).triu_();
  return result;
}

}  // namespace hone::randnla
