// The ONNX wire encoder against bytes worked out by hand from the protobuf encoding rules
// (tag = field << 3 | wire type; varints little-endian base 128; floats as 4 little-endian
// bytes), read-back round trips, protobuf's other spellings (unpacked repeated scalars, fields out
// of order, unknown fields), and truncated, lying or unsupported input rejected with a message.
#include "hone/export/onnx_proto.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "hone/core/error.h"
#include "support/error_message.h"

namespace hone::onnx {
namespace {

using hone::testing::error_message;
using ::testing::HasSubstr;

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int value : values) out.push_back(static_cast<char>(value));
  return out;
}

OperatorSetIdProto opset(std::int64_t version) { return {"", version}; }

// Designated initializers would leave fields out, which -Wextra flags; these spell out one value each.
template <typename Setter>
AttributeProto attribute(std::string name, AttributeType type, Setter&& set) {
  AttributeProto made;
  made.name = std::move(name);
  made.type = type;
  set(made);
  return made;
}

NodeProto node_of(std::vector<std::string> inputs, std::vector<std::string> outputs, std::string name,
                  std::string op_type, std::string domain = "") {
  NodeProto made;
  made.input = std::move(inputs);
  made.output = std::move(outputs);
  made.name = std::move(name);
  made.op_type = std::move(op_type);
  made.domain = std::move(domain);
  return made;
}

TEST(OnnxProtoVarint, EdgeCasesAsOpsetVersions) {
  // OperatorSetIdProto.version is field 2, varint: tag 0x10.
  EXPECT_EQ(serialize(opset(0)), bytes({0x10, 0x00}));  // always written: presence matters
  EXPECT_EQ(serialize(opset(1)), bytes({0x10, 0x01}));
  EXPECT_EQ(serialize(opset(127)), bytes({0x10, 0x7f}));
  EXPECT_EQ(serialize(opset(128)), bytes({0x10, 0x80, 0x01}));
  EXPECT_EQ(serialize(opset(300)), bytes({0x10, 0xac, 0x02}));
  EXPECT_EQ(serialize(opset(std::int64_t{1} << 32)), bytes({0x10, 0x80, 0x80, 0x80, 0x80, 0x10}));
  EXPECT_EQ(serialize(opset(std::numeric_limits<std::int64_t>::max())),
            bytes({0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}));
  // Negative int64: two's complement as uint64, 10 bytes.
  EXPECT_EQ(serialize(opset(-1)), bytes({0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}));
  EXPECT_EQ(serialize(opset(std::numeric_limits<std::int64_t>::min())),
            bytes({0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}));
  for (std::int64_t version :
       {std::int64_t{0}, std::int64_t{127}, std::int64_t{128}, std::int64_t{1} << 32, std::int64_t{-1},
        std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()}) {
    EXPECT_EQ(parse<OperatorSetIdProto>(serialize(opset(version))).version, version);
  }
}

TEST(OnnxProtoEncode, StringsAreLengthDelimited) {
  EXPECT_EQ(serialize(StringStringEntryProto{"k", "v"}), bytes({0x0a, 0x01, 'k', 0x12, 0x01, 'v'}));
  EXPECT_EQ(serialize(OperatorSetIdProto{"ai", 21}), bytes({0x0a, 0x02, 'a', 'i', 0x10, 0x15}));
  EXPECT_EQ(serialize(StringStringEntryProto{}), "");  // empty strings are not written
  // A 200-byte string: its length is a 2-byte varint (0xc8 0x01).
  const std::string value(200, 'x');
  const std::string encoded = serialize(StringStringEntryProto{"", value});
  EXPECT_EQ(encoded.substr(0, 3), bytes({0x12, 0xc8, 0x01}));
  EXPECT_EQ(encoded.size(), 203u);
}

TEST(OnnxProtoEncode, TensorWithPackedDims) {
  TensorProto tensor{{2, 3}, DataType::kInt8, "q", bytes({1, 0xff, 2, 3, 4, 5})};
  // dims packed (field 1: 0x0a, 2 bytes), data_type (field 2: 0x10), name (8: 0x42), raw_data (9: 0x4a).
  EXPECT_EQ(serialize(tensor),
            bytes({0x0a, 0x02, 0x02, 0x03, 0x10, 0x03, 0x42, 0x01, 'q', 0x4a, 0x06, 1, 0xff, 2, 3, 4, 5}));
  TensorProto negative{{-1, 0}, DataType::kFloat, "", ""};
  EXPECT_EQ(serialize(negative),
            bytes({0x0a, 0x0b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x10, 0x01}));
  TensorProto scalar{{}, DataType::kBfloat16, "s", bytes({0x80, 0x3f})};
  EXPECT_EQ(serialize(scalar), bytes({0x10, 0x10, 0x42, 0x01, 's', 0x4a, 0x02, 0x80, 0x3f}));
}

