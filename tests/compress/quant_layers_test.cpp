// Each quantized layer against a slow reference in plain ATen ops (dequantize(quantize(.)) then fp32
// math), on odd sizes. Static int8 layers may differ from the reference by one output step (the
// kernel requantizes in float32, the reference in double); dynamic ones only by fp32 rounding.
#include <ATen/cpu/Utils.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/core/error.h"
#include "hone/nn/conv2d_float.h"
#include "hone/nn/conv2d_int8.h"
#include "hone/nn/layer_kinds.h"
#include "hone/nn/linear_float.h"
#include "hone/nn/linear_int8.h"
#include "hone/nn/linear_int8_dynamic.h"
#include "hone/nn/lstm_int8_dynamic.h"
#include "hone/nn/residual_add_int8.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone::nn {
namespace {

/// fbgemm's AVX2 kernels (no VNNI) multiply u8 x s8 pairs into saturating int16 sums, so there
/// input activations must stay within 7 bits (as hone's passes and PyTorch do on such CPUs): the
/// layer tests take input qparams of the range this CPU computes exactly.
bool full_range_inputs() { return at::cpu::is_avx512_vnni_supported(); }
/// `scale`/`zero_point` on a VNNI CPU; on AVX2 the same real range in 0..127.
ActivationQParams input_qparams(double scale, std::int64_t zero_point) {
  return full_range_inputs() ? ActivationQParams{scale, zero_point} : ActivationQParams{2 * scale, zero_point / 2};
}

constexpr bool kDynamicReduceRange = true;  // as linear_int8_dynamic / lstm_int8_dynamic

torch::Tensor fake_quantize(const torch::Tensor& x, ActivationQParams q) {
  return at::quantize_per_tensor(x, q.scale, q.zero_point, at::kQUInt8).dequantize();
}

/// Largest |a - b| in units of `step`.
double max_steps(const torch::Tensor& a, const torch::Tensor& b, double step) {
  return ((a.to(at::kDouble) - b.to(at::kDouble)).abs().max() / step).item<double>();
}

TEST(QuantWeightTest, QuantizeDequantizeErrorIsWithinHalfAStepPerElement) {
  torch::manual_seed(0);
  const auto w = torch::randn({19, 37}) * torch::rand({19, 1});
  for (const bool per_channel : {true, false}) {
    const auto q = quantize_weight_int8(w, per_channel);
    const auto restored = to_qint8(q, per_channel).dequantize();
    const auto step = per_channel ? q.scale.to(at::kFloat).view({-1, 1}) : q.scale.to(at::kFloat);
    EXPECT_TRUE(((w - restored).abs() <= step / 2 * (1 + 1e-5)).all().item<bool>()) << per_channel;
    EXPECT_LE(q.values.abs().max().item<int>(), 127);
    EXPECT_TRUE((q.zero_point == 0).all().item<bool>());
  }
}

TEST(QuantLinearInt8DynamicTest, MatchesFakeQuantizedReferenceOnOddSizesAndRanks) {
  torch::manual_seed(1);
  torch::nn::Linear linear(37, 19);
  for (const bool per_channel : {true, false}) {
    for (const bool reduce_range : {true, false}) {
      if (!reduce_range && !full_range_inputs()) continue;  // 8-bit inputs saturate fbgemm's AVX2 path
      auto layer = LinearInt8DynamicImpl::from_float(*linear, per_channel, reduce_range);
      const auto w = to_qint8(layer->weight(), per_channel).dequantize();
      for (const auto& x : {torch::randn({3, 37}), torch::randn({2, 3, 37}), torch::randn({37, 5}).t()}) {
        const auto xq = at::quantize_per_tensor_dynamic(x.contiguous(), at::kQUInt8, reduce_range).dequantize();
        const auto expected = at::matmul(xq, w.t()) + linear->bias;
        const auto actual = layer->forward(x);
        ASSERT_EQ(actual.sizes(), expected.sizes());
        EXPECT_LT(testing::relative_error(actual, expected), testing::kFp32Reordered.relative) << per_channel;
        // And near the float layer: 7-bit activations and 8-bit weights.
        EXPECT_LT(testing::relative_error(actual, linear->forward(x)), testing::kInt8Layer.relative);
      }
    }
  }
}

/// The dynamic LSTM's arithmetic in plain ops: the input projection of the whole sequence is one
/// dynamically quantized GEMM (ATen batches it on CPU), the recurrent one is quantized per step.
torch::Tensor reference_lstm(const LstmInt8DynamicImpl& layer, const torch::Tensor& x, std::int64_t hidden) {
  auto sequence = x.transpose(0, 1).contiguous();  // [T, B, in]
  for (const auto& weights : layer.layers()) {
    const auto w_ih = to_qint8(weights.weight_ih, true).dequantize();
    const auto w_hh = to_qint8(weights.weight_hh, true).dequantize();
    const auto dq = [](const torch::Tensor& t) {
      return at::quantize_per_tensor_dynamic(t.contiguous(), at::kQUInt8, kDynamicReduceRange).dequantize();
    };
    const auto input_gates = at::matmul(dq(sequence), w_ih.t()) + weights.bias_ih;
    auto h = torch::zeros({x.size(0), hidden});
    auto c = torch::zeros({x.size(0), hidden});
    std::vector<torch::Tensor> outputs;
    for (std::int64_t t = 0; t < sequence.size(0); ++t) {
      const auto gates = (input_gates[t] + at::matmul(dq(h), w_hh.t()) + weights.bias_hh).chunk(4, 1);
      c = gates[1].sigmoid() * c + gates[0].sigmoid() * gates[2].tanh();
      h = gates[3].sigmoid() * c.tanh();
      outputs.push_back(h);
    }
    sequence = torch::stack(outputs);
  }
  return sequence.transpose(0, 1);
}

TEST(QuantLstmInt8DynamicTest, MatchesReferenceAndStaysCloseToFloat) {
  torch::manual_seed(2);
  torch::nn::LSTM lstm(torch::nn::LSTMOptions(5, 7).num_layers(2).batch_first(true));
  auto layer = LstmInt8DynamicImpl::from_float(*lstm, /*per_channel=*/true);
  const auto x = torch::randn({3, 6, 5});
  const auto actual = layer->forward(x);
  const auto expected_float = std::get<0>(lstm->forward(x));
  ASSERT_EQ(actual.sizes(), expected_float.sizes());
  EXPECT_LT(testing::relative_error(actual, reference_lstm(*layer, x, 7)), testing::kFp32Reordered.relative);
  EXPECT_LT(testing::relative_error(actual, expected_float), testing::kInt8Layer.relative);
}

TEST(QuantLstmInt8DynamicTest, RejectsBidirectionalLstm) {
  torch::nn::LSTM lstm(torch::nn::LSTMOptions(5, 7).batch_first(true).bidirectional(true));
  EXPECT_THROW(LstmInt8DynamicImpl::from_float(*lstm, true), Error);
}

TEST(QuantConv2dInt8Test, MatchesFakeQuantizedReferenceWithinOneOutputStep) {
  torch::manual_seed(3);
  for (const bool relu : {false, true}) {
    for (const std::int64_t groups : {1, 3}) {
      torch::nn::Conv2d conv(torch::nn::Conv2dOptions(9, 6, 3).stride(2).padding(1).groups(groups));
      const auto x = torch::randn({3, 9, 11, 7});
      const ActivationQParams input = input_qparams(0.03, 128), output{relu ? 0.01 : 0.02, relu ? 0 : 120};
      auto layer = Conv2dInt8Impl::from_float(*conv, /*per_channel=*/groups == 1, relu, input, output);
      const auto w = to_qint8(layer->weight(), groups == 1).dequantize();
      auto expected = at::conv2d(fake_quantize(x, input), w, conv->bias, {2, 2}, {1, 1}, {1, 1}, groups);
      if (relu) expected = expected.relu();
      expected = fake_quantize(expected, output);
      const auto actual = layer->forward(x);
      ASSERT_TRUE(actual.is_quantized());
      ASSERT_EQ(actual.sizes(), expected.sizes());
      EXPECT_LE(max_steps(actual.dequantize(), expected, output.scale), 1.0 + 1e-3) << relu << groups;
      // A quantized input with other qparams is taken as it is.
      const ActivationQParams other = input_qparams(0.05, 100);
      const auto qx = at::quantize_per_tensor(x, other.scale, other.zero_point, at::kQUInt8);
      auto expected_q = at::conv2d(qx.dequantize(), w, conv->bias, {2, 2}, {1, 1}, {1, 1}, groups);
      if (relu) expected_q = expected_q.relu();
      EXPECT_LE(max_steps(layer->forward(qx).dequantize(), fake_quantize(expected_q, output), output.scale),
                1.0 + 1e-3);
    }
  }
}

TEST(QuantLinearInt8Test, MatchesFakeQuantizedReferenceWithinOneOutputStep) {
  torch::manual_seed(4);
  torch::nn::Linear linear(37, 19);
  const auto x = torch::randn({2, 3, 37});
  const ActivationQParams input = input_qparams(0.025, 125), output{0.015, 130};
  for (const bool relu : {false, true}) {
    for (const bool dequantize : {false, true}) {
      LinearInt8Options options;
      options.relu = relu;
      options.dequantize_output = dequantize;
      auto layer = LinearInt8Impl::from_float(*linear, options, input, output);
      const auto w = to_qint8(layer->weight(), true).dequantize();
      auto expected = at::matmul(fake_quantize(x, input), w.t()) + linear->bias;
      if (relu) expected = expected.relu();
      expected = fake_quantize(expected, output);
      const auto actual = layer->forward(x);
      ASSERT_EQ(actual.is_quantized(), !dequantize);
      ASSERT_EQ(actual.sizes(), expected.sizes());
      const auto values = dequantize ? actual : actual.dequantize();
      EXPECT_LE(max_steps(values, expected, output.scale), 1.0 + 1e-3) << relu << dequantize;
    }
  }
}

TEST(QuantResidualAddInt8Test, MatchesFakeQuantizedReferenceWithinOneOutputStep) {
  torch::manual_seed(5);
  const auto a = torch::randn({3, 5, 7, 9});
  const auto b = torch::randn({3, 5, 7, 9});
  const ActivationQParams qa{0.03, 128}, qb{0.025, 120}, output{0.04, 0};
  for (const bool relu : {true, false}) {
    auto layer = ResidualAddInt8Impl::from_float(relu, qa, qb, relu ? output : ActivationQParams{0.05, 128});
    const auto out_q = layer->output_qparams();
    auto sum = fake_quantize(a, qa) + fake_quantize(b, qb);
    if (relu) sum = sum.relu();
    const auto actual = layer->forward(a, b);
    ASSERT_TRUE(actual.is_quantized());
    EXPECT_LE(max_steps(actual.dequantize(), fake_quantize(sum, out_q), out_q.scale), 1.0 + 1e-3);
  }
}

TEST(QuantFloatLayersTest, ComputeInTheirDtypeAndReturnTheInputDtype) {
  torch::manual_seed(6);
  torch::nn::Linear linear(37, 19);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(5, 6, 3).padding(1));
  const auto x = torch::randn({3, 37});
  const auto image = torch::randn({3, 5, 9, 7});
  for (const auto dtype : {at::kHalf, at::kBFloat16}) {
    const auto tolerance = dtype == at::kHalf ? testing::kFp16 : testing::kBf16;
    auto low_linear = LinearFloatImpl::from_float(*linear, dtype);
    auto low_conv = Conv2dFloatImpl::from_float(*conv, dtype);
    EXPECT_EQ(low_linear->weight.scalar_type(), dtype);
    const auto y = low_linear->forward(x);
    EXPECT_EQ(y.scalar_type(), at::kFloat);
    EXPECT_LT(testing::relative_error(y, linear->forward(x)), tolerance.relative);
    const auto z = low_conv->forward(image);
    EXPECT_EQ(z.scalar_type(), at::kFloat);
    EXPECT_LT(testing::relative_error(z, conv->forward(image)), tolerance.relative);
  }
}

