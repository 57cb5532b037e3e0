// hone::add_layer_norm's CUDA kernel against the fp32 reference: every dtype, hidden sizes that take
// one warp per row, several warps, 16-byte or element-wise access, and the composite beyond the
// kernel's limit; partial blocks of rows; misaligned and non-contiguous inputs; eps that matters;
// a CUDA graph capture; and the unfused LibTorch path, which the fused kernel matches at bf16.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "hone/core/device.h"
#include "hone/ops/add_layer_norm.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone::ops {
namespace {

using testing::relative_error;

constexpr double kEps = 1e-12;  // BERT's LayerNorm epsilon

class AddLayerNormCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  }
};

struct Operands {
  torch::Tensor x, residual, weight, bias;
};

// On the GPU, not centred and not of unit spread, so that a missing mean subtraction, scale or bias
// shows.
Operands random_operands(std::int64_t rows, std::int64_t hidden, torch::Dtype dtype, std::uint64_t seed) {
  torch::manual_seed(static_cast<std::int64_t>(seed));
  const auto randn = [](torch::IntArrayRef shape) { return torch::randn(shape, torch::kCUDA); };
  return {(randn({rows, hidden}) * 2 + 0.5).to(dtype), randn({rows, hidden}).to(dtype),
          (randn({hidden}) * 0.5 + 1).to(dtype), (randn({hidden}) * 0.1).to(dtype)};
}

testing::Tolerance tolerance_for(torch::Dtype dtype) {
  return dtype == torch::kFloat ? testing::kFp32 : dtype == torch::kHalf ? testing::kFp16 : testing::kBf16;
}

// The kernel adds and normalizes in fp32 as the reference does and rounds once, so beyond the
// norm-wise error every element lies within the dtype's tolerance of the reference (rounded to
// the dtype like the output): a wrong element in a long row cannot hide in the norm.
void expect_close(const torch::Tensor& y, const torch::Tensor& expected, torch::Dtype dtype, const std::string& what) {
  const auto tolerance = tolerance_for(dtype);
  EXPECT_LT(relative_error(y, expected), tolerance.relative) << what;
  EXPECT_TRUE(
      torch::allclose(y.to(torch::kDouble), expected.to(torch::kDouble), tolerance.relative, tolerance.absolute))
      << what << ": largest difference "
      << (y.to(torch::kDouble) - expected.to(torch::kDouble)).abs().max().item<double>();
}

TEST_F(AddLayerNormCuda, MatchesTheReferenceInEveryDtype) {
  // 32, 384, 768, 1024: one warp per row, 16-byte packs, 1 to 8 packs per thread; 1 and 37: one
  // element at a time (1: the output is the bias); 2048 and 4096: 2 and 4 warps per row; 2050:
  // element-wise over 4 warps; 6000: 8 warps, the last round of packs partial; 8192: the kernel's
  // limit. Rows 1 and 3 leave most of a block of rows idle; 4096 fill many blocks.
  for (const std::int64_t hidden : {1, 32, 37, 384, 768, 1024, 2048, 2050, 4096, 6000, 8192})
    for (const std::int64_t rows : {1, 3, 4096})
      for (const auto dtype : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
        const auto p = random_operands(rows, hidden, dtype, 31);
        const auto y = add_layer_norm(p.x, p.residual, p.weight, p.bias, kEps);
        ASSERT_TRUE(y.is_cuda());
        ASSERT_EQ(y.scalar_type(), dtype);
        ASSERT_EQ(y.sizes(), p.x.sizes());
        const auto expected = add_layer_norm_reference(p.x, p.residual, p.weight, p.bias, kEps);
        expect_close(
            y, expected, dtype,
            "hidden " + std::to_string(hidden) + ", rows " + std::to_string(rows) + ", " + c10::toString(dtype));
      }
}

TEST_F(AddLayerNormCuda, LeadingDimensionsAndNonContiguousInputs) {
  torch::manual_seed(32);
  const auto x = torch::randn({2, 7, 384}, torch::kCUDA).to(torch::kBFloat16);
  const auto residual = torch::randn({384, 7, 2}, torch::kCUDA).to(torch::kBFloat16).permute({2, 1, 0});
  const auto weight = torch::randn({384}, torch::kCUDA).to(torch::kBFloat16);
  const auto bias = torch::randn({384}, torch::kCUDA).to(torch::kBFloat16);
  ASSERT_FALSE(residual.is_contiguous());
  const auto y = add_layer_norm(x, residual, weight, bias, kEps);
  ASSERT_EQ(y.sizes(), x.sizes());
  expect_close(y, add_layer_norm_reference(x, residual.contiguous(), weight, bias, kEps), torch::kBFloat16,
               "3-D, permuted residual");
}

