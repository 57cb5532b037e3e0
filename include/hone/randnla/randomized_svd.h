#pragma once
/// @file Randomized truncated SVD (Halko, Martinsson & Tropp 2011, "Finding structure with
/// randomness", Algorithms 4.4 and 5.1): a rank-r approximation A ≈ U·diag(S)·Vh of an m x n matrix
/// from a few passes over A, for when r << min(m, n) and a full SVD (O(m n min(m, n))) is too dear.
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "hone/randnla/sketch.h"

namespace hone::randnla {

struct RandomizedSvdOptions {
  /// r, the number of singular triplets returned; 1 <= r <= min(m, n).
  std::int64_t rank = 0;
  /// p, extra test vectors beyond r (the range finder uses l = min(r + p, min(m, n)) of them);
  /// a handful makes the expected error close to optimal. >= 0.
  std::int64_t oversampling = 10;
  /// q, multiplications by (A Aᵀ) that sharpen a slowly decaying spectrum: the error bound's
  /// dependence on the tail shrinks as σ_{r+1}^(2q+1). >= 0.
  std::int64_t power_iterations = 2;
  std::uint64_t seed = 0;
  /// The test matrix Ω (n x l) is Sᵀ for a SketchOperator S of this kind mapping R^n -> R^l.
  SketchKind test_matrix = SketchKind::kGaussian;
};

/// A ≈ u · diag(s) · vh, with s non-increasing and non-negative.
struct RandomizedSvd {
  at::Tensor u;   ///< (m, r), orthonormal columns
  at::Tensor s;   ///< (r)
  at::Tensor vh;  ///< (r, n), orthonormal rows
};

/// Randomized SVD of `a` (m x n, float or double, any device): Y = A·Ω for a random test matrix Ω
/// (n x l), Q = orth(Y); q power iterations Q = orth(A·orth(Aᵀ·Q)), re-orthonormalizing with a
/// QR after every multiply so rounding does not collapse Q onto the top singular vector; then the
/// SVD of the small B = Qᵀ·A (l x n), U = Q·U_B, truncated to rank r.
///
/// Cost: (2q + 2) products of A with an l-column matrix, O((q + 1) m n l), plus O((m + n) l²) for
/// the QRs and the small SVD; Ω costs what SketchOptions' table says for its kind.
///
/// Guarantee (Gaussian Ω, p >= 2, q = 0, HMT Theorem 10.5): the expected Frobenius error of the
/// rank-l approximation Q·Qᵀ·A is at most (1 + r/(p-1))^(1/2) times the optimal rank-r tail
/// (Σ_{j>r} σ_j²)^(1/2); truncating it to rank r adds at most σ_{r+1} in spectral norm (HMT §9.4);
/// power iterations (Corollary 10.10) drive the error towards optimal on decaying spectra. When
/// rank(A) <= l, A is recovered to rounding error. Deterministic for a given seed. Throws
/// hone::Error naming `a`, `rank`, `oversampling` or `power_iterations` when they are invalid.
RandomizedSvd randomized_svd(const at::Tensor& a, const RandomizedSvdOptions& options);

}  // namespace hone::randnla
