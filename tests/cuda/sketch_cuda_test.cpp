// The rest of the sketching family on CUDA: SKConv2d's op, Performer attention and the RandNLA
// routines give on the GPU what their double-precision references give on the CPU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/core/device.h"
#include "hone/nn/performer_attention.h"
#include "hone/ops/sketched_conv2d.h"
#include "hone/randnla.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone {
namespace {

using testing::relative_error;

class SketchCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
  }
};

TEST_F(SketchCuda, SketchedConv2dMatchesTheDoubleReference) {
  torch::manual_seed(3);
  const auto x = torch::randn({2, 5, 13, 11}, torch::kDouble), s = torch::randn({4, 6, 5, 3, 2}, torch::kDouble) * 0.3;
  const auto u = torch::randn({4, 6, 9}, torch::kDouble), b = torch::randn({9}, torch::kDouble);
  const std::vector<int64_t> stride{2, 1}, padding{1, 1}, dilation{1, 2};
  struct Case {
    torch::Dtype dtype;
    testing::Tolerance tolerance;
  };
  for (const Case c : {Case{torch::kDouble, testing::kFp64}, Case{torch::kFloat, testing::kFp32Reordered},
                       Case{torch::kBFloat16, testing::kBf16}, Case{torch::kHalf, testing::kFp16}}) {
    auto dev = [&](const torch::Tensor& t) { return t.to(torch::kCUDA, c.dtype); };
    auto back = [&](const torch::Tensor& t) { return t.to(c.dtype).to(torch::kDouble); };
    const auto y = ops::sketched_conv2d(dev(x), dev(s), dev(u), dev(b), stride, padding, dilation);
    const auto exact = ops::sketched_conv2d_reference(back(x), back(s), back(u), back(b), stride, padding, dilation);
    EXPECT_LT(relative_error(y.cpu(), exact), c.tolerance.relative) << c10::toString(c.dtype);
  }
}

TEST_F(SketchCuda, PerformerAttentionOnCudaEqualsCpu) {
  torch::manual_seed(4);
  const auto q = torch::randn({2, 3, 37, 16}, torch::kDouble) * 0.3,
             k = torch::randn({2, 3, 37, 16}, torch::kDouble) * 0.3;
  const auto v = torch::randn({2, 3, 37, 16}, torch::kDouble);
  const auto omega = nn::performer_projection(128, 16, true, 5, torch::kDouble);
  for (const auto kernel : {nn::PerformerKernel::kSoftmax, nn::PerformerKernel::kRelu})
    for (const bool causal : {false, true}) {
      const auto cpu = nn::performer_attention(q, k, v, kernel, omega, causal);
      const auto gpu = nn::performer_attention(q.cuda(), k.cuda(), v.cuda(), kernel, omega.cuda(), causal);
      // Same math in double; exp, the reductions and the chunked causal scan round differently on
      // the GPU (one run of the suite on the H100 failed a 1e-12 bound), so 1e-10.
      EXPECT_LT(relative_error(gpu.cpu(), cpu), 1e-10) << causal;
    }
}

TEST_F(SketchCuda, RandomizedSvdAndCqrrptOnCuda) {
  torch::manual_seed(6);
  const auto a = torch::randn({500, 30}, torch::kDouble).cuda() * torch::logspace(0, -6, 30, 10, torch::kDouble).cuda();
  const auto qr = randnla::cqrrpt(a);
  EXPECT_TRUE(qr.q.is_cuda());
  EXPECT_LT(relative_error(qr.q.mm(qr.r), a.index_select(1, qr.pivots)), testing::kFp64Factorization.relative);
  const auto eye = torch::eye(qr.rank, a.options());
  EXPECT_LT((qr.q.t().mm(qr.q) - eye).norm().item<double>(), testing::kFp64Factorization.absolute * 10);

  randnla::RandomizedSvdOptions options;
  options.rank = 30;
  const auto svd = randnla::randomized_svd(a, options);
  EXPECT_LT(relative_error(svd.u.mm(torch::diag(svd.s)).mm(svd.vh), a), 1e-10);
}

}  // namespace
}  // namespace hone
