// 2:4 semi-structured Linear on CUDA: in fp16/bf16 it must run on cuSPARSELt (kernel() says so)
// and compute x·(W⊙mask)ᵀ + b, for row counts that need padding, 3-D inputs, with and without bias,
// inside a CUDA graph; fp32 falls back to the dense GEMM and says why.
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/core/device.h"
#include "hone/nn/linear_semi_structured.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone {
namespace {

using testing::relative_error;

class SemiStructuredCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  }
};

torch::Tensor reference(const nn::LinearSemiStructuredImpl& layer, const torch::Tensor& x) {
  auto y = torch::matmul(x.cpu().to(torch::kDouble), layer.dense_weight().cpu().to(torch::kDouble).t());
  if (layer.bias.defined()) y = y + layer.bias.cpu().to(torch::kDouble);
  return y;
}

TEST_F(SemiStructuredCuda, RunsOnCuSparseLtInHalfPrecisionAndMatchesTheMaskedLinear) {
  torch::manual_seed(21);
  for (const auto& [in, out, has_bias] : {std::tuple<std::int64_t, std::int64_t, bool>{384, 1536, true},
                                          {1536, 384, true},
                                          {64, 32, false},
                                          {1024, 1024, true}}) {
    torch::nn::Linear linear(torch::nn::LinearOptions(in, out).bias(has_bias));
    auto layer = nn::LinearSemiStructuredImpl::from_float(*linear, torch::kFloat);
    layer->to(torch::kCUDA);
    for (const auto dtype : {torch::kBFloat16, torch::kHalf}) {
      for (const auto rows : {1, 7, 64, 300}) {
        const auto x = torch::randn({rows, in}, torch::kCUDA).to(dtype);
        const auto y = layer->forward(x);
        ASSERT_EQ(layer->kernel(), "cusparselt") << in << "x" << out << " " << c10::toString(dtype);
        ASSERT_EQ(y.scalar_type(), dtype);
        ASSERT_EQ(y.sizes(), (std::vector<std::int64_t>{rows, out}));
        const auto tolerance = dtype == torch::kHalf ? testing::kFp16 : testing::kBf16;
        EXPECT_LT(relative_error(y.cpu().to(torch::kDouble), reference(*layer, x)), tolerance.relative)
            << in << "x" << out << ", rows " << rows << ", " << c10::toString(dtype);
      }
    }
    // Leading dimensions are kept.
    const auto x3 = torch::randn({3, 5, in}, torch::kCUDA).to(torch::kBFloat16);
    const auto y3 = layer->forward(x3);
    EXPECT_EQ(y3.sizes(), (std::vector<std::int64_t>{3, 5, out}));
    EXPECT_LT(relative_error(y3.cpu().to(torch::kDouble), reference(*layer, x3).view({3, 5, out})),
              testing::kBf16.relative);
  }
}

TEST_F(SemiStructuredCuda, Fp32FallsBackToTheDenseGemmAndSaysWhy) {
  torch::manual_seed(22);
  torch::nn::Linear linear(256, 128);
  auto layer = nn::LinearSemiStructuredImpl::from_float(*linear, torch::kFloat);
  layer->to(torch::kCUDA);
  const auto x = torch::randn({33, 256}, torch::kCUDA);
  const auto y = layer->forward(x);
  EXPECT_NE(layer->kernel().find("dense (Float: cuSPARSELt's 2:4 kernels take fp16/bf16"), std::string::npos)
      << layer->kernel();
  EXPECT_LT(relative_error(y.cpu().to(torch::kDouble), reference(*layer, x)), testing::kTf32.relative);
  // bf16 storage: the layer computes on cuSPARSELt whatever the input dtype, and answers in it.
  auto layer16 = nn::LinearSemiStructuredImpl::from_float(*linear, torch::kBFloat16);
  layer16->to(torch::kCUDA);
  const auto y16 = layer16->forward(x);
  EXPECT_EQ(layer16->kernel(), "cusparselt");
  EXPECT_EQ(y16.scalar_type(), torch::kFloat);
  EXPECT_LT(relative_error(y16.cpu().to(torch::kDouble), reference(*layer, x)), testing::kBf16.relative);
}

TEST_F(SemiStructuredCuda, ReplaysInsideACudaGraph) {
  torch::manual_seed(23);
  torch::nn::Linear linear(384, 384);
  auto layer = nn::LinearSemiStructuredImpl::from_float(*linear, torch::kBFloat16);
  layer->to(torch::kCUDA);
  auto x = torch::randn({13, 384}, torch::kCUDA).to(torch::kBFloat16);
  const auto side = c10::cuda::getStreamFromPool();
  torch::cuda::synchronize();
  at::cuda::CUDAGraph graph;
  torch::Tensor captured;
  {
    c10::cuda::CUDAStreamGuard guard(side);
    layer->forward(x);  // packs the weight outside the capture
    side.synchronize();
    graph.capture_begin();
    captured = layer->forward(x);
    graph.capture_end();
  }
  x.copy_(torch::randn({13, 384}, torch::kCUDA));
  torch::cuda::synchronize();
  graph.replay();
  torch::cuda::synchronize();
  const auto eager = layer->forward(x);
  EXPECT_TRUE(torch::equal(captured, eager)) << "the replay differs from an eager call on the same input";
  EXPECT_LT(relative_error(captured.cpu().to(torch::kDouble), reference(*layer, x)), testing::kBf16.relative);
}

}  // namespace
}  // namespace hone
