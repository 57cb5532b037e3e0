// One lowering per layer kind hone's models and compression passes put in a slot. Each emits the
// ONNX nodes that compute what the layer's forward computes at inference (dropout off, batch norm
// on running statistics); compressed kinds lower to their plain-float math (low-rank: two
// products, sketched: the products of its packed factors, pruned: the dense weight with its
// zeros, reduced-precision weights: widened to the export's compute type); int8 static layers
// lower to QDQ (QuantizeLinear/DequantizeLinear around the float op, per-channel int8 weights,
// int32 bias), the form onnxruntime fuses into QLinearConv / QGemm / QLinearAdd.
#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/modules/rnn.h>

#include <string_view>

#include "hone/core/error.h"
#include "hone/export/export.h"
#include "hone/nn/conv2d_float.h"
#include "hone/nn/conv2d_int8.h"
#include "hone/nn/conv2d_lowrank.h"
#include "hone/nn/conv2d_relu.h"
#include "hone/nn/conv_geometry.h"
#include "hone/nn/layer.h"
#include "hone/nn/linear_float.h"
#include "hone/nn/linear_int8.h"
#include "hone/nn/linear_int8_dynamic.h"
#include "hone/nn/linear_lowrank.h"
#include "hone/nn/linear_relu.h"
#include "hone/nn/linear_semi_structured.h"
#include "hone/nn/linear_weight_only.h"
#include "hone/nn/lstm_int8_dynamic.h"
#include "hone/nn/residual_add_int8.h"
#include "hone/nn/sketched_linear.h"
#include "hone/ops/sketched_linear.h"
#include "lowering.h"

