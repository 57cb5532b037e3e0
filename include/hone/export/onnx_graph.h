#pragma once
/// @file GraphBuilder: builds an ONNX model node by node on top of onnx_proto.h, so exporters say
/// what the graph computes and not how protobuf spells it. It keeps the graph well-formed as it
/// goes (every value produced once, node inputs defined before use, initializer sizes matching
/// their shape), generates unique value and node names, and records the opsets the model imports.
///
/// Use:
/// @code
///   namespace onnx = hone::onnx;
///   onnx::GraphBuilder graph("mlp");                       // default domain at kDefaultOpset
///   graph.add_input("x", onnx::DataType::kFloat, {"batch", 4});
///   graph.add_initializer("w", onnx::DataType::kFloat, {3, 4}, weight_bytes);  // little-endian
///   graph.add_initializer("b", onnx::DataType::kFloat, {3}, bias_bytes);
///   std::string h = graph.add_op("Gemm", {"x", "w", "b"}, {onnx::attribute_int("transB", 1)});
///   graph.add_node("Relu", {h}, {"y"});
///   graph.add_output("y", onnx::DataType::kFloat, {"batch", 3});
///   graph.set_metadata("hone.run", "runs/mlp");
///   std::string bytes = onnx::serialize(graph.build_model());
/// @endcode
/// Errors (duplicate names, undefined inputs, size mismatches, a node whose domain has no opset)
/// throw hone::Error naming the graph, the node or the tensor. No torch types here.
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hone/export/onnx_proto.h"

namespace hone::onnx {

/// The opset of the default domain (ai.onnx) a GraphBuilder imports unless told otherwise.
inline constexpr std::int64_t kDefaultOpset = 21;
/// The IR version written with it: IR 10 is the one that introduced opset 21.
inline constexpr std::int64_t kDefaultIrVersion = 10;

/// Bytes per element of a type that can live in raw_data; throws hone::Error for STRING,
/// UNDEFINED and values outside DataType.
std::size_t element_size(DataType type);

/// The ONNX spelling of a type ("FLOAT", "BFLOAT16"...), or "DataType(<n>)" for others.
std::string data_type_name(DataType type);

/// Attributes, one constructor per kind (the name is ONNX's, e.g. "transB", "axis").
AttributeProto attribute_float(std::string name, float value);
AttributeProto attribute_int(std::string name, std::int64_t value);
AttributeProto attribute_string(std::string name, std::string value);
AttributeProto attribute_tensor(std::string name, TensorProto value);
AttributeProto attribute_floats(std::string name, std::vector<float> values);
AttributeProto attribute_ints(std::string name, std::vector<std::int64_t> values);
AttributeProto attribute_strings(std::string name, std::vector<std::string> values);

/// A checked TensorProto: dims >= 0, a raw-data type, and bytes.size() equal to the element count
/// times the element size (BOOL bytes must be 0 or 1). `bytes` are little-endian.
TensorProto make_tensor(std::string name, DataType type, std::vector<std::int64_t> dims, std::string_view bytes);

/// make_tensor from typed values, the type following Value (float, std::int8_t, std::uint8_t,
/// std::int32_t, std::int64_t); FLOAT16/BFLOAT16 go through the byte overload as 16-bit patterns.
/// E.g. make_tensor("shape", {2}, std::span<const std::int64_t>(shape)).
template <typename Value>
TensorProto make_tensor(std::string name, std::vector<std::int64_t> dims, std::span<const Value> values);

/// The checks of make_tensor, for a TensorProto made elsewhere; throws hone::Error naming it.
void check_tensor(const TensorProto& tensor);

/// Model-level fields written by build_model().
struct ModelInfo {
  std::int64_t ir_version = kDefaultIrVersion;
  std::string producer_name = "hone";
  std::string producer_version;
};

class GraphBuilder {
 public:
  /// A graph importing the default domain at `opset`.
  explicit GraphBuilder(std::string graph_name, std::int64_t opset = kDefaultOpset);

  /// Imports `domain` ("" = ai.onnx, "com.microsoft"...) at `version`, replacing an earlier one.
  void set_opset(const std::string& domain, std::int64_t version);

  /// A name not yet used by any value of the graph: `hint` itself, else hint_1, hint_2...
  /// (The name is not reserved until something is added under it.)
  std::string unique_name(std::string_view hint) const;

  /// Adds a constant; returns its name. Throws when the name is taken (see make_tensor for the
  /// other checks).
  const std::string& add_initializer(std::string name, DataType type, std::vector<std::int64_t> dims,
                                     std::string_view bytes);
  const std::string& add_initializer(TensorProto tensor);

  /// Declares a graph input; shape entries are sizes or symbols, e.g. {"batch", 16}.
  void add_input(std::string name, DataType type, std::vector<Dimension> shape);

  /// Declares a graph output; the value must be defined by build time.
  void add_output(std::string name, DataType type, std::vector<Dimension> shape);

  /// Records the type of an intermediate value (optional in ONNX; helps readers and checkers).
  void add_value_info(std::string name, DataType type, std::vector<Dimension> shape);

  /// Appends a node. Inputs must already be defined (graph inputs, initializers or earlier
  /// outputs); "" skips an optional input, as in ONNX. Outputs must be new names ("" skips an
  /// optional output). An empty `node_name` becomes a unique "<op_type>_<n>". A non-default
  /// `domain` needs set_opset first. Returns the node's name.
  const std::string& add_node(std::string op_type, std::vector<std::string> inputs, std::vector<std::string> outputs,
                              std::vector<AttributeProto> attributes = {}, std::string node_name = {},
                              std::string domain = {});

  /// add_node with one output, named unique_name(lowercased op_type); returns that name.
  std::string add_op(const std::string& op_type, std::vector<std::string> inputs,
                     std::vector<AttributeProto> attributes = {});

  /// Adds (or replaces) one metadata_props entry of the model.
  void set_metadata(const std::string& key, std::string value);

  /// The graph, after checking that every output is defined and declared once.
  GraphProto build_graph() const;

  /// The model: the graph, the opset imports (sorted by domain), metadata, `info`.
  ModelProto build_model(const ModelInfo& info = {}) const;

 private:
  void define_value(const std::string& name, std::string_view what);
  ValueInfoProto make_value_info(std::string name, DataType type, std::vector<Dimension> shape,
                                 std::string_view what) const;

  GraphProto graph_;
  std::map<std::string, std::int64_t> opsets_;
  std::map<std::string, std::string> metadata_;
  std::set<std::string, std::less<>> values_;      // every defined value name
  std::set<std::string, std::less<>> node_names_;  // every node name
};

}  // namespace hone::onnx