TEST_F(AddLayerNormCuda, MisalignedRowsTakeTheElementwisePath) {
  const std::int64_t rows = 5, hidden = 384;
  for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
    const auto p = random_operands(rows, hidden, dtype, 33);
    // A contiguous view one element into its storage: rows are not 16-byte aligned.
    const auto storage = torch::randn({rows * hidden + 1}, torch::kCUDA).to(dtype);
    const auto x = storage.narrow(0, 1, rows * hidden).view({rows, hidden});
    ASSERT_TRUE(x.is_contiguous());
    ASSERT_NE(reinterpret_cast<std::uintptr_t>(x.data_ptr()) % 16, 0u);
    const auto y = add_layer_norm(x, p.residual, p.weight, p.bias, kEps);
    expect_close(y, add_layer_norm_reference(x, p.residual, p.weight, p.bias, kEps), dtype,
                 std::string("misaligned ") + c10::toString(dtype));
  }
}

TEST_F(AddLayerNormCuda, EpsIsAddedToTheVariance) {
  // A spread of ~4e-3 (variance ~1.6e-5) against eps 1e-5: leaving eps out changes the output ~25%.
  const auto p = random_operands(64, 768, torch::kFloat, 34);
  const auto x = p.x * 2e-3, residual = p.residual * 2e-3;
  const double eps = 1e-5;
  const auto y = add_layer_norm(x, residual, p.weight, p.bias, eps);
  const auto expected = add_layer_norm_reference(x, residual, p.weight, p.bias, eps);
  expect_close(y, expected, torch::kFloat, "small variance");
  EXPECT_GT(relative_error(add_layer_norm_reference(x, residual, p.weight, p.bias, 0.0), expected), 1e-2)
      << "the test is not sensitive to eps";
}

TEST_F(AddLayerNormCuda, RowsLongerThanTheKernelTakeTheComposite) {
  // 8193 elements, one past the kernel's limit: LibTorch's layer_norm(x + residual), which rounds
  // the sum to the dtype first (so for bf16 only the norm-wise tolerance applies).
  for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
    const auto p = random_operands(3, 8193, dtype, 35);
    const auto y = add_layer_norm(p.x, p.residual, p.weight, p.bias, kEps);
    const auto expected = add_layer_norm_reference(p.x, p.residual, p.weight, p.bias, kEps);
    EXPECT_LT(relative_error(y, expected), tolerance_for(dtype).relative) << c10::toString(dtype);
  }
}

TEST_F(AddLayerNormCuda, AgreesWithTheUnfusedPathAndIsCloserToTheReference) {
  // BERT-base and MiniLM shapes at bf16: the fused kernel skips the unfused path's rounding of
  // x + residual to bf16, so it is at least as close to the fp32 reference.
  for (const std::int64_t hidden : {384, 768}) {
    const auto p = random_operands(4096, hidden, torch::kBFloat16, 36);
    const auto fused = add_layer_norm(p.x, p.residual, p.weight, p.bias, kEps);
    const auto unfused = at::layer_norm(p.x + p.residual, {hidden}, p.weight, p.bias, kEps);
    const auto expected = add_layer_norm_reference(p.x, p.residual, p.weight, p.bias, kEps);
    EXPECT_LT(relative_error(fused, unfused), testing::kBf16.relative) << hidden;
    EXPECT_LE(relative_error(fused, expected), relative_error(unfused, expected)) << hidden;
  }
}

TEST_F(AddLayerNormCuda, RunsOnTheCurrentStreamInsideACudaGraph) {
  const std::int64_t rows = 1000, hidden = 384;
  auto p = random_operands(rows, hidden, torch::kBFloat16, 37);
  // Capture runs on a side stream, after an eager call has done any one-time setup.
  const auto side = c10::cuda::getStreamFromPool();
  torch::cuda::synchronize();
  at::cuda::CUDAGraph graph;
  torch::Tensor captured;
  {
    c10::cuda::CUDAStreamGuard guard(side);
    add_layer_norm(p.x, p.residual, p.weight, p.bias, kEps);
    side.synchronize();
    graph.capture_begin();
    captured = add_layer_norm(p.x, p.residual, p.weight, p.bias, kEps);
    graph.capture_end();
  }
  // New inputs in the captured buffers; the replay must compute on them.
  torch::manual_seed(38);
  p.x.copy_(torch::randn({rows, hidden}, torch::kCUDA));
  p.residual.copy_(torch::randn({rows, hidden}, torch::kCUDA));
  torch::cuda::synchronize();
  graph.replay();
  torch::cuda::synchronize();
  const auto eager = add_layer_norm(p.x, p.residual, p.weight, p.bias, kEps);
  EXPECT_TRUE(torch::equal(captured, eager)) << "the replay differs from an eager call on the same inputs";
  expect_close(captured, add_layer_norm_reference(p.x, p.residual, p.weight, p.bias, kEps), torch::kBFloat16,
               "graph replay");
}

TEST_F(AddLayerNormCuda, IsRegisteredForCuda) {
  const auto op = c10::Dispatcher::singleton().findSchema({"hone::add_layer_norm", ""});
  ASSERT_TRUE(op.has_value());
  EXPECT_TRUE(op->hasKernelForDispatchKey(c10::DispatchKey::CUDA));
}

}  // namespace
}  // namespace hone::ops