namespace hone::onnx {

at::Tensor lstm_gates_to_onnx(const at::Tensor& pytorch_gates) {
  const auto chunks = pytorch_gates.chunk(4, 0);  // i, f, g, o
  return at::cat({chunks[0], chunks[3], chunks[1], chunks[2]}, 0);
}

namespace detail {
namespace {

at::ScalarType torch_type(DataType type) {
  switch (type) {
    case DataType::kFloat:
      return at::kFloat;
    case DataType::kFloat16:
      return at::kHalf;
    case DataType::kDouble:
      return at::kDouble;
    case DataType::kInt64:
      return at::kLong;
    case DataType::kInt32:
      return at::kInt;
    case DataType::kInt8:
      return at::kChar;
    case DataType::kUint8:
      return at::kByte;
    case DataType::kBool:
      return at::kBool;
    default:
      fail("ONNX export: no torch type for {}", data_type_name(type));
  }
}

DataType onnx_type(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return DataType::kFloat;
    case at::kHalf:
      return DataType::kFloat16;
    case at::kDouble:
      return DataType::kDouble;
    case at::kLong:
      return DataType::kInt64;
    case at::kInt:
      return DataType::kInt32;
    case at::kChar:
      return DataType::kInt8;
    case at::kByte:
      return DataType::kUint8;
    case at::kBool:
      return DataType::kBool;
    default:
      fail("ONNX export: tensor dtype {} has no ONNX type hone writes", type);
  }
}

std::string add_tensor(GraphBuilder& graph, const at::Tensor& tensor, const std::string& hint) {
  const at::Tensor t = tensor.detach().to(at::kCPU).contiguous();
  const std::string_view bytes(static_cast<const char*>(t.data_ptr()), t.nbytes());
  return graph.add_initializer(graph.unique_name(hint), onnx_type(t.scalar_type()), t.sizes().vec(), bytes);
}

Value conv2d(Lowering& lowering, const at::Tensor& weight, const at::Tensor& bias, const nn::Conv2dGeometry& geometry,
             const std::string& path, const Value& x) {
  HONE_CHECK(x.rank == 4, "ONNX export: {}: a Conv2d needs a rank-4 input, got rank {}", path, x.rank);
  std::vector<std::string> inputs{x.name, lowering.weight(weight, path + ".weight")};
  if (bias.defined()) inputs.push_back(lowering.weight(bias, path + ".bias"));
  const auto& p = geometry.padding;
  return {lowering.op("Conv", inputs,
                      {attribute_ints("kernel_shape", geometry.kernel), attribute_ints("strides", geometry.stride),
                       attribute_ints("pads", {p[0], p[1], p[0], p[1]}), attribute_ints("dilations", geometry.dilation),
                       attribute_int("group", geometry.groups)},
                      path),
          4};
}

Value relu(Lowering& lowering, const std::string& path, const Value& x) {
  return {lowering.op("Relu", {x.name}, {}, path + ".relu"), x.rank};
}

Value batch_norm(Lowering& lowering, torch::nn::BatchNorm2dImpl& norm, const std::string& path, const Value& x) {
  HONE_CHECK(norm.running_mean.defined() && norm.running_var.defined(),
             "ONNX export: {}: a BatchNorm2d without running statistics cannot be exported", path);
  const auto channels = norm.running_mean.size(0);
  const at::Tensor scale = norm.weight.defined() ? norm.weight : at::ones({channels});
  const at::Tensor shift = norm.bias.defined() ? norm.bias : at::zeros({channels});
  return {lowering.op("BatchNormalization",
                      {x.name, lowering.weight(scale, path + ".weight"), lowering.weight(shift, path + ".bias"),
                       lowering.weight(norm.running_mean, path + ".running_mean"),
                       lowering.weight(norm.running_var, path + ".running_var")},
                      {attribute_float("epsilon", static_cast<float>(norm.options.eps()))}, path),
          x.rank};
}

QuantParams quant_params(const nn::ActivationQParams& q) { return {q.scale, q.zero_point}; }

/// An int8 layer's input: a value hone already holds as quint8 is taken as it is (hone's int8
/// layers do not requantize it); a float one is quantized with the layer's calibrated input qparams.
Value int8_input(Lowering& lowering, const Value& x, QuantParams input, const std::string& path) {
  return x.quant ? x : quantize_dequantize(lowering, x, input, path + ".input");
}

/// DequantizeLinear of a symmetric int8 weight (per output channel on axis 0, or per tensor).
std::string int8_weight(Lowering& lowering, const nn::Int8Weight& w, bool per_channel, const std::string& path) {
  const auto scale = w.scale.to(at::kFloat);
  std::vector<std::string> inputs{
      lowering.constant(w.values.to(at::kChar), path + ".weight_int8"),
      lowering.constant(per_channel ? scale : scale.reshape({}), path + ".weight_scale"),
      lowering.constant(per_channel ? w.zero_point.to(at::kChar) : w.zero_point.to(at::kChar).reshape({}),
                        path + ".weight_zero_point")};
  std::vector<AttributeProto> attributes;
  if (per_channel) attributes.push_back(attribute_int("axis", 0));
  return lowering.op("DequantizeLinear", inputs, attributes, path + ".weight");
}

/// The bias as int32 at scale input_scale x weight_scale (what the int8 kernels add to their int32
/// accumulators), dequantized.
std::string int32_bias(Lowering& lowering, const at::Tensor& bias, const nn::Int8Weight& w, bool per_channel,
                       double input_scale, const std::string& path) {
  const auto channels = bias.size(0);
  at::Tensor scale = (w.scale.to(at::kDouble) * input_scale).to(at::kFloat);
  if (!per_channel) scale = scale.reshape({1}).expand({channels}).contiguous();
  const auto values = at::round(bias.to(at::kDouble) / scale.to(at::kDouble)).to(at::kInt);
  return lowering.op("DequantizeLinear",
                     {lowering.constant(values, path + ".bias_int32"), lowering.constant(scale, path + ".bias_scale"),
                      lowering.constant(at::zeros({channels}, at::kInt), path + ".bias_zero_point")},
                     {attribute_int("axis", 0)}, path + ".bias");
}

Value conv2d_int8(Lowering& lowering, nn::Conv2dInt8Impl& conv, const std::string& path, const Value& x) {
  HONE_CHECK(x.rank == 4, "ONNX export: {}: a Conv2d needs a rank-4 input, got rank {}", path, x.rank);
  HONE_CHECK(lowering.compute() == DataType::kFloat, "ONNX export: {}: an int8 layer exports with --dtype fp32 only",
             path);
  const auto& o = conv.options();
  const Value input = int8_input(lowering, x, quant_params(conv.input_qparams()), path);
  std::vector<std::string> inputs{input.name, int8_weight(lowering, conv.weight(), o.per_channel, path)};
  if (conv.bias().defined()) {
    inputs.push_back(int32_bias(lowering, conv.bias(), conv.weight(), o.per_channel, input.quant->scale, path));
  }
  const auto& p = o.padding;
  Value y{lowering.op("Conv", inputs,
                      {attribute_ints("kernel_shape", o.kernel), attribute_ints("strides", o.stride),
                       attribute_ints("pads", {p[0], p[1], p[0], p[1]}), attribute_ints("dilations", o.dilation),
                       attribute_int("group", o.groups)},
                      path),
          4};
  if (o.relu) y.name = lowering.op("Relu", {y.name}, {}, path + ".relu");
  return quantize_dequantize(lowering, y, quant_params(conv.output_qparams()), path + ".output");
}

Value linear_int8(Lowering& lowering, nn::LinearInt8Impl& linear, const std::string& path, const Value& x) {
  HONE_CHECK(lowering.compute() == DataType::kFloat, "ONNX export: {}: an int8 layer exports with --dtype fp32 only",
             path);
  const auto& o = linear.options();
  const Value input = int8_input(lowering, x, quant_params(linear.input_qparams()), path);
  const std::string w = int8_weight(lowering, linear.weight(), o.per_channel, path);
  std::string bias;
  if (linear.bias().defined()) {
    bias = int32_bias(lowering, linear.bias(), linear.weight(), o.per_channel, input.quant->scale, path);
  }
  Value y;
  if (x.rank == 2) {
    std::vector<std::string> inputs{input.name, w};
    if (!bias.empty()) inputs.push_back(bias);
    y = {lowering.op("Gemm", inputs, {attribute_int("transB", 1)}, path), 2};
  } else {
    const auto wt = lowering.op("Transpose", {w}, {attribute_ints("perm", {1, 0})}, path + ".weight_t");
    y = {lowering.op("MatMul", {input.name, wt}, {}, path), x.rank};
    if (!bias.empty()) y.name = lowering.op("Add", {y.name, bias}, {}, path + ".add");
  }
  if (o.relu) y.name = lowering.op("Relu", {y.name}, {}, path + ".relu");
  Value out = quantize_dequantize(lowering, y, quant_params(linear.output_qparams()), path + ".output");
  if (o.dequantize_output) out.quant.reset();  // hone returns it as float: the same values
  return out;
}

/// int8 dynamic: the input quantized per call (DynamicQuantizeLinear: uint8 from its min/max), an
/// integer product with the int8 weight (MatMulInteger), then the two scales and the bias in float.
Value linear_int8_dynamic(Lowering& lowering, nn::LinearInt8DynamicImpl& linear, const std::string& path,
                          const Value& x) {
  HONE_CHECK(lowering.compute() == DataType::kFloat, "ONNX export: {}: an int8 layer exports with --dtype fp32 only",
             path);
  auto& graph = lowering.graph();
  const std::string q = graph.unique_name(path + ".x_q"), scale = graph.unique_name(path + ".x_scale"),
                    zero_point = graph.unique_name(path + ".x_zero_point");
  graph.add_node("DynamicQuantizeLinear", {x.name}, {q, scale, zero_point});
  const auto& w = linear.weight();
  const auto weight_t = lowering.constant(w.values.to(at::kChar).t().contiguous(), path + ".weight_int8_t");
  const auto weight_zero = lowering.constant(
      linear.per_channel() ? w.zero_point.to(at::kChar) : w.zero_point.to(at::kChar).reshape({}), path + ".weight_zp");
  const auto product = lowering.op("MatMulInteger", {q, weight_t, zero_point, weight_zero}, {}, path + ".int32");
  const auto as_float = lowering.op(
      "Cast", {product}, {attribute_int("to", static_cast<std::int64_t>(DataType::kFloat))}, path + ".float");
  const auto w_scale = w.scale.to(at::kFloat);
  const auto combined = lowering.op(
      "Mul", {scale, lowering.constant(linear.per_channel() ? w_scale : w_scale.reshape({}), path + ".weight_scale")},
      {}, path + ".scale");
  std::string y = lowering.op("Mul", {as_float, combined}, {}, path + ".scaled");
  if (linear.bias().defined()) y = lowering.op("Add", {y, lowering.weight(linear.bias(), path + ".bias")}, {}, path);
  return {y, x.rank};
}

QuantParams scalar_qparams(torch::nn::Module& module, const std::string& prefix) {
  const auto buffers = module.named_buffers(/*recurse=*/false);
  return {buffers[prefix + "_scale"].item<double>(), buffers[prefix + "_zero_point"].item<std::int64_t>()};
}

}  // namespace

Value quantize_dequantize(Lowering& lowering, const Value& x, QuantParams q, const std::string& hint) {
  HONE_CHECK(q.zero_point >= 0 && q.zero_point <= 255, "ONNX export: {}: zero point {} is outside uint8", hint,
             q.zero_point);
  const auto scale = lowering.constant(at::scalar_tensor(q.scale, at::kFloat), hint + ".scale");
  const auto zero_point = lowering.constant(at::scalar_tensor(q.zero_point, at::kByte), hint + ".zero_point");
  const auto quantized = lowering.op("QuantizeLinear", {x.name, scale, zero_point}, {}, hint + ".q");
  return {lowering.op("DequantizeLinear", {quantized, scale, zero_point}, {}, hint + ".dq"), x.rank, q};
}

Value lower_residual_add(Lowering& lowering, torch::nn::Module& add, bool relu, const std::string& path, const Value& a,
                         const Value& b) {
  if (dynamic_cast<nn::ResidualAddInt8Impl*>(&add) != nullptr) {
    auto& add_int8 = dynamic_cast<nn::ResidualAddInt8Impl&>(add);
    const Value qa = int8_input(lowering, a, scalar_qparams(add, "a"), path + ".a");
    const Value qb = int8_input(lowering, b, scalar_qparams(add, "b"), path + ".b");
    Value sum{lowering.op("Add", {qa.name, qb.name}, {}, path), std::max(a.rank, b.rank)};
    if (relu) sum.name = lowering.op("Relu", {sum.name}, {}, path + ".relu");
    return quantize_dequantize(lowering, sum, quant_params(add_int8.output_qparams()), path + ".output");
  }
  Value sum{lowering.op("Add", {a.name, b.name}, {}, path), std::max(a.rank, b.rank)};
  if (relu) sum.name = lowering.op("Relu", {sum.name}, {}, path + ".relu");
  return sum;
}

std::string Lowering::weight(const at::Tensor& tensor, const std::string& hint) {
  return add_tensor(graph_, tensor.detach().to(at::kCPU, torch_type(compute_)), hint);
}

std::string Lowering::constant(const at::Tensor& tensor, const std::string& hint) {
  return add_tensor(graph_, tensor, hint);
}

std::string Lowering::ints(const std::vector<std::int64_t>& values, const std::string& hint) {
  return add_tensor(graph_, at::tensor(values, at::kLong), hint);
}

std::string Lowering::scalar(double value, const std::string& hint) {
  return add_tensor(graph_, at::scalar_tensor(value, at::kDouble).to(torch_type(compute_)), hint);
}

std::string Lowering::op(const std::string& op_type, std::vector<std::string> inputs,
                         std::vector<AttributeProto> attributes, const std::string& hint) {
  const std::string output = graph_.unique_name(hint);
  graph_.add_node(op_type, std::move(inputs), {output}, std::move(attributes));  // named <op_type>_<n>
  return output;
}

Value lower_linear(Lowering& lowering, const at::Tensor& weight, const at::Tensor& bias, const std::string& path,
                   const Value& x) {
  if (x.rank == 2) {
    std::vector<std::string> inputs{x.name, lowering.weight(weight, path + ".weight")};
    if (bias.defined()) inputs.push_back(lowering.weight(bias, path + ".bias"));
    return {lowering.op("Gemm", inputs, {attribute_int("transB", 1)}, path), 2};
  }
  std::string y = lowering.op("MatMul", {x.name, lowering.weight(weight.t(), path + ".weight_t")}, {}, path);
  if (bias.defined()) y = lowering.op("Add", {y, lowering.weight(bias, path + ".bias")}, {}, path + ".add");
  return {y, x.rank};
}

Value lower_layer_norm(Lowering& lowering, torch::nn::Module& module, const std::string& path, const Value& x) {
  auto* norm = dynamic_cast<torch::nn::LayerNormImpl*>(&module);
  HONE_CHECK(norm != nullptr, "ONNX export: {}: expected a LayerNorm, got {}", path, module.name());
  HONE_CHECK(norm->options.normalized_shape().size() == 1,
             "ONNX export: {}: only a LayerNorm over the last axis can be exported", path);
  const auto features = norm->options.normalized_shape()[0];
  const at::Tensor scale = norm->weight.defined() ? norm->weight : at::ones({features});
  std::vector<std::string> inputs{x.name, lowering.weight(scale, path + ".weight")};
  if (norm->bias.defined()) inputs.push_back(lowering.weight(norm->bias, path + ".bias"));
  return {lowering.op("LayerNormalization", inputs,
                      {attribute_int("axis", -1), attribute_float("epsilon", static_cast<float>(norm->options.eps()))},
                      path),
          x.rank};
}

namespace {

/// One LSTM layer's float weights in PyTorch's gate order.
struct LstmLayerWeights {
  at::Tensor w, r, b_ih, b_hh;                   // b_* undefined without biases
  std::optional<nn::Int8Weight> w_int8, r_int8;  // an int8 dynamic LSTM's weights as hone holds them
};

at::Tensor dequantized(const nn::Int8Weight& w) {
  const auto scale = w.scale.to(at::kFloat).reshape({-1, 1});
  return (w.values.to(at::kFloat) - w.zero_point.to(at::kFloat).reshape({-1, 1})) * scale;
}

/// torch's LSTM, or hone's int8 dynamic one with its weights dequantized (ONNX's LSTM is float:
/// what onnxruntime computes is the float LSTM on hone's int8 weights).
std::vector<LstmLayerWeights> lstm_layers(torch::nn::Module& module, const std::string& path) {
  std::vector<LstmLayerWeights> layers;
  if (auto* lstm = dynamic_cast<torch::nn::LSTMImpl*>(&module)) {
    const auto& options = lstm->options;
    HONE_CHECK(options.batch_first() && !options.bidirectional() && options.proj_size() == 0,
               "ONNX export: {}: only batch-first, one-directional LSTMs without projections are exported", path);
    const auto params = lstm->named_parameters(/*recurse=*/false);
    for (std::int64_t layer = 0; layer < options.num_layers(); ++layer) {
      const auto suffix = "_l" + std::to_string(layer);
      LstmLayerWeights weights{params["weight_ih" + suffix], params["weight_hh" + suffix], {}, {}};
      if (options.bias()) {
        weights.b_ih = params["bias_ih" + suffix];
        weights.b_hh = params["bias_hh" + suffix];
      }
      layers.push_back(weights);
    }
    return layers;
  }
  if (auto* lstm = dynamic_cast<nn::LstmInt8DynamicImpl*>(&module)) {
    for (const auto& l : lstm->layers()) {
      layers.push_back(
          {dequantized(l.weight_ih), dequantized(l.weight_hh), l.bias_ih, l.bias_hh, l.weight_ih, l.weight_hh});
    }
    return layers;
  }
  fail("ONNX export: layer '{}' of kind {} has no ONNX lowering as an LSTM (nothing was written)", path, module.name());
}

}  // namespace

/// An LSTM weight [4H, F] in ONNX's gate order as the op's [1, 4H, F] input: float in the compute
/// type, or, for an int8 weight of an fp32 export, its int8 values and per-row scales through a
/// DequantizeLinear on axis 1: a quarter of the bytes in the file, the same float LSTM computed.
/// (onnxruntime's constant folding leaves DequantizeLinear alone, so it dequantizes the weights on
/// every run: measured, docs/BENCHMARKS.md "Export".)
std::string lstm_weight(Lowering& lowering, const at::Tensor& weight, const std::optional<nn::Int8Weight>& int8,
                        const std::string& name) {
  const bool symmetric = int8 && !int8->zero_point.ne(0).any().item<bool>();
  if (!symmetric || lowering.compute() != DataType::kFloat) {
    return lowering.weight(lstm_gates_to_onnx(weight).unsqueeze(0), name);
  }
  const auto rows = int8->values.size(0);
  const auto scale = int8->scale.to(at::kFloat).expand({rows}).contiguous();  // per tensor -> per row
  return lowering.op("DequantizeLinear",
                     {lowering.constant(lstm_gates_to_onnx(int8->values.to(at::kChar)).unsqueeze(0), name + "_int8"),
                      lowering.constant(lstm_gates_to_onnx(scale), name + "_scale"),
                      lowering.constant(at::zeros({rows}, at::kChar), name + "_zero_point")},
                     {attribute_int("axis", 1)}, name);
}

Value lower_lstm(Lowering& lowering, torch::nn::Module& module, const std::string& path, const Value& x, Value* last) {
  const auto layers = lstm_layers(module, path);
  HONE_CHECK(x.rank == 3, "ONNX export: {}: an LSTM needs [B, T, F], got rank {}", path, x.rank);
  // ONNX's LSTM is sequence-first: [B, T, F] -> [T, B, F] once, and back at the end.
  std::string sequence = lowering.op("Transpose", {x.name}, {attribute_ints("perm", {1, 0, 2})}, path + ".time_first");
  std::string state;
  for (std::size_t layer = 0; layer < layers.size(); ++layer) {
    const auto& [w, r, b_ih, b_hh, w_int8, r_int8] = layers[layer];
    const auto hidden = r.size(1);
    at::Tensor b = at::zeros({8 * hidden});
    if (b_ih.defined()) b = at::cat({lstm_gates_to_onnx(b_ih), lstm_gates_to_onnx(b_hh)});
    const auto name = path + ".layer" + std::to_string(layer);
    auto& graph = lowering.graph();
    const std::string y = graph.unique_name(name + ".y"), y_h = graph.unique_name(name + ".y_h");
    graph.add_node("LSTM",
                   {sequence, lstm_weight(lowering, w, w_int8, name + ".W"),
                    lstm_weight(lowering, r, r_int8, name + ".R"), lowering.weight(b.unsqueeze(0), name + ".B")},
                   {y, y_h}, {attribute_int("hidden_size", hidden)});
    // Y [T, 1, B, H] -> [T, B, H]; Y_h [1, B, H] -> [B, H].
    sequence = lowering.op("Squeeze", {y, lowering.ints({1}, name + ".axis1")}, {}, name + ".sequence");
    state = y_h;
  }
  if (last != nullptr) {
    *last = {lowering.op("Squeeze", {state, lowering.ints({0}, path + ".axis0")}, {}, path + ".last"), 2};
  }
  return {lowering.op("Transpose", {sequence}, {attribute_ints("perm", {1, 0, 2})}, path + ".batch_first"), 3};
}

Value lower_layer(Lowering& lowering, torch::nn::Module& module, const std::string& path, const Value& x) {
  torch::nn::Module* m = &module;
  // Inference no-ops.
  if (dynamic_cast<torch::nn::DropoutImpl*>(m) || dynamic_cast<torch::nn::IdentityImpl*>(m)) return x;
  if (auto* linear = dynamic_cast<torch::nn::LinearImpl*>(m))
    return lower_linear(lowering, linear->weight, linear->bias, path, x);
  if (auto* fused = dynamic_cast<nn::LinearReluImpl*>(m)) {
    return relu(lowering, path, lower_linear(lowering, fused->weight, fused->bias, path, x));
  }
  if (auto* low = dynamic_cast<nn::LinearFloatImpl*>(m)) return lower_linear(lowering, low->weight, low->bias, path, x);
  if (auto* pruned = dynamic_cast<nn::LinearSemiStructuredImpl*>(m)) {
    return lower_linear(lowering, pruned->dense_weight(), pruned->bias, path, x);
  }
  if (auto* weight_only = dynamic_cast<nn::LinearWeightOnlyImpl*>(m)) {
    return lower_linear(lowering, weight_only->dequantized_weight(), weight_only->bias, path, x);
  }
  if (auto* low_rank = dynamic_cast<nn::LinearLowRankImpl*>(m)) {
    const Value h = lower_layer(lowering, *low_rank->first().module(), path + ".first", x);
    return lower_layer(lowering, *low_rank->second().module(), path + ".second", h);
  }
  if (auto* sketched = dynamic_cast<nn::SketchedLinearImpl*>(m)) {
    // (x · [S1|U2]) · [U1;S2] / (2L) + b: two MatMuls of the factors, as the layer computes it.
    const auto& o = sketched->options();
    const at::Tensor left = ops::sketched_linear_pack_left(sketched->s1, sketched->u2);
    const at::Tensor right = ops::sketched_linear_pack_right(sketched->u1, sketched->s2) / (2.0 * o.terms);
    const std::string h = lowering.op("MatMul", {x.name, lowering.weight(left, path + ".left")}, {}, path + ".left");
    std::string y = lowering.op("MatMul", {h, lowering.weight(right, path + ".right")}, {}, path + ".right");
    if (sketched->bias.defined())
      y = lowering.op("Add", {y, lowering.weight(sketched->bias, path + ".bias")}, {}, path + ".add");
    return {y, x.rank};
  }
  if (auto* conv = dynamic_cast<torch::nn::Conv2dImpl*>(m)) {
    return conv2d(lowering, conv->weight, conv->bias, nn::Conv2dGeometry::of(*conv, path.c_str()), path, x);
  }
  if (auto* fused = dynamic_cast<nn::Conv2dReluImpl*>(m)) {
    return relu(lowering, path, conv2d(lowering, fused->weight, fused->bias, fused->geometry(), path, x));
  }
  if (auto* low = dynamic_cast<nn::Conv2dFloatImpl*>(m))
    return conv2d(lowering, low->weight, low->bias, low->options(), path, x);
  if (auto* low_rank = dynamic_cast<nn::Conv2dLowRankImpl*>(m)) {
    const Value h = lower_layer(lowering, *low_rank->first().module(), path + ".first", x);
    return lower_layer(lowering, *low_rank->second().module(), path + ".second", h);
  }
  if (auto* norm = dynamic_cast<torch::nn::BatchNorm2dImpl*>(m)) return batch_norm(lowering, *norm, path, x);
  if (dynamic_cast<torch::nn::LayerNormImpl*>(m)) return lower_layer_norm(lowering, module, path, x);
  if (dynamic_cast<torch::nn::ReLUImpl*>(m)) {
    // On a quint8 value hone's ReLU stays quint8 with the same qparams: so does the graph's.
    const Value y{lowering.op("Relu", {x.name}, {}, path), x.rank};
    return x.quant ? quantize_dequantize(lowering, y, *x.quant, path + ".output") : y;
  }
  if (auto* conv = dynamic_cast<nn::Conv2dInt8Impl*>(m)) return conv2d_int8(lowering, *conv, path, x);
  if (auto* linear = dynamic_cast<nn::LinearInt8Impl*>(m)) return linear_int8(lowering, *linear, path, x);
  if (auto* linear = dynamic_cast<nn::LinearInt8DynamicImpl*>(m))
    return linear_int8_dynamic(lowering, *linear, path, x);
  if (dynamic_cast<torch::nn::ReLU6Impl*>(m)) {
    return {lowering.op("Clip", {x.name, lowering.scalar(0.0, path + ".min"), lowering.scalar(6.0, path + ".max")}, {},
                        path),
            x.rank};
  }
  if (auto* gelu = dynamic_cast<torch::nn::GELUImpl*>(m)) {
    return {lowering.op("Gelu", {x.name}, {attribute_string("approximate", gelu->options.approximate())}, path),
            x.rank};
  }
  if (dynamic_cast<torch::nn::TanhImpl*>(m)) return {lowering.op("Tanh", {x.name}, {}, path), x.rank};
  if (dynamic_cast<torch::nn::LSTMImpl*>(m) || dynamic_cast<nn::LstmInt8DynamicImpl*>(m)) {
    return lower_lstm(lowering, module, path, x);
  }
  if (auto* chain = dynamic_cast<nn::ChainImpl*>(m)) {
    Value y = x;
    for (const auto& [name, slot] : chain->layers()) y = lower_layer(lowering, *slot->module(), path + "." + name, y);
    return y;
  }
  fail("ONNX export: layer '{}' of kind {} has no ONNX lowering (nothing was written)", path, module.name());
}

}  // namespace detail
}  // namespace hone::onnx
