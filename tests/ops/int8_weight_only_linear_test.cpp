// hone::int8_weight_only_linear on the CPU against its fp64 reference: odd shapes, every input
// dtype, with and without bias, leading dimensions; bad inputs name the tensor at fault.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/ops/int8_weight_only_linear.h"
#include "support/error_message.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone::ops {
namespace {

using testing::relative_error;

struct Operands {
  torch::Tensor weight, scales, bias;
};

Operands random_operands(std::int64_t in, std::int64_t out, torch::Dtype dtype, std::uint64_t seed) {
  torch::manual_seed(static_cast<std::int64_t>(seed));
  return {torch::randint(-127, 128, {out, in}, torch::kChar), (torch::rand({out}) * 0.02 + 1e-3).to(dtype),
          torch::randn({out}).to(dtype)};
}

TEST(Int8WeightOnlyLinearTest, MatchesTheReferenceOnOddShapesInEveryDtype) {
  struct Case {
    torch::Dtype dtype;
    testing::Tolerance tolerance;
  };
  for (const auto& [in, out] : {std::pair<std::int64_t, std::int64_t>{37, 29}, {64, 40}, {1, 3}})
    for (const Case c : {Case{torch::kFloat, testing::kFp32Reordered}, Case{torch::kBFloat16, testing::kBf16},
                         Case{torch::kHalf, testing::kFp16}}) {
      const auto p = random_operands(in, out, c.dtype, 7);
      for (const bool with_bias : {true, false}) {
        const auto bias = with_bias ? std::optional<torch::Tensor>(p.bias) : std::nullopt;
        const auto x = torch::randn({2, 5, in}).to(c.dtype);
        const auto y = int8_weight_only_linear(x, p.weight, p.scales, bias);
        ASSERT_EQ(y.sizes(), (std::vector<std::int64_t>{2, 5, out}));
        ASSERT_EQ(y.scalar_type(), c.dtype);
        const auto expected =
            int8_weight_only_linear_reference(x.to(torch::kFloat), p.weight, p.scales.to(torch::kFloat),
                                              bias ? std::optional(bias->to(torch::kFloat)) : bias);
        EXPECT_LT(relative_error(y.to(torch::kDouble), expected.to(torch::kDouble)), c.tolerance.relative)
            << in << "x" << out << " " << c10::toString(c.dtype) << " bias " << with_bias;
      }
    }
}

TEST(Int8WeightOnlyLinearTest, TheReferenceIsTheFormula) {
  const auto p = random_operands(5, 3, torch::kDouble, 8);
  const auto x = torch::randn({4, 5}, torch::kDouble);
  // Written out element by element: y[i][o] = Σ_k x[i][k]·w[o][k]·s[o] + b[o].
  const auto w = p.weight.to(torch::kDouble);
  auto expected = torch::empty({4, 3}, torch::kDouble);
  for (int i = 0; i < 4; ++i)
    for (int o = 0; o < 3; ++o) {
      double sum = 0;
      for (int k = 0; k < 5; ++k) sum += x[i][k].item<double>() * w[o][k].item<double>();
      expected[i][o] = sum * p.scales[o].item<double>() + p.bias[o].item<double>();
    }
  const auto via_reference = int8_weight_only_linear_reference(x.to(torch::kFloat), p.weight,
                                                               p.scales.to(torch::kFloat), p.bias.to(torch::kFloat));
  EXPECT_LT(relative_error(via_reference.to(torch::kDouble), expected), testing::kFp32.relative);
}

TEST(Int8WeightOnlyLinearTest, BadInputsNameTheTensorAtFault) {
  const auto p = random_operands(16, 8, torch::kFloat, 9);
  const auto x = torch::randn({3, 16});
  const auto& expect_error = testing::expect_c10_error_mentioning;
  expect_error([&] { int8_weight_only_linear(x, p.weight.to(torch::kFloat), p.scales, p.bias); },
               "weight must be int8");
  expect_error(
      [&] {
        int8_weight_only_linear(torch::randn({3, 15}), p.weight, p.scales, p.bias);
      },
      "input must be [..., in=16]");
  expect_error([&] { int8_weight_only_linear(x, p.weight, p.scales.to(torch::kHalf), p.bias); },
               "scales must have the input's dtype");
  expect_error([&] { int8_weight_only_linear(x, p.weight, p.scales.narrow(0, 0, 7), p.bias); },
               "scales must be [out=8]");
  expect_error([&] { int8_weight_only_linear(x, p.weight, p.scales, torch::randn({9})); }, "bias must be [out=8]");
  expect_error(
      [&] { int8_weight_only_linear(x.to(torch::kDouble), p.weight, p.scales.to(torch::kDouble), std::nullopt); },
      "input must be fp32, bf16 or fp16");
}

}  // namespace
}  // namespace hone::ops
