// Randomized SVD against the exact truncated SVD (at::linalg_svd) on matrices with a known
// spectrum, built as U·diag(s)·Vᵀ from random orthonormal factors: near-optimal error, orthonormal
// factors, exact recovery at exact rank, the effect of power iterations, and bad options.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdint>

#include "hone/core/error.h"
#include "hone/randnla/randomized_svd.h"
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

/// With q = 2 power iterations the randomized error may exceed the optimal rank-r error by at most
/// this factor (measured: 1.0000 in Frobenius norm on exp(-j/4) for every test matrix kind, 1.002
/// in spectral norm on 1/sqrt(j)).
constexpr double kNearOptimalFactor = 1.1;
/// HMT Theorem 10.5's expected bound without power iterations, sqrt(1 + r/(p-1)) at r = 20, p = 10
/// (measured 1.02-1.07).
constexpr double kNoPowerIterationFactor = 1.795;

/// s_j = exp(-j / 4): rapidly decaying, σ_21/σ_1 ≈ 7e-3.
at::Tensor decaying_spectrum(std::int64_t k) { return at::exp(-at::arange(k, at::kDouble) / 4.0); }

at::Tensor reconstruct(const RandomizedSvd& svd) { return at::matmul(svd.u * svd.s, svd.vh); }

/// ‖A - A_r‖_F / ‖A‖_F for A_r the exact truncated SVD (Eckart-Young: the best rank-r error).
double optimal_error(const at::Tensor& a, std::int64_t rank) {
  const auto [u, s, vh] = at::linalg_svd(a, /*full_matrices=*/false);
  const at::Tensor truncated = at::matmul(u.narrow(1, 0, rank) * s.narrow(0, 0, rank), vh.narrow(0, 0, rank));
  return relative_error(truncated, a);
}

double orthonormality_error(const at::Tensor& columns) {
  return (at::matmul(columns.t(), columns) - at::eye(columns.size(1), columns.options())).norm().item<double>();
}

RandomizedSvdOptions options_with_rank(std::int64_t rank, SketchKind test_matrix = SketchKind::kGaussian) {
  RandomizedSvdOptions options;
  options.rank = rank;
  options.seed = 42;
  options.test_matrix = test_matrix;
  return options;
}

class RandomizedSvdKindTest : public ::testing::TestWithParam<SketchKind> {};

TEST_P(RandomizedSvdKindTest, NearOptimalOnARapidlyDecayingSpectrum) {
  const std::int64_t m = 777, n = 237, rank = 20;
  const at::Tensor a = matrix_with_spectrum(m, n, decaying_spectrum(n), 1);
  const auto svd = randomized_svd(a, options_with_rank(rank, GetParam()));
  ASSERT_EQ(svd.u.sizes(), (at::IntArrayRef{m, rank}));
  ASSERT_EQ(svd.s.sizes(), (at::IntArrayRef{rank}));
  ASSERT_EQ(svd.vh.sizes(), (at::IntArrayRef{rank, n}));
  const double optimal = optimal_error(a, rank);
  EXPECT_LE(relative_error(reconstruct(svd), a), kNearOptimalFactor * optimal) << "optimal " << optimal;
  EXPECT_LE(orthonormality_error(svd.u), kFp64Factorization.absolute);
  EXPECT_LE(orthonormality_error(svd.vh.t()), kFp64Factorization.absolute);
  auto options = options_with_rank(rank, GetParam());
  options.power_iterations = 0;
  EXPECT_LE(relative_error(reconstruct(randomized_svd(a, options)), a), kNoPowerIterationFactor * optimal);
}

INSTANTIATE_TEST_SUITE_P(AllTestMatrices, RandomizedSvdKindTest,
                         ::testing::Values(SketchKind::kGaussian, SketchKind::kSign, SketchKind::kSjlt,
                                           SketchKind::kCountSketch, SketchKind::kSrht),
                         [](const auto& info) { return sketch_kind_name(info.param); });

TEST(RandomizedSvdTest, LeadingSingularValuesMatchTheExactOnes) {
  const at::Tensor s = decaying_spectrum(237);
  const at::Tensor a = matrix_with_spectrum(777, 237, s, 2);
  const auto svd = randomized_svd(a, options_with_rank(20));
  // With q = 2 and 10 extra samples, Q misses the top 20 directions by about (σ_31/σ_20)^5 ≈ 1e-6
  // and singular values err to second order, (σ_31/σ_20)^10 ≈ 1e-12 for σ_20 at worst; measured:
  // rounding (1.2e-15).
  EXPECT_LE(relative_error(svd.s, s.narrow(0, 0, 20)), kFp64Factorization.relative);
  EXPECT_TRUE(at::all(svd.s.narrow(0, 0, 19) >= svd.s.narrow(0, 1, 19)).item<bool>());
}

