#include "hone/serve/inference_protocol.h"

#include <array>
#include <cfloat>
#include <cmath>
#include <limits>
#include <set>
#include <utility>

namespace hone::serve {
namespace {

using nlohmann::json;

struct DataTypeName {
  DataType datatype;
  std::string_view name;
};

constexpr std::array<DataTypeName, 14> kDataTypeNames = {{
    {DataType::boolean, "BOOL"},
    {DataType::uint8, "UINT8"},
    {DataType::uint16, "UINT16"},
    {DataType::uint32, "UINT32"},
    {DataType::uint64, "UINT64"},
    {DataType::int8, "INT8"},
    {DataType::int16, "INT16"},
    {DataType::int32, "INT32"},
    {DataType::int64, "INT64"},
    {DataType::fp16, "FP16"},
    {DataType::bf16, "BF16"},
    {DataType::fp32, "FP32"},
    {DataType::fp64, "FP64"},
    {DataType::bytes, "BYTES"},
}};

bool is_float_type(DataType datatype) {
  return datatype == DataType::fp16 || datatype == DataType::bf16 || datatype == DataType::fp32 ||
         datatype == DataType::fp64;
}

// A user-given string quoted for a message, cut at 64 bytes on a UTF-8 boundary so a hostile
// name cannot blow up the error body (nor leave half a code point in it).
std::string quote_name(std::string_view text) {
  constexpr std::size_t kMax = 64;
  if (text.size() <= kMax) return "'" + std::string(text) + "'";
  std::size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return "'" + std::string(text.substr(0, cut)) + "...'";
}

std::string json_type(const json& value) {
  if (value.is_number_integer()) return "an integer";
  if (value.is_number_float()) return "a number";
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    default:
      return "a value";
  }
}

const json& require(const json& object, const char* key, const std::string& field) {
  const auto found = object.find(key);
  if (found == object.end()) throw ProtocolError(field, std::string("missing field '") + key + "'");
  return *found;
}

void check_keys(const json& object, std::initializer_list<std::string_view> allowed, const std::string& field) {
  for (const auto& [key, value] : object.items()) {
    bool known = false;
    for (const std::string_view name : allowed) known = known || key == name;
    if (!known) throw ProtocolError(field, "unknown field " + quote_name(key));
  }
}

void require_object(const json& value, const std::string& field) {
  if (!value.is_object()) throw ProtocolError(field, "must be an object, got " + json_type(value));
}

std::string require_string(const json& value, const std::string& field) {
  if (!value.is_string()) throw ProtocolError(field, "must be a string, got " + json_type(value));
  return value.get<std::string>();
}

std::vector<std::int64_t> parse_shape(const json& value, const std::string& field, const ProtocolLimits& limits,
                                      std::int64_t& elements) {
  if (!value.is_array()) throw ProtocolError(field, "must be an array of integers, got " + json_type(value));
  if (value.size() > limits.max_rank) {
    throw ProtocolError(
        field, std::to_string(value.size()) + " dimensions exceed the limit of " + std::to_string(limits.max_rank));
  }
  std::vector<std::int64_t> shape;
  elements = 1;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const json& dim = value[i];
    const std::string dim_field = field + "[" + std::to_string(i) + "]";
    if (!dim.is_number_integer()) throw ProtocolError(dim_field, "must be an integer, got " + json_type(dim));
    if (dim.is_number_unsigned() && dim.get<std::uint64_t>() > static_cast<std::uint64_t>(limits.max_elements)) {
      throw ProtocolError(dim_field,
                          "dimension exceeds the limit of " + std::to_string(limits.max_elements) + " elements");
    }
    const auto size = dim.get<std::int64_t>();
    if (size < 0) throw ProtocolError(dim_field, "dimension " + std::to_string(size) + " is negative");
    std::int64_t product = 0;
    if (__builtin_mul_overflow(elements, size, &product) || product > limits.max_elements) {
      throw ProtocolError(field, "more than " + std::to_string(limits.max_elements) + " elements (the limit)");
    }
    elements = product;
    shape.push_back(size);
  }
  return shape;
}

