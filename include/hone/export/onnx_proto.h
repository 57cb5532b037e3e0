#pragma once
/// @file The subset of onnx.proto that hone writes, as plain C++ structs, with a serializer to the
/// protobuf wire format and a strict reader for the same subset.
///
/// Why hand-written: the torch wheel carries protobuf 3.13 headers that shadow the system's
/// wherever torch's include directories are visible, and Debian's libonnx-dev stops at opset 17.
/// The wire format of these few messages is small enough to write directly, so hone_export needs
/// neither libprotobuf nor libonnx, and links into torch-using code without a clash.
///
/// Field numbers are onnx.proto's (checked against onnx 1.23.2's onnx/onnx.proto). The writer emits fields in
/// field-number order, repeated scalars packed (parsers must accept packed and unpacked alike), strings and ints only
/// when set (non-empty / non-zero) except where ONNX needs presence: a dim_value of 0, the value of
/// an attribute of that type, data types and opset versions are always written.
///
/// The reader (parse<Message>) accepts what the writer writes and what protobuf writes for these
/// messages (packed or unpacked repeated scalars, fields in any order, repeated messages merged).
/// It throws hone::Error naming the source, the message path and the byte offset for truncated
/// input, lengths that run past their message, varints over 10 bytes, int32 fields out of range,
/// wire types that do not match the field, and groups. Fields outside the subset are skipped,
/// except those whose loss would change what the model computes, which are rejected: tensor data
/// outside raw_data (float_data, int64_data..., external data, segments), sparse initializers,
/// model-local functions, and attributes of graph, tensor-list, sparse or type kind.
///
/// Use:
/// @code
///   hone::onnx::ModelProto model;
///   model.ir_version = 10;
///   model.opset_import.push_back({"", 21});
///   model.graph.name = "g";
///   ...
///   std::string bytes = hone::onnx::serialize(model);
///   auto back = hone::onnx::parse<hone::onnx::ModelProto>(bytes, "model.onnx");
/// @endcode
/// Most code builds models through onnx_graph.h's GraphBuilder rather than these structs.
///
/// No torch types here. (The .cpp uses hone/core/error.h, which needs torch's header-only fmt.)
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hone::onnx {

/// TensorProto.DataType (the element types hone exports; the reader keeps any int32 value).
enum class DataType : std::int32_t {
  kUndefined = 0,
  kFloat = 1,
  kUint8 = 2,
  kInt8 = 3,
  kUint16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kDouble = 11,
  kUint32 = 12,
  kUint64 = 13,
  kBfloat16 = 16,
};

/// AttributeProto.AttributeType, the kinds hone writes and reads.
enum class AttributeType : std::int32_t {
  kUndefined = 0,
  kFloat = 1,
  kInt = 2,
  kString = 3,
  kTensor = 4,
  kFloats = 6,
  kInts = 7,
  kStrings = 8,
};

/// TensorProto: a named constant with its values in raw_data, little-endian, row-major.
struct TensorProto {
  std::vector<std::int64_t> dims;             ///< 1
  DataType data_type = DataType::kUndefined;  ///< 2 (always written)
  std::string name;                           ///< 8
  std::string raw_data;                       ///< 9
  bool operator==(const TensorProto&) const = default;
};

/// AttributeProto: `type` says which one value field is meant; only that one is written.
struct AttributeProto {
  std::string name;                                ///< 1
  AttributeType type = AttributeType::kUndefined;  ///< 20
  float f = 0;                                     ///< 2
  std::int64_t i = 0;                              ///< 3
  std::string s;                                   ///< 4
  std::optional<TensorProto> t;                    ///< 5
  std::vector<float> floats;                       ///< 7
  std::vector<std::int64_t> ints;                  ///< 8
  std::vector<std::string> strings;                ///< 9
  bool operator==(const AttributeProto&) const = default;
};

/// NodeProto: one operator call.
struct NodeProto {
  std::vector<std::string> input;         ///< 1 ("" = an omitted optional input)
  std::vector<std::string> output;        ///< 2
  std::string name;                       ///< 3
  std::string op_type;                    ///< 4
  std::vector<AttributeProto> attribute;  ///< 5
  std::string domain;                     ///< 7 ("" = the default ONNX domain)
  bool operator==(const NodeProto&) const = default;
};

/// TensorShapeProto.Dimension: a fixed size (dim_value), a symbolic one (dim_param, e.g. "batch")
/// or, when neither is set, an unknown one. Converts from an integer or a string, so shapes can
/// be written as {"batch", 16}.
struct Dimension {
  std::optional<std::int64_t> value;  ///< 1 (written even when 0)
  std::string param;                  ///< 2 (used when value is empty)

  Dimension() = default;
  template <std::integral Integer>
  Dimension(Integer size) : value(static_cast<std::int64_t>(size)) {}  // NOLINT: implicit by design
  Dimension(std::string symbol) : param(std::move(symbol)) {}          // NOLINT
  Dimension(const char* symbol) : param(symbol) {}                     // NOLINT
  bool operator==(const Dimension&) const = default;
};

/// TypeProto.Tensor: element type and, when known, the shape (an empty shape is a scalar; no
/// shape at all means unknown rank).
struct TensorTypeProto {
  DataType elem_type = DataType::kUndefined;    ///< 1 (always written)
  std::optional<std::vector<Dimension>> shape;  ///< 2: TensorShapeProto{dim = 1}
  bool operator==(const TensorTypeProto&) const = default;
};

/// ValueInfoProto: a graph input, output or intermediate value and its type. Only tensor types
/// are supported; the type is stored as TypeProto{tensor_type = 1}.
struct ValueInfoProto {
  std::string name;                     ///< 1
  std::optional<TensorTypeProto> type;  ///< 2
  bool operator==(const ValueInfoProto&) const = default;
};

/// GraphProto: nodes in topological order, plus the graph's constants and interface.
struct GraphProto {
  std::vector<NodeProto> node;             ///< 1
  std::string name;                        ///< 2
  std::vector<TensorProto> initializer;    ///< 5
  std::vector<ValueInfoProto> input;       ///< 11
  std::vector<ValueInfoProto> output;      ///< 12
  std::vector<ValueInfoProto> value_info;  ///< 13
  bool operator==(const GraphProto&) const = default;
};

/// OperatorSetIdProto: the opset version of one operator domain ("" = ai.onnx).
struct OperatorSetIdProto {
  std::string domain;        ///< 1
  std::int64_t version = 0;  ///< 2 (always written)
  bool operator==(const OperatorSetIdProto&) const = default;
};

/// StringStringEntryProto: one metadata key/value pair.
struct StringStringEntryProto {
  std::string key;    ///< 1
  std::string value;  ///< 2
  bool operator==(const StringStringEntryProto&) const = default;
};

/// ModelProto: the file.
struct ModelProto {
  std::int64_t ir_version = 0;                         ///< 1
  std::vector<OperatorSetIdProto> opset_import;        ///< 8
  std::string producer_name;                           ///< 2
  std::string producer_version;                        ///< 3
  GraphProto graph;                                    ///< 7 (always written)
  std::vector<StringStringEntryProto> metadata_props;  ///< 14
  bool operator==(const ModelProto&) const = default;
};

/// The protobuf wire encoding of a message (what an .onnx file holds for a ModelProto).
std::string serialize(const ModelProto& message);
std::string serialize(const GraphProto& message);
std::string serialize(const NodeProto& message);
std::string serialize(const AttributeProto& message);
std::string serialize(const TensorProto& message);
std::string serialize(const ValueInfoProto& message);
std::string serialize(const OperatorSetIdProto& message);
std::string serialize(const StringStringEntryProto& message);

/// Reads one message of the supported subset from its wire encoding; `source` (a file name, or
/// what the bytes are) starts every error message. Defined for the eight message types above.
/// Throws hone::Error on malformed or unsupported input (see the file comment); never reads past
/// `bytes`.
template <typename Message>
Message parse(std::string_view bytes, std::string_view source = "ONNX bytes");

}  // namespace hone::onnx