TEST(QuantLayerKindsTest, SpecsRebuildLayersWithTheSameTensorShapes) {
  torch::manual_seed(7);
  torch::nn::Linear linear(37, 19);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(6, 4, 3).stride(2).padding(1));
  torch::nn::LSTM lstm(torch::nn::LSTMOptions(5, 7).num_layers(2).batch_first(true));
  const std::vector<std::pair<nlohmann::json, std::shared_ptr<torch::nn::Module>>> layers = {
      {LinearInt8DynamicImpl::from_float(*linear, false)->spec(), LinearInt8DynamicImpl::from_float(*linear, false)},
      {LstmInt8DynamicImpl::from_float(*lstm, true)->spec(), LstmInt8DynamicImpl::from_float(*lstm, true)},
      {Conv2dInt8Impl::from_float(*conv, true, true, {}, {})->spec(),
       Conv2dInt8Impl::from_float(*conv, true, true, {}, {})},
      {LinearInt8Impl::from_float(*linear, {}, {}, {})->spec(), LinearInt8Impl::from_float(*linear, {}, {}, {})},
      {ResidualAddInt8Impl::from_float(true, {}, {}, {})->spec(), ResidualAddInt8Impl::from_float(true, {}, {}, {})},
      {LinearFloatImpl::from_float(*linear, at::kHalf)->spec(), LinearFloatImpl::from_float(*linear, at::kHalf)},
      {Conv2dFloatImpl::from_float(*conv, at::kBFloat16)->spec(), Conv2dFloatImpl::from_float(*conv, at::kBFloat16)},
  };
  for (const auto& [spec, original] : layers) {
    const auto rebuilt = build_layer(spec).module;
    const auto expected = original->named_parameters();
    ASSERT_EQ(rebuilt->named_parameters().size(), expected.size()) << spec.dump();
    for (const auto& item : rebuilt->named_buffers()) {
      const auto* match = original->named_buffers().find(item.key());
      ASSERT_NE(match, nullptr) << spec.dump() << " " << item.key();
      EXPECT_EQ(match->sizes(), item.value().sizes()) << item.key();
      EXPECT_EQ(match->scalar_type(), item.value().scalar_type()) << item.key();
    }
    EXPECT_EQ(rebuilt->named_buffers().size(), original->named_buffers().size()) << spec.dump();
  }
}

}  // namespace
}  // namespace hone::nn