struct IntRange {
  std::int64_t low;
  std::int64_t high;
};

IntRange int_range(DataType datatype) {
  switch (datatype) {
    case DataType::boolean:
      return {0, 1};
    case DataType::uint8:
      return {0, 255};
    case DataType::uint16:
      return {0, 65535};
    case DataType::uint32:
      return {0, 4294967295LL};
    case DataType::uint64:
      return {0, std::numeric_limits<std::int64_t>::max()};
    case DataType::int8:
      return {-128, 127};
    case DataType::int16:
      return {-32768, 32767};
    case DataType::int32:
      return {std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max()};
    default:
      return {std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()};
  }
}

double float_limit(DataType datatype) {
  switch (datatype) {
    case DataType::fp16:
      return 65504.0;
    case DataType::bf16:
      return 3.3895313892515355e38;
    case DataType::fp32:
      return static_cast<double>(FLT_MAX);
    default:
      return std::numeric_limits<double>::max();
  }
}

// Appends one element, or throws naming "<field>[<flat index>]".
void append_element(const json& value, InferTensor& tensor, const std::string& field) {
  const auto index = tensor.data_size();
  const auto element_field = [&] { return field + "[" + std::to_string(index) + "]"; };
  const std::string_view type_name = to_string(tensor.datatype);
  if (tensor.datatype == DataType::bytes) {
    if (!value.is_string())
      throw ProtocolError(element_field(), "BYTES element must be a string, got " + json_type(value));
    tensor.bytes_data.push_back(value.get<std::string>());
  } else if (tensor.datatype == DataType::boolean) {
    if (!value.is_boolean())
      throw ProtocolError(element_field(), "BOOL element must be true or false, got " + json_type(value));
    tensor.int_data.push_back(value.get<bool>() ? 1 : 0);
  } else if (is_float_type(tensor.datatype)) {
    if (!value.is_number()) {
      throw ProtocolError(element_field(),
                          std::string(type_name) + " element must be a number, got " + json_type(value));
    }
    const auto number = value.get<double>();
    if (std::abs(number) > float_limit(tensor.datatype)) {
      throw ProtocolError(element_field(),
                          "value " + value.dump() + " is out of the range of " + std::string(type_name));
    }
    tensor.float_data.push_back(number);
  } else {
    if (!value.is_number_integer()) {
      throw ProtocolError(element_field(),
                          std::string(type_name) + " element must be an integer, got " + json_type(value));
    }
    const IntRange range = int_range(tensor.datatype);
    const bool too_big =
        value.is_number_unsigned() &&
        value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    const auto number = too_big ? 0 : value.get<std::int64_t>();
    if (too_big || number < range.low || number > range.high) {
      throw ProtocolError(element_field(),
                          "value " + value.dump() + " is out of the range of " + std::string(type_name) +
                              (tensor.datatype == DataType::uint64 ? " (hone takes up to 2^63 - 1)" : ""));
    }
    tensor.int_data.push_back(number);
  }
}

// Row-major flattening of nested arrays ("data": [[1, 2], [3, 4]] is allowed by the protocol).
void flatten_data(const json& value, InferTensor& tensor, const std::string& field, const ProtocolLimits& limits,
                  std::size_t depth) {
  if (!value.is_array()) {
    if (tensor.data_size() >= static_cast<std::size_t>(limits.max_elements)) {
      throw ProtocolError(field, "more than " + std::to_string(limits.max_elements) + " elements (the limit)");
    }
    append_element(value, tensor, field);
    return;
  }
  if (depth > limits.max_rank)
    throw ProtocolError(field, "nested deeper than " + std::to_string(limits.max_rank) + " levels");
  for (const json& element : value) flatten_data(element, tensor, field, limits, depth + 1);
}

