// hone::sketched_linear on CUDA against the double-precision reference: every dtype, L = 1 and
// L > 1, k ≤ 96 and k > 96, odd shapes (no multiple-of-16 anywhere), split and unsplit first
// products, with and without bias, non-contiguous inputs, a non-default stream, and gradients.
// Skips itself where no GPU is visible.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <tuple>

#include "hone/core/device.h"
#include "hone/nn/sketched_linear.h"
#include "hone/ops/sketched_linear.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone {
namespace {

using testing::relative_error;

struct Operands {
  torch::Tensor x, s1, s2, u1, u2, bias;
  Operands to(torch::Dtype dtype, torch::Device device) const {
    auto cast = [&](const torch::Tensor& t) { return t.defined() ? t.to(device, dtype) : t; };
    return {cast(x), cast(s1), cast(s2), cast(u1), cast(u2), cast(bias)};
  }
};

// Values ~0.3 in magnitude keep fp16 sums far from overflow at these sizes.
Operands random_operands(int64_t rows, int64_t in, int64_t out, int64_t terms, int64_t rank, bool with_bias,
                         uint64_t seed) {
  torch::manual_seed(seed);
  const auto o = torch::TensorOptions().dtype(torch::kDouble);
  Operands p{torch::randn({rows, in}, o) * 0.3,         torch::randn({terms, in, rank}, o) * 0.3,
             torch::randn({terms, rank, out}, o) * 0.3, torch::randn({terms, rank, out}, o) * 0.3,
             torch::randn({terms, in, rank}, o) * 0.3,  torch::Tensor()};
  if (with_bias) p.bias = torch::randn({out}, o);
  return p;
}

std::optional<torch::Tensor> maybe(const torch::Tensor& t) { return t.defined() ? std::optional(t) : std::nullopt; }

torch::Tensor run(const Operands& p) { return ops::sketched_linear(p.x, p.s1, p.s2, p.u1, p.u2, maybe(p.bias)); }

torch::Tensor exact_of(const Operands& rounded) {
  const auto p = rounded.to(torch::kDouble, torch::kCPU);
  return ops::sketched_linear_reference(p.x, p.s1, p.s2, p.u1, p.u2, maybe(p.bias));
}

struct DtypeCase {
  torch::Dtype dtype;
  testing::Tolerance tolerance;
};
const DtypeCase kDtypes[] = {{torch::kBFloat16, testing::kBf16},
                             {torch::kHalf, testing::kFp16},
                             {torch::kFloat, testing::kFp32Reordered},
                             {torch::kDouble, testing::kFp64}};

// (rows, in, out, terms, rank, bias)
using Shape = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, bool>;
class SketchedLinearCuda : public ::testing::TestWithParam<Shape> {
 protected:
  void SetUp() override {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
    at::globalContext().setAllowTF32CuBLAS(false);
  }
};

TEST_P(SketchedLinearCuda, EveryDtypeMatchesTheDoubleReference) {
  const auto [rows, in, out, terms, rank, with_bias] = GetParam();
  const auto p = random_operands(rows, in, out, terms, rank, with_bias, 17);
  for (const auto& c : kDtypes) {
    const auto q = p.to(c.dtype, torch::kCUDA);
    const auto y = run(q);
    ASSERT_EQ(y.scalar_type(), c.dtype);
    ASSERT_TRUE(y.is_cuda());
    const double error = relative_error(y.cpu(), exact_of(q));
    EXPECT_LT(error, c.tolerance.relative) << c10::toString(c.dtype);
    EXPECT_TRUE(torch::isfinite(y).all().item<bool>()) << c10::toString(c.dtype);
  }
}

TEST_P(SketchedLinearCuda, TensorCoreAndCublasPathsAgree) {
  const auto [rows, in, out, terms, rank, with_bias] = GetParam();
  const auto q = random_operands(rows, in, out, terms, rank, with_bias, 19).to(torch::kBFloat16, torch::kCUDA);
  setenv("HONE_SKETCH_KERNEL", "tensor_cores", 1);
  const auto tensor_cores = run(q);
  setenv("HONE_SKETCH_KERNEL", "cublas", 1);
  const auto cublas = run(q);
  unsetenv("HONE_SKETCH_KERNEL");
  const auto exact = exact_of(q);
  EXPECT_LT(relative_error(tensor_cores.cpu(), exact), testing::kBf16.relative);
  EXPECT_LT(relative_error(cublas.cpu(), exact), testing::kBf16.relative);
}

TEST_P(SketchedLinearCuda, GradientsMatchTheDoubleReference) {
  const auto [rows, in, out, terms, rank, with_bias] = GetParam();
  const auto p = random_operands(rows, in, out, terms, rank, with_bias, 23);
  const auto gy = torch::randn({rows, out}, torch::kDouble);
  auto grads = [&](const Operands& q, const torch::Tensor& g) {
    std::vector<torch::Tensor> wrt{q.x, q.s1, q.s2};
    if (q.bias.defined()) wrt.push_back(q.bias);
    for (auto& t : wrt) t.requires_grad_(true);
    const auto y = ops::sketched_linear(wrt[0], wrt[1], wrt[2], q.u1, q.u2,
                                        q.bias.defined() ? std::optional(wrt[3]) : std::nullopt);
    return torch::autograd::grad({y}, wrt, {g});
  };
  const auto exact = grads(p, gy);
  for (const auto& c : {kDtypes[0], kDtypes[2]}) {
    const auto fast = grads(p.to(c.dtype, torch::kCUDA), gy.to(torch::kCUDA, c.dtype));
    // The operands were rounded to the dtype; the tolerance covers that and the arithmetic.
    for (size_t i = 0; i < fast.size(); ++i)
      EXPECT_LT(relative_error(fast[i].cpu(), exact[i]),
                c.dtype == torch::kFloat ? testing::kFp32Reordered.relative * 10 : 2 * testing::kBf16.relative)
          << c10::toString(c.dtype) << " gradient " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, SketchedLinearCuda,
                         ::testing::Values(Shape{1, 33, 29, 1, 16, true},  // one row, L = 1, unsplit
                                           Shape{7, 1000, 77, 3, 100,
                                                 false},  // k > 96, split in-dimension with a ragged tail
                                           Shape{257, 129, 65, 2, 97, true},   // tails in every tile dimension
                                           Shape{64, 4099, 300, 1, 16, true},  // many splits, odd in
                                           Shape{300, 17, 1, 1, 1, false}));   // out = 1, k = 1

TEST(SketchedLinearCudaStreams, NonContiguousInputOnANonDefaultStream) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  const auto p = random_operands(40, 70, 50, 2, 24, true, 29).to(torch::kBFloat16, torch::kCUDA);
  const auto wide = torch::randn({3, 70, 40}, torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA));
  const auto x = wide.transpose(1, 2);  // [3, 40, 70], non-contiguous
  ASSERT_FALSE(x.is_contiguous());
  at::cuda::CUDAStream stream = at::cuda::getStreamFromPool();
  torch::Tensor y;
  {
    const c10::cuda::CUDAStreamGuard guard(stream);
    y = ops::sketched_linear(x, p.s1, p.s2, p.u1, p.u2, p.bias);
  }
  stream.synchronize();
  EXPECT_EQ(y.sizes(), (torch::IntArrayRef{3, 40, 50}));
  Operands flat = p;
  flat.x = x.contiguous().view({-1, 70});
  EXPECT_LT(relative_error(y.view({-1, 50}).cpu(), exact_of(flat)), testing::kBf16.relative);
}

