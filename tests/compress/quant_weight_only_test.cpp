// Weight-only int8 / grouped int4 Linear layers (LibTorch's _weight_int8pack_mm and
// _weight_int4pack_mm kernels) and the quant_weight_only pass: quantization error within its
// analytic bound, the kernels against x·dequantize(W)ᵀ + b in double, the pass's choices and
// reasons, and save → reload → identical outputs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/core/error.h"
#include "hone/nn/linear_weight_only.h"
#include "support/pass_runner.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone::compress {
namespace {

using testing::count_layers;
using testing::mentions;
using testing::run_pass;

using testing::table;

/// x·Wᵀ + b in double, W the layer's dequantized weight: what every kernel must compute.
torch::Tensor reference(nn::LinearWeightOnlyImpl& layer, const torch::Tensor& x) {
  auto y = torch::matmul(x.to(torch::kDouble), layer.dequantized_weight().to(torch::kDouble).t());
  if (layer.bias.defined()) y = y + layer.bias.to(torch::kDouble);
  return y;
}

TEST(WeightOnlyQuantTest, Int8ErrorIsAtMostHalfAStepPerElement) {
  torch::manual_seed(1);
  const auto w = torch::randn({37, 53}) * torch::rand({37, 1}) * 4;  // channels of different ranges
  const auto [values, scales] = nn::quantize_weight_only_int8(w);
  ASSERT_EQ(values.scalar_type(), torch::kChar);
  EXPECT_LE(values.abs().max().item<int>(), 127);
  EXPECT_EQ(values.abs().amax(1).min().item<int>(), 127) << "each channel's largest weight maps to ±127";
  const auto dq = nn::dequantize_weight_only({53, 37, 8, 0}, values, scales);
  const auto error = (dq - w).abs();
  const auto bound = scales.unsqueeze(1) / 2 * (1 + 1e-5);
  EXPECT_TRUE((error <= bound).all().item<bool>()) << "worst excess " << (error - bound).max().item<double>();
  EXPECT_GT(error.max().item<double>(), 0) << "int8 cannot hold random fp32 weights exactly";
}

TEST(WeightOnlyQuantTest, Int4GroupsErrorIsAtMostHalfAStepAndConstantGroupsAreExact) {
  torch::manual_seed(2);
  auto w = torch::randn({16, 128});
  w.slice(1, 64, 96).fill_(0.75);  // one constant group of 32 in every row
  const std::int64_t group = 32;
  const auto [codes, scales_and_zeros] = nn::quantize_weight_only_int4(w, group);
  ASSERT_EQ(codes.sizes(), (std::vector<std::int64_t>{16, 64}));
  ASSERT_EQ(scales_and_zeros.sizes(), (std::vector<std::int64_t>{4, 16, 2}));
  const nn::WeightOnlyShape shape{128, 16, 4, group};
  const auto dq = nn::dequantize_weight_only(shape, codes, scales_and_zeros);
  const auto step = scales_and_zeros.select(2, 0).t().repeat_interleave(group, 1);  // [16, 128]
  const auto error = (dq - w).abs();
  EXPECT_TRUE((error <= step / 2 * (1 + 1e-5) + 1e-6).all().item<bool>())
      << "worst excess " << (error - step / 2).max().item<double>();
  EXPECT_LT(error.slice(1, 64, 96).max().item<double>(), 1e-6) << "a constant group is reproduced";
  // Each non-constant group uses both ends of the code range (its min and max map to 0 and 15).
  const auto bytes = codes.to(torch::kInt);
  const auto unpacked =
      torch::stack({torch::bitwise_right_shift(bytes, 4), torch::bitwise_and(bytes, 15)}, -1).reshape({16, 128});
  EXPECT_EQ(unpacked.slice(1, 0, 32).amax(1).min().item<int>(), 15);
  EXPECT_EQ(unpacked.slice(1, 0, 32).amin(1).max().item<int>(), 0);
}

struct KernelCase {
  int bits;
  std::int64_t in, out, group;
  bool bias;
};

class WeightOnlyLayerTest : public ::testing::TestWithParam<KernelCase> {};

TEST_P(WeightOnlyLayerTest, CpuKernelEqualsDequantizedReference) {
  const auto c = GetParam();
  torch::manual_seed(3);
  torch::nn::Linear linear(torch::nn::LinearOptions(c.in, c.out).bias(c.bias));
  auto layer = nn::LinearWeightOnlyImpl::from_float(*linear, c.bits, c.group);
  for (const auto rows : {1, 7, 33}) {
    const auto x = torch::randn({rows, c.in});
    const auto expected = reference(*layer, x);
    const auto y = layer->forward(x);
    ASSERT_EQ(y.scalar_type(), torch::kFloat);
    EXPECT_LT(testing::relative_error(y.to(torch::kDouble), expected), testing::kFp32Reordered.relative)
        << rows << " rows";
    const auto y16 = layer->forward(x.to(torch::kBFloat16));
    ASSERT_EQ(y16.scalar_type(), torch::kBFloat16);
    EXPECT_LT(testing::relative_error(y16.to(torch::kDouble), expected), testing::kBf16.relative) << rows << " rows";
  }
  // Leading dimensions are kept; a non-contiguous input gives the same answer.
  const auto x3 = torch::randn({c.in, 5, 3}).permute({1, 2, 0});
  const auto y3 = layer->forward(x3);
  EXPECT_EQ(y3.sizes(), (std::vector<std::int64_t>{5, 3, c.out}));
  EXPECT_LT(testing::relative_error(y3.to(torch::kDouble), reference(*layer, x3)), testing::kFp32Reordered.relative);
  // And it is close to the float layer it came from (the quantization error only).
  const auto x = torch::randn({9, c.in});
  const auto float_error = testing::relative_error(layer->forward(x), linear->forward(x));
  EXPECT_LT(float_error, c.bits == 8 ? 0.01 : 0.15);
  EXPECT_GT(float_error, 0);
}

INSTANTIATE_TEST_SUITE_P(Shapes, WeightOnlyLayerTest,
                         ::testing::Values(KernelCase{8, 37, 29, 0, true}, KernelCase{8, 64, 40, 0, false},
                                           KernelCase{4, 96, 48, 32, true}, KernelCase{4, 256, 32, 128, false},
                                           KernelCase{4, 64, 16, 64, true}));

TEST(WeightOnlyLayerTest, RejectsShapesTheKernelsCannotTake) {
  EXPECT_FALSE(nn::weight_only_unsupported({48, 40, 4, 32}).empty()) << "in not a multiple of 32";
  EXPECT_FALSE(nn::weight_only_unsupported({96, 40, 4, 32}).empty()) << "out not a multiple of 16";
  EXPECT_FALSE(nn::weight_only_unsupported({96, 40, 4, 48}).empty()) << "group 48";
  EXPECT_FALSE(nn::weight_only_unsupported({64, 40, 4, 128}).empty()) << "group larger than in";
  EXPECT_FALSE(nn::weight_only_unsupported({64, 40, 6, 0}).empty()) << "6 bits";
  EXPECT_TRUE(nn::weight_only_unsupported({37, 29, 8, 0}).empty());
  EXPECT_TRUE(nn::weight_only_unsupported({96, 48, 4, 32}).empty());
  EXPECT_THROW(nn::LinearWeightOnlyImpl({48, 48, 4, 32}, true), Error);
  torch::nn::Linear linear(64, 40);
  auto layer = nn::LinearWeightOnlyImpl::from_float(*linear, 8, 0);
  EXPECT_THROW(layer->forward(torch::randn({2, 63})), Error);
}

TEST(WeightOnlyPassTest, ReplacesSupportedLinearsSaysWhyItSkipsOthersAndReloads) {
  torch::manual_seed(4);
  // mlp 96 -> 64 -> 48 -> 10: the last layer's input (48) does not suit int4.
  auto model = models::make_model("mlp", table(96), {{"hidden", {64, 48}}, {"dropout", 0.0}});
  model->eval();
  const auto x = torch::randn({6, 96});
  const auto expected = model->forward(x);
  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, "quant_weight_only", {{"bits", 4}, {"group_size", 32}});
  EXPECT_EQ(count_layers<nn::LinearWeightOnlyImpl>(*model), 2);
  EXPECT_EQ(count_layers<torch::nn::LinearImpl>(*model), 1);
  EXPECT_EQ(report.changed.size(), 2u);
  EXPECT_TRUE(mentions(report.skipped,
                       "layers.6: Linear [48 -> 10] left in float: int4 needs in_features (48) divisible by 32"))
      << report.skipped[0];
  ASSERT_EQ(report.details["layers"].size(), 2u);
  for (const auto& layer : report.details["layers"]) {
    EXPECT_GT(layer["weight_error"].get<double>(), 0);
    EXPECT_LT(layer["weight_error"].get<double>(), 0.15);
  }
  const auto actual = model->forward(x);
  EXPECT_LT(testing::relative_error(actual, expected), 0.2);
  auto rebuilt = testing::reload(*model, editor);
  EXPECT_EQ(count_layers<nn::LinearWeightOnlyImpl>(*rebuilt), 2);
  EXPECT_TRUE(torch::equal(rebuilt->forward(x), actual));