InferTensor parse_input(const json& value, const std::string& field, const ProtocolLimits& limits) {
  require_object(value, field);
  check_keys(value, {"name", "shape", "datatype", "data", "parameters"}, field);
  InferTensor tensor;
  tensor.name = require_string(require(value, "name", field), field + ".name");
  const std::string datatype_name = require_string(require(value, "datatype", field), field + ".datatype");
  const std::optional<DataType> datatype = parse_datatype(datatype_name);
  if (!datatype) {
    throw ProtocolError(field + ".datatype", "unknown datatype " + quote_name(datatype_name) +
                                                 " (BOOL, UINT8..UINT64, INT8..INT64, FP16, BF16, FP32, FP64, BYTES)");
  }
  tensor.datatype = *datatype;
  std::int64_t elements = 0;
  tensor.shape = parse_shape(require(value, "shape", field), field + ".shape", limits, elements);
  if (value.contains("parameters")) require_object(value["parameters"], field + ".parameters");
  const json& data = require(value, "data", field);
  if (!data.is_array()) throw ProtocolError(field + ".data", "must be an array, got " + json_type(data));
  flatten_data(data, tensor, field + ".data", limits, 1);
  if (static_cast<std::int64_t>(tensor.data_size()) != elements) {
    throw ProtocolError(field + ".shape", "product " + std::to_string(elements) + " does not match " +
                                              std::to_string(tensor.data_size()) + " data elements");
  }
  return tensor;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

json tensor_spec_json(const TensorSpec& spec) {
  return {{"name", spec.name}, {"datatype", std::string(to_string(spec.datatype))}, {"shape", spec.shape}};
}

}  // namespace

ProtocolError::ProtocolError(std::string field, const std::string& problem)
    : std::runtime_error(field + ": " + problem), field_(std::move(field)) {}

std::string_view to_string(DataType datatype) {
  for (const DataTypeName& entry : kDataTypeNames) {
    if (entry.datatype == datatype) return entry.name;
  }
  return "UNKNOWN";
}

std::optional<DataType> parse_datatype(std::string_view name) {
  for (const DataTypeName& entry : kDataTypeNames) {
    if (entry.name == name) return entry.datatype;
  }
  return std::nullopt;
}

std::size_t InferTensor::data_size() const {
  if (datatype == DataType::bytes) return bytes_data.size();
  if (is_float_type(datatype)) return float_data.size();
  return int_data.size();
}

nlohmann::json parse_json_body(std::string_view body, const ProtocolLimits& limits) {
  if (body.empty()) throw ProtocolError("body", "empty; expected a JSON object");
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (std::size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limits.max_depth) {
        throw ProtocolError("body", "JSON nested deeper than " + std::to_string(limits.max_depth) + " levels at byte " +
                                        std::to_string(i));
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  try {
    return json::parse(body.begin(), body.end());
  } catch (const json::parse_error& e) {
    std::string message = e.what();
    const auto bracket = message.find("] ");
    if (message.rfind("[json.exception", 0) == 0 && bracket != std::string::npos) message = message.substr(bracket + 2);
    throw ProtocolError("body", "malformed JSON: " + message);
  }
}

InferRequest parse_infer_request(const nlohmann::json& body, const ProtocolLimits& limits) {
  require_object(body, "body");
  check_keys(body, {"id", "inputs", "outputs", "parameters"}, "body");
  InferRequest request;
  if (body.contains("id")) request.id = require_string(body["id"], "id");
  if (body.contains("parameters")) require_object(body["parameters"], "parameters");
  const json& inputs = require(body, "inputs", "body");
  if (!inputs.is_array()) throw ProtocolError("inputs", "must be an array, got " + json_type(inputs));
  if (inputs.empty()) throw ProtocolError("inputs", "empty; at least one input is needed");
  if (inputs.size() > limits.max_tensors) {
    throw ProtocolError(
        "inputs", std::to_string(inputs.size()) + " inputs exceed the limit of " + std::to_string(limits.max_tensors));
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::string field = "inputs[" + std::to_string(i) + "]";
    InferTensor tensor = parse_input(inputs[i], field, limits);
    if (!names.insert(tensor.name).second) {
      throw ProtocolError(field + ".name", "input " + quote_name(tensor.name) + " is given twice");
    }
    request.inputs.push_back(std::move(tensor));
  }
  if (body.contains("outputs")) {
    const json& outputs = body["outputs"];
    if (!outputs.is_array()) throw ProtocolError("outputs", "must be an array, got " + json_type(outputs));
    if (outputs.size() > limits.max_tensors) throw ProtocolError("outputs", "too many requested outputs");
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      const std::string field = "outputs[" + std::to_string(i) + "]";
      require_object(outputs[i], field);
      check_keys(outputs[i], {"name", "parameters"}, field);
      request.output_names.push_back(require_string(require(outputs[i], "name", field), field + ".name"));
    }
  }
  return request;
}

