// Weight-only int8 / int4 Linear layers on CUDA (LibTorch's _weight_int8pack_mm and tinygemm
// _weight_int4pack_mm): against x·dequantize(W)ᵀ + b in double, for every input dtype, odd row
// counts, on a non-default stream; and the same layer gives the CPU kernel's answer.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/core/device.h"
#include "hone/nn/linear_weight_only.h"
#include "hone/ops/int8_weight_only_linear.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone {
namespace {

using testing::relative_error;

class WeightOnlyCuda : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  }
};

TEST_P(WeightOnlyCuda, MatchesTheDequantizedReferenceInEveryDtype) {
  const int bits = GetParam();
  torch::manual_seed(11);
  // in 384 (a multiple of 128: inner K tiles 8), out 1,152; and in 96 (tiles 2), out 48.
  for (const auto [in, out] : {std::pair<std::int64_t, std::int64_t>{384, 1152}, {96, 48}}) {
    torch::nn::Linear linear(in, out);
    auto layer = nn::LinearWeightOnlyImpl::from_float(*linear, bits, 32);
    layer->to(torch::kCUDA);
    const auto w = layer->dequantized_weight().cpu().to(torch::kDouble);
    const auto b = layer->bias.cpu().to(torch::kDouble);
    for (const auto rows : {1, 5, 64, 257}) {
      const auto x = torch::randn({rows, in}, torch::kDouble);
      const auto expected = x.matmul(w.t()) + b;
      for (const auto dtype : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
        const auto y = layer->forward(x.to(torch::kCUDA, dtype));
        ASSERT_EQ(y.scalar_type(), dtype);
        ASSERT_TRUE(y.is_cuda());
        // int4 computes in bf16 whatever the input; int8 in the input's dtype.
        const auto tolerance = bits == 4 || dtype == torch::kBFloat16 ? testing::kBf16
                               : dtype == torch::kHalf                ? testing::kFp16
                                                                      : testing::kFp32Reordered;
        EXPECT_LT(relative_error(y.cpu().to(torch::kDouble), expected), tolerance.relative)
            << "bits " << bits << ", " << in << "x" << out << ", rows " << rows << ", " << c10::toString(dtype);
      }
    }
  }
}

TEST_P(WeightOnlyCuda, RunsOnTheCurrentStreamAndAgreesWithTheCpuKernel) {
  const int bits = GetParam();
  torch::manual_seed(12);
  torch::nn::Linear linear(256, 64);
  auto cpu_layer = nn::LinearWeightOnlyImpl::from_float(*linear, bits, 64);
  auto cuda_layer = nn::LinearWeightOnlyImpl::from_float(*linear, bits, 64);
  cuda_layer->to(torch::kCUDA);
  const auto x = torch::randn({33, 256}).to(torch::kBFloat16);
  const auto expected = cpu_layer->forward(x).to(torch::kDouble);
  auto stream = c10::cuda::getStreamFromPool();
  torch::Tensor y;
  {
    c10::cuda::CUDAStreamGuard guard(stream);
    y = cuda_layer->forward(x.to(torch::kCUDA, /*non_blocking=*/false));
  }
  stream.synchronize();
  EXPECT_LT(relative_error(y.cpu().to(torch::kDouble), expected), testing::kBf16.relative);
}

TEST(Int8WeightOnlyOpCuda, KernelAndGemmPathsMatchTheReference) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  torch::manual_seed(13);
  // in 37: one byte per lane; 1072: 16-byte loads, two chunks of the staged input, a short last one;
  // rows 1..16 run hone's kernel (1 or 2 row blocks, partial ones), 17 and 40 the dequantized GEMM.
  for (const auto [in, out] : {std::pair<std::int64_t, std::int64_t>{37, 29}, {1072, 45}, {4096, 264}}) {
    const auto weight = torch::randint(-127, 128, {out, in}, torch::kChar);
    const auto scales = torch::rand({out}, torch::kDouble) * 0.02 + 1e-3;
    const auto bias = torch::randn({out}, torch::kDouble);
    for (const auto rows : {1, 3, 8, 9, 16, 17, 40}) {
      const auto x = torch::randn({rows, in}, torch::kDouble);
      for (const bool with_bias : {true, false}) {
        const auto expected =
            ops::int8_weight_only_linear_reference(x.to(torch::kFloat), weight, scales.to(torch::kFloat),
                                                   with_bias ? std::optional(bias.to(torch::kFloat)) : std::nullopt)
                .to(torch::kDouble);
        for (const auto dtype : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
          const auto on = [&](const torch::Tensor& t) { return t.to(torch::kCUDA, dtype); };
          const auto y = ops::int8_weight_only_linear(on(x), weight.cuda(), on(scales),
                                                      with_bias ? std::optional(on(bias)) : std::nullopt);
          ASSERT_EQ(y.scalar_type(), dtype);
          const auto tolerance = dtype == torch::kFloat  ? testing::kFp32Reordered
                                 : dtype == torch::kHalf ? testing::kFp16
                                                         : testing::kBf16;
          EXPECT_LT(relative_error(y.cpu().to(torch::kDouble), expected), tolerance.relative)
              << in << "x" << out << ", rows " << rows << ", " << c10::toString(dtype) << ", bias " << with_bias;
        }
      }
    }
  }
}

TEST(Int8WeightOnlyOpCuda, MisalignedWeightsTakeTheBytePathAndStayExact) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  torch::manual_seed(14);
  const std::int64_t in = 64, out = 24;
  // A contiguous [out, in] view one byte into its storage: rows are not 16-byte aligned.
  const auto storage = torch::randint(-127, 128, {out * in + 1}, torch::TensorOptions().dtype(torch::kChar));
  const auto weight = storage.cuda().narrow(0, 1, out * in).view({out, in});
  ASSERT_TRUE(weight.is_contiguous());
  ASSERT_NE(reinterpret_cast<std::uintptr_t>(weight.data_ptr()) % 16, 0u);
  const auto scales = torch::rand({out}) * 0.02;
  const auto x = torch::randn({5, in});
  const auto y = ops::int8_weight_only_linear(x.cuda(), weight, scales.cuda(), std::nullopt);
  const auto expected = ops::int8_weight_only_linear_reference(x, weight.cpu(), scales, std::nullopt);
  EXPECT_LT(relative_error(y.cpu().to(torch::kDouble), expected.to(torch::kDouble)), testing::kFp32Reordered.relative);
}

INSTANTIATE_TEST_SUITE_P(Bits, WeightOnlyCuda, ::testing::Values(8, 4),
                         [](const auto& info) { return "int" + std::to_string(info.param); });

}  // namespace
}  // namespace hone
