#pragma once
/// @file The request and response bodies hone's server speaks, parsed into plain structs and
/// checked field by field, so a bad request gets a 400 whose message names the field:
///
///   - Open Inference Protocol v2 (KServe, Triton): `POST /v2/models/{name}/infer` with
///     `{"id", "inputs": [{"name", "shape", "datatype", "data"}], "outputs": [{"name"}]}`, the
///     response `{"model_name", "id", "outputs": [...]}`, and `GET /v2/models/{name}` metadata;
///   - Text Embeddings Inference: `POST /embed` with `{"inputs": "text"}` or `{"inputs": [...]}`;
///   - KServe v1 style `POST /predict` with `{"instances": [[numbers], ...]}`.
///
/// Why a struct: the model side (a batcher's compute function) then never sees JSON, and every
/// hostile-input rule (nesting depth, element counts, shape overflow, integer ranges) is checked
/// once, here, before anything is queued.
///
///     try {
///       InferRequest request = parse_infer_request(parse_json_body(body));
///       validate_infer_request(request, metadata);   // names, datatypes, shapes vs the model
///     } catch (const ProtocolError& e) {
///       reply(400, make_error_body(e.what()));        // "inputs[0].shape: product 12 does not match 10 data elements"
///     }
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hone::serve {

/// A request body is wrong; what() is "<field>: <problem>" and field() the field alone
/// ("body" for the body as a whole).
class ProtocolError : public std::runtime_error {
 public:
  ProtocolError(std::string field, const std::string& problem);
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

/// The tensor element types of the protocol (its spelling: to_string / parse_datatype).
enum class DataType {
  boolean,
  uint8,
  uint16,
  uint32,
  uint64,
  int8,
  int16,
  int32,
  int64,
  fp16,
  bf16,
  fp32,
  fp64,
  bytes
};

/// "FP32", "INT64", "BYTES", ...
std::string_view to_string(DataType datatype);
/// The type for a protocol name, or nullopt for an unknown one (names are case-sensitive).
std::optional<DataType> parse_datatype(std::string_view name);

/// One input or output tensor. Exactly one data vector is used, chosen by the datatype:
/// float_data for FP16/BF16/FP32/FP64, int_data for BOOL (0/1) and the integer types (UINT64
/// up to 2^63 - 1), bytes_data for BYTES. Data is flat, row-major.
struct InferTensor {
  std::string name;
  std::vector<std::int64_t> shape;
  DataType datatype = DataType::fp32;
  std::vector<double> float_data;
  std::vector<std::int64_t> int_data;
  std::vector<std::string> bytes_data;

  /// Elements held in the data vector the datatype selects.
  std::size_t data_size() const;
};

/// A parsed `/v2/models/{name}/infer` request.
struct InferRequest {
  std::string id;                         ///< echoed in the response; may be empty
  std::vector<InferTensor> inputs;        ///< at least one, names unique
  std::vector<std::string> output_names;  ///< requested outputs; empty means all
};

/// What a model takes or gives: a shape dimension of -1 accepts any size (the batch axis).
struct TensorSpec {
  std::string name;
  DataType datatype = DataType::fp32;
  std::vector<std::int64_t> shape;
};

/// `GET /v2/models/{name}` and the rules validate_infer_request checks against.
struct ModelMetadata {
  std::string name;
  std::vector<std::string> versions;
  std::string platform = "hone";
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
};

/// Bounds on what a body may ask for, so a small body cannot make the server allocate a lot.
struct ProtocolLimits {
  std::size_t max_depth = 32;                    ///< JSON nesting (checked before parsing)
  std::size_t max_tensors = 64;                  ///< inputs per request
  std::size_t max_rank = 8;                      ///< dimensions per shape
  std::int64_t max_elements = 16 * 1024 * 1024;  ///< elements per tensor
  std::size_t max_texts = 1024;                  ///< texts per /embed, instances per /predict
};

/// Parses a body as JSON. Throws ProtocolError("body", ...) naming the byte offset for malformed
/// JSON, or the nesting limit (checked on the raw bytes first: nesting is what makes a parser
/// or destructor recurse).
nlohmann::json parse_json_body(std::string_view body, const ProtocolLimits& limits = {});

/// Parses an OIP v2 infer request. Throws ProtocolError naming the field: a missing or mistyped
/// field, an unknown key, an unknown datatype, a negative dimension, a shape whose product does
/// not match the data, an element of the wrong type or out of its datatype's range, a limit.
InferRequest parse_infer_request(const nlohmann::json& body, const ProtocolLimits& limits = {});

/// Checks a parsed request against the model: every model input given once, no others, each with
/// the model's datatype and rank and every fixed dimension; requested outputs exist. Throws
/// ProtocolError naming the field.
void validate_infer_request(const InferRequest& request, const ModelMetadata& model);

/// `{"model_name", "model_version"?, "id"?, "outputs": [{"name","datatype","shape","data"}]}`.
nlohmann::json make_infer_response(const std::string& model_name, const std::string& id,
                                   const std::vector<InferTensor>& outputs, const std::string& model_version = {});

/// `{"name", "versions", "platform", "inputs": [{"name","datatype","shape"}], "outputs": [...]}`.
nlohmann::json make_model_metadata(const ModelMetadata& model);

/// A parsed TEI `/embed` request.
struct EmbedRequest {
  std::vector<std::string> inputs;  ///< at least one text
  bool normalize = true;
  bool truncate = false;
};

/// Parses `{"inputs": "text" | ["text", ...], "normalize"?: bool, "truncate"?: bool}`.
EmbedRequest parse_embed_request(const nlohmann::json& body, const ProtocolLimits& limits = {});

/// TEI's response: one array of floats per input text.
nlohmann::json make_embed_response(const std::vector<std::vector<float>>& embeddings);

/// A parsed `/predict` request: rows of numbers, all of one length.
struct PredictRequest {
  std::vector<std::vector<double>> instances;
};

/// Parses `{"instances": [[numbers], ...]}` (at least one row, rows of equal, non-zero length).
PredictRequest parse_predict_request(const nlohmann::json& body, const ProtocolLimits& limits = {});

/// `{"predictions": [...]}`.
nlohmann::json make_predict_response(const nlohmann::json& predictions);

/// `{"error": message}`, the error body of KServe and Triton.
nlohmann::json make_error_body(std::string_view message);

}  // namespace hone::serve