void validate_infer_request(const InferRequest& request, const ModelMetadata& model) {
  for (std::size_t i = 0; i < request.inputs.size(); ++i) {
    const InferTensor& input = request.inputs[i];
    const std::string field = "inputs[" + std::to_string(i) + "]";
    const TensorSpec* spec = nullptr;
    for (const TensorSpec& candidate : model.inputs) {
      if (candidate.name == input.name) spec = &candidate;
    }
    if (spec == nullptr) {
      throw ProtocolError(field + ".name",
                          "model " + quote_name(model.name) + " has no input " + quote_name(input.name));
    }
    if (input.datatype != spec->datatype) {
      throw ProtocolError(field + ".datatype", std::string(to_string(input.datatype)) + " given, model input " +
                                                   quote_name(spec->name) + " takes " +
                                                   std::string(to_string(spec->datatype)));
    }
    if (input.shape.size() != spec->shape.size()) {
      throw ProtocolError(field + ".shape", shape_text(input.shape) + " has " + std::to_string(input.shape.size()) +
                                                " dimensions, model input " + quote_name(spec->name) + " has " +
                                                std::to_string(spec->shape.size()) + " " + shape_text(spec->shape));
    }
    for (std::size_t d = 0; d < spec->shape.size(); ++d) {
      if (spec->shape[d] >= 0 && input.shape[d] != spec->shape[d]) {
        throw ProtocolError(field + ".shape", "dimension " + std::to_string(d) + " is " +
                                                  std::to_string(input.shape[d]) + ", model input " +
                                                  quote_name(spec->name) + " expects " +
                                                  std::to_string(spec->shape[d]) + " " + shape_text(spec->shape));
      }
    }
  }
  for (const TensorSpec& spec : model.inputs) {
    bool given = false;
    for (const InferTensor& input : request.inputs) given = given || input.name == spec.name;
    if (!given)
      throw ProtocolError(
          "inputs", "missing input " + quote_name(spec.name) + " that model " + quote_name(model.name) + " requires");
  }
  for (std::size_t i = 0; i < request.output_names.size(); ++i) {
    bool known = false;
    for (const TensorSpec& spec : model.outputs) known = known || spec.name == request.output_names[i];
    if (!known) {
      throw ProtocolError("outputs[" + std::to_string(i) + "].name",
                          "model " + quote_name(model.name) + " has no output " + quote_name(request.output_names[i]));
    }
  }
}

nlohmann::json make_infer_response(const std::string& model_name, const std::string& id,
                                   const std::vector<InferTensor>& outputs, const std::string& model_version) {
  json response = {{"model_name", model_name}};
  if (!model_version.empty()) response["model_version"] = model_version;
  if (!id.empty()) response["id"] = id;
  json tensors = json::array();
  for (const InferTensor& output : outputs) {
    json tensor = {
        {"name", output.name}, {"datatype", std::string(to_string(output.datatype))}, {"shape", output.shape}};
    if (output.datatype == DataType::bytes) {
      tensor["data"] = output.bytes_data;
    } else if (output.datatype == DataType::boolean) {
      json data = json::array();
      for (const std::int64_t value : output.int_data) data.push_back(value != 0);
      tensor["data"] = std::move(data);
    } else if (is_float_type(output.datatype)) {
      tensor["data"] = output.float_data;
    } else {
      tensor["data"] = output.int_data;
    }
    tensors.push_back(std::move(tensor));
  }
  response["outputs"] = std::move(tensors);
  return response;
}

