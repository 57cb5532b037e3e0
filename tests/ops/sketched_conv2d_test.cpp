// hone::sketched_conv2d on CPU against its term-by-term ATen reference, its gradients against the
// reference's autograd and finite differences, and the layer's defining property: an unbiased
// estimate of the Conv2d it was made from.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "hone/nn/layer_kinds.h"
#include "hone/nn/sketched_conv2d.h"
#include "hone/ops/sketched_conv2d.h"
#include "support/error_message.h"
#include "support/gradcheck.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone {
namespace {

using testing::relative_error;

enum class Layout { kContiguous, kChannelsLast, kPermuted };

struct Case {
  int64_t batch, channels, out, height, width;
  std::vector<int64_t> kernel, stride, padding, dilation;
  int64_t terms;  ///< T = 2L, the first dimension of s and u
  int64_t rank;   ///< k
  bool bias;
  Layout layout;
};

void PrintTo(const Case& c, std::ostream* os) {
  const auto two = [](const std::vector<int64_t>& v) { return std::to_string(v[0]) + "x" + std::to_string(v[1]); };
  *os << "B" << c.batch << " C" << c.channels << " out" << c.out << " " << c.height << "x" << c.width << " kernel "
      << two(c.kernel) << " stride " << two(c.stride) << " padding " << two(c.padding) << " dilation "
      << two(c.dilation) << " T" << c.terms << " k" << c.rank << (c.bias ? " bias" : "")
      << (c.layout == Layout::kChannelsLast ? " channels-last"
          : c.layout == Layout::kPermuted   ? " permuted"
                                            : "");
}

// x [B, C, H, W] laid out as asked: NCHW, channels-last, or strides of a [B, W, H, C] tensor.
torch::Tensor input_of(const Case& c, torch::Dtype dtype) {
  const auto o = torch::TensorOptions().dtype(dtype);
  switch (c.layout) {
    case Layout::kChannelsLast:
      return torch::randn({c.batch, c.channels, c.height, c.width}, o).contiguous(at::MemoryFormat::ChannelsLast);
    case Layout::kPermuted:
      return torch::randn({c.batch, c.width, c.height, c.channels}, o).permute({0, 3, 2, 1});
    case Layout::kContiguous:
      break;
  }
  return torch::randn({c.batch, c.channels, c.height, c.width}, o);
}

struct Operands {
  torch::Tensor x, s, u, bias;
};

// Random operands (not a made-from-Conv2d layer: every S and U entry independent, so any mix-up of
// terms, channels or transposes shows).
Operands random_operands(const Case& c, torch::Dtype dtype, uint64_t seed = 1) {
  torch::manual_seed(seed);
  const auto o = torch::TensorOptions().dtype(dtype);
  Operands p;
  p.x = input_of(c, dtype);
  p.s = torch::randn({c.terms, c.rank, c.channels, c.kernel[0], c.kernel[1]}, o);
  p.u = torch::randn({c.terms, c.rank, c.out}, o);
  if (c.bias) p.bias = torch::randn({c.out}, o);
  return p;
}

std::optional<torch::Tensor> maybe(const torch::Tensor& t) { return t.defined() ? std::optional(t) : std::nullopt; }

torch::Tensor run_op(const Case& c, const Operands& p) {
  return ops::sketched_conv2d(p.x, p.s, p.u, maybe(p.bias), c.stride, c.padding, c.dilation);
}
torch::Tensor run_reference(const Case& c, const Operands& p) {
  return ops::sketched_conv2d_reference(p.x, p.s, p.u, maybe(p.bias), c.stride, c.padding, c.dilation);
}

class SketchedConv2dCpu : public ::testing::TestWithParam<Case> {};

TEST_P(SketchedConv2dCpu, MatchesTheReferenceInEveryDtype) {
  const Case c = GetParam();
  const auto p = random_operands(c, torch::kDouble);
  if (c.layout != Layout::kContiguous) {
    ASSERT_FALSE(p.x.is_contiguous());
  }
  struct Row {
    torch::Dtype dtype;
    testing::Tolerance tolerance;
  };
  for (const Row row : {Row{torch::kDouble, testing::kFp64}, Row{torch::kFloat, testing::kFp32Reordered},
                        Row{torch::kBFloat16, testing::kBf16}}) {
    auto cast = [&](const torch::Tensor& t) { return t.defined() ? t.to(row.dtype) : t; };
    auto back = [](const torch::Tensor& t) { return t.defined() ? t.to(torch::kDouble) : t; };
    const Operands rounded{cast(p.x), cast(p.s), cast(p.u), cast(p.bias)};
    const Operands exact{back(rounded.x), back(rounded.s), back(rounded.u), back(rounded.bias)};
    ASSERT_EQ(rounded.x.strides(), p.x.strides()) << "the cast kept the layout";
    const auto y = run_op(c, rounded);
    EXPECT_EQ(y.scalar_type(), row.dtype);
    // Against the double reference of the same (rounded) operands.
    const auto reference = run_reference(c, exact);
    ASSERT_EQ(y.sizes(), reference.sizes());
    EXPECT_LT(relative_error(y, reference), row.tolerance.relative) << c10::toString(row.dtype);
  }
}

TEST_P(SketchedConv2dCpu, GradientsMatchTheReferenceAutograd) {
  const Case c = GetParam();
  auto p = random_operands(c, torch::kDouble, 3);
  for (auto* t : {&p.x, &p.s, &p.bias})
    if (t->defined()) t->requires_grad_(true);
  const auto y = run_op(c, p);
  const auto gy = torch::randn_like(y);  // y's memory format: both projection paths get exercised
  auto grads = [&](const torch::Tensor& out) {
    std::vector<torch::Tensor> wrt{p.x, p.s};
    if (p.bias.defined()) wrt.push_back(p.bias);
    return torch::autograd::grad({out}, wrt, {gy});
  };
  const auto fast = grads(y);
  const auto slow = grads(run_reference(c, p));
  ASSERT_EQ(fast.size(), slow.size());
  for (size_t i = 0; i < fast.size(); ++i) {
    ASSERT_EQ(fast[i].sizes(), slow[i].sizes()) << i;
    EXPECT_LT(relative_error(fast[i], slow[i]), testing::kFp64.relative) << i;
  }
}

// Odd sizes; T = 2 (L = 1) and T > 2; k small and k > out; with and without bias; every layout.
INSTANTIATE_TEST_SUITE_P(
    Shapes, SketchedConv2dCpu,
    ::testing::Values(Case{2, 3, 7, 9, 11, {3, 2}, {2, 2}, {1, 1}, {1, 1}, 2, 4, true, Layout::kContiguous},
                      Case{3, 3, 7, 9, 11, {3, 2}, {1, 2}, {1, 1}, {2, 2}, 6, 10, false, Layout::kChannelsLast},
                      Case{1, 5, 2, 8, 7, {1, 3}, {2, 1}, {0, 2}, {2, 1}, 4, 1, true, Layout::kPermuted},
                      Case{2, 3, 7, 9, 11, {3, 2}, {2, 2}, {1, 1}, {2, 1}, 2, 9, false, Layout::kPermuted},
                      Case{2, 16, 33, 13, 10, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 4, 8, true, Layout::kChannelsLast}));

TEST(SketchedConv2dOp, GradcheckInDoubleAgainstFiniteDifferences) {
  // A few hundred elements: L = 1 with bias (NCHW), and L = 2 with k > out (channels-last).
  for (const Case& c : {Case{1, 2, 3, 5, 4, {2, 3}, {2, 1}, {1, 1}, {1, 2}, 2, 2, true, Layout::kContiguous},
                        Case{2, 2, 3, 4, 5, {2, 2}, {1, 2}, {0, 1}, {2, 1}, 4, 4, false, Layout::kChannelsLast}}) {
    auto p = random_operands(c, torch::kDouble, 11);
    std::vector<torch::Tensor> inputs{p.x, p.s};
    if (c.bias) inputs.push_back(p.bias);
    for (auto& t : inputs) t.requires_grad_(true);
    const auto u = p.u;
    const auto result = testing::gradcheck(
        [&](const std::vector<torch::Tensor>& a) {
          return ops::sketched_conv2d(a[0], a[1], u, a.size() > 2 ? maybe(a[2]) : std::nullopt, c.stride, c.padding,
                                      c.dilation);
        },
        inputs);
    EXPECT_LT(result.max_error, testing::kGradcheck.relative) << result.where;
  }
}

TEST(SketchedConv2dOp, TheSketchesGetNoGradient) {
  const Case c{2, 3, 5, 6, 7, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 2, 3, true, Layout::kContiguous};
  auto p = random_operands(c, torch::kDouble);
  p.u.requires_grad_(true);
  p.s.requires_grad_(true);
  const auto y = run_op(c, p);
  const auto g = torch::autograd::grad({y.sum()}, {p.s, p.u}, {}, false, false, true);
  EXPECT_TRUE(g[0].defined());
  EXPECT_FALSE(g[1].defined());
}

TEST(SketchedConv2dOp, RejectsInconsistentOperandsNamingThem) {
  const Case c{2, 3, 7, 9, 11, {3, 2}, {2, 2}, {1, 1}, {1, 1}, 2, 4, true, Layout::kContiguous};
  const auto p = random_operands(c, torch::kFloat);
  auto message = [](auto body) {
    try {
      body();
    } catch (const c10::Error& e) {
      return std::string(e.what_without_backtrace());
    }
    return std::string("no error");
  };
  const std::vector<int64_t> one{1, 1};
  const auto b = maybe(p.bias);
  EXPECT_THAT(message([&] {
                ops::sketched_conv2d(torch::randn({2, 4, 9, 11}), p.s, p.u, b, one, one, one);
              }),
              ::testing::HasSubstr("input has 4 channels but s takes C=3"));
  EXPECT_THAT(message([&] {
                ops::sketched_conv2d(torch::randn({3, 9, 11}), p.s, p.u, b, one, one, one);
              }),
              ::testing::HasSubstr("input must be [B, C, H, W]"));
  EXPECT_THAT(message([&] { ops::sketched_conv2d(p.x, p.s[0], p.u, b, one, one, one); }),
              ::testing::HasSubstr("s must be [T, k, C, kh, kw]"));
  EXPECT_THAT(message([&] { ops::sketched_conv2d(p.x, p.s, p.u.narrow(1, 0, 3), b, one, one, one); }),
              ::testing::HasSubstr("u must be [T=2, k=4, out]"));
  EXPECT_THAT(message([&] { ops::sketched_conv2d(p.x, p.s, p.u, torch::randn({6}), one, one, one); }),
              ::testing::HasSubstr("bias must be [out=7]"));
  EXPECT_THAT(message([&] { ops::sketched_conv2d(p.x.to(torch::kDouble), p.s, p.u, b, one, one, one); }),
              ::testing::HasSubstr("dtype"));
  EXPECT_THAT(message([&] {
                ops::sketched_conv2d(p.x, p.s, p.u, b, std::vector<int64_t>{0, 1}, one, one);
              }),
              ::testing::HasSubstr("stride must be two positive integers"));
  EXPECT_THAT(message([&] { ops::sketched_conv2d(p.x, p.s, p.u, b, one, std::vector<int64_t>{1}, one); }),
              ::testing::HasSubstr("padding must be two non-negative integers"));
  EXPECT_THAT(message([&] {
                ops::sketched_conv2d(torch::randn({1, 3, 2, 2}), p.s, p.u, b, one, std::vector<int64_t>{0, 0},
                                     std::vector<int64_t>{2, 1});
              }),
              ::testing::HasSubstr("smaller than the dilated kernel"));
}

TEST(SketchedConv2dLayer, IsAnUnbiasedEstimateOfTheConv2dItWasMadeFrom) {
  torch::manual_seed(5);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(4, 12, {3, 3}).stride(2).padding(1));
  conv->to(torch::kDouble);
  const auto x = torch::randn({2, 4, 9, 11}, torch::kDouble);
  const auto exact = conv->forward(x).detach();
  // One sketch is far off; the mean over n independent sketches converges like 1/√n.
  auto mean_error = [&](int n) {
    torch::Tensor sum = torch::zeros_like(exact);
    for (int s = 0; s < n; ++s) {
      const auto layer = nn::SketchedConv2dImpl::from_conv(*conv, 1, 4, static_cast<uint64_t>(1000 + s));
      sum += layer->forward(x).detach();
    }
    return relative_error(sum / n, exact);
  };
  const double one = mean_error(1), many = mean_error(400);
  EXPECT_GT(one, 0.3);   // one L = 1, rank-4 sketch of a 12-channel output is a rough estimate...
  EXPECT_LT(many, 0.1);  // ...and the average of 400 is close: the estimator is unbiased
  EXPECT_LT(many, one / 5);
}