TEST(SketchedLinearCudaStreams, LargeShapesUseTheSplitKernelAndStayExact) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  // The benchmark's shape family (in = out = 4096, batch 256) at L = 1, k = 16 and L = 8, k = 128.
  for (const auto& [terms, rank] : {std::pair<int64_t, int64_t>{1, 16}, {8, 128}})
    for (const char* path : {"tensor_cores", "cublas"}) {
      setenv("HONE_SKETCH_KERNEL", path, 1);
      const auto q = random_operands(256, 4096, 4096, terms, rank, true, 31).to(torch::kBFloat16, torch::kCUDA);
      EXPECT_LT(relative_error(run(q).cpu(), exact_of(q)), testing::kBf16.relative) << terms << "x" << rank << path;
      unsetenv("HONE_SKETCH_KERNEL");
    }
}

TEST(SketchedLinearLayerCuda, InferenceWithCachedPackingEqualsTheOpAndFollowsParameterChanges) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  torch::manual_seed(41);
  for (const auto dtype : {torch::kBFloat16, torch::kFloat}) {
    nn::SketchedLinear layer(nn::SketchedLinearOptions{96, 72, 3, 20, true, 5});
    layer->to(torch::kCUDA, dtype);
    const auto x = torch::randn({2, 17, 96}, torch::TensorOptions().device(torch::kCUDA).dtype(dtype));
    auto op = [&] { return ops::sketched_linear(x, layer->s1, layer->s2, layer->u1, layer->u2, layer->bias); };
    torch::Tensor cached;
    {
      torch::NoGradGuard no_grad;
      cached = layer->forward(x);
      EXPECT_TRUE(torch::equal(cached, op())) << "the same cuBLAS products on the same operands";
      layer->s2.mul_(2);  // an in-place change (an optimizer step) must reach the next call
      const auto changed = layer->forward(x);
      EXPECT_FALSE(torch::equal(changed, cached));
      EXPECT_TRUE(torch::equal(changed, op()));
    }
    // With gradients wanted, the call goes through the op's autograd kernel.
    const auto y = layer->forward(x);
    ASSERT_TRUE(y.requires_grad());
    y.sum().backward();
    EXPECT_TRUE(layer->s1.grad().defined());
  }
}

}  // namespace
}  // namespace hone
