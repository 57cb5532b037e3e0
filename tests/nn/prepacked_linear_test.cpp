// nn::PrepackedLinear (oneDNN with the weight reordered once): the same numbers as LibTorch's
// linear (and exact GELU) for 2-D and 3-D inputs and any row count; a new weight (loading, an
// in-place write) is re-packed; and it declines what it must not take (autograd, other dtypes,
// quantized inputs) or where it would be slower (small weights, few rows).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/nn/prepacked_linear.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone::nn {
namespace {

using testing::relative_error;

TEST(PrepackedLinearTest, MatchesLinearAndGeluForAnyRowCount) {
  torch::manual_seed(1);
  torch::nn::Linear linear(384, 1536);
  const PrepackedLinear prepacked;
  torch::NoGradGuard no_grad;
  for (const auto& shape : {std::vector<std::int64_t>{128, 384}, {2, 384}, {3, 37, 384}, {2, 128, 384}}) {
    const auto x = torch::randn(shape);
    ASSERT_TRUE(PrepackedLinear::applies(x, *linear)) << "oneDNN is part of LibTorch's CPU build";
    const auto expected = linear->forward(x);
    const auto y = prepacked(*linear, x, /*gelu=*/false);
    EXPECT_EQ(y.sizes(), expected.sizes());
    EXPECT_LT(relative_error(y, expected), testing::kFp32Reordered.relative) << x.sizes();
    EXPECT_LT(relative_error(prepacked(*linear, x, /*gelu=*/true), torch::gelu(expected)),
              testing::kFp32Reordered.relative)
        << x.sizes();
  }
}

TEST(PrepackedLinearTest, ANewWeightIsRepacked) {
  torch::manual_seed(2);
  torch::nn::Linear linear(384, 384);
  const PrepackedLinear prepacked;
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({16, 384});
  const auto before = prepacked(*linear, x, false);
  linear->weight.copy_(torch::randn({384, 384}) / 20);  // as loading weights does: same storage, new version
  const auto after = prepacked(*linear, x, false);
  EXPECT_GT(relative_error(after, before), 0.1);
  EXPECT_LT(relative_error(after, linear->forward(x)), testing::kFp32Reordered.relative);
}

TEST(PrepackedLinearTest, DeclinesAutogradOtherDtypesQuantizedInputsAndSmallProducts) {
  torch::nn::Linear linear(384, 384);
  const auto x = torch::randn({8, 384});
  EXPECT_FALSE(PrepackedLinear::applies(x, *linear)) << "the weight requires grad and grad mode is on";
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(PrepackedLinear::applies(x, *linear));
  EXPECT_FALSE(PrepackedLinear::applies(x.to(torch::kBFloat16), *linear));
  EXPECT_FALSE(PrepackedLinear::applies(x.to(torch::kDouble), *linear));
  EXPECT_FALSE(PrepackedLinear::applies(torch::randn({8, 383}), *linear)) << "wrong width";
  EXPECT_FALSE(PrepackedLinear::applies(torch::quantize_per_tensor(x, 0.1, 0, torch::kQUInt8), *linear));
  // Where oneDNN's per-call cost outweighs the gain: one row, or a small weight.
  EXPECT_FALSE(PrepackedLinear::applies(torch::randn({1, 384}), *linear));
  torch::nn::Linear small(128, 128);
  EXPECT_FALSE(PrepackedLinear::applies(torch::randn({512, 128}), *small));
  EXPECT_TRUE(PrepackedLinear::applies(torch::randn({1024, 128}), *small)) << "2^24 multiply-adds";
}

}  // namespace
}  // namespace hone::nn
