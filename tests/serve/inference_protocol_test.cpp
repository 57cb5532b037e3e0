// GCC 12 -Wextra flags designated initializers that leave members at their defaults (GCC 13 does not).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include "hone/serve/inference_protocol.h"

#include <gtest/gtest.h>

#include <string>

namespace hone::serve {
namespace {

using nlohmann::json;

InferRequest parse(const std::string& body) { return parse_infer_request(parse_json_body(body)); }

// The message of the ProtocolError that parsing `body` raises ("" when it raises none).
std::string error_of(const std::string& body) {
  try {
    parse(body);
  } catch (const ProtocolError& e) {
    return e.what();
  }
  return "";
}

ModelMetadata sum_model() {
  return {.name = "sum",
          .versions = {"1"},
          .inputs = {{"x", DataType::fp32, {-1, 4}}},
          .outputs = {{"sum", DataType::fp32, {-1}}}};
}

std::string validation_error(const std::string& body) {
  try {
    validate_infer_request(parse(body), sum_model());
  } catch (const ProtocolError& e) {
    return e.what();
  }
  return "";
}

TEST(InferenceProtocol, ParsesAGoodRequest) {
  const InferRequest request = parse(R"({"id": "r1",
      "inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [[1, 2.5, 3], [4, 5, 6]]},
                 {"name": "ids", "shape": [2], "datatype": "INT64", "data": [9007199254740993, -1]},
                 {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["héllo"], "parameters": {}},
                 {"name": "mask", "shape": [2], "datatype": "BOOL", "data": [true, false]}],
      "outputs": [{"name": "y"}], "parameters": {"k": 1}})");
  EXPECT_EQ(request.id, "r1");
  ASSERT_EQ(request.inputs.size(), 4u);
  EXPECT_EQ(request.inputs[0].shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(request.inputs[0].float_data, (std::vector<double>{1, 2.5, 3, 4, 5, 6}));        // nested data, row-major
  EXPECT_EQ(request.inputs[1].int_data, (std::vector<std::int64_t>{9007199254740993, -1}));  // exact beyond 2^53
  EXPECT_EQ(request.inputs[2].bytes_data, (std::vector<std::string>{"héllo"}));
  EXPECT_EQ(request.inputs[3].int_data, (std::vector<std::int64_t>{1, 0}));
  EXPECT_EQ(request.output_names, (std::vector<std::string>{"y"}));
}

TEST(InferenceProtocol, EachBadRequestNamesTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"inputs": [)", "body: malformed JSON"},
      {"", "body: empty"},
      {std::string(100, '[') + std::string(100, ']'), "body: JSON nested deeper than 32 levels"},
      {R"([1, 2])", "body: must be an object, got an array"},
      {R"({})", "body: missing field 'inputs'"},
      {R"({"inputs": {}})", "inputs: must be an array, got an object"},
      {R"({"inputs": []})", "inputs: empty"},
      {R"({"inputs": [], "input": 1})", "body: unknown field 'input'"},
      {R"({"id": 3, "inputs": []})", "id: must be a string, got an integer"},
      {R"({"inputs": [5]})", "inputs[0]: must be an object, got an integer"},
      {R"({"inputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]})", "inputs[0]: missing field 'name'"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1], "extra": 1}]})",
       "inputs[0]: unknown field 'extra'"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1]}]})",
       "inputs[0].datatype: unknown datatype 'FLOAT'"},
      {R"({"inputs": [{"name": "x", "shape": "1", "datatype": "FP32", "data": [1]}]})",
       "inputs[0].shape: must be an array of integers, got a string"},
      {R"({"inputs": [{"name": "x", "shape": [1.5], "datatype": "FP32", "data": [1]}]})",
       "inputs[0].shape[0]: must be an integer, got a number"},
      {R"({"inputs": [{"name": "x", "shape": [-2], "datatype": "FP32", "data": [1]}]})",
       "inputs[0].shape[0]: dimension -2 is negative"},
      {R"({"inputs": [{"name": "x", "shape": [3, 4], "datatype": "FP32", "data": [1,2,3,4,5,6,7,8,9,10]}]})",
       "inputs[0].shape: product 12 does not match 10 data elements"},
      {R"({"inputs": [{"name": "x", "shape": [5000, 5000, 5000], "datatype": "FP32", "data": []}]})",
       "inputs[0].shape: more than 16777216 elements"},
      {R"({"inputs": [{"name": "x", "shape": [18446744073709551615], "datatype": "FP32", "data": []}]})",
       "inputs[0].shape[0]: dimension exceeds the limit"},
      {R"({"inputs": [{"name": "x", "shape": [1,1,1,1,1,1,1,1,1], "datatype": "FP32", "data": [1]}]})",
       "inputs[0].shape: 9 dimensions exceed the limit of 8"},
      {R"({"inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1, "2", 3]}]})",
       "inputs[0].data[1]: FP32 element must be a number, got a string"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": 1}]})",
       "inputs[0].data: must be an array, got an integer"},
      {R"({"inputs": [{"name": "x", "shape": [2], "datatype": "INT8", "data": [1, 128]}]})",
       "inputs[0].data[1]: value 128 is out of the range of INT8"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [1.5]}]})",
       "inputs[0].data[0]: INT32 element must be an integer, got a number"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "UINT8", "data": [-1]}]})",
       "inputs[0].data[0]: value -1 is out of the range of UINT8"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "UINT64", "data": [18446744073709551615]}]})",
       "inputs[0].data[0]: value 18446744073709551615 is out of the range of UINT64"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "FP16", "data": [70000]}]})",
       "inputs[0].data[0]: value 70000 is out of the range of FP16"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1e300]}]})",
       "inputs[0].data[0]: value 1e+300 is out of the range of FP32"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "BOOL", "data": [1]}]})",
       "inputs[0].data[0]: BOOL element must be true or false, got an integer"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": [1]}]})",
       "inputs[0].data[0]: BYTES element must be a string, got an integer"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]},
                      {"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]})",
       "inputs[1].name: input 'x' is given twice"},
      {R"({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}], "outputs": [{"nam": "y"}]})",
       "outputs[0]: unknown field 'nam'"},
  };
  for (const auto& [body, expected] : cases) {
    const std::string error = error_of(body);
    EXPECT_EQ(error.rfind(expected, 0), 0u)
        << "body: " << body.substr(0, 120) << "\n  error: " << error << "\n  expected to start with: " << expected;
  }
}

