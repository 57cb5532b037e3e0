// hone::sketched_linear on CPU against its term-by-term ATen reference, its gradients against
// finite differences, and the layer's defining property: an unbiased estimate of the Linear it
// was made from.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <tuple>

#include "hone/nn/layer_kinds.h"
#include "hone/nn/sketched_linear.h"
#include "hone/ops/sketched_linear.h"
#include "support/error_message.h"
#include "support/gradcheck.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone {
namespace {

using testing::relative_error;

struct Operands {
  torch::Tensor x, s1, s2, u1, u2, bias;
};

// Random operands (not a made-from-Linear layer: every S entry independent, so any mix-up of terms,
// halves or transposes shows).
Operands random_operands(int64_t rows, int64_t in, int64_t out, int64_t terms, int64_t rank, torch::Dtype dtype,
                         bool with_bias, uint64_t seed = 1) {
  torch::manual_seed(seed);
  const auto o = torch::TensorOptions().dtype(dtype);
  Operands p;
  p.x = torch::randn({rows, in}, o);
  p.s1 = torch::randn({terms, in, rank}, o);
  p.s2 = torch::randn({terms, rank, out}, o);
  p.u1 = torch::randn({terms, rank, out}, o);
  p.u2 = torch::randn({terms, in, rank}, o);
  if (with_bias) p.bias = torch::randn({out}, o);
  return p;
}

std::optional<torch::Tensor> maybe(const torch::Tensor& t) { return t.defined() ? std::optional(t) : std::nullopt; }

// (rows, in, out, terms, rank, bias): L = 1 and L > 1, k ≤ 96 and k > 96, odd sizes, a single row.
using Shape = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, bool>;
class SketchedLinearCpu : public ::testing::TestWithParam<Shape> {};

TEST_P(SketchedLinearCpu, MatchesTheReferenceInEveryDtype) {
  const auto [rows, in, out, terms, rank, with_bias] = GetParam();
  const auto p = random_operands(rows, in, out, terms, rank, torch::kDouble, with_bias);
  const auto exact = ops::sketched_linear_reference(p.x, p.s1, p.s2, p.u1, p.u2, maybe(p.bias));
  struct Case {
    torch::Dtype dtype;
    testing::Tolerance tolerance;
  };
  for (const Case c : {Case{torch::kDouble, testing::kFp64}, Case{torch::kFloat, testing::kFp32Reordered},
                       Case{torch::kBFloat16, testing::kBf16}}) {
    auto cast = [&](const torch::Tensor& t) { return t.defined() ? t.to(c.dtype) : t; };
    const auto y = ops::sketched_linear(cast(p.x), cast(p.s1), cast(p.s2), cast(p.u1), cast(p.u2), maybe(cast(p.bias)));
    EXPECT_EQ(y.scalar_type(), c.dtype);
    ASSERT_EQ(y.sizes(), exact.sizes());
    // Against the double reference of the same (rounded) operands.
    auto back = [](const torch::Tensor& t) { return t.defined() ? t.to(torch::kDouble) : t; };
    const auto reference =
        ops::sketched_linear_reference(back(cast(p.x)), back(cast(p.s1)), back(cast(p.s2)), back(cast(p.u1)),
                                       back(cast(p.u2)), maybe(back(cast(p.bias))));
    EXPECT_LT(relative_error(y, reference), c.tolerance.relative) << c10::toString(c.dtype);
  }
}

TEST_P(SketchedLinearCpu, GradientsMatchTheReferenceAutograd) {
  const auto [rows, in, out, terms, rank, with_bias] = GetParam();
  auto p = random_operands(rows, in, out, terms, rank, torch::kDouble, with_bias, 3);
  for (auto* t : {&p.x, &p.s1, &p.s2, &p.bias})
    if (t->defined()) t->requires_grad_(true);
  const auto gy = torch::randn({rows, out}, torch::kDouble);
  auto grads = [&](const torch::Tensor& y) {
    std::vector<torch::Tensor> wrt{p.x, p.s1, p.s2};
    if (p.bias.defined()) wrt.push_back(p.bias);
    return torch::autograd::grad({y}, wrt, {gy});
  };
  const auto fast = grads(ops::sketched_linear(p.x, p.s1, p.s2, p.u1, p.u2, maybe(p.bias)));
  const auto slow = grads(ops::sketched_linear_reference(p.x, p.s1, p.s2, p.u1, p.u2, maybe(p.bias)));
  ASSERT_EQ(fast.size(), slow.size());
  for (size_t i = 0; i < fast.size(); ++i) EXPECT_LT(relative_error(fast[i], slow[i]), testing::kFp64.relative) << i;
}

INSTANTIATE_TEST_SUITE_P(Shapes, SketchedLinearCpu,
                         ::testing::Values(Shape{7, 33, 29, 1, 16, true}, Shape{1, 50, 3, 3, 5, false},
                                           Shape{130, 17, 65, 2, 100, true}, Shape{64, 96, 96, 4, 97, false},
                                           Shape{200, 129, 1, 1, 1, true}));

TEST(SketchedLinearOp, GradcheckInDoubleAgainstFiniteDifferences) {
  auto p = random_operands(5, 7, 6, 2, 3, torch::kDouble, true, 11);
  for (auto* t : {&p.x, &p.s1, &p.s2, &p.bias}) t->requires_grad_(true);
  const auto u1 = p.u1, u2 = p.u2;
  const auto result = testing::gradcheck(
      [&](const std::vector<torch::Tensor>& a) { return ops::sketched_linear(a[0], a[1], a[2], u1, u2, a[3]); },
      {p.x, p.s1, p.s2, p.bias});
  EXPECT_LT(result.max_error, testing::kGradcheck.relative) << result.where;
}

TEST(SketchedLinearOp, TheSketchesGetNoGradient) {
  auto p = random_operands(4, 6, 5, 1, 2, torch::kDouble, false);
  p.u1.requires_grad_(true);
  p.s1.requires_grad_(true);
  const auto y = ops::sketched_linear(p.x, p.s1, p.s2, p.u1, p.u2, std::nullopt);
  const auto g = torch::autograd::grad({y.sum()}, {p.s1, p.u1}, {}, false, false, true);
  EXPECT_TRUE(g[0].defined());
  EXPECT_FALSE(g[1].defined());
}

TEST(SketchedLinearOp, NonContiguousAndBatchedInputs) {
  const auto p = random_operands(6, 20, 9, 2, 4, torch::kFloat, true);
  const auto wide = torch::randn({3, 20, 10});  // [3, in, 10]
  const auto x = wide.transpose(1, 2);          // [3, 10, in], non-contiguous
  ASSERT_FALSE(x.is_contiguous());
  const auto y = ops::sketched_linear(x, p.s1, p.s2, p.u1, p.u2, p.bias);
  EXPECT_EQ(y.sizes(), (torch::IntArrayRef{3, 10, 9}));
  const auto reference = ops::sketched_linear_reference(x.contiguous(), p.s1, p.s2, p.u1, p.u2, p.bias);
  EXPECT_LT(relative_error(y, reference), testing::kFp32Reordered.relative);
}

TEST(SketchedLinearOp, RejectsInconsistentOperandsNamingThem) {
  const auto p = random_operands(3, 8, 5, 2, 4, torch::kFloat, true);
  auto message = [](auto body) {
    try {
      body();
    } catch (const c10::Error& e) {
      return std::string(e.what_without_backtrace());
    }
    return std::string("no error");
  };
  EXPECT_THAT(message([&] {
                ops::sketched_linear(torch::randn({3, 9}), p.s1, p.s2, p.u1, p.u2, p.bias);
              }),
              ::testing::HasSubstr("in=8"));
  EXPECT_THAT(message([&] { ops::sketched_linear(p.x, p.s1, p.s2, p.u1.narrow(2, 0, 4), p.u2, p.bias); }),
              ::testing::HasSubstr("u1 must be [L, k, out]"));
  EXPECT_THAT(message([&] { ops::sketched_linear(p.x, p.s1, p.s2, p.u1, p.u2, torch::randn({4})); }),
              ::testing::HasSubstr("bias must be [out=5]"));
  EXPECT_THAT(message([&] { ops::sketched_linear(p.x.to(torch::kDouble), p.s1, p.s2, p.u1, p.u2, p.bias); }),
              ::testing::HasSubstr("dtype"));
}

TEST(SketchedLinearLayer, IsAnUnbiasedEstimateOfTheLinearItWasMadeFrom) {
  torch::manual_seed(5);
  const int64_t in = 24, out = 18;
  const auto weight = torch::randn({out, in}, torch::kDouble), bias = torch::randn({out}, torch::kDouble);
  const auto x = torch::randn({10, in}, torch::kDouble);
  const auto exact = torch::nn::functional::linear(x, weight, bias);
  // One sketch is far off; the mean over n independent sketches converges like 1/√n.
  auto mean_error = [&](int n) {
    torch::Tensor sum = torch::zeros_like(exact);
    for (int s = 0; s < n; ++s) {
      nn::SketchedLinear layer(nn::SketchedLinearOptions{in, out, 1, 4, true, static_cast<uint64_t>(1000 + s)}, weight,
                               bias);
      sum += layer->forward(x).detach();
    }
    return relative_error(sum / n, exact);
  };
  const double one = mean_error(1), many = mean_error(400);
  EXPECT_GT(one, 0.3);   // a single rank-4 sketch of a 24×18 map is a rough estimate...
  EXPECT_LT(many, 0.1);  // ...and the average of 400 is close: the estimator is unbiased
  EXPECT_LT(many, one / 5);
}

TEST(SketchedLinearLayer, EffectiveWeightIsWhatForwardComputes) {
  nn::SketchedLinear layer(nn::SketchedLinearOptions{13, 11, 3, 5, true, 9});
  layer->to(torch::kDouble);
  const auto x = torch::randn({4, 13}, torch::kDouble);
  const auto y = layer->forward(x);
  const auto dense = torch::nn::functional::linear(x, layer->effective_weight(), layer->bias);
  EXPECT_LT(relative_error(y, dense), testing::kFp64.relative);
}

TEST(SketchedLinearLayer, CountsParametersAndBuffersAndRebuildsFromItsSpec) {
  nn::SketchedLinear layer(nn::SketchedLinearOptions{40, 30, 2, 8, true, 1});
  EXPECT_EQ(layer->parameter_count(), 2 * 8 * (40 + 30) + 30);
  EXPECT_EQ(layer->buffer_count(), 2 * 8 * (40 + 30));
  int64_t parameters = 0, buffers = 0;
  for (const auto& p : layer->parameters()) parameters += p.numel();
  for (const auto& b : layer->buffers()) buffers += b.numel();
  EXPECT_EQ(parameters, layer->parameter_count());
  EXPECT_EQ(buffers, layer->buffer_count());
  EXPECT_EQ(nn::sketched_linear_macs(40, 30, 2, 8), 2 * 2 * 8 * 70);

  const auto rebuilt = nn::build_layer(
      {{"kind", "sketched_linear"}, {"in", 40}, {"out", 30}, {"terms", 2}, {"rank", 8}, {"bias", true}});
  const auto named = rebuilt.module->named_parameters();
  EXPECT_EQ(named["s1"].sizes(), layer->s1.sizes());
  EXPECT_EQ(rebuilt.module->named_buffers()["u2"].sizes(), layer->u2.sizes());
  EXPECT_THAT(testing::error_message([] {
                nn::build_layer(
                    {{"kind", "sketched_linear"}, {"in", 4}, {"out", 3}, {"terms", 0}, {"rank", 2}, {"bias", false}});
              }),
              ::testing::HasSubstr("terms"));
  EXPECT_THAT(testing::error_message([] {
                nn::SketchedLinear(nn::SketchedLinearOptions{4, 3, 1, 0, true, 0});
              }),
              ::testing::HasSubstr("rank (k) must be positive"));
}

}  // namespace
}  // namespace hone
