#pragma once
/// @file Sketch operators: random linear maps S: R^m -> R^d (d << m) that keep the geometry of any
/// fixed low-dimensional subspace, so that a tall problem on A (m x n) can be solved, or
/// preconditioned, on the small S·A (d x n) instead. The building block of randomized SVD and CQRRPT.
///
/// Every kind satisfies E[SᵀS] = I, and for an n-dimensional subspace and d a small multiple of n
/// S is a subspace embedding with high probability: (1-ε)‖x‖ <= ‖Sx‖ <= (1+ε)‖x‖ for every x in
/// the subspace, with ε ≈ sqrt(n/d) for the Gaussian kind (tests: ε <= 0.5 at d = 8n, <= 0.75 at
/// d = 4n, for every kind on random subspaces). The exception is `count_sketch` on a coherent
/// subspace (one concentrated on a few coordinates), which needs d ~ n². The kinds trade the cost
/// of applying S against how small d can be for a given ε:
///
/// | kind           | S                                                   | cost of S·A (A m x n) |
/// | ---            | ---                                                 | ---                   |
/// | `gaussian`     | i.i.d. N(0, 1/d) entries                            | O(d m n) (a matmul)   |
/// | `sign`         | i.i.d. ±1/sqrt(d) entries                           | O(d m n) (a matmul)   |
/// | `sjlt`         | per column, `nnz` distinct random rows ±1/sqrt(nnz) | O(nnz m n)            |
/// | `count_sketch` | per column, one random row ±1 (`sjlt` with nnz 1)   | O(m n)                |
/// | `srht`         | sqrt(m'/d)·R·H·D, m' = m padded to a power of two   | O(m' n log m')        |
///
/// An operator is a pure function of (kind, input_dim, rows, nnz, seed): its random indices and
/// signs are drawn on the CPU from an at::Generator seeded with `seed` and then moved to the target
/// device, so the same seed gives the same operator on every device and for float and double.
#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include <cstdint>
#include <string>

namespace hone::randnla {

enum class SketchKind { kGaussian, kSign, kSjlt, kCountSketch, kSrht };

/// Parses "gaussian", "sign", "sjlt", "count_sketch", "srht". Throws hone::Error listing the valid
/// names otherwise.
SketchKind parse_sketch_kind(const std::string& name);
/// The name parse_sketch_kind() accepts for `kind`.
std::string sketch_kind_name(SketchKind kind);

struct SketchOptions {
  SketchKind kind = SketchKind::kGaussian;
  /// d, the sketch dimension (rows of S); must be >= 1, and <= m' (m padded to a power of two)
  /// for `srht`, which samples distinct rows of the transformed input.
  std::int64_t rows = 0;
  /// Nonzeros per column for `sjlt` (clamped to `rows`); ignored by the other kinds.
  std::int64_t nnz = 8;
  std::uint64_t seed = 0;
};

/// One draw of a sketch operator S (d x m), applied from the left. Sparse kinds never build S: they
/// keep nnz row indices and signs per column and apply with index_add_. Cheap to copy (tensors are
/// shared).
class SketchOperator {
 public:
  /// Draws S for inputs of length `input_dim` (m), on `tensor_options`' device and dtype (float or
  /// double). Costs O(d m) for the dense kinds, O(nnz m) for the sparse ones and O(m' + d) for
  /// `srht`. Throws hone::Error naming `input_dim`, `rows`, `nnz` or the dtype when they are invalid.
  static SketchOperator make(std::int64_t input_dim, const SketchOptions& options,
                             const at::TensorOptions& tensor_options);

  /// S·a for a of shape (m) or (m, n), on S's device and dtype (any strides); returns (d) or (d, n).
  /// Costs as in the table above. Throws hone::Error naming `a` when its shape, dtype or device
  /// does not match.
  at::Tensor apply(const at::Tensor& a) const;

  /// S as a dense (d, m) tensor: what apply() multiplies by, for tests and small problems. Costs
  /// O(d m) memory (and O(m m' log m') time for `srht`, which transforms the identity).
  at::Tensor dense() const;

  SketchKind kind() const { return kind_; }
  std::int64_t input_dim() const { return input_dim_; }
  std::int64_t rows() const { return rows_; }
  /// Nonzeros per column: the clamped `nnz` for `sjlt`, 1 for `count_sketch`, d for the others.
  std::int64_t nnz() const { return nnz_; }
  at::TensorOptions options() const { return options_; }

 private:
  SketchOperator() = default;

  SketchKind kind_ = SketchKind::kGaussian;
  std::int64_t input_dim_ = 0;
  std::int64_t rows_ = 0;
  std::int64_t nnz_ = 0;
  at::TensorOptions options_;
  at::Tensor matrix_;            ///< gaussian, sign: S itself (d, m)
  at::Tensor row_indices_;       ///< sjlt, count_sketch: (nnz, m) int64, distinct within a column
  at::Tensor values_;            ///< sjlt, count_sketch: (nnz, m) ±1/sqrt(nnz)
  at::Tensor signs_;             ///< srht: D's diagonal (m), ±1
  at::Tensor sampled_rows_;      ///< srht: R's rows (d) int64, distinct, in [0, m')
  std::int64_t padded_dim_ = 0;  ///< srht: m'
};

/// The normalized Walsh-Hadamard transform H·x along dim 0 of x (m' or m' x n, m' a power of two),
/// with H = H_{m'} / sqrt(m') orthogonal and symmetric (Sylvester order: H[i][j] = (-1)^popcount(i&j)
/// / sqrt(m')). A butterfly of log2(m') reshaped add/subtract steps: O(m' n log m'), no dense H.
/// Throws hone::Error naming `x` when its first dimension is not a power of two.
at::Tensor hadamard_transform(const at::Tensor& x);

}  // namespace hone::randnla