TEST(InferenceProtocol, HostileNamesAreCutInMessages) {
  const std::string long_type(10000, 'A');
  const std::string error =
      error_of(R"({"inputs": [{"name": "x", "shape": [1], "datatype": ")" + long_type + R"(", "data": [1]}]})");
  EXPECT_LT(error.size(), 300u);
  EXPECT_NO_THROW(make_error_body(error).dump());
}

TEST(InferenceProtocol, ValidatesAgainstTheModel) {
  const std::string good =
      R"({"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [1,2,3,4,5,6,7,8]}]})";
  EXPECT_EQ(validation_error(good), "");
  EXPECT_EQ(
      validation_error(R"({"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1,2,3,4,5,6]}]})"),
      "inputs[0].shape: dimension 1 is 3, model input 'x' expects 4 [-1, 4]");
  EXPECT_EQ(validation_error(R"({"inputs": [{"name": "x", "shape": [4], "datatype": "FP32", "data": [1,2,3,4]}]})"),
            "inputs[0].shape: [4] has 1 dimensions, model input 'x' has 2 [-1, 4]");
  EXPECT_EQ(validation_error(R"({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1,2,3,4]}]})"),
            "inputs[0].datatype: FP64 given, model input 'x' takes FP32");
  EXPECT_EQ(validation_error(R"({"inputs": [{"name": "y", "shape": [1], "datatype": "FP32", "data": [1]}]})"),
            "inputs[0].name: model 'sum' has no input 'y'");
  EXPECT_EQ(validation_error(R"({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1,2,3,4]}],
                                 "outputs": [{"name": "mean"}]})"),
            "outputs[0].name: model 'sum' has no output 'mean'");
  ModelMetadata two = sum_model();
  two.inputs.push_back({"mask", DataType::boolean, {-1}});
  try {
    validate_infer_request(parse(good), two);
    ADD_FAILURE() << "missing input not reported";
  } catch (const ProtocolError& e) {
    EXPECT_STREQ(e.what(), "inputs: missing input 'mask' that model 'sum' requires");
    EXPECT_EQ(e.field(), "inputs");
  }
}