TEST(OnnxProtoEncode, AttributesWriteOnlyTheirTypedValue) {
  const AttributeProto floats = attribute("a", AttributeType::kFloats, [](AttributeProto& a) {
    a.i = 7;  // not written: the type says floats
    a.floats = {1.0F, -2.0F};
  });
  // name, floats packed (field 7: 0x3a) as 4 little-endian bytes each, type (field 20: tag a0 01) = 6.
  EXPECT_EQ(serialize(floats),
            bytes({0x0a, 0x01, 'a', 0x3a, 0x08, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0, 0xa0, 0x01, 0x06}));
  const AttributeProto zero_int = attribute("axis", AttributeType::kInt, [](AttributeProto& a) { a.i = 0; });
  EXPECT_EQ(serialize(zero_int), bytes({0x0a, 0x04, 'a', 'x', 'i', 's', 0x18, 0x00, 0xa0, 0x01, 0x02}));
  const AttributeProto half = attribute("x", AttributeType::kFloat, [](AttributeProto& a) { a.f = 0.5F; });
  EXPECT_EQ(serialize(half), bytes({0x0a, 0x01, 'x', 0x15, 0x00, 0x00, 0x00, 0x3f, 0xa0, 0x01, 0x01}));
  const AttributeProto ints = attribute("p", AttributeType::kInts, [](AttributeProto& a) { a.ints = {1, 300, -1}; });
  EXPECT_EQ(serialize(ints), bytes({0x0a, 0x01, 'p',  0x42, 0x0d, 0x01, 0xac, 0x02, 0xff, 0xff, 0xff,
                                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0xa0, 0x01, 0x07}));
  const AttributeProto strings = attribute("d", AttributeType::kStrings, [](AttributeProto& a) {
    a.strings = {"fw", ""};
  });
  EXPECT_EQ(serialize(strings), bytes({0x0a, 0x01, 'd', 0x4a, 0x02, 'f', 'w', 0x4a, 0x00, 0xa0, 0x01, 0x08}));
  const AttributeProto tensor = attribute("value", AttributeType::kTensor, [](AttributeProto& a) {
    a.t = TensorProto{{}, DataType::kInt64, "", ""};
  });
  EXPECT_EQ(serialize(tensor), bytes({0x0a, 0x05, 'v', 'a', 'l', 'u', 'e', 0x2a, 0x02, 0x10, 0x07, 0xa0, 0x01, 0x04}));
  EXPECT_THAT(error_message([] { serialize(attribute("u", AttributeType::kUndefined, [](AttributeProto&) {})); }),
              HasSubstr("'u' has no type"));
}

TEST(OnnxProtoEncode, NodeKeepsEmptyOptionalInputs) {
  NodeProto node = node_of({"a", ""}, {"b"}, "n", "Relu");
  EXPECT_EQ(serialize(node),
            bytes({0x0a, 0x01, 'a', 0x0a, 0x00, 0x12, 0x01, 'b', 0x1a, 0x01, 'n', 0x22, 0x04, 'R', 'e', 'l', 'u'}));
  node.domain = "d";
  EXPECT_EQ(serialize(node).substr(17), bytes({0x3a, 0x01, 'd'}));
}

TEST(OnnxProtoEncode, ValueInfoWithSymbolicDims) {
  ValueInfoProto value{"x", TensorTypeProto{DataType::kFloat, std::vector<Dimension>{"batch", 3}}};
  // ValueInfo{name, type: TypeProto{tensor_type: {elem_type 1, shape: {dim {dim_param}, dim {dim_value}}}}}.
  EXPECT_EQ(serialize(value), bytes({0x0a, 0x01, 'x',  0x12, 0x13, 0x0a, 0x11, 0x08, 0x01, 0x12, 0x0d, 0x0a,
                                     0x07, 0x12, 0x05, 'b',  'a',  't',  'c',  'h',  0x0a, 0x02, 0x08, 0x03}));
  // A scalar has an empty shape; an unknown rank has none; a 0 size and an unknown dim are kept.
  EXPECT_EQ(serialize(ValueInfoProto{"s", TensorTypeProto{DataType::kInt64, std::vector<Dimension>{}}}),
            bytes({0x0a, 0x01, 's', 0x12, 0x06, 0x0a, 0x04, 0x08, 0x07, 0x12, 0x00}));
  EXPECT_EQ(serialize(ValueInfoProto{"r", TensorTypeProto{DataType::kInt64, std::nullopt}}),
            bytes({0x0a, 0x01, 'r', 0x12, 0x04, 0x0a, 0x02, 0x08, 0x07}));
  EXPECT_EQ(
      serialize(ValueInfoProto{"z", TensorTypeProto{DataType::kBool, std::vector<Dimension>{0, Dimension{}}}}),
      bytes({0x0a, 0x01, 'z', 0x12, 0x0c, 0x0a, 0x0a, 0x08, 0x09, 0x12, 0x06, 0x0a, 0x02, 0x08, 0x00, 0x0a, 0x00}));
}

