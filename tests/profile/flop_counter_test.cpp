#include "hone/profile/flop_counter.h"

#include <ATen/record_function.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <thread>

#include "hone/core/error.h"

namespace hone::profile {
namespace {

std::int64_t sum_by_op(const FlopCounter& counter) {
  std::int64_t sum = 0;
  for (const auto& [op, flops] : counter.by_op()) sum += flops;
  return sum;
}

/// The only op the counter attributed FLOPs to, or "" when there are none or several.
std::string only_op(const FlopCounter& counter) {
  return counter.by_op().size() == 1 ? counter.by_op().begin()->first : "";
}

TEST(FlopCounterTest, LinearCountsOnceWithAndWithoutBias) {
  torch::manual_seed(1);
  const torch::Tensor x = torch::randn({5, 37});
  for (bool bias : {true, false}) {
    torch::nn::Linear linear(torch::nn::LinearOptions(37, 19).bias(bias));
    FlopCounter counter;
    linear->forward(x);
    EXPECT_EQ(counter.total(), 2 * 5 * 37 * 19) << "bias " << bias;
    EXPECT_EQ(counter.by_op().count("aten::linear"), 0u);
    EXPECT_EQ(counter.by_op().count("aten::matmul"), 0u);
    EXPECT_EQ(counter.by_op().size(), 1u) << "bias " << bias;
    EXPECT_EQ(sum_by_op(counter), counter.total());
  }
}

TEST(FlopCounterTest, LinearOnBatchedInputCountsEveryRow) {
  torch::manual_seed(2);
  const torch::Tensor x = torch::randn({2, 5, 37});
  for (bool bias : {true, false}) {
    torch::nn::Linear linear(torch::nn::LinearOptions(37, 19).bias(bias));
    FlopCounter counter;
    linear->forward(x);
    EXPECT_EQ(counter.total(), 2 * (2 * 5) * 37 * 19) << "bias " << bias;
    EXPECT_EQ(counter.by_op().size(), 1u) << "bias " << bias;
  }
}

TEST(FlopCounterTest, LinearBackwardCountsTheTwoGradientProducts) {
  torch::manual_seed(3);
  torch::nn::Linear linear(37, 19);
  const torch::Tensor x = torch::randn({5, 37}, torch::requires_grad());
  FlopCounter counter;
  linear->forward(x).sum().backward();
  // Forward [5,37]x[37,19]; backward dL/dx = [5,19]x[19,37] and dL/dW = [19,5]x[5,37].
  EXPECT_EQ(counter.total(), 2 * 5 * 37 * 19 + 2 * 5 * 19 * 37 + 2 * 19 * 5 * 37);
}

TEST(FlopCounterTest, DirectMatrixProductsUseTheirShapes) {
  torch::manual_seed(4);
  FlopCounter counter;
  torch::mm(torch::randn({3, 4}), torch::randn({4, 5}));
  torch::addmm(torch::randn({6}), torch::randn({3, 4}), torch::randn({4, 6}));
  torch::bmm(torch::randn({2, 3, 4}), torch::randn({2, 4, 7}));
  torch::baddbmm(torch::randn({2, 3, 5}), torch::randn({2, 3, 4}), torch::randn({2, 4, 5}));
  // addmm + GELU in the epilogue (the encoder's feed-forward on CUDA in bf16).
  at::_addmm_activation(torch::randn({8}), torch::randn({3, 5}), torch::randn({5, 8}), 1, 1, /*use_gelu=*/true);
  EXPECT_EQ(counter.by_op().at("aten::mm"), 2 * 3 * 4 * 5);
  EXPECT_EQ(counter.by_op().at("aten::addmm"), 2 * 3 * 4 * 6);
  EXPECT_EQ(counter.by_op().at("aten::bmm"), 2 * 2 * 3 * 4 * 7);
  EXPECT_EQ(counter.by_op().at("aten::baddbmm"), 2 * 2 * 3 * 4 * 5);
  EXPECT_EQ(counter.by_op().at("aten::_addmm_activation"), 2 * 3 * 5 * 8);
  EXPECT_EQ(counter.by_op().size(), 5u);
  EXPECT_EQ(sum_by_op(counter), counter.total());
}

TEST(FlopCounterTest, CountingGoesOnAfterACountedOpThrows) {
  torch::manual_seed(14);
  FlopCounter counter;
  // The bias cannot broadcast to [3, 6]: addmm throws after its start callback ran.
  EXPECT_THROW(torch::addmm(torch::randn({5}), torch::randn({3, 4}), torch::randn({4, 6})), c10::Error);
  const std::int64_t after_throw = counter.total();
  torch::mm(torch::randn({3, 4}), torch::randn({4, 5}));
  EXPECT_EQ(counter.total() - after_throw, 2 * 3 * 4 * 5);
}

TEST(FlopCounterTest, StridedPaddedConv2d) {
  torch::manual_seed(5);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 8, 3).stride(2).padding(1));
  const torch::Tensor x = torch::randn({2, 3, 17, 17});
  FlopCounter counter;
  const torch::Tensor y = conv->forward(x);
  // Output side floor((17 + 2·1 − 1·(3 − 1) − 1) / 2) + 1 = 9.
  ASSERT_EQ(y.sizes(), (std::vector<std::int64_t>{2, 8, 9, 9}));
  EXPECT_EQ(counter.total(), 2 * 2 * 8 * 9 * 9 * 3 * 3 * 3);
  EXPECT_EQ(only_op(counter), "aten::convolution");
}

