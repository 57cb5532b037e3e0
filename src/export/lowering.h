#pragma once
// Internal to src/export: the state one lowering of a hone model into ONNX nodes carries, and the
// per-layer lowerings (layer_lowering.cpp) that model_lowering.cpp composes per architecture.
//
// How to add a layer kind: one `if (auto* x = dynamic_cast<Kind*>(module))` branch in
// lower_layer() (layer_lowering.cpp) that emits its nodes; a kind without a branch is an error
// naming the layer's path and its C++ kind, so nothing half-lowered is ever written.
#include <ATen/Tensor.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hone/export/onnx_graph.h"

namespace hone::onnx::detail {

/// The quantization of a value hone holds as quint8 (x = scale * (q - zero_point)).
struct QuantParams {
  double scale = 1;
  std::int64_t zero_point = 0;
};

/// A value of the graph being built and its rank (what Gemm vs MatMul, Squeeze axes... depend on).
/// `quant` is set where hone holds the value as a quint8 tensor: the graph then holds it as the
/// output of a DequantizeLinear (QDQ form), and the next int8 layer takes it as it is, as hone's do.
struct Value {
  std::string name;
  std::int64_t rank = 0;
  std::optional<QuantParams> quant;
};

/// The first default-domain opset with ONNX's Attention op (scaled dot-product attention over
/// Q, K, V with a mask); below it, attention lowers as MatMul / Softmax / MatMul.
inline constexpr std::int64_t kAttentionOpset = 23;

/// The graph under construction: float weights are written in `compute` type (FLOAT or FLOAT16);
/// `opset` (the default domain's) picks between forms where a newer opset has a single op.
class Lowering {
 public:
  Lowering(GraphBuilder& graph, DataType compute, std::int64_t opset)
      : graph_(graph), compute_(compute), opset_(opset) {}
  GraphBuilder& graph() { return graph_; }
  DataType compute() const { return compute_; }
  std::int64_t opset() const { return opset_; }
  /// Whether attention lowers to ONNX's Attention op (opset >= kAttentionOpset).
  bool has_attention_op() const { return opset_ >= kAttentionOpset; }

  /// A float tensor as an initializer in the compute type (converted on the CPU, contiguous);
  /// `hint` names it (made unique). Returns its name.
  std::string weight(const at::Tensor& tensor, const std::string& hint);
  /// An initializer kept in its own type (int64 shapes and axes, float64 constants...).
  std::string constant(const at::Tensor& tensor, const std::string& hint);
  std::string ints(const std::vector<std::int64_t>& values, const std::string& hint);
  /// A scalar in the compute type, e.g. for Mul/Add/Max.
  std::string scalar(double value, const std::string& hint);

  /// One node with one output named after `hint`; returns the output.
  std::string op(const std::string& op_type, std::vector<std::string> inputs, std::vector<AttributeProto> attributes,
                 const std::string& hint);

 private:
  GraphBuilder& graph_;
  DataType compute_;
  std::int64_t opset_;
};

/// The layer `module` (found at `path`) applied to x. Throws hone::Error naming the path and the
/// module's kind when there is no lowering for it.
Value lower_layer(Lowering& lowering, torch::nn::Module& module, const std::string& path, const Value& x);

/// QuantizeLinear + DequantizeLinear of x with `q` (uint8): the QDQ pair onnxruntime fuses around
/// int8 ops. Returns the dequantized value, marked quantized.
Value quantize_dequantize(Lowering& lowering, const Value& x, QuantParams q, const std::string& hint);

/// relu(a + b) or a + b: float, or int8 (ResidualAddInt8: inputs and output as QDQ).
Value lower_residual_add(Lowering& lowering, torch::nn::Module& add, bool relu, const std::string& path, const Value& a,
                         const Value& b);

/// A Linear by its parts: Gemm (transB) on rank-2 inputs, MatMul + Add otherwise.
Value lower_linear(Lowering& lowering, const at::Tensor& weight, const at::Tensor& bias, const std::string& path,
                   const Value& x);

/// LayerNormalization over the last axis.
Value lower_layer_norm(Lowering& lowering, torch::nn::Module& norm, const std::string& path, const Value& x);

/// torch's LSTM (batch first) as one ONNX LSTM node per layer: x [B, T, F] -> the output sequence
/// [B, T, H] (and the last step's hidden state [B, H] in `last`, when given).
Value lower_lstm(Lowering& lowering, torch::nn::Module& lstm, const std::string& path, const Value& x,
                 Value* last = nullptr);

}  // namespace hone::onnx::detail
