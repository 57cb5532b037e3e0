// Sketch operators: every kind's fast apply() against its dense matrix, the fast Walsh-Hadamard
// transform against the dense Sylvester matrix, each kind's structure (entries, nonzeros per
// column), and the two properties RandNLA relies on: E[SᵀS] = I and subspace embedding.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <utility>

#include "hone/core/error.h"
#include "hone/randnla/sketch.h"
#include "support/error_message.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone::randnla {
namespace {

using testing::error_message;
using ::testing::HasSubstr;
using testing::kFp32;
using testing::kFp64;
using testing::relative_error;

constexpr std::array kAllKinds{SketchKind::kGaussian, SketchKind::kSign, SketchKind::kSjlt, SketchKind::kCountSketch,
                               SketchKind::kSrht};

/// Largest |σ - 1| allowed over the singular values of S·Q for an orthonormal Q (n = 10 columns),
/// at d = 8n and d = 4n: a Gaussian S is off by about sqrt(n/d) (0.35, 0.5) plus fluctuations, and
/// the other kinds are no worse on an incoherent subspace (measured over 10 seeds: at most 0.41 at
/// 8n, 0.59 at 4n).
constexpr double kEmbeddingDistortionAt8n = 0.5;
constexpr double kEmbeddingDistortionAt4n = 0.75;

at::Tensor random_matrix(std::int64_t m, std::int64_t n, std::uint64_t seed) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn({m, n}, generator, at::kDouble);
}

SketchOperator make_sketch(SketchKind kind, std::int64_t input_dim, std::int64_t rows, std::uint64_t seed,
                           at::ScalarType dtype = at::kDouble) {
  SketchOptions options;
  options.kind = kind;
  options.rows = rows;
  options.seed = seed;
  return SketchOperator::make(input_dim, options, at::TensorOptions().dtype(dtype));
}

/// max |σ_i(S·Q) - 1| for Q an orthonormal basis of `a`'s columns.
double embedding_distortion(const SketchOperator& sketch, const at::Tensor& a) {
  const at::Tensor q = std::get<0>(at::linalg_qr(a, "reduced"));
  return (at::linalg_svdvals(sketch.apply(q)) - 1).abs().max().item<double>();
}

class SketchKindTest : public ::testing::TestWithParam<SketchKind> {};

TEST_P(SketchKindTest, ApplyMatchesDenseTimesA) {
  const std::int64_t m = 777, n = 37, d = 150;
  const auto sketch = make_sketch(GetParam(), m, d, 11);
  const at::Tensor dense = sketch.dense();
  ASSERT_EQ(dense.sizes(), (at::IntArrayRef{d, m}));
  const at::Tensor a = random_matrix(m, n, 1);
  const at::Tensor applied = sketch.apply(a);
  ASSERT_EQ(applied.sizes(), (at::IntArrayRef{d, n}));
  EXPECT_LE(relative_error(applied, at::matmul(dense, a)), kFp64.relative);
  // A vector, and a non-contiguous matrix (a transposed view).
  const at::Tensor x = random_matrix(m, 1, 2).squeeze(1);
  ASSERT_EQ(sketch.apply(x).sizes(), (at::IntArrayRef{d}));
  EXPECT_LE(relative_error(sketch.apply(x), at::matmul(dense, x)), kFp64.relative);
  const at::Tensor transposed = random_matrix(n, m, 3).t();
  ASSERT_FALSE(transposed.is_contiguous());
  EXPECT_LE(relative_error(sketch.apply(transposed), at::matmul(dense, transposed)), kFp64.relative);
}

TEST_P(SketchKindTest, FloatOperatorIsTheDoubleOneRounded) {
  const std::int64_t m = 601, n = 13, d = 64;
  const auto exact = make_sketch(GetParam(), m, d, 5, at::kDouble);
  const auto rounded = make_sketch(GetParam(), m, d, 5, at::kFloat);
  EXPECT_EQ(rounded.dense().scalar_type(), at::kFloat);
  EXPECT_LE(relative_error(rounded.dense(), exact.dense()), kFp32.relative);
  const at::Tensor a = random_matrix(m, n, 6);
  EXPECT_LE(relative_error(rounded.apply(a.to(at::kFloat)), exact.apply(a)), kFp32.relative);
}