TEST(OnnxProtoEncode, SmallModel) {
  ModelProto model;
  model.ir_version = 10;
  model.producer_name = "hone";
  model.graph.name = "g";
  model.opset_import = {{"", 21}};
  model.metadata_props = {{"k", "v"}};
  // ir_version (1), producer_name (2), graph (7: 0x3a), opset_import (8: 0x42), metadata_props (14: 0x72).
  EXPECT_EQ(serialize(model), bytes({0x08, 0x0a, 0x12, 0x04, 'h',  'o',  'n',  'e',  0x3a, 0x03, 0x12, 0x01, 'g',
                                     0x42, 0x02, 0x10, 0x15, 0x72, 0x06, 0x0a, 0x01, 'k',  0x12, 0x01, 'v'}));
  EXPECT_EQ(parse<ModelProto>(serialize(model)), model);
}

ModelProto full_model() {
  ModelProto model;
  model.ir_version = 10;
  model.producer_name = "hone";
  model.producer_version = "0.1";
  model.opset_import = {{"", 21}, {"com.microsoft", 1}};
  model.metadata_props = {{"hone.run", "runs/x"}, {"empty", ""}};
  GraphProto& graph = model.graph;
  graph.name = "main";
  graph.initializer.push_back({{3, 2}, DataType::kFloat, "w", std::string(24, '\x01')});
  graph.initializer.push_back({{}, DataType::kInt8, "zero", bytes({0})});
  graph.input.push_back({"x", TensorTypeProto{DataType::kFloat, std::vector<Dimension>{"batch", 2}}});
  graph.output.push_back({"y", TensorTypeProto{DataType::kFloat, std::vector<Dimension>{"batch", 3}}});
  graph.value_info.push_back({"h", TensorTypeProto{DataType::kFloat, std::nullopt}});
  NodeProto gemm = node_of({"x", "w", ""}, {"h"}, "gemm", "Gemm");
  gemm.attribute.push_back(attribute("alpha", AttributeType::kFloat, [](AttributeProto& a) { a.f = -1.5F; }));
  gemm.attribute.push_back(attribute("transB", AttributeType::kInt, [](AttributeProto& a) { a.i = 1; }));
  gemm.attribute.push_back(attribute("ints", AttributeType::kInts, [](AttributeProto& a) {
    a.ints = {-3, 0, std::int64_t{1} << 40};
  }));
  gemm.attribute.push_back(attribute("floats", AttributeType::kFloats, [](AttributeProto& a) {
    a.floats = {0.25F, 1e30F};
  }));
  gemm.attribute.push_back(attribute("strings", AttributeType::kStrings, [](AttributeProto& a) {
    a.strings = {"a", "", "ccc"};
  }));
  gemm.attribute.push_back(
      attribute("s", AttributeType::kString, [](AttributeProto& a) { a.s = std::string("\0z", 2); }));
  gemm.attribute.push_back(attribute("t", AttributeType::kTensor, [](AttributeProto& a) {
    a.t = TensorProto{{1}, DataType::kInt64, "", std::string(8, '\x02')};
  }));
  graph.node.push_back(gemm);
  graph.node.push_back(node_of({"h"}, {"y"}, "relu", "Relu", "com.microsoft"));
  return model;
}

