#pragma once
/// @file CQRRPT (Melnichenko, Balabanov, Murray, Demmel, Mahoney & Luszczek 2023, "CholeskyQR with
/// Randomization and Pivoting for Tall Matrices"): a rank-revealing, column-pivoted QR of a tall
/// m x n matrix whose pivots come from a small sketch and whose Q comes from Cholesky QR on a
/// preconditioned copy of A, so the only passes over A are one sketch, one triangular solve, one
/// Gram matrix and one more triangular solve, all matrix-matrix work.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>

#include "hone/randnla/sketch.h"

namespace hone::randnla {

struct CqrrptOptions {
  /// Kind of the sketch S (d x m) applied to A.
  SketchKind sketch = SketchKind::kSjlt;
  /// d, the sketch's rows; 0 picks 2n. Must be >= n (and <= m padded to a power of two for srht).
  std::int64_t sketch_rows = 0;
  /// Nonzeros per column of an sjlt sketch.
  std::int64_t nnz = 8;
  /// Numerical rank: k counts the leading pivots of the sketch's QR with |R_sk[j][j]| >
  /// rank_tolerance · |R_sk[0][0]|. Unset picks kDefaultRankToleranceUlps machine epsilons of
  /// A's dtype times max(d, n); a larger value truncates more.
  std::optional<double> rank_tolerance;
  std::uint64_t seed = 0;
};

/// The default rank tolerance is this many epsilons of A's dtype times max(d, n).
inline constexpr double kDefaultRankToleranceUlps = 10.0;

/// A[:, pivots] ≈ q · r.
struct Cqrrpt {
  at::Tensor q;           ///< (m, k), orthonormal columns
  at::Tensor r;           ///< (k, n), upper trapezoidal (zeros below the diagonal)
  at::Tensor pivots;      ///< (n) int64, the column permutation J; its first k columns span A's range
  std::int64_t rank = 0;  ///< k, the numerical rank
};

/// CQRRPT of a tall `a` (m x n, m >= n, float or double, any device):
///   1. A_sk = S·A (d x n) for a random sketch S;
///   2. column-pivoted Householder QR of the small A_sk: A_sk[:, J] = Q_sk·R_sk;
///   3. k = numerical rank from R_sk's diagonal (see CqrrptOptions::rank_tolerance);
///   4. A_pre = A[:, J[:k]] · R_sk[:k, :k]⁻¹ (a triangular solve), which is well conditioned
///      (cond ≈ (1+ε)/(1-ε) for an ε-embedding) whatever A's condition number;
///   5. Cholesky QR of A_pre: R_chol = chol(A_preᵀ·A_pre), Q = A_pre · R_chol⁻¹;
///   6. R = R_chol · R_sk[:k, :].
///
/// Cost: one sketch (see sketch.h), O(d n²) for the pivoted QR of A_sk, and O(m n k + m k²) for
/// the solves and the Gram matrix. Guarantees (the paper's Theorems 2-3): when S is a subspace
/// embedding for A's range, Q is orthonormal and A[:, J] = Q·R to a small multiple of the unit
/// roundoff times ‖A‖, for any condition number of A up to about 1/eps; k is rank(A) to within the
/// tolerance, and R's leading k x k block is well conditioned relative to A's first k singular values.
/// Deterministic for a given seed. Throws hone::Error naming `a` (not a tall float/double matrix),
/// `sketch_rows`, `rank_tolerance`, or the sketch's own options when they are invalid, and when
/// Cholesky QR breaks down (a rank tolerance too small for the data).
Cqrrpt cqrrpt(const at::Tensor& a, const CqrrptOptions& options = {});

}  // namespace hone::randnla
