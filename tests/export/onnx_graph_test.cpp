// GraphBuilder keeps graphs well-formed: unique names, inputs defined before use, initializer
// sizes that match their shapes, opsets for every domain; a failed call changes nothing.
#include "hone/export/onnx_graph.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hone/core/error.h"
#include "support/error_message.h"

namespace hone::onnx {
namespace {

using hone::testing::error_message;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(OnnxGraph, BuildsAModelWithGeneratedNames) {
  GraphBuilder graph("g");
  graph.add_input("x", DataType::kFloat, {"batch", 2});
  const std::vector<float> weight{1, 2, 3, 4};
  graph.add_initializer(make_tensor("w", {2, 2}, std::span<const float>(weight)));
  const std::string first = graph.add_op("MatMul", {"x", "w"});
  const std::string second = graph.add_op("MatMul", {first, "w"});
  graph.add_node("Relu", {second}, {"y"});
  graph.add_output("y", DataType::kFloat, {"batch", 2});
  graph.set_opset("com.microsoft", 1);
  graph.set_metadata("b", "2");
  graph.set_metadata("a", "1");
  graph.set_metadata("a", "3");
  const ModelProto model = graph.build_model();

  EXPECT_EQ(first, "matmul");
  EXPECT_EQ(second, "matmul_1");
  EXPECT_EQ(graph.unique_name("x"), "x_1");
  EXPECT_EQ(graph.unique_name("fresh"), "fresh");
  ASSERT_EQ(model.graph.node.size(), 3u);
  EXPECT_EQ(model.graph.node[0].name, "MatMul_0");
  EXPECT_EQ(model.graph.node[2].name, "Relu_2");
  EXPECT_EQ(model.ir_version, kDefaultIrVersion);
  EXPECT_EQ(model.producer_name, "hone");
  EXPECT_EQ(model.opset_import, (std::vector<OperatorSetIdProto>{{"", kDefaultOpset}, {"com.microsoft", 1}}));
  EXPECT_EQ(model.metadata_props, (std::vector<StringStringEntryProto>{{"a", "3"}, {"b", "2"}}));
  ASSERT_TRUE(model.graph.input[0].type && model.graph.input[0].type->shape);
  EXPECT_THAT(*model.graph.input[0].type->shape, ElementsAre(Dimension("batch"), Dimension(2)));
  EXPECT_EQ(model.graph.initializer[0].raw_data.size(), 16u);
  EXPECT_EQ(parse<ModelProto>(serialize(model)), model);
}

TEST(OnnxGraph, ChecksInitializers) {
  GraphBuilder graph("g");
  EXPECT_THAT(error_message([&] {
                graph.add_initializer("w", DataType::kFloat, {2, 3}, std::string(20, '\0'));
              }),
              HasSubstr("tensor 'w': shape [2,3] of FLOAT needs 24 bytes, got 20"));
  EXPECT_THAT(error_message([&] { graph.add_initializer("n", DataType::kInt8, {-1}, ""); }),
              HasSubstr("negative dimension in shape [-1]"));
  EXPECT_THAT(error_message([&] { graph.add_initializer("s", DataType::kString, {1}, "x"); }),
              HasSubstr("STRING has no fixed size"));
  EXPECT_THAT(error_message([&] { graph.add_initializer("b", DataType::kBool, {2}, std::string("\x01\x02", 2)); }),
              HasSubstr("BOOL byte 1 is 2"));
  EXPECT_THAT(error_message([&] {
                graph.add_initializer("big", DataType::kInt64, {1 << 30, 1 << 30, 1 << 30}, "");
              }),
              HasSubstr("too many elements"));
  graph.add_initializer("h", DataType::kFloat16, {2}, std::string(4, '\0'));
  graph.add_initializer("e", DataType::kBfloat16, {0, 5}, "");
  EXPECT_THAT(error_message([&] { graph.add_initializer("h", DataType::kUint8, {}, "x"); }),
              HasSubstr("initializer 'h' is already defined"));
  EXPECT_EQ(element_size(DataType::kBfloat16), 2u);
  EXPECT_EQ(element_size(DataType::kInt64), 8u);
  EXPECT_EQ(data_type_name(DataType::kBfloat16), "BFLOAT16");
  EXPECT_EQ(data_type_name(static_cast<DataType>(99)), "DataType(99)");
}

TEST(OnnxGraph, ChecksNodes) {
  GraphBuilder graph("g");
  graph.add_input("x", DataType::kFloat, {3});
  EXPECT_THAT(error_message([&] { graph.add_node("Relu", {"missing"}, {"y"}); }),
              HasSubstr("node 'Relu_0' (Relu) reads 'missing', which no input, initializer or earlier node defines"));
  EXPECT_THAT(error_message([&] { graph.add_node("Relu", {"x"}, {"x"}); }),
              HasSubstr("writes 'x', which is already defined"));
  EXPECT_THAT(error_message([&] { graph.add_node("Split", {"x"}, {"a", "a"}); }), HasSubstr("writes 'a'"));
  EXPECT_THAT(error_message([&] { graph.add_node("Relu", {"x"}, {""}); }), HasSubstr("has no output"));
  EXPECT_THAT(error_message([&] { graph.add_node("Gelu", {"x"}, {"y"}, {}, "", "com.microsoft"); }),
              HasSubstr("in domain 'com.microsoft', which the model does not import"));
  EXPECT_THAT(error_message([&] {
                graph.add_node("Elu", {"x"}, {"y"}, {attribute_float("alpha", 1), attribute_float("alpha", 2)});
              }),
              HasSubstr("repeated attribute name 'alpha'"));
  EXPECT_THAT(error_message([&] { graph.add_node("Constant", {}, {"c"}, {attribute_tensor("value", TensorProto{})}); }),
              HasSubstr("has no fixed size"));
  // None of the failed calls defined anything.
  EXPECT_EQ(graph.unique_name("y"), "y");
  EXPECT_EQ(graph.unique_name("a"), "a");
  graph.add_node("Relu", {"x"}, {"y"}, {}, "relu");
  EXPECT_THAT(error_message([&] { graph.add_node("Relu", {"y"}, {"z"}, {}, "relu"); }),
              HasSubstr("node name 'relu' is already used"));
  graph.add_node("LSTMish", {"y", ""}, {"", "z"});  // "" skips optional inputs and outputs
  EXPECT_THAT(error_message([&] { graph.build_graph(); }), HasSubstr("has no outputs"));
  graph.add_output("nowhere", DataType::kFloat, {3});
  EXPECT_THAT(error_message([&] { graph.build_graph(); }), HasSubstr("output 'nowhere' is not defined"));
  EXPECT_THAT(error_message([&] { graph.add_output("nowhere", DataType::kFloat, {3}); }), HasSubstr("declared twice"));
  EXPECT_THAT(error_message([&] { graph.add_input("q", DataType::kFloat, {-2}); }), HasSubstr("negative dimension -2"));
  EXPECT_THAT(error_message([] { GraphBuilder("g", 0); }), HasSubstr("opset 0"));
}

TEST(OnnxGraph, AttributeConstructorsSetTheirType) {
  EXPECT_EQ(attribute_float("a", 1.5F).type, AttributeType::kFloat);
  EXPECT_EQ(attribute_int("a", -1).i, -1);
  EXPECT_EQ(attribute_string("a", "s").type, AttributeType::kString);
  EXPECT_EQ(attribute_floats("a", {1, 2}).floats, (std::vector<float>{1, 2}));
  EXPECT_EQ(attribute_ints("a", {3}).type, AttributeType::kInts);
  EXPECT_EQ(attribute_strings("a", {"x", "y"}).strings.size(), 2u);
  const AttributeProto tensor = attribute_tensor("v", TensorProto{{}, DataType::kInt64, "", std::string(8, '\0')});
  EXPECT_EQ(tensor.type, AttributeType::kTensor);
  EXPECT_EQ(parse<AttributeProto>(serialize(tensor)), tensor);
}

}  // namespace
}  // namespace hone::onnx