  // int8 takes every shape, and 'skip' keeps a layer in float.
  auto model8 = models::make_model("mlp", table(96), {{"hidden", {64, 48}}, {"dropout", 0.0}});
  ModelEditor editor8(*model8);
  const auto report8 = run_pass(*model8, editor8, "quant_weight_only", {{"skip", {"layers.0"}}});
  EXPECT_EQ(count_layers<nn::LinearWeightOnlyImpl>(*model8), 2);
  EXPECT_TRUE(mentions(report8.skipped, "layers.0: Linear left in float by the 'skip' option"));
}

TEST(WeightOnlyPassTest, BadOptionsAreUsageErrors) {
  auto model = models::make_model("mlp", table(64), {{"hidden", {32}}});
  ModelEditor editor(*model);
  EXPECT_THROW(run_pass(*model, editor, "quant_weight_only", {{"bits", 6}}), UsageError);
  EXPECT_THROW(run_pass(*model, editor, "quant_weight_only", {{"bits", 4}, {"group_size", 100}}), UsageError);
  EXPECT_THROW(run_pass(*model, editor, "quant_weight_only", {{"bits", 2}}), UsageError);
  EXPECT_EQ(count_layers<nn::LinearWeightOnlyImpl>(*model), 0) << "nothing changes on bad options";
}

}  // namespace
}  // namespace hone::compress