nlohmann::json make_model_metadata(const ModelMetadata& model) {
  json inputs = json::array();
  for (const TensorSpec& spec : model.inputs) inputs.push_back(tensor_spec_json(spec));
  json outputs = json::array();
  for (const TensorSpec& spec : model.outputs) outputs.push_back(tensor_spec_json(spec));
  return {{"name", model.name},
          {"versions", model.versions},
          {"platform", model.platform},
          {"inputs", std::move(inputs)},
          {"outputs", std::move(outputs)}};
}

EmbedRequest parse_embed_request(const nlohmann::json& body, const ProtocolLimits& limits) {
  require_object(body, "body");
  check_keys(body, {"inputs", "normalize", "truncate"}, "body");
  EmbedRequest request;
  const json& inputs = require(body, "inputs", "body");
  if (inputs.is_string()) {
    request.inputs.push_back(inputs.get<std::string>());
  } else if (inputs.is_array()) {
    if (inputs.empty()) throw ProtocolError("inputs", "empty; at least one text is needed");
    if (inputs.size() > limits.max_texts) {
      throw ProtocolError(
          "inputs", std::to_string(inputs.size()) + " texts exceed the limit of " + std::to_string(limits.max_texts));
    }
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      request.inputs.push_back(require_string(inputs[i], "inputs[" + std::to_string(i) + "]"));
    }
  } else {
    throw ProtocolError("inputs", "must be a string or an array of strings, got " + json_type(inputs));
  }
  for (const char* flag : {"normalize", "truncate"}) {
    if (!body.contains(flag)) continue;
    if (!body[flag].is_boolean()) throw ProtocolError(flag, "must be true or false, got " + json_type(body[flag]));
    (std::string_view(flag) == "normalize" ? request.normalize : request.truncate) = body[flag].get<bool>();
  }
  return request;
}

nlohmann::json make_embed_response(const std::vector<std::vector<float>>& embeddings) {
  json out = json::array();
  for (const auto& embedding : embeddings) out.push_back(embedding);
  return out;
}

PredictRequest parse_predict_request(const nlohmann::json& body, const ProtocolLimits& limits) {
  require_object(body, "body");
  check_keys(body, {"instances", "parameters"}, "body");
  const json& instances = require(body, "instances", "body");
  if (!instances.is_array()) throw ProtocolError("instances", "must be an array of rows, got " + json_type(instances));
  if (instances.empty()) throw ProtocolError("instances", "empty; at least one row is needed");
  if (instances.size() > limits.max_texts) {
    throw ProtocolError("instances", std::to_string(instances.size()) + " rows exceed the limit of " +
                                         std::to_string(limits.max_texts));
  }
  PredictRequest request;
  for (std::size_t i = 0; i < instances.size(); ++i) {
    const std::string field = "instances[" + std::to_string(i) + "]";
    const json& row = instances[i];
    if (!row.is_array()) throw ProtocolError(field, "must be an array of numbers, got " + json_type(row));
    if (row.empty()) throw ProtocolError(field, "empty row");
    if (i > 0 && row.size() != request.instances[0].size()) {
      throw ProtocolError(field, std::to_string(row.size()) + " values, instances[0] has " +
                                     std::to_string(request.instances[0].size()));
    }
    if (static_cast<std::int64_t>(row.size()) > limits.max_elements / static_cast<std::int64_t>(instances.size())) {
      throw ProtocolError(field, "more values than the limit of " + std::to_string(limits.max_elements) + " in all");
    }
    std::vector<double> values;
    values.reserve(row.size());
    for (std::size_t k = 0; k < row.size(); ++k) {
      if (!row[k].is_number()) {
        throw ProtocolError(field + "[" + std::to_string(k) + "]", "must be a number, got " + json_type(row[k]));
      }
      values.push_back(row[k].get<double>());
    }
    request.instances.push_back(std::move(values));
  }
  return request;
}

nlohmann::json make_predict_response(const nlohmann::json& predictions) { return {{"predictions", predictions}}; }

nlohmann::json make_error_body(std::string_view message) { return {{"error", std::string(message)}}; }

}  // namespace hone::serve