TEST_P(SketchKindTest, EmbedsARandomSubspace) {
  const std::int64_t m = 1000, n = 10;
  const std::array<std::pair<std::int64_t, double>, 2> cases{
      {{8 * n, kEmbeddingDistortionAt8n}, {4 * n, kEmbeddingDistortionAt4n}}};
  for (const auto& [d, distortion] : cases) {
    for (std::uint64_t seed = 0; seed < 10; ++seed) {
      const auto sketch = make_sketch(GetParam(), m, d, 100 + seed);
      // Columns on very different scales: the embedding must not care (it acts on the span).
      const at::Tensor a = random_matrix(m, n, seed) * at::logspace(0, 6, n, 10, at::kDouble);
      EXPECT_LE(embedding_distortion(sketch, a), distortion) << "d " << d << ", seed " << seed;
    }
  }
}

TEST_P(SketchKindTest, EmbedsACoherentSubspaceUnlessCountSketch) {
  // The span of e_1..e_n: all its mass sits on n coordinates. CountSketch maps each to one random
  // row, and two of n = 10 columns share one of d = 80 rows with probability 1 - Π(1 - i/d) ≈ 0.44,
  // which sends a singular value to 0 (it needs d ~ n², not a multiple of n). The others spread
  // every coordinate over several rows (sjlt) or all of them (dense kinds, srht).
  const std::int64_t m = 1000, n = 10, d = 8 * n;
  at::Tensor coherent = at::zeros({m, n}, at::kDouble);
  coherent.narrow(0, 0, n).copy_(at::eye(n, at::kDouble));
  double worst = 0;
  for (std::uint64_t seed = 0; seed < 10; ++seed)
    worst = std::max(worst, embedding_distortion(make_sketch(GetParam(), m, d, 100 + seed), coherent));
  if (GetParam() == SketchKind::kCountSketch) {
    EXPECT_GT(worst, 0.99) << "no collision in 10 draws (each collides with probability 0.44)";
  } else {
    EXPECT_LE(worst, kEmbeddingDistortionAt8n);
  }
}

TEST_P(SketchKindTest, IsIsotropicInExpectation) {
  // E[SᵀS] = I: the mean of SᵀS over N independent seeds approaches I like 1/sqrt(N). Every kind's
  // off-diagonal entries have variance about 1/d, so ‖mean - I‖_F / ‖I‖_F ≈ sqrt(m / (d N))
  // (srht a little less: it samples rows without replacement). A scale error c on S leaves a bias
  // |c² - 1| that does not average away, which the trace isolates: tr(SᵀS) = ‖S‖_F² is m exactly
  // for every kind but gaussian, whose mean over 400 draws has standard deviation sqrt(2/(m d N)) ≈ 0.002.
  const std::int64_t m = 61, d = 16;
  auto mean_of_gram = [&](std::int64_t draws) {
    at::Tensor sum = at::zeros({m, m}, at::kDouble);
    for (std::int64_t seed = 0; seed < draws; ++seed) {
      const at::Tensor s = make_sketch(GetParam(), m, d, 1000 + static_cast<std::uint64_t>(seed)).dense();
      sum += at::matmul(s.t(), s);
    }
    return sum / static_cast<double>(draws);
  };
  const at::Tensor identity = at::eye(m, at::kDouble);
  const at::Tensor many = mean_of_gram(400);
  const double few_error = relative_error(mean_of_gram(25), identity), many_error = relative_error(many, identity);
  EXPECT_LT(many_error, 0.5 * few_error) << "25 draws: " << few_error << ", 400 draws: " << many_error;
  EXPECT_LT(many_error, 1.25 * std::sqrt(static_cast<double>(m) / (d * 400.0)));
  EXPECT_NEAR(many.trace().item<double>() / m, 1.0, 0.01);
}

TEST_P(SketchKindTest, SameSeedSameOperatorDifferentSeedDifferentOperator) {
  const at::Tensor first = make_sketch(GetParam(), 301, 40, 5).dense();
  EXPECT_TRUE(at::equal(first, make_sketch(GetParam(), 301, 40, 5).dense()));
  EXPECT_GT((first - make_sketch(GetParam(), 301, 40, 6).dense()).abs().max().item<double>(), 0.1);
}

