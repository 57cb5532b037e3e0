#include "hone/export/onnx_graph.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstring>
#include <limits>
#include <utility>

#include "hone/core/error.h"

namespace hone::onnx {
namespace {

static_assert(std::endian::native == std::endian::little,
              "make_tensor copies typed values as raw_data, which ONNX stores little-endian");

template <typename Value>
constexpr DataType data_type_of();
template <>
constexpr DataType data_type_of<float>() {
  return DataType::kFloat;
}
template <>
constexpr DataType data_type_of<std::int8_t>() {
  return DataType::kInt8;
}
template <>
constexpr DataType data_type_of<std::uint8_t>() {
  return DataType::kUint8;
}
template <>
constexpr DataType data_type_of<std::int32_t>() {
  return DataType::kInt32;
}
template <>
constexpr DataType data_type_of<std::int64_t>() {
  return DataType::kInt64;
}

std::string shape_text(const std::vector<std::int64_t>& dims) {
  std::string out = "[";
  for (std::size_t index = 0; index < dims.size(); ++index) {
    if (index > 0) out += ',';
    out += std::to_string(dims[index]);
  }
  return out + "]";
}

AttributeProto make_attribute(std::string name, AttributeType type) {
  AttributeProto attribute;
  attribute.name = std::move(name);
  attribute.type = type;
  return attribute;
}

}  // namespace

std::size_t element_size(DataType type) {
  switch (type) {
    case DataType::kBool:
    case DataType::kInt8:
    case DataType::kUint8:
      return 1;
    case DataType::kFloat16:
    case DataType::kBfloat16:
    case DataType::kInt16:
    case DataType::kUint16:
      return 2;
    case DataType::kFloat:
    case DataType::kInt32:
    case DataType::kUint32:
      return 4;
    case DataType::kDouble:
    case DataType::kInt64:
    case DataType::kUint64:
      return 8;
    case DataType::kUndefined:
    case DataType::kString:
      break;
  }
  fail("ONNX element type {} has no fixed size in raw_data", data_type_name(type));
}

std::string data_type_name(DataType type) {
  switch (type) {
    case DataType::kUndefined:
      return "UNDEFINED";
    case DataType::kFloat:
      return "FLOAT";
    case DataType::kUint8:
      return "UINT8";
    case DataType::kInt8:
      return "INT8";
    case DataType::kUint16:
      return "UINT16";
    case DataType::kInt16:
      return "INT16";
    case DataType::kInt32:
      return "INT32";
    case DataType::kInt64:
      return "INT64";
    case DataType::kString:
      return "STRING";
    case DataType::kBool:
      return "BOOL";
    case DataType::kFloat16:
      return "FLOAT16";
    case DataType::kDouble:
      return "DOUBLE";
    case DataType::kUint32:
      return "UINT32";
    case DataType::kUint64:
      return "UINT64";
    case DataType::kBfloat16:
      return "BFLOAT16";
  }
  return "DataType(" + std::to_string(static_cast<std::int32_t>(type)) + ")";
}

AttributeProto attribute_float(std::string name, float value) {
  AttributeProto attribute = make_attribute(std::move(name), AttributeType::kFloat);
  attribute.f = value;
  return attribute;
}

AttributeProto attribute_int(std::string name, std::int64_t value) {
  AttributeProto attribute = make_attribute(std::move(name), AttributeType::kInt);
  attribute.i = value;
  return attribute;
}

AttributeProto attribute_string(std::string name, std::string value) {
  AttributeProto attribute = make_attribute(std::move(name), AttributeType::kString);
  attribute.s = std::move(value);
  return attribute;
}

AttributeProto attribute_tensor(std::string name, TensorProto value) {
  AttributeProto attribute = make_attribute(std::move(name), AttributeType::kTensor);
  attribute.t = std::move(value);
  return attribute;
}

AttributeProto attribute_floats(std::string name, std::vector<float> values) {
  AttributeProto attribute = make_attribute(std::move(name), AttributeType::kFloats);
  attribute.floats = std::move(values);
  return attribute;
}

AttributeProto attribute_ints(std::string name, std::vector<std::int64_t> values) {
  AttributeProto attribute = make_attribute(std::move(name), AttributeType::kInts);
  attribute.ints = std::move(values);
  return attribute;
}

AttributeProto attribute_strings(std::string name, std::vector<std::string> values) {
  AttributeProto attribute = make_attribute(std::move(name), AttributeType::kStrings);
  attribute.strings = std::move(values);
  return attribute;
}

void check_tensor(const TensorProto& tensor) {
  const std::string& name = tensor.name;
  const std::vector<std::int64_t>& dims = tensor.dims;
  const std::string_view bytes = tensor.raw_data;
  const std::size_t size = element_size(tensor.data_type);
  std::uint64_t count = 1;
  for (std::int64_t dim : dims) {
    if (dim < 0) fail("ONNX tensor '{}': negative dimension in shape {}", name, shape_text(dims));
    const auto extent = static_cast<std::uint64_t>(dim);
    if (extent != 0 && count > std::numeric_limits<std::uint64_t>::max() / size / extent) {
      fail("ONNX tensor '{}': shape {} has too many elements", name, shape_text(dims));
    }
    count *= extent;
  }
  if (count * size != bytes.size()) {
    fail("ONNX tensor '{}': shape {} of {} needs {} bytes, got {}", name, shape_text(dims),
         data_type_name(tensor.data_type), count * size, bytes.size());
  }
  if (tensor.data_type == DataType::kBool) {
    const auto bad = std::find_if(bytes.begin(), bytes.end(), [](char byte) { return byte != 0 && byte != 1; });
    if (bad != bytes.end()) {
      fail("ONNX tensor '{}': BOOL byte {} is {}, not 0 or 1", name, bad - bytes.begin(),
           static_cast<int>(static_cast<unsigned char>(*bad)));
    }
  }
}

TensorProto make_tensor(std::string name, DataType type, std::vector<std::int64_t> dims, std::string_view bytes) {
  TensorProto tensor;
  tensor.name = std::move(name);
  tensor.data_type = type;
  tensor.dims = std::move(dims);
  tensor.raw_data.assign(bytes);
  check_tensor(tensor);
  return tensor;
}

template <typename Value>
TensorProto make_tensor(std::string name, std::vector<std::int64_t> dims, std::span<const Value> values) {
  const std::string_view bytes(reinterpret_cast<const char*>(values.data()), values.size_bytes());
  return make_tensor(std::move(name), data_type_of<Value>(), std::move(dims), bytes);
}

template TensorProto make_tensor<float>(std::string, std::vector<std::int64_t>, std::span<const float>);
template TensorProto make_tensor<std::int8_t>(std::string, std::vector<std::int64_t>, std::span<const std::int8_t>);
template TensorProto make_tensor<std::uint8_t>(std::string, std::vector<std::int64_t>, std::span<const std::uint8_t>);
template TensorProto make_tensor<std::int32_t>(std::string, std::vector<std::int64_t>, std::span<const std::int32_t>);
template TensorProto make_tensor<std::int64_t>(std::string, std::vector<std::int64_t>, std::span<const std::int64_t>);

GraphBuilder::GraphBuilder(std::string graph_name, std::int64_t opset) {
  if (graph_name.empty()) fail("ONNX graph name is empty");
  graph_.name = std::move(graph_name);
  set_opset("", opset);
}

void GraphBuilder::set_opset(const std::string& domain, std::int64_t version) {
  if (version < 1) fail("ONNX graph '{}': opset {} for domain '{}' is not a version", graph_.name, version, domain);
  opsets_[domain] = version;
}

std::string GraphBuilder::unique_name(std::string_view hint) const {
  const std::string base = hint.empty() ? std::string("value") : std::string(hint);
  if (!values_.contains(base)) return base;
  for (std::size_t suffix = 1;; ++suffix) {
    std::string candidate = base + "_" + std::to_string(suffix);
    if (!values_.contains(candidate)) return candidate;
  }
}

void GraphBuilder::define_value(const std::string& name, std::string_view what) {
  if (name.empty()) fail("ONNX graph '{}': {} has an empty name", graph_.name, what);
  if (!values_.insert(name).second) fail("ONNX graph '{}': {} '{}' is already defined", graph_.name, what, name);
}

const std::string& GraphBuilder::add_initializer(std::string name, DataType type, std::vector<std::int64_t> dims,
                                                 std::string_view bytes) {
  return add_initializer(make_tensor(std::move(name), type, std::move(dims), bytes));
}

const std::string& GraphBuilder::add_initializer(TensorProto tensor) {
  check_tensor(tensor);
  define_value(tensor.name, "initializer");
  graph_.initializer.push_back(std::move(tensor));
  return graph_.initializer.back().name;
}

ValueInfoProto GraphBuilder::make_value_info(std::string name, DataType type, std::vector<Dimension> shape,
                                             std::string_view what) const {
  if (name.empty()) fail("ONNX graph '{}': {} has an empty name", graph_.name, what);
  element_size(type);  // a tensor type hone can export
  for (const Dimension& dim : shape) {
    if (dim.value && *dim.value < 0) {
      fail("ONNX graph '{}': {} '{}' has negative dimension {}", graph_.name, what, name, *dim.value);
    }
  }
  ValueInfoProto value;
  value.name = std::move(name);
  value.type = TensorTypeProto{type, std::move(shape)};
  return value;
}

void GraphBuilder::add_input(std::string name, DataType type, std::vector<Dimension> shape) {
  ValueInfoProto value = make_value_info(std::move(name), type, std::move(shape), "input");
  define_value(value.name, "input");
  graph_.input.push_back(std::move(value));
}

void GraphBuilder::add_output(std::string name, DataType type, std::vector<Dimension> shape) {
  ValueInfoProto value = make_value_info(std::move(name), type, std::move(shape), "output");
  for (const ValueInfoProto& output : graph_.output) {
    if (output.name == value.name) fail("ONNX graph '{}': output '{}' is declared twice", graph_.name, value.name);
  }
  graph_.output.push_back(std::move(value));
}

void GraphBuilder::add_value_info(std::string name, DataType type, std::vector<Dimension> shape) {
  graph_.value_info.push_back(make_value_info(std::move(name), type, std::move(shape), "value_info"));
}

const std::string& GraphBuilder::add_node(std::string op_type, std::vector<std::string> inputs,
                                          std::vector<std::string> outputs, std::vector<AttributeProto> attributes,
                                          std::string node_name, std::string domain) {
  if (op_type.empty()) fail("ONNX graph '{}': node with an empty op_type", graph_.name);
  if (node_name.empty()) {
    for (std::size_t index = graph_.node.size();; ++index) {
      node_name = op_type + "_" + std::to_string(index);
      if (!node_names_.contains(node_name)) break;
    }
  } else if (node_names_.contains(node_name)) {
    fail("ONNX graph '{}': node name '{}' is already used", graph_.name, node_name);
  }
  if (!opsets_.contains(domain)) {
    fail("ONNX graph '{}': node '{}' ({}) is in domain '{}', which the model does not import (set_opset)", graph_.name,
         node_name, op_type, domain);
  }
  for (const std::string& input : inputs) {
    if (!input.empty() && !values_.contains(input)) {
      fail("ONNX graph '{}': node '{}' ({}) reads '{}', which no input, initializer or earlier node defines",
           graph_.name, node_name, op_type, input);
    }
  }
  std::set<std::string, std::less<>> seen_attributes;
  for (const AttributeProto& attribute : attributes) {
    if (attribute.name.empty() || !seen_attributes.insert(attribute.name).second) {
      fail("ONNX graph '{}': node '{}' ({}) has an empty or repeated attribute name '{}'", graph_.name, node_name,
           op_type, attribute.name);
    }
    if (attribute.type == AttributeType::kUndefined) {
      fail("ONNX graph '{}': node '{}' attribute '{}' has no type", graph_.name, node_name, attribute.name);
    }
    if (attribute.type == AttributeType::kTensor) {
      if (!attribute.t)
        fail("ONNX graph '{}': node '{}' attribute '{}' has no tensor", graph_.name, node_name, attribute.name);
      check_tensor(*attribute.t);
    }
  }
  if (std::all_of(outputs.begin(), outputs.end(), [](const std::string& output) { return output.empty(); })) {
    fail("ONNX graph '{}': node '{}' ({}) has no output", graph_.name, node_name, op_type);
  }
  // Define outputs only after every check passed, so a failed call leaves the builder unchanged.
  std::set<std::string, std::less<>> new_outputs;
  for (const std::string& output : outputs) {
    if (output.empty()) continue;
    if (values_.contains(output) || !new_outputs.insert(output).second) {
      fail("ONNX graph '{}': node '{}' ({}) writes '{}', which is already defined", graph_.name, node_name, op_type,
           output);
    }
  }
  values_.insert(new_outputs.begin(), new_outputs.end());
  node_names_.insert(node_name);
  NodeProto node;
  node.op_type = std::move(op_type);
  node.input = std::move(inputs);
  node.output = std::move(outputs);
  node.attribute = std::move(attributes);
  node.name = std::move(node_name);
  node.domain = std::move(domain);
  graph_.node.push_back(std::move(node));
  return graph_.node.back().name;
}

std::string GraphBuilder::add_op(const std::string& op_type, std::vector<std::string> inputs,
                                 std::vector<AttributeProto> attributes) {
  std::string hint = op_type;
  std::transform(hint.begin(), hint.end(), hint.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string output = unique_name(hint);
  add_node(op_type, std::move(inputs), {output}, std::move(attributes));
  return output;
}

void GraphBuilder::set_metadata(const std::string& key, std::string value) {
  if (key.empty()) fail("ONNX graph '{}': metadata key is empty", graph_.name);
  metadata_[key] = std::move(value);
}

GraphProto GraphBuilder::build_graph() const {
  if (graph_.output.empty()) fail("ONNX graph '{}' has no outputs", graph_.name);
  for (const ValueInfoProto& value : graph_.output) {
    if (!values_.contains(value.name)) {
      fail("ONNX graph '{}': output '{}' is not defined by any node, input or initializer", graph_.name, value.name);
    }
  }
  for (const ValueInfoProto& value : graph_.value_info) {
    if (!values_.contains(value.name)) fail("ONNX graph '{}': value_info '{}' is not defined", graph_.name, value.name);
  }
  return graph_;
}

ModelProto GraphBuilder::build_model(const ModelInfo& info) const {
  ModelProto model;
  model.ir_version = info.ir_version;
  model.producer_name = info.producer_name;
  model.producer_version = info.producer_version;
  model.graph = build_graph();
  for (const auto& [domain, version] : opsets_) model.opset_import.push_back({domain, version});
  for (const auto& [key, value] : metadata_) model.metadata_props.push_back({key, value});
  return model;
}

}  // namespace hone::onnx