TEST(OnnxProtoParse, RoundTripsEveryField) {
  const ModelProto model = full_model();
  const std::string encoded = serialize(model);
  const ModelProto back = parse<ModelProto>(encoded, "model.onnx");
  EXPECT_EQ(back, model);
  EXPECT_EQ(serialize(back), encoded);
  EXPECT_EQ(parse<GraphProto>(serialize(model.graph)), model.graph);
  EXPECT_EQ(parse<NodeProto>(serialize(model.graph.node[0])), model.graph.node[0]);
  EXPECT_EQ(parse<TensorProto>(serialize(model.graph.initializer[0])), model.graph.initializer[0]);
  EXPECT_EQ(parse<ValueInfoProto>(serialize(model.graph.input[0])), model.graph.input[0]);
}

TEST(OnnxProtoParse, AcceptsProtobufsOtherSpellings) {
  // Unpacked repeated ints (field 8 as varints) and floats (field 7 as fixed32), type first.
  const AttributeProto ints =
      parse<AttributeProto>(bytes({0xa0, 0x01, 0x07, 0x0a, 0x01, 'p', 0x40, 0x01, 0x40, 0xac, 0x02, 0x42, 0x01, 0x05}));
  EXPECT_EQ(ints.name, "p");
  EXPECT_EQ(ints.type, AttributeType::kInts);
  EXPECT_EQ(ints.ints, (std::vector<std::int64_t>{1, 300, 5}));  // packed and unpacked mixed
  const AttributeProto floats =
      parse<AttributeProto>(bytes({0x3d, 0x00, 0x00, 0x80, 0x3f, 0x3d, 0x00, 0x00, 0x00, 0xc0, 0xa0, 0x01, 0x06}));
  EXPECT_EQ(floats.floats, (std::vector<float>{1.0F, -2.0F}));
  // Unknown fields of every wire type are skipped: doc_string (6), a fixed64 (99), a fixed32 (98),
  // a varint (97).
  const NodeProto node =
      parse<NodeProto>(bytes({0x32, 0x03, 'd', 'o', 'c', 0x99, 0x06, 1,    2,    3,    4,    5,   6,   7,   8,  0x95,
                              0x06, 1,    2,   3,   4,   0x88, 0x06, 0x96, 0x01, 0x22, 0x04, 'R', 'e', 'l', 'u'}));
  EXPECT_EQ(node.op_type, "Relu");
  // A repeated optional message merges, and the last dim_value/dim_param of a oneof wins.
  const ValueInfoProto value = parse<ValueInfoProto>(bytes(
      {0x12, 0x04, 0x0a, 0x02, 0x08, 0x01, 0x12, 0x0a, 0x0a, 0x08, 0x12, 0x06, 0x0a, 0x04, 0x08, 0x05, 0x12, 0x00}));
  ASSERT_TRUE(value.type && value.type->shape);
  EXPECT_EQ(value.type->elem_type, DataType::kFloat);
  EXPECT_EQ(*value.type->shape, std::vector<Dimension>{Dimension{}});  // dim_value 5, then dim_param "" wins
}

TEST(OnnxProtoParse, RejectsMalformedInput) {
  struct Case {
    std::string input;
    std::string message;
  };
  const std::vector<Case> cases{
      {bytes({0x10}), "truncated varint"},
      {bytes({0x10, 0x80}), "truncated varint"},
      {bytes({0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}), "varint overflows 64 bits"},
      {bytes({0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00}), "varint overflows"},
      {bytes({0x0a, 0x05, 'a', 'i'}), "length 5 runs past the end (2 bytes left)"},
      {bytes({0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}), "runs past the end"},
      {bytes({0x0a}), "truncated varint"},
      {bytes({0x00}), "invalid field number 0"},
      {bytes({0x0b}), "field 1 is a group"},
      {bytes({0x0e}), "invalid wire type 6"},
      {bytes({0x12, 0x01, 0x01}), "field 2 (version) has wire type 2, expected 0"},
      {bytes({0x0d, 1, 2, 3, 4}), "field 1 (domain) has wire type 5, expected 2"},
      {bytes({0xfd, 0x01, 1, 2}), "truncated 4-byte value"},
      {bytes({0xf9, 0x01, 1, 2, 3, 4, 5, 6, 7}), "truncated 8-byte value"},
  };
  for (const Case& test : cases) {
    EXPECT_THAT(error_message([&] { parse<OperatorSetIdProto>(test.input, "opset.bin"); }), HasSubstr(test.message))
        << ::testing::PrintToString(test.input);
  }
  EXPECT_THAT(error_message([] {
                parse<TensorProto>(bytes({0x10, 0x80, 0x80, 0x80, 0x80, 0x08}));
              }),
              HasSubstr("data_type) = 2147483648 does not fit in int32"));
  EXPECT_THAT(error_message([] {
                parse<TensorProto>(bytes({0x0a, 0x02, 0x01, 0x80}));
              }),
              HasSubstr("truncated varint"));
  EXPECT_THAT(error_message([] {
                parse<AttributeProto>(bytes({0x3a, 0x03, 0, 0, 0x80}));
              }),
              HasSubstr("packed floats (floats) of 3 bytes"));
}