TEST(FlopCounterTest, DepthwiseDilatedConv2d) {
  torch::manual_seed(6);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(6, 6, 3).groups(6).dilation(2));
  const torch::Tensor x = torch::randn({2, 6, 11, 13});
  FlopCounter counter;
  const torch::Tensor y = conv->forward(x);
  // Dilation 2 spans 5 pixels: 11 − 4 = 7 rows, 13 − 4 = 9 columns; each output reads 1 channel.
  ASSERT_EQ(y.sizes(), (std::vector<std::int64_t>{2, 6, 7, 9}));
  EXPECT_EQ(counter.total(), 2 * 2 * 6 * 7 * 9 * 1 * 3 * 3);
  EXPECT_EQ(only_op(counter), "aten::convolution");
}

TEST(FlopCounterTest, StridedConv1d) {
  torch::manual_seed(7);
  torch::nn::Conv1d conv(torch::nn::Conv1dOptions(4, 5, 3).stride(2));
  const torch::Tensor x = torch::randn({3, 4, 20});
  FlopCounter counter;
  const torch::Tensor y = conv->forward(x);
  // floor((20 − 2 − 1) / 2) + 1 = 9 outputs.
  ASSERT_EQ(y.sizes(), (std::vector<std::int64_t>{3, 5, 9}));
  EXPECT_EQ(counter.total(), 2 * 3 * 5 * 9 * 4 * 3);
}

TEST(FlopCounterTest, AttentionCountsOnceAtTheTopLevelOp) {
  torch::manual_seed(8);
  const torch::Tensor q = torch::randn({2, 3, 7, 16});
  const torch::Tensor k = torch::randn({2, 3, 7, 16});
  const torch::Tensor v = torch::randn({2, 3, 7, 16});
  FlopCounter counter;
  at::scaled_dot_product_attention(q, k, v);
  EXPECT_EQ(counter.total(), 4 * 2 * 3 * 7 * 7 * 16);
  EXPECT_EQ(only_op(counter), "aten::scaled_dot_product_attention");
}

TEST(FlopCounterTest, AttentionMathKernelIsNotCountedTwice) {
  // A value dimension unlike the query's sends CPU SDPA to its math kernel, which runs bmm inside.
  torch::manual_seed(9);
  const torch::Tensor q = torch::randn({2, 3, 5, 16});
  const torch::Tensor k = torch::randn({2, 3, 7, 16});
  const torch::Tensor v = torch::randn({2, 3, 7, 8});
  FlopCounter counter;
  const torch::Tensor out = at::scaled_dot_product_attention(q, k, v);
  ASSERT_EQ(out.sizes(), (std::vector<std::int64_t>{2, 3, 5, 8}));
  EXPECT_EQ(counter.total(), 2 * 2 * 3 * 5 * 7 * 16 + 2 * 2 * 3 * 5 * 7 * 8);
  EXPECT_EQ(only_op(counter), "aten::scaled_dot_product_attention");
  // Leaving the attention op resumes counting.
  torch::mm(torch::randn({3, 4}), torch::randn({4, 5}));
  EXPECT_EQ(counter.by_op().at("aten::mm"), 2 * 3 * 4 * 5);
}

TEST(FlopCounterTest, AttentionInAModuleInEvalMode) {
  // The same shapes through a tiny module in eval mode (dropout off), as models call it.
  struct Attention : torch::nn::Module {
    torch::Tensor forward(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
      return at::scaled_dot_product_attention(q, k, v, {}, is_training() ? 0.1 : 0.0);
    }
  };
  torch::manual_seed(10);
  Attention attention;
  attention.eval();
  const torch::Tensor q = torch::randn({2, 3, 7, 16});
  FlopCounter counter;
  attention.forward(q, torch::randn({2, 3, 7, 16}), torch::randn({2, 3, 7, 16}));
  EXPECT_EQ(counter.total(), 4 * 2 * 3 * 7 * 7 * 16);
}

TEST(FlopCounterTest, RecordsNothingOnceDestroyed) {
  torch::manual_seed(11);
  const torch::Tensor a = torch::randn({3, 4});
  const torch::Tensor b = torch::randn({4, 5});
  const bool callbacks_before = at::hasThreadLocalCallbacks();
  {
    FlopCounter counter;
    torch::mm(a, b);
    EXPECT_EQ(counter.total(), 2 * 3 * 4 * 5);
  }
  EXPECT_EQ(at::hasThreadLocalCallbacks(), callbacks_before) << "the callback must be removed";
  torch::mm(a, b);  // no counter: must not reach the destroyed one
  FlopCounter next;
  EXPECT_EQ(next.total(), 0);
  torch::mm(a, b);
  EXPECT_EQ(next.total(), 2 * 3 * 4 * 5);
}

TEST(FlopCounterTest, OnlyOneCounterPerThread) {
  torch::manual_seed(12);
  const torch::Tensor a = torch::randn({3, 4});
  const torch::Tensor b = torch::randn({4, 5});
  FlopCounter counter;
  EXPECT_THROW(FlopCounter second, Error);
  // Another thread may have its own, and each sees only its own thread's ops.
  std::int64_t other_total = -1;
  std::thread other([&] {
    FlopCounter own;
    torch::mm(torch::randn({2, 3}), torch::randn({3, 4}));
    other_total = own.total();
  });
  other.join();
  torch::mm(a, b);
  EXPECT_EQ(other_total, 2 * 2 * 3 * 4);
  EXPECT_EQ(counter.total(), 2 * 3 * 4 * 5);
}

TEST(FlopCounterTest, CountsUnderDisabledRecordFunctionAndRestoresIt) {
  torch::manual_seed(13);
  at::DisableRecordFunctionGuard disabled;
  {
    FlopCounter counter;
    torch::mm(torch::randn({3, 4}), torch::randn({4, 5}));
    EXPECT_EQ(counter.total(), 2 * 3 * 4 * 5);
  }
  EXPECT_FALSE(at::isRecordFunctionEnabled());
}

}  // namespace
}  // namespace hone::profile
