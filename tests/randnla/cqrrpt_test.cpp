// CQRRPT on tall matrices with a known spectrum (random orthonormal factors): A[:, J] = Q·R to
// rounding with Q orthonormal and R upper trapezoidal, for condition numbers 10 and 1e10 and every
// sketch kind; the numerical rank of rank-deficient matrices; pivoting; bad input.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <tuple>

#include "hone/core/error.h"
#include "hone/randnla/cqrrpt.h"
#include "support/error_message.h"
#include "support/matrix_with_spectrum.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone::randnla {
namespace {

using testing::error_message;
using ::testing::HasSubstr;
using testing::kFp64Factorization;
using testing::matrix_with_spectrum;
using testing::relative_error;

/// ‖A[:, J] - Q·R‖_F / ‖A‖_F.
double factorization_error(const at::Tensor& a, const Cqrrpt& qr) {
  return relative_error(at::matmul(qr.q, qr.r), a.index_select(1, qr.pivots));
}

double orthonormality_error(const at::Tensor& q) {
  return (at::matmul(q.t(), q) - at::eye(q.size(1), q.options())).norm().item<double>();
}

void expect_valid_pivots_and_triangular_r(const Cqrrpt& qr, std::int64_t n) {
  EXPECT_TRUE(at::equal(std::get<0>(qr.pivots.sort()), at::arange(n, at::kLong))) << "not a permutation";
  EXPECT_TRUE(at::equal(qr.r.tril(-1), at::zeros_like(qr.r))) << "R is not upper trapezoidal";
}

CqrrptOptions options_with_sketch(SketchKind kind) {
  CqrrptOptions options;
  options.sketch = kind;
  options.seed = 7;
  return options;
}

/// (sketch kind, log10 of A's condition number)
class CqrrptTest : public ::testing::TestWithParam<std::tuple<SketchKind, int>> {};

TEST_P(CqrrptTest, FactorsATallMatrixToRounding) {
  const auto [kind, log_condition] = GetParam();
  const std::int64_t m = 1000, n = 37;
  const at::Tensor a = matrix_with_spectrum(m, n, at::logspace(0, -log_condition, n, 10, at::kDouble), 1);
  const auto qr = cqrrpt(a, options_with_sketch(kind));
  EXPECT_EQ(qr.rank, n);
  ASSERT_EQ(qr.q.sizes(), (at::IntArrayRef{m, n}));
  ASSERT_EQ(qr.r.sizes(), (at::IntArrayRef{n, n}));
  EXPECT_LE(factorization_error(a, qr), kFp64Factorization.relative);
  EXPECT_LE(orthonormality_error(qr.q), kFp64Factorization.absolute);
  expect_valid_pivots_and_triangular_r(qr, n);
}

INSTANTIATE_TEST_SUITE_P(SketchesAndConditionNumbers, CqrrptTest,
                         ::testing::Combine(::testing::Values(SketchKind::kSjlt, SketchKind::kGaussian,
                                                              SketchKind::kSign, SketchKind::kCountSketch,
                                                              SketchKind::kSrht),
                                            ::testing::Values(1, 10)),
                         [](const auto& info) {
                           return sketch_kind_name(std::get<0>(info.param)) + "_cond_1e" +
                                  std::to_string(std::get<1>(info.param));
                         });

TEST(CqrrptRankTest, FindsTheRankOfARankDeficientMatrix) {
  const std::int64_t m = 1000, n = 37, rank = 20;
  const at::Tensor a = matrix_with_spectrum(m, n, at::logspace(0, -4, rank, 10, at::kDouble), 2);
  const auto qr = cqrrpt(a, options_with_sketch(SketchKind::kSjlt));
  EXPECT_EQ(qr.rank, rank);
  ASSERT_EQ(qr.q.sizes(), (at::IntArrayRef{m, rank}));
  ASSERT_EQ(qr.r.sizes(), (at::IntArrayRef{rank, n}));
  EXPECT_LE(factorization_error(a, qr), kFp64Factorization.relative);
  EXPECT_LE(orthonormality_error(qr.q), kFp64Factorization.absolute);
  expect_valid_pivots_and_triangular_r(qr, n);
}

TEST(CqrrptRankTest, RepeatedColumnsAreNotCountedTwice) {
  // 20 independent columns followed by copies of 17 of them: rank 20, and the pivots pick one of
  // each pair among the first 20.
  auto generator = at::make_generator<at::CPUGeneratorImpl>(3);
  const at::Tensor base = at::randn({777, 20}, generator, at::kDouble);
  const at::Tensor a = at::cat({base, base.narrow(1, 3, 17)}, 1);
  const auto qr = cqrrpt(a, options_with_sketch(SketchKind::kGaussian));
  EXPECT_EQ(qr.rank, 20);
  EXPECT_LE(factorization_error(a, qr), kFp64Factorization.relative);
  EXPECT_LE(orthonormality_error(qr.q), kFp64Factorization.absolute);
  const at::Tensor leading = qr.pivots.narrow(0, 0, 20);
  const at::Tensor original = at::where(leading >= 20, leading - 17, leading);  // column j >= 20 copies j - 17
  EXPECT_TRUE(at::equal(std::get<0>(original.sort()), at::arange(20, at::kLong)));
}

TEST(CqrrptRankTest, AnExplicitToleranceTruncatesTheSpectrum) {
  // s_j from 1 to 1e-10: a relative tolerance of 1e-5 keeps the columns whose sketch pivots exceed
  // it, about the 18 singular values above 1e-5 (pivoted QR's diagonal tracks them within a few
  // indices), and the dropped part bounds the error.
  const std::int64_t n = 37;
  const at::Tensor s = at::logspace(0, -10, n, 10, at::kDouble);
  const at::Tensor a = matrix_with_spectrum(1000, n, s, 4);
  auto options = options_with_sketch(SketchKind::kSjlt);
  options.rank_tolerance = 1e-5;
  const auto qr = cqrrpt(a, options);
  const std::int64_t above = s.gt(1e-5).sum().item<std::int64_t>();
  EXPECT_NEAR(static_cast<double>(qr.rank), static_cast<double>(above), 4.0);
  EXPECT_LE(factorization_error(a, qr), 1e-4);
  EXPECT_LE(orthonormality_error(qr.q), kFp64Factorization.absolute);
}

TEST(CqrrptRankTest, ZeroMatrixHasRankZero) {
  const auto qr = cqrrpt(at::zeros({50, 7}, at::kDouble));
  EXPECT_EQ(qr.rank, 0);
  EXPECT_EQ(qr.q.sizes(), (at::IntArrayRef{50, 0}));
  EXPECT_EQ(qr.r.sizes(), (at::IntArrayRef{0, 7}));
}

TEST(CqrrptPivotTest, TheDominantColumnComesFirst) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(5);
  const at::Tensor a = at::randn({1000, 37}, generator, at::kDouble);
  a.select(1, 23).mul_(1000);
  const auto qr = cqrrpt(a, options_with_sketch(SketchKind::kSjlt));
  EXPECT_EQ(qr.pivots[0].item<std::int64_t>(), 23);
  EXPECT_LE(factorization_error(a, qr), kFp64Factorization.relative);
}