TEST(InferenceProtocol, BuildsResponsesAndMetadata) {
  InferTensor sum{.name = "sum", .shape = {2}, .datatype = DataType::fp32, .float_data = {10, 26}};
  InferTensor flag{.name = "flag", .shape = {1}, .datatype = DataType::boolean, .int_data = {1}};
  const json response = make_infer_response("sum", "r1", {sum, flag}, "1");
  EXPECT_EQ(response["model_name"], "sum");
  EXPECT_EQ(response["model_version"], "1");
  EXPECT_EQ(response["id"], "r1");
  EXPECT_EQ(response["outputs"][0]["datatype"], "FP32");
  EXPECT_EQ(response["outputs"][0]["shape"], json::array({2}));
  EXPECT_EQ(response["outputs"][0]["data"], json::array({10.0, 26.0}));
  EXPECT_EQ(response["outputs"][1]["data"], json::array({true}));
  EXPECT_FALSE(make_infer_response("sum", "", {sum}).contains("id"));

  const json metadata = make_model_metadata(sum_model());
  EXPECT_EQ(metadata["name"], "sum");
  EXPECT_EQ(metadata["platform"], "hone");
  EXPECT_EQ(metadata["inputs"][0], json({{"name", "x"}, {"datatype", "FP32"}, {"shape", {-1, 4}}}));
  EXPECT_EQ(metadata["outputs"][0]["name"], "sum");
}

TEST(InferenceProtocol, DataTypeNamesRoundTrip) {
  for (const char* name : {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16",
                           "BF16", "FP32", "FP64", "BYTES"}) {
    const std::optional<DataType> datatype = parse_datatype(name);
    ASSERT_TRUE(datatype) << name;
    EXPECT_EQ(to_string(*datatype), name);
  }
  EXPECT_FALSE(parse_datatype("fp32"));
}

TEST(InferenceProtocol, ParsesEmbedBodies) {
  EXPECT_EQ(parse_embed_request(json::parse(R"({"inputs": "one text"})")).inputs,
            (std::vector<std::string>{"one text"}));
  const EmbedRequest many = parse_embed_request(json::parse(R"({"inputs": ["a", "b"], "normalize": false})"));
  EXPECT_EQ(many.inputs.size(), 2u);
  EXPECT_FALSE(many.normalize);
  const auto embed_error = [](const std::string& body) -> std::string {
    try {
      parse_embed_request(json::parse(body));
    } catch (const ProtocolError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(embed_error(R"({"inputs": 3})"), "inputs: must be a string or an array of strings, got an integer");
  EXPECT_EQ(embed_error(R"({"inputs": ["a", 2]})"), "inputs[1]: must be a string, got an integer");
  EXPECT_EQ(embed_error(R"({"inputs": []})"), "inputs: empty; at least one text is needed");
  EXPECT_EQ(embed_error(R"({"inputs": "a", "normalize": "yes"})"), "normalize: must be true or false, got a string");
  EXPECT_EQ(embed_error(R"({"text": "a"})"), "body: unknown field 'text'");
  EXPECT_EQ(make_embed_response({{1.f, 2.f}, {3.f, 4.f}}).dump(), "[[1.0,2.0],[3.0,4.0]]");
}

TEST(InferenceProtocol, ParsesPredictBodies) {
  const PredictRequest request = parse_predict_request(json::parse(R"({"instances": [[1, 2], [3, 4.5]]})"));
  EXPECT_EQ(request.instances, (std::vector<std::vector<double>>{{1, 2}, {3, 4.5}}));
  const auto predict_error = [](const std::string& body) -> std::string {
    try {
      parse_predict_request(json::parse(body));
    } catch (const ProtocolError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(predict_error(R"({"instances": [[1, 2], [3]]})"), "instances[1]: 1 values, instances[0] has 2");
  EXPECT_EQ(predict_error(R"({"instances": [[1, "a"]]})"), "instances[0][1]: must be a number, got a string");
  EXPECT_EQ(predict_error(R"({"instances": []})"), "instances: empty; at least one row is needed");
  EXPECT_EQ(make_predict_response(json::array({1, 2})).dump(), R"({"predictions":[1,2]})");
}

}  // namespace
}  // namespace hone::serve