TEST(SketchedConv2dLayer, EffectiveWeightIsWhatForwardComputes) {
  nn::SketchedConv2d layer(nn::SketchedConv2dOptions{5, 6, {3, 2}, {2, 1}, {1, 0}, {1, 2}, 2, 3, true, 9});
  layer->to(torch::kDouble);
  const auto x = torch::randn({2, 5, 10, 9}, torch::kDouble);
  const auto y = layer->forward(x);
  const auto& o = layer->options();
  const auto weight = layer->effective_weight();
  EXPECT_EQ(weight.sizes(), (torch::IntArrayRef{6, 5, 3, 2}));
  const auto dense = at::conv2d(x, weight, layer->bias, o.stride, o.padding, o.dilation);
  EXPECT_LT(relative_error(y, dense), testing::kFp64.relative);
}

TEST(SketchedConv2dLayer, MadeFromAConv2dKeepsItsGeometryDtypeAndBias) {
  torch::manual_seed(2);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 7, {3, 2}).stride({2, 2}).padding({1, 1}).dilation({2, 1}));
  const auto layer = nn::SketchedConv2dImpl::from_conv(*conv, 2, 5, 3);
  const auto& o = layer->options();
  EXPECT_EQ(o.in_channels, 3);
  EXPECT_EQ(o.out_channels, 7);
  EXPECT_EQ(o.kernel_size, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(o.stride, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(o.padding, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(o.dilation, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(layer->s.sizes(), (torch::IntArrayRef{4, 5, 3, 3, 2}));
  EXPECT_EQ(layer->u.sizes(), (torch::IntArrayRef{4, 5, 7}));
  EXPECT_EQ(layer->s.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(layer->bias, conv->bias));
  // Sᵢ = Uᵢ·W_f exactly (up to the cast to float) and every U entry is ±1/√k.
  const auto flat = conv->weight.detach().to(torch::kDouble).reshape({7, -1});
  const auto u = layer->u.to(torch::kDouble);
  EXPECT_LT(relative_error(layer->s.reshape({4, 5, -1}), torch::matmul(u, flat)), testing::kFp32.relative);
  EXPECT_TRUE(torch::allclose(u.abs(), torch::full_like(u, 1 / std::sqrt(5.0))));
  const auto x = torch::randn({2, 3, 12, 9});
  EXPECT_EQ(layer->forward(x).sizes(), conv->forward(x).sizes());
}

TEST(SketchedConv2dLayer, RejectsGroupedConvolutionsAndBadOptions) {
  torch::nn::Conv2d grouped(torch::nn::Conv2dOptions(4, 6, 3).groups(2));
  EXPECT_THAT(testing::error_message([&] { nn::SketchedConv2dImpl::from_conv(*grouped, 1, 2, 0); }),
              ::testing::HasSubstr("only groups = 1 convolutions can be sketched, got groups = 2"));
  torch::nn::Conv2d reflect(torch::nn::Conv2dOptions(4, 6, 3).padding(1).padding_mode(torch::kReflect));
  EXPECT_THAT(testing::error_message([&] { nn::SketchedConv2dImpl::from_conv(*reflect, 1, 2, 0); }),
              ::testing::HasSubstr("only explicit zero padding"));
  EXPECT_THAT(testing::error_message([] {
                nn::SketchedConv2d(nn::SketchedConv2dOptions{4, 6, {3, 3}, {1, 1}, {0, 0}, {1, 1}, 1, 2, true, 0},
                                   torch::zeros({6, 2, 3, 3}), std::nullopt);
              }),
              ::testing::HasSubstr("weight must be [out, C, kh, kw] = [6,4,3,3] (a groups = 1 convolution)"));
  EXPECT_THAT(testing::error_message([] {
                nn::SketchedConv2d(nn::SketchedConv2dOptions{4, 6, {3, 3}, {1, 1}, {0, 0}, {1, 1}, 1, 2, true, 0},
                                   torch::zeros({6, 4, 3, 3}), torch::zeros({5}));
              }),
              ::testing::HasSubstr("bias must be [out=6]"));
  EXPECT_THAT(testing::error_message([] {
                nn::SketchedConv2d(nn::SketchedConv2dOptions{4, 6, {3, 3}, {1}, {0, 0}, {1, 1}, 1, 2, true, 0});
              }),
              ::testing::HasSubstr("stride must be two positive integers, got [1]"));
  EXPECT_THAT(testing::error_message([] {
                nn::SketchedConv2d(nn::SketchedConv2dOptions{4, 6, {3, 3}, {1, 1}, {0, 0}, {1, 1}, 1, 0, true, 0});
              }),
              ::testing::HasSubstr("rank (k) must be positive"));
}

TEST(SketchedConv2dLayer, CountsParametersAndBuffersAndRebuildsFromItsSpec) {
  nn::SketchedConv2d layer(nn::SketchedConv2dOptions{6, 10, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 2, 4, true, 1});
  EXPECT_EQ(layer->parameter_count(), 2 * 2 * 4 * 6 * 9 + 10);
  EXPECT_EQ(layer->buffer_count(), 2 * 2 * 4 * 10);
  int64_t parameters = 0, buffers = 0;
  for (const auto& p : layer->parameters()) parameters += p.numel();
  for (const auto& b : layer->buffers()) buffers += b.numel();
  EXPECT_EQ(parameters, layer->parameter_count());
  EXPECT_EQ(buffers, layer->buffer_count());
  EXPECT_EQ(nn::sketched_conv2d_macs_per_pixel(layer->options()), 16 * 6 * 9 + 16 * 10);
  std::ostringstream printed;
  layer->pretty_print(printed);
  EXPECT_THAT(printed.str(), ::testing::HasSubstr("SketchedConv2d(6, 10, kernel_size=[3, 3]"));

  const auto spec = layer->spec();
  EXPECT_EQ(spec["kind"], "sketched_conv2d");
  const auto rebuilt = nn::build_layer(spec);
  auto named = rebuilt.module->named_parameters();
  EXPECT_EQ(named["s"].sizes(), layer->s.sizes());
  EXPECT_EQ(named["bias"].sizes(), layer->bias.sizes());
  EXPECT_EQ(rebuilt.module->named_buffers()["u"].sizes(), layer->u.sizes());
  const auto x = torch::randn({1, 6, 7, 5});
  EXPECT_EQ(rebuilt.call(x).sizes(), layer->forward(x).sizes());

  auto broken = spec;
  broken["terms"] = 0;
  EXPECT_THAT(testing::error_message([&] { nn::build_layer(broken); }), ::testing::HasSubstr("terms"));
  broken = spec;
  broken["kernel"] = {3};
  EXPECT_THAT(testing::error_message([&] { nn::build_layer(broken); }), ::testing::HasSubstr("kernel"));
  broken = spec;
  broken.erase("dilation");
  EXPECT_THAT(testing::error_message([&] { nn::build_layer(broken); }),
              ::testing::HasSubstr("missing field 'dilation'"));
}

}  // namespace
}  // namespace hone
