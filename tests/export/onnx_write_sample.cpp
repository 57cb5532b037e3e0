// Writes the sample models that onnx_checker_test.py checks with onnx.checker and runs in
// onnxruntime, and re-serializes a model through hone's reader (for protobuf-written input).
//
//   onnx_write_sample write DIR         -> DIR/mlp.onnx, DIR/quant.onnx, DIR/lstm.onnx
//   onnx_write_sample roundtrip IN OUT  -> OUT = serialize(parse(IN))
//
// Weights follow sample_value() below, which the Python test recomputes to check raw_data.
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <span>
#include <string>
#include <vector>

#include "hone/core/error.h"
#include "hone/export/onnx_graph.h"
#include "hone/export/onnx_proto.h"

namespace onnx = hone::onnx;

namespace {

// Exact in float32 (a multiple of 1/64 in [-50/64, 50/64]), so Python can recompute it bit for bit.
float sample_value(std::int64_t index, std::int64_t salt) {
  return static_cast<float>((index * 37 + salt * 11) % 101 - 50) / 64.0F;
}

std::vector<float> sample_values(std::int64_t count, std::int64_t salt) {
  std::vector<float> values(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) values[static_cast<std::size_t>(i)] = sample_value(i, salt);
  return values;
}

template <typename Value>
std::string bytes_of(const std::vector<Value>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(Value));
}

void add_floats(onnx::GraphBuilder& graph, const std::string& name, std::vector<std::int64_t> dims, std::int64_t salt) {
  std::int64_t count = 1;
  for (std::int64_t dim : dims) count *= dim;
  const std::vector<float> values = sample_values(count, salt);
  graph.add_initializer(onnx::make_tensor(name, std::move(dims), std::span<const float>(values)));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) hone::fail("cannot read {}", path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) hone::fail("cannot write {}", path);
}

// x[batch,5] -> Gemm(W1 transposed) -> Relu -> Gemm(alpha 0.5, fp16 bias cast up) -> * bf16 scale
// -> Where(bool mask, z, -z) -> Reshape(int64 [-1,3]) -> Gather(int32 columns) -> Softmax -> y.
onnx::ModelProto mlp_model() {
  onnx::GraphBuilder graph("mlp");
  graph.add_input("x", onnx::DataType::kFloat, {"batch", 5});
  add_floats(graph, "w1", {7, 5}, 1);
  add_floats(graph, "b1", {7}, 2);
  add_floats(graph, "w2", {7, 3}, 3);
  // 0.5, -1.25, 2 as IEEE half (0x3800, 0xbd00, 0x4000) and 0.5, 1, -2 as bfloat16 (0x3f00, 0x3f80, 0xc000).
  graph.add_initializer("b2_half", onnx::DataType::kFloat16, {3},
                        bytes_of(std::vector<std::uint16_t>{0x3800, 0xbd00, 0x4000}));
  graph.add_initializer("scale_bf16", onnx::DataType::kBfloat16, {3},
                        bytes_of(std::vector<std::uint16_t>{0x3f00, 0x3f80, 0xc000}));
  graph.add_initializer("mask", onnx::DataType::kBool, {3}, bytes_of(std::vector<std::uint8_t>{1, 0, 1}));
  const std::vector<std::int64_t> shape{-1, 3};
  graph.add_initializer(onnx::make_tensor("shape", {2}, std::span<const std::int64_t>(shape)));
  graph.add_initializer("columns", onnx::DataType::kInt32, {3}, bytes_of(std::vector<std::int32_t>{2, 0, 1}));

  const std::string h0 = graph.add_op("Gemm", {"x", "w1", "b1"}, {onnx::attribute_int("transB", 1)});
  graph.add_node("Relu", {h0}, {"h"});
  graph.add_value_info("h", onnx::DataType::kFloat, {"batch", 7});
  const std::string b2 = graph.add_op("Cast", {"b2_half"}, {onnx::attribute_int("to", 1)});
  const std::string z = graph.add_op("Gemm", {"h", "w2", b2},
                                     {onnx::attribute_float("alpha", 0.5F), onnx::attribute_float("beta", 1.0F)});
  const std::string scale = graph.add_op("Cast", {"scale_bf16"}, {onnx::attribute_int("to", 1)});
  const std::string scaled = graph.add_op("Mul", {z, scale});
  const std::string negated = graph.add_op("Neg", {scaled});
  const std::string chosen = graph.add_op("Where", {"mask", scaled, negated});
  const std::string reshaped = graph.add_op("Reshape", {chosen, "shape"});
  const std::string gathered = graph.add_op("Gather", {reshaped, "columns"}, {onnx::attribute_int("axis", 1)});
  graph.add_node("Softmax", {gathered}, {"y"}, {onnx::attribute_int("axis", -1)}, "softmax");
  graph.add_output("y", onnx::DataType::kFloat, {"batch", 3});
  graph.set_metadata("hone.sample", "mlp");
  graph.set_metadata("hone.note", "Gemm+Relu+Softmax, dynamic batch");
  onnx::ModelInfo info;
  info.producer_version = "test";
  return graph.build_model(info);
}