TEST(CqrrptPivotTest, DeterministicForASeed) {
  const at::Tensor a = matrix_with_spectrum(500, 31, at::logspace(0, -3, 31, 10, at::kDouble), 6);
  const auto first = cqrrpt(a, options_with_sketch(SketchKind::kSjlt));
  const auto second = cqrrpt(a, options_with_sketch(SketchKind::kSjlt));
  EXPECT_TRUE(at::equal(first.pivots, second.pivots));
  EXPECT_TRUE(at::equal(first.q, second.q));
  EXPECT_TRUE(at::equal(first.r, second.r));
}

TEST(CqrrptFloatTest, FactorsAFloatMatrix) {
  const std::int64_t n = 37;
  const at::Tensor a = matrix_with_spectrum(1000, n, at::logspace(0, -2, n, 10, at::kDouble), 8).to(at::kFloat);
  const auto qr = cqrrpt(a, options_with_sketch(SketchKind::kSjlt));
  EXPECT_EQ(qr.q.scalar_type(), at::kFloat);
  EXPECT_EQ(qr.rank, n);
  EXPECT_LE(factorization_error(a, qr), testing::kFp32.relative);
  EXPECT_LE(orthonormality_error(qr.q), testing::kFp32.relative);
}

TEST(CqrrptErrorsTest, BadInputNamesTheArgument) {
  EXPECT_THAT(error_message([] {
                cqrrpt(at::ones({10, 20}, at::kDouble));
              }),
              HasSubstr("a must be tall (m >= n), got shape [10,20]"));
  EXPECT_THAT(error_message([] { cqrrpt(at::ones({10}, at::kDouble)); }),
              HasSubstr("a must be a non-empty matrix (m, n), got shape [10]"));
  EXPECT_THAT(error_message([] {
                cqrrpt(at::ones({30, 5}, at::kInt));
              }),
              HasSubstr("a must be float or double, got Int"));
  CqrrptOptions options;
  options.sketch_rows = 4;
  EXPECT_THAT(error_message([&] {
                cqrrpt(at::ones({30, 5}, at::kDouble), options);
              }),
              HasSubstr("sketch_rows must be >= n = 5"));
  options.sketch_rows = 0;
  options.rank_tolerance = -1.0;
  EXPECT_THAT(error_message([&] {
                cqrrpt(at::ones({30, 5}, at::kDouble), options);
              }),
              HasSubstr("rank_tolerance must be >= 0"));
  options = options_with_sketch(SketchKind::kSrht);
  options.sketch_rows = 40;  // 30 pads to 32
  EXPECT_THAT(error_message([&] {
                cqrrpt(at::ones({30, 5}, at::kDouble), options);
              }),
              HasSubstr("rows of an srht sketch must be <= 32"));
}

}  // namespace
}  // namespace hone::randnla