TEST(RandomizedSvdTest, RecoversAnExactRankMatrix) {
  const std::int64_t rank = 20;
  const at::Tensor s = at::logspace(0, -3, rank, 10, at::kDouble);
  const at::Tensor a = matrix_with_spectrum(1000, 301, s, 3);
  auto options = options_with_rank(rank);
  options.oversampling = 5;
  const auto svd = randomized_svd(a, options);
  EXPECT_LE(relative_error(reconstruct(svd), a), kFp64Factorization.relative);
  EXPECT_LE(relative_error(svd.s, s), kFp64Factorization.relative);
  EXPECT_LE(orthonormality_error(svd.u), kFp64Factorization.absolute);
  EXPECT_LE(orthonormality_error(svd.vh.t()), kFp64Factorization.absolute);
}

TEST(RandomizedSvdTest, PowerIterationsSharpenASlowlyDecayingSpectrum) {
  // s_j = 1/sqrt(j+1): the tail dominates, so without power iterations the range finder mixes
  // tail directions into Q. Measured in spectral norm against σ_{r+1}, the optimal spectral error.
  const std::int64_t m = 777, n = 237, rank = 10;
  const at::Tensor s = at::rsqrt(at::arange(1, n + 1, at::kDouble));
  const at::Tensor a = matrix_with_spectrum(m, n, s, 4);
  const double optimal = s[rank].item<double>();
  auto spectral_ratio = [&](std::int64_t power_iterations) {
    auto options = options_with_rank(rank);
    options.oversampling = 5;
    options.power_iterations = power_iterations;
    return at::linalg_matrix_norm(a - reconstruct(randomized_svd(a, options)), 2).item<double>() / optimal;
  };
  const double without = spectral_ratio(0), with_two = spectral_ratio(2);
  EXPECT_LE(with_two, kNearOptimalFactor);
  EXPECT_GT(without, with_two + 0.2) << "q = 0: " << without << ", q = 2: " << with_two;
}

TEST(RandomizedSvdTest, WideAndFloatMatrices) {
  const std::int64_t m = 237, n = 777, rank = 20;
  const at::Tensor a = matrix_with_spectrum(m, n, decaying_spectrum(m), 5);
  const double optimal = optimal_error(a, rank);
  const auto wide = randomized_svd(a, options_with_rank(rank));
  EXPECT_LE(relative_error(reconstruct(wide), a), kNearOptimalFactor * optimal);
  const auto single = randomized_svd(a.to(at::kFloat), options_with_rank(rank));
  EXPECT_EQ(single.u.scalar_type(), at::kFloat);
  EXPECT_LE(relative_error(reconstruct(single), a), kNearOptimalFactor * optimal);
  // float's unit roundoff is 6e-8; a QR and a product on top of it stay well below 1e-5.
  EXPECT_LE(orthonormality_error(single.u), testing::kFp32.relative);
}

TEST(RandomizedSvdTest, DeterministicForASeed) {
  const at::Tensor a = matrix_with_spectrum(301, 97, decaying_spectrum(97), 6);
  auto options = options_with_rank(5);
  options.power_iterations = 0;
  options.oversampling = 0;
  const auto first = randomized_svd(a, options);
  EXPECT_TRUE(at::equal(first.u, randomized_svd(a, options).u));
  options.seed = 43;
  // Without oversampling or power iterations the basis depends on the draw beyond rounding.
  EXPECT_GT(relative_error(reconstruct(randomized_svd(a, options)), reconstruct(first)), 1e-6);
}

TEST(RandomizedSvdTest, BadOptionsNameTheArgument) {
  const at::Tensor a = at::randn({30, 20}, at::kDouble);
  EXPECT_THAT(error_message([&] { randomized_svd(a, options_with_rank(0)); }),
              HasSubstr("rank must be in [1, min(m, n)] = [1, 20] for a of shape [30,20], got 0"));
  EXPECT_THAT(error_message([&] { randomized_svd(a, options_with_rank(21)); }), HasSubstr("got 21"));
  auto options = options_with_rank(5);
  options.oversampling = -1;
  EXPECT_THAT(error_message([&] { randomized_svd(a, options); }), HasSubstr("oversampling must be >= 0"));
  options = options_with_rank(5);
  options.power_iterations = -2;
  EXPECT_THAT(error_message([&] { randomized_svd(a, options); }), HasSubstr("power_iterations must be >= 0"));
  EXPECT_THAT(error_message([&] { randomized_svd(a.select(1, 0), options_with_rank(5)); }),
              HasSubstr("a must be a non-empty matrix (m, n), got shape [30]"));
  EXPECT_THAT(error_message([&] { randomized_svd(a.to(at::kLong), options_with_rank(5)); }),
              HasSubstr("a must be float or double, got Long"));
}

}  // namespace
}  // namespace hone::randnla