// x[batch,4] -> QuantizeLinear(per-channel axis 1, int8) -> DequantizeLinear -> MatMul with an int8
// weight dequantized per output channel (axis 1) -> y; the int8 codes are an output too, and a
// uint8 constant dequantized per channel is a third.
onnx::ModelProto quant_model() {
  onnx::GraphBuilder graph("quant");
  graph.add_input("x", onnx::DataType::kFloat, {"batch", 4});
  const std::vector<float> x_scale{0.02F, 0.05F, 0.1F, 0.25F};
  const std::vector<std::int8_t> x_zero{0, -3, 5, 127};
  graph.add_initializer(onnx::make_tensor("x_scale", {4}, std::span<const float>(x_scale)));
  graph.add_initializer(onnx::make_tensor("x_zero", {4}, std::span<const std::int8_t>(x_zero)));
  std::vector<std::int8_t> codes(12);
  for (std::size_t i = 0; i < codes.size(); ++i)
    codes[i] = static_cast<std::int8_t>(static_cast<int>(i * 23 % 255) - 127);
  const std::vector<float> w_scale{0.01F, 0.02F, 0.03F};
  const std::vector<std::int8_t> w_zero{0, 0, 0};
  graph.add_initializer(onnx::make_tensor("w_codes", {4, 3}, std::span<const std::int8_t>(codes)));
  graph.add_initializer(onnx::make_tensor("w_scale", {3}, std::span<const float>(w_scale)));
  graph.add_initializer(onnx::make_tensor("w_zero", {3}, std::span<const std::int8_t>(w_zero)));
  graph.add_node("QuantizeLinear", {"x", "x_scale", "x_zero"}, {"x_codes"}, {onnx::attribute_int("axis", 1)});
  const std::string xq =
      graph.add_op("DequantizeLinear", {"x_codes", "x_scale", "x_zero"}, {onnx::attribute_int("axis", 1)});
  const std::string w =
      graph.add_op("DequantizeLinear", {"w_codes", "w_scale", "w_zero"}, {onnx::attribute_int("axis", 1)});
  graph.add_node("MatMul", {xq, w}, {"y"});
  // A uint8 pair too: codes and zero points per channel (axis 0), dequantized as a constant output.
  const std::vector<std::uint8_t> u_codes{0, 17, 128, 255};
  const std::vector<std::uint8_t> u_zero{128, 0, 255, 3};
  graph.add_initializer(onnx::make_tensor("u_codes", {4}, std::span<const std::uint8_t>(u_codes)));
  graph.add_initializer(onnx::make_tensor("u_zero", {4}, std::span<const std::uint8_t>(u_zero)));
  graph.add_node("DequantizeLinear", {"u_codes", "x_scale", "u_zero"}, {"u"}, {onnx::attribute_int("axis", 0)});
  graph.add_output("y", onnx::DataType::kFloat, {"batch", 3});
  graph.add_output("x_codes", onnx::DataType::kInt8, {"batch", 4});
  graph.add_output("u", onnx::DataType::kFloat, {4});
  graph.set_metadata("hone.sample", "quant");
  return graph.build_model();
}

// X[seq,batch,3] -> LSTM (hidden 5, forward, explicit activations and clip) -> Y, Y_h; the optional
// inputs sequence_lens, initial_h, initial_c and the output Y_c are omitted.
onnx::ModelProto lstm_model() {
  constexpr std::int64_t kHidden = 5;
  onnx::GraphBuilder graph("lstm");
  graph.add_input("X", onnx::DataType::kFloat, {"seq", "batch", 3});
  add_floats(graph, "W", {1, 4 * kHidden, 3}, 4);
  add_floats(graph, "R", {1, 4 * kHidden, kHidden}, 5);
  add_floats(graph, "B", {1, 8 * kHidden}, 6);
  graph.add_node("LSTM", {"X", "W", "R", "B", "", "", ""}, {"Y", "Y_h"},
                 {onnx::attribute_int("hidden_size", kHidden), onnx::attribute_string("direction", "forward"),
                  onnx::attribute_strings("activations", {"Sigmoid", "Tanh", "Tanh"}),
                  onnx::attribute_float("clip", 10.0F), onnx::attribute_int("input_forget", 0)},
                 "lstm");
  graph.add_output("Y", onnx::DataType::kFloat, {"seq", 1, "batch", kHidden});
  graph.add_output("Y_h", onnx::DataType::kFloat, {1, "batch", kHidden});
  graph.set_metadata("hone.sample", "lstm");
  return graph.build_model();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.size() == 2 && args[0] == "write") {
      write_file(args[1] + "/mlp.onnx", onnx::serialize(mlp_model()));
      write_file(args[1] + "/quant.onnx", onnx::serialize(quant_model()));
      write_file(args[1] + "/lstm.onnx", onnx::serialize(lstm_model()));
      return 0;
    }
    if (args.size() == 3 && args[0] == "roundtrip") {
      write_file(args[2], onnx::serialize(onnx::parse<onnx::ModelProto>(read_file(args[1]), args[1])));
      return 0;
    }
    std::cerr << "usage: onnx_write_sample write DIR | roundtrip IN OUT\n";
    return 2;
  } catch (const hone::Error& error) {
    std::cerr << "error: " << error.what() << '\n';
    return 1;
  }
}