INSTANTIATE_TEST_SUITE_P(AllKinds, SketchKindTest, ::testing::ValuesIn(kAllKinds),
                         [](const auto& info) { return sketch_kind_name(info.param); });

TEST(SketchStructureTest, SjltHasNnzDistinctSignedEntriesPerColumn) {
  const std::int64_t m = 777, d = 50, nnz = 8;
  const at::Tensor s = make_sketch(SketchKind::kSjlt, m, d, 3).dense();
  // Distinct rows: a repeated row would merge two entries into one (0 or ±2/sqrt(nnz)).
  EXPECT_TRUE(at::equal(s.ne(0).sum(0), at::full({m}, nnz, at::kLong)));
  const at::Tensor values = s.masked_select(s.ne(0));
  EXPECT_LE((values.abs() - 1 / std::sqrt(static_cast<double>(nnz))).abs().max().item<double>(), 1e-15);
  const double positive = values.gt(0).to(at::kDouble).mean().item<double>();
  EXPECT_NEAR(positive, 0.5, 0.05);
  // Rows are hit uniformly: about m·nnz/d = 124 times each (standard deviation ~11).
  const at::Tensor hits = s.ne(0).sum(1).to(at::kDouble);
  EXPECT_GT(hits.min().item<double>(), 0.6 * m * nnz / d);
  EXPECT_LT(hits.max().item<double>(), 1.4 * m * nnz / d);
}

TEST(SketchStructureTest, SjltClampsNnzToRows) {
  SketchOptions options;
  options.kind = SketchKind::kSjlt;
  options.rows = 5;
  options.nnz = 8;
  const auto sketch = SketchOperator::make(99, options, at::TensorOptions().dtype(at::kDouble));
  EXPECT_EQ(sketch.nnz(), 5);
  const at::Tensor s = sketch.dense();
  EXPECT_TRUE(at::equal(s.ne(0).sum(0), at::full({99}, 5, at::kLong)));
  EXPECT_LE((s.abs() - 1 / std::sqrt(5.0)).abs().max().item<double>(), 1e-15);
}

TEST(SketchStructureTest, CountSketchHasOneSignPerColumn) {
  const at::Tensor s = make_sketch(SketchKind::kCountSketch, 777, 50, 3).dense();
  EXPECT_TRUE(at::equal(s.ne(0).sum(0), at::ones({777}, at::kLong)));
  EXPECT_TRUE(at::equal(s.abs().sum(0), at::ones({777}, at::kDouble)));
}

TEST(SketchStructureTest, SignAndSrhtEntriesAreAllPlusOrMinusOneOverSqrtD) {
  // SRHT = R·H_{m'}·D / sqrt(d) restricted to the first m columns: every entry is ±1/sqrt(d).
  for (const auto kind : {SketchKind::kSign, SketchKind::kSrht}) {
    const at::Tensor s = make_sketch(kind, 777, 40, 3).dense();
    EXPECT_LE((s.abs() - 1 / std::sqrt(40.0)).abs().max().item<double>(), 1e-14) << sketch_kind_name(kind);
    EXPECT_NEAR(s.gt(0).to(at::kDouble).mean().item<double>(), 0.5, 0.02) << sketch_kind_name(kind);
  }
}

TEST(SketchStructureTest, SrhtRowsAreOrthogonalWithoutPadding) {
  // m = m' = 512: S·Sᵀ = R·H·D·D·Hᵀ·Rᵀ · m'/d = (m'/d)·I, since H is orthogonal and the rows distinct.
  const at::Tensor s = make_sketch(SketchKind::kSrht, 512, 40, 3).dense();
  EXPECT_LE(relative_error(at::matmul(s, s.t()), at::eye(40, at::kDouble) * (512.0 / 40.0)), kFp64.relative);
}

