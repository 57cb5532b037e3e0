// Sketch operators (see include/hone/randnla/sketch.h). Randomness is drawn on the CPU in double
// from one seeded generator, in a fixed order per kind, and only then cast and moved to the target
// device: the operator depends on the seed alone, not on the device or dtype it is used on.
#include "hone/randnla/sketch.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <utility>
#include <vector>

#include "hone/core/error.h"

namespace hone::randnla {
namespace {

constexpr std::array<std::pair<const char*, SketchKind>, 5> kSketchKindNames{{
    {"gaussian", SketchKind::kGaussian},
    {"sign", SketchKind::kSign},
    {"sjlt", SketchKind::kSjlt},
    {"count_sketch", SketchKind::kCountSketch},
    {"srht", SketchKind::kSrht},
}};

bool is_power_of_two(std::int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

std::int64_t next_power_of_two(std::int64_t n) {
  std::int64_t p = 1;
  while (p < n) p *= 2;
  return p;
}

/// The unnormalized Walsh-Hadamard transform H_{m'}·x of a contiguous x (m', n), m' a power of two,
/// overwriting x's storage: level h pairs rows i and i+h within blocks of 2h and replaces them by
/// their sum and difference. Ping-pongs between x and one more buffer so no level allocates.
at::Tensor walsh_hadamard_butterfly(at::Tensor x) {
  const std::int64_t padded = x.size(0), cols = x.size(1);
  at::Tensor current = std::move(x);
  at::Tensor next = at::empty_like(current);
  for (std::int64_t half = 1; half < padded; half *= 2) {
    const auto in = current.view({padded / (2 * half), 2, half, cols});
    const auto out = next.view({padded / (2 * half), 2, half, cols});
    const auto top = in.select(1, 0), bottom = in.select(1, 1);
    auto sums = out.select(1, 0), differences = out.select(1, 1);
    at::add_out(sums, top, bottom);
    at::sub_out(differences, top, bottom);
    std::swap(current, next);
  }
  return current;
}

/// For each of `columns` columns, `per_column` distinct rows of 0..rows-1, uniformly at random:
/// a partial Fisher-Yates shuffle of 0..rows-1 per column, undone after the column so each costs
/// O(per_column) rather than O(rows). Returns (per_column, columns) int64 on the CPU.
at::Tensor distinct_rows_per_column(std::int64_t rows, std::int64_t per_column, std::int64_t columns,
                                    at::Generator& generator) {
  const at::Tensor uniforms = at::rand({columns, per_column}, generator, at::kDouble);
  const auto u = uniforms.accessor<double, 2>();
  at::Tensor result = at::empty({per_column, columns}, at::kLong);
  auto chosen = result.accessor<std::int64_t, 2>();
  std::vector<std::int64_t> permutation(static_cast<std::size_t>(rows));
  std::iota(permutation.begin(), permutation.end(), std::int64_t{0});
  std::vector<std::int64_t> swapped_with(static_cast<std::size_t>(per_column));
  for (std::int64_t column = 0; column < columns; ++column) {
    for (std::int64_t i = 0; i < per_column; ++i) {
      const std::int64_t remaining = rows - i;
      const auto offset =
          std::min(static_cast<std::int64_t>(u[column][i] * static_cast<double>(remaining)), remaining - 1);
      std::swap(permutation[i], permutation[i + offset]);
      swapped_with[i] = i + offset;
      chosen[i][column] = permutation[i];
    }
    for (std::int64_t i = per_column - 1; i >= 0; --i) std::swap(permutation[i], permutation[swapped_with[i]]);
  }
  return result;
}

/// ±1 in double, each sign with probability 1/2.
at::Tensor random_signs(at::IntArrayRef shape, at::Generator& generator) {
  return at::randint(0, 2, shape, generator, at::kDouble).mul_(2).sub_(1);
}

}  // namespace

SketchKind parse_sketch_kind(const std::string& name) {
  for (const auto& [spelling, kind] : kSketchKindNames)
    if (name == spelling) return kind;
  fail("unknown sketch kind '{}': expected one of gaussian, sign, sjlt, count_sketch, srht", name);
}

std::string sketch_kind_name(SketchKind kind) {
  for (const auto& [spelling, candidate] : kSketchKindNames)
    if (candidate == kind) return spelling;
  fail("sketch_kind_name: invalid SketchKind value {}", static_cast<int>(kind));
}

at::Tensor hadamard_transform(const at::Tensor& x) {
  HONE_CHECK(x.dim() == 1 || x.dim() == 2, "hadamard_transform: x must be (m) or (m, n), got shape {}", x.sizes());
  HONE_CHECK(is_power_of_two(x.size(0)), "hadamard_transform: x's first dimension must be a power of two, got {}",
             x.size(0));
  HONE_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
             "hadamard_transform: x must be float or double, got {}", x.scalar_type());
  const at::Tensor transformed =
      walsh_hadamard_butterfly(x.reshape({x.size(0), -1}).clone(at::MemoryFormat::Contiguous));
  return transformed.mul_(1.0 / std::sqrt(static_cast<double>(x.size(0)))).view(x.sizes());
}

SketchOperator SketchOperator::make(std::int64_t input_dim, const SketchOptions& options,
                                    const at::TensorOptions& tensor_options) {
  const std::string kind_name = sketch_kind_name(options.kind);
  HONE_CHECK(input_dim >= 1, "SketchOperator::make: input_dim must be >= 1, got {}", input_dim);
  HONE_CHECK(options.rows >= 1, "SketchOperator::make: rows (the sketch dimension d) must be >= 1, got {}",
             options.rows);
  const auto dtype = tensor_options.dtype().toScalarType();
  HONE_CHECK(dtype == at::kFloat || dtype == at::kDouble,
             "SketchOperator::make: the dtype of a {} sketch must be float or double, got {}", kind_name, dtype);

  SketchOperator op;
  op.kind_ = options.kind;
  op.input_dim_ = input_dim;
  op.rows_ = options.rows;
  const std::int64_t m = input_dim, d = options.rows;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  switch (options.kind) {
    case SketchKind::kGaussian:
      op.nnz_ = d;
      op.matrix_ = at::randn({d, m}, generator, at::kDouble).div_(std::sqrt(static_cast<double>(d)));
      op.matrix_ = op.matrix_.to(tensor_options);
      break;
    case SketchKind::kSign:
      op.nnz_ = d;
      op.matrix_ = random_signs({d, m}, generator).div_(std::sqrt(static_cast<double>(d))).to(tensor_options);
      break;
    case SketchKind::kSjlt:
    case SketchKind::kCountSketch: {
      if (options.kind == SketchKind::kSjlt) {
        HONE_CHECK(options.nnz >= 1, "SketchOperator::make: nnz (nonzeros per column of an sjlt) must be >= 1, got {}",
                   options.nnz);
      }
      op.nnz_ = options.kind == SketchKind::kSjlt ? std::min(options.nnz, d) : 1;
      op.row_indices_ = distinct_rows_per_column(d, op.nnz_, m, generator).to(tensor_options.dtype(at::kLong));
      op.values_ = random_signs({op.nnz_, m}, generator).div_(std::sqrt(static_cast<double>(op.nnz_)));
      op.values_ = op.values_.to(tensor_options);
      break;
    }
    case SketchKind::kSrht: {
      op.nnz_ = d;
      op.padded_dim_ = next_power_of_two(m);
      HONE_CHECK(d <= op.padded_dim_,
                 "SketchOperator::make: rows of an srht sketch must be <= {} (input_dim {} padded to a power of two), "
                 "got {}",
                 op.padded_dim_, m, d);
      op.signs_ = random_signs({m}, generator).to(tensor_options);
      op.sampled_rows_ = at::randperm(op.padded_dim_, generator, at::kLong).narrow(0, 0, d);
      op.sampled_rows_ = op.sampled_rows_.to(tensor_options.dtype(at::kLong));
      break;
    }
  }
  // The concrete device (a bare "cuda" becomes "cuda:0"), so apply() can compare it with its input's.
  op.options_ = at::empty({0}, tensor_options).options();
  return op;
}

at::Tensor SketchOperator::apply(const at::Tensor& a) const {
  HONE_CHECK((a.dim() == 1 || a.dim() == 2) && a.size(0) == input_dim_,
             "SketchOperator::apply: a must be ({}) or ({}, n), got shape {}", input_dim_, input_dim_, a.sizes());
  HONE_CHECK(a.scalar_type() == options_.dtype().toScalarType() && a.device() == options_.device(),
             "SketchOperator::apply: a is {} on {}, but this {} sketch was made for {} on {}", a.scalar_type(),
             a.device(), sketch_kind_name(kind_), options_.dtype().toScalarType(), options_.device());
  switch (kind_) {
    case SketchKind::kGaussian:
    case SketchKind::kSign:
      return at::matmul(matrix_, a);
    case SketchKind::kSjlt:
    case SketchKind::kCountSketch: {
      const at::Tensor columns = a.dim() == 1 ? a.unsqueeze(1) : a;
      at::Tensor result = at::zeros({rows_, columns.size(1)}, columns.options());
      // One scatter-add per nonzero slot: row j of a, times its sign, lands in row row_indices_[i][j].
      for (std::int64_t i = 0; i < nnz_; ++i) result.index_add_(0, row_indices_[i], columns * values_[i].unsqueeze(1));
      return a.dim() == 1 ? result.squeeze(1) : result;
    }
    case SketchKind::kSrht: {
      const at::Tensor columns = a.dim() == 1 ? a.unsqueeze(1) : a;
      at::Tensor padded = at::zeros({padded_dim_, columns.size(1)}, columns.options());
      padded.narrow(0, 0, input_dim_).copy_(columns * signs_.unsqueeze(1));
      // sqrt(m'/d) · R · (H_{m'} / sqrt(m')) = R · H_{m'} / sqrt(d).
      at::Tensor result = walsh_hadamard_butterfly(padded).index_select(0, sampled_rows_);
      result.mul_(1.0 / std::sqrt(static_cast<double>(rows_)));
      return a.dim() == 1 ? result.squeeze(1) : result;
    }
  }
  fail("SketchOperator::apply: invalid SketchKind value {}", static_cast<int>(kind_));
}

at::Tensor SketchOperator::dense() const {
  switch (kind_) {
    case SketchKind::kGaussian:
    case SketchKind::kSign:
      return matrix_.clone();
    case SketchKind::kSjlt:
    case SketchKind::kCountSketch: {
      at::Tensor result = at::zeros({rows_, input_dim_}, options_);
      const at::Tensor columns = at::arange(input_dim_, row_indices_.options()).expand({nnz_, input_dim_});
      result.index_put_({row_indices_.reshape({-1}), columns.reshape({-1})}, values_.reshape({-1}),
                        /*accumulate=*/true);
      return result;
    }
    case SketchKind::kSrht:
      return apply(at::eye(input_dim_, options_));
  }
  fail("SketchOperator::dense: invalid SketchKind value {}", static_cast<int>(kind_));
}

}  // namespace hone::randnla