TEST(OnnxProtoParse, RejectsWhatItWouldSilentlyDrop) {
  EXPECT_THAT(error_message([] {
                parse<TensorProto>(bytes({0x22, 0x04, 0, 0, 0x80, 0x3f}));
              }),
              HasSubstr("field 4 (float_data; hone reads raw_data only) is not supported"));
  EXPECT_THAT(error_message([] { parse<TensorProto>(bytes({0x6a, 0x00})); }), HasSubstr("external_data"));
  EXPECT_THAT(error_message([] { parse<TensorProto>(bytes({0x70, 0x01})); }), HasSubstr("data_location EXTERNAL"));
  EXPECT_NO_THROW(parse<TensorProto>(bytes({0x70, 0x00})));
  EXPECT_THAT(error_message([] {
                parse<AttributeProto>(bytes({0x0a, 0x01, 'g', 0xa0, 0x01, 0x05}));
              }),
              HasSubstr("attribute 'g' has type 5, which hone's reader does not support"));
  EXPECT_THAT(error_message([] { parse<AttributeProto>(bytes({0x32, 0x00})); }), HasSubstr("g (graph attribute)"));
  EXPECT_THAT(error_message([] { parse<AttributeProto>(bytes({0x0a, 0x01, 'n'})); }), HasSubstr("has type 0"));
  EXPECT_THAT(error_message([] {
                parse<ValueInfoProto>(bytes({0x12, 0x02, 0x22, 0x00}));
              }),
              HasSubstr("field 4 (sequence_type)"));
  EXPECT_THAT(error_message([] {
                parse<ValueInfoProto>(bytes({0x12, 0x00}));
              }),
              HasSubstr("TypeProto without tensor_type"));
  EXPECT_THAT(error_message([] { parse<GraphProto>(bytes({0x7a, 0x00})); }), HasSubstr("sparse_initializer"));
  EXPECT_THAT(error_message([] { parse<ModelProto>(bytes({0xca, 0x01, 0x00})); }), HasSubstr("functions"));
}

TEST(OnnxProtoParse, ErrorsNameSourcePathAndOffset) {
  std::string encoded = serialize(full_model());
  // Make the first attribute's name claim more bytes than its attribute holds.
  const std::size_t at = encoded.find(bytes({0x0a, 0x05, 'a', 'l', 'p', 'h', 'a'}));
  ASSERT_NE(at, std::string::npos);
  encoded[at + 1] = 0x7f;
  const std::string message = error_message([&] { parse<ModelProto>(encoded, "model.onnx"); });
  EXPECT_THAT(message,
              HasSubstr("model.onnx: ModelProto.graph.node[0].attribute[0] at byte " + std::to_string(at + 1)));
  EXPECT_THAT(message, HasSubstr("length 127 runs past the end"));
}

TEST(OnnxProtoParse, EveryTruncationIsAnErrorOrAShorterValidMessage) {
  const ModelProto model = full_model();
  const std::string encoded = serialize(model);
  std::size_t errors = 0;
  for (std::size_t length = 0; length < encoded.size(); ++length) {
    try {
      EXPECT_NE(parse<ModelProto>(std::string_view(encoded).substr(0, length)), model) << length;
    } catch (const Error&) {
      ++errors;
    }
  }
  // Only cuts between top-level fields parse (at most one per field written); the rest must fail.
  EXPECT_GE(errors, encoded.size() - 12);
}

TEST(OnnxProtoParse, CorruptedBytesNeverCrash) {
  // Run under ASan/UBSan to make this a check for over-reads; here it checks only hone::Error escapes.
  const std::string encoded = serialize(full_model());
  std::mt19937 random(17);
  std::uniform_int_distribution<std::size_t> position(0, encoded.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  int parsed = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string corrupted = encoded;
    for (int flip = 0; flip <= trial % 4; ++flip) corrupted[position(random)] = static_cast<char>(byte(random));
    try {
      parse<ModelProto>(corrupted);
      ++parsed;
    } catch (const Error&) {
    }
  }
  EXPECT_GT(parsed, 0);  // some corruptions only change a value
}

}  // namespace
}  // namespace hone::onnx