TEST(SketchStructureTest, GaussianEntriesHaveVarianceOneOverD) {
  const std::int64_t m = 777, d = 50;
  const at::Tensor s = make_sketch(SketchKind::kGaussian, m, d, 3).dense();
  // 38850 samples: the mean's standard deviation is ~0.005/sqrt(d), the variance's ~0.7%.
  EXPECT_NEAR(s.mean().item<double>() * std::sqrt(d), 0.0, 0.02);
  EXPECT_NEAR(s.var().item<double>() * d, 1.0, 0.025);
}

TEST(HadamardTransformTest, MatchesTheDenseSylvesterMatrix) {
  const std::int64_t m = 1024;
  // H[i][j] = (-1)^popcount(i & j) / sqrt(m), built entry by entry.
  at::Tensor h = at::empty({m, m}, at::kDouble);
  auto entries = h.accessor<double, 2>();
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < m; ++j)
      entries[i][j] = (std::popcount(static_cast<std::uint64_t>(i & j)) % 2 == 0 ? 1.0 : -1.0) / std::sqrt(1024.0);
  const at::Tensor x = random_matrix(m, 37, 4);
  EXPECT_LE(relative_error(hadamard_transform(x), at::matmul(h, x)), kFp64.relative);
  const at::Tensor v = x.select(1, 3);
  EXPECT_LE(relative_error(hadamard_transform(v), at::matmul(h, v)), kFp64.relative);
  // Orthogonal and symmetric: H·H = I. The input is untouched.
  const at::Tensor copy = x.clone();
  EXPECT_LE(relative_error(hadamard_transform(hadamard_transform(x)), x), kFp64.relative);
  EXPECT_TRUE(at::equal(x, copy));
  EXPECT_LE(relative_error(hadamard_transform(at::ones({1, 3}, at::kDouble)), at::ones({1, 3}, at::kDouble)),
            kFp64.relative);
}

TEST(SketchKindNameTest, ParsesEveryNameItPrints) {
  for (const auto kind : kAllKinds) EXPECT_EQ(parse_sketch_kind(sketch_kind_name(kind)), kind);
  EXPECT_EQ(sketch_kind_name(SketchKind::kCountSketch), "count_sketch");
  EXPECT_THAT(error_message([] { parse_sketch_kind("hadamard"); }),
              HasSubstr("'hadamard': expected one of gaussian, sign, sjlt, count_sketch, srht"));
}

TEST(SketchErrorsTest, BadOptionsNameTheArgument) {
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  SketchOptions options;
  options.rows = 0;
  EXPECT_THAT(error_message([&] { SketchOperator::make(100, options, f64); }), HasSubstr("rows"));
  options.rows = 10;
  EXPECT_THAT(error_message([&] { SketchOperator::make(0, options, f64); }), HasSubstr("input_dim must be >= 1"));
  EXPECT_THAT(error_message([&] { SketchOperator::make(100, options, at::TensorOptions().dtype(at::kInt)); }),
              HasSubstr("must be float or double, got Int"));
  options.kind = SketchKind::kSjlt;
  options.nnz = 0;
  EXPECT_THAT(error_message([&] { SketchOperator::make(100, options, f64); }), HasSubstr("nnz"));
  options.kind = SketchKind::kSrht;
  options.rows = 129;  // 100 pads to 128
  EXPECT_THAT(error_message([&] { SketchOperator::make(100, options, f64); }),
              HasSubstr("rows of an srht sketch must be <= 128"));
}

TEST(SketchErrorsTest, ApplyChecksTheInput) {
  const auto sketch = make_sketch(SketchKind::kSjlt, 100, 10, 1);
  EXPECT_THAT(error_message([&] {
                sketch.apply(at::ones({99, 3}, at::kDouble));
              }),
              HasSubstr("a must be (100) or (100, n), got shape [99,3]"));
  EXPECT_THAT(error_message([&] { sketch.apply(at::ones({100, 3, 2}, at::kDouble)); }), HasSubstr("a must be"));
  EXPECT_THAT(error_message([&] {
                sketch.apply(at::ones({100, 3}, at::kFloat));
              }),
              HasSubstr("a is Float on cpu, but this sjlt sketch was made for Double on cpu"));
  EXPECT_THAT(error_message([] { hadamard_transform(at::ones({100}, at::kDouble)); }),
              HasSubstr("x's first dimension must be a power of two, got 100"));
}

}  // namespace
}  // namespace hone::randnla
