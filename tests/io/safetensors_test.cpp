#include "hone/io/safetensors.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "support/error_message.h"
#include "support/temp_dir.h"

namespace hone::io {
namespace {

using ::testing::HasSubstr;

using hone::testing::error_message;

const std::vector<at::ScalarType> kAllDtypes{
    at::kDouble, at::kFloat, at::kHalf,   at::kBFloat16, at::kLong,   at::kInt,           at::kShort,      at::kChar,
    at::kByte,   at::kBool,  at::kUInt64, at::kUInt32,   at::kUInt16, at::kFloat8_e4m3fn, at::kFloat8_e5m2};

// Random values; the unsigned and fp8 types are made by conversion, which LibTorch supports for them.
at::Tensor random_tensor(at::ScalarType dtype, at::IntArrayRef shape) {
  at::TensorOptions options = at::TensorOptions().dtype(dtype);
  switch (dtype) {
    case at::kBool:
      return at::randint(0, 2, shape).to(at::kBool);
    case at::kByte:
      return at::randint(1, 256, shape, options);
    case at::kChar:
      return at::randint(-128, 128, shape, options);
    case at::kShort:
      return at::randint(-32768, 32768, shape, options);
    case at::kInt:
    case at::kLong:
      return at::randint(-2147483648LL, 2147483647LL, shape, options);
    case at::kUInt16:
    case at::kUInt32:
    case at::kUInt64:
      return at::randint(1, 65536, shape).to(dtype);
    case at::kFloat8_e4m3fn:
    case at::kFloat8_e5m2:
      return (at::randn(shape) * 10).to(dtype);
    default:
      return at::randn(shape, options) * 100;
  }
}

// Same dtype, shape and bytes (exact, and it works for every dtype, fp8 and unsigned included).
void expect_same_tensor(const at::Tensor& actual, const at::Tensor& expected, const std::string& what) {
  ASSERT_EQ(actual.scalar_type(), expected.scalar_type()) << what;
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what;
  at::Tensor a = actual.contiguous();
  at::Tensor b = expected.contiguous();
  std::size_t nbytes = static_cast<std::size_t>(b.numel()) * b.element_size();
  if (nbytes > 0) {
    EXPECT_EQ(std::memcmp(a.const_data_ptr(), b.const_data_ptr(), nbytes), 0) << what;
  }
}

// A file built by hand from the spec: u64 little-endian header length, the header, the data.
std::string file_bytes(const std::string& header, const std::string& data) {
  std::uint64_t length = header.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &length, 8);
  return out + header + data;
}

std::string bytes_of(const std::vector<int>& values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

NamedTensors every_kind_of_tensor() {
  at::manual_seed(7);
  NamedTensors tensors;
  const std::vector<std::vector<std::int64_t>> shapes{{3, 5, 7}, {1}, {}, {0, 4}};
  for (at::ScalarType dtype : kAllDtypes) {
    for (std::size_t s = 0; s < shapes.size(); ++s) {
      tensors.emplace_back(fmt::format("{}.{}", c10::toString(dtype), s), random_tensor(dtype, shapes[s]));
    }
    at::Tensor strided = random_tensor(dtype, {6, 5}).t().slice(1, 0, 6, 2);  // transposed and stepped
    EXPECT_FALSE(strided.is_contiguous());
    tensors.emplace_back(fmt::format("{}.view", c10::toString(dtype)), strided);
  }
  return tensors;
}

TEST(SafetensorsTest, RoundTripsEveryDtypeAndShapeInMemory) {
  NamedTensors tensors = every_kind_of_tensor();
  Metadata metadata{{"framework", "hone"}, {"note", "ünïcode, \"quotes\""}};
  std::string bytes = encode_safetensors(tensors, metadata);
  std::uint64_t header_length = 0;
  std::memcpy(&header_length, bytes.data(), 8);
  EXPECT_EQ((8 + header_length) % 8, 0U) << "data must start 8-aligned";
  EXPECT_EQ(bytes.find_last_not_of(' ', 8 + header_length - 1), bytes.find_last_of('}', 8 + header_length - 1));

  SafetensorsContents contents = decode_safetensors(bytes, "mem");
  EXPECT_EQ(contents.metadata, metadata);
  ASSERT_EQ(contents.tensors.size(), tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(contents.tensors[i].first, tensors[i].first) << "written in the given order";
    expect_same_tensor(contents.tensors[i].second, tensors[i].second, tensors[i].first);
  }
  EXPECT_TRUE(contents.contains("Float.0"));
  EXPECT_FALSE(contents.contains("nope"));
  EXPECT_THAT(error_message([&] { contents.at("nope"); }), HasSubstr("no tensor 'nope' (tensors: Double.0, "));
}

TEST(SafetensorsTest, SavesAndLoadsThroughTheMapping) {
  testing::TempDir dir;
  NamedTensors tensors = every_kind_of_tensor();
  save_safetensors(dir / "model.safetensors", tensors, {{"epoch", "3"}});
  std::string on_disk = read_file(dir / "model.safetensors");
  EXPECT_EQ(on_disk, encode_safetensors(tensors, {{"epoch", "3"}}));

  SafetensorsContents contents = load_safetensors(dir / "model.safetensors");
  EXPECT_EQ(contents.metadata.at("epoch"), "3");
  ASSERT_EQ(contents.tensors.size(), tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const at::Tensor& loaded = contents.tensors[i].second;
    expect_same_tensor(loaded, tensors[i].second, tensors[i].first);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(loaded.const_data_ptr()) % loaded.element_size(), 0U);
  }
  // Writes through a mapped tensor stay private: the file is unchanged.
  at::Tensor mapped = contents.at("Float.0");
  mapped.fill_(0.5);
  EXPECT_EQ(read_file(dir / "model.safetensors"), on_disk);
}

TEST(SafetensorsTest, MappedTensorsOutliveTheirContents) {
  testing::TempDir dir;
  at::manual_seed(3);
  at::Tensor weight = random_tensor(at::kFloat, {64, 33});
  at::Tensor bias = random_tensor(at::kBFloat16, {33});
  save_safetensors(dir / "m.safetensors", {{"weight", weight}, {"bias", bias}});
  at::Tensor kept_weight;
  at::Tensor kept_bias;
  {
    SafetensorsContents contents = load_safetensors(dir / "m.safetensors");
    kept_weight = contents.at("weight");
    kept_bias = contents.at("bias").view({3, 11});
  }
  // The deleters hold the mapping; the file can even be removed.
  std::filesystem::remove(dir / "m.safetensors");
  expect_same_tensor(kept_weight, weight, "weight");
  expect_same_tensor(kept_bias, bias.view({3, 11}), "bias");
  EXPECT_DOUBLE_EQ(kept_weight.sum().item<double>(), weight.sum().item<double>());
}

TEST(SafetensorsTest, CopiesMisalignedData) {
  // Pad the header so the F32 data starts at a file offset that is 2 mod 4.
  std::string header = R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
  while ((8 + header.size()) % 4 != 2) header.push_back(' ');
  std::vector<float> values{1.5f, -2.25f, 1e-3f};
  std::string data(reinterpret_cast<const char*>(values.data()), 12);
  testing::TempDir dir;
  write_file_atomic(dir / "odd.safetensors", file_bytes(header, data));
  SafetensorsContents contents = load_safetensors(dir / "odd.safetensors");
  const at::Tensor& x = contents.at("x");
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(x.const_data_ptr()) % 4, 0U);
  expect_same_tensor(x, at::tensor(values), "x");
}

TEST(SafetensorsTest, HeaderOnlyLoadGivesMetaTensors) {
  testing::TempDir dir;
  NamedTensors tensors = every_kind_of_tensor();
  save_safetensors(dir / "h.safetensors", tensors, {{"k", "v"}});
  SafetensorsContents header = load_safetensors_header(dir / "h.safetensors");
  EXPECT_EQ(header.metadata, (Metadata{{"k", "v"}}));
  ASSERT_EQ(header.tensors.size(), tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(header.tensors[i].first, tensors[i].first);
    EXPECT_TRUE(header.tensors[i].second.is_meta());
    EXPECT_EQ(header.tensors[i].second.scalar_type(), tensors[i].second.scalar_type());
    EXPECT_EQ(header.tensors[i].second.sizes(), tensors[i].second.sizes());
  }
  // The header is still checked against the file's size.
  std::string bytes = read_file(dir / "h.safetensors");
  write_file_atomic(dir / "short.safetensors", bytes.substr(0, bytes.size() - 1));
  EXPECT_THAT(error_message([&] { load_safetensors_header(dir / "short.safetensors"); }),
              HasSubstr("short.safetensors: tensor 'Float8_e5m2.view': data_offsets"));
  EXPECT_THAT(error_message([&] { load_safetensors_header(dir / "missing.safetensors"); }),
              HasSubstr("missing.safetensors"));
}

// Byte-exact outputs of the reference implementation, from its own test suite
// (huggingface/safetensors: safetensors/src/tensor.rs and bindings/python/tests/test_simple.py).
TEST(SafetensorsTest, MatchesTheReferenceImplementationByteForByte) {
  std::vector<float> values{0, 1, 2, 3, 4, 5};
  at::Tensor attn = at::tensor(values);
  // tensor.rs test_serialization_forced_alignement: "attn0", F32 [1,1,2,3], header padded to 72.
  std::string forced =
      bytes_of({72,  0,   0,   0,  0,  0,  0,  0,  123, 34,  97, 116, 116, 110, 48,  34,  58,  123, 34,  100, 116,
                121, 112, 101, 34, 58, 34, 70, 51, 50,  34,  44, 34,  115, 104, 97,  112, 101, 34,  58,  91,  49,
                44,  49,  44,  50, 44, 51, 93, 44, 34,  100, 97, 116, 97,  95,  111, 102, 102, 115, 101, 116, 115,
                34,  58,  91,  48, 44, 50, 52, 93, 125, 125, 32, 32,  32,  32,  32,  32,  32,  0,   0,   0,   0,
                0,   0,   128, 63, 0,  0,  0,  64, 0,   0,   64, 64,  0,   0,   128, 64,  0,   0,   160, 64});
  EXPECT_EQ(encode_safetensors({{"attn0", attn.view({1, 1, 2, 3})}}), forced);
  expect_same_tensor(decode_safetensors(forced, "forced").at("attn0"), attn.view({1, 1, 2, 3}), "attn0");
  // tensor.rs test_serialization: "attn.0", F32 [1,2,3]; its header needs no padding.
  std::string unpadded = bytes_of(
      {64,  0,  0,   0,  0,   0,  0,   0,   123, 34,  97,  116, 116, 110, 46,  48, 34, 58, 123, 34, 100, 116, 121, 112,
       101, 34, 58,  34, 70,  51, 50,  34,  44,  34,  115, 104, 97,  112, 101, 34, 58, 91, 49,  44, 50,  44,  51,  93,
       44,  34, 100, 97, 116, 97, 95,  111, 102, 102, 115, 101, 116, 115, 34,  58, 91, 48, 44,  50, 52,  93,  125, 125,
       0,   0,  0,   0,  0,   0,  128, 63,  0,   0,   0,   64,  0,   0,   64,  64, 0,  0,  128, 64, 0,   0,   160, 64});
  EXPECT_EQ(encode_safetensors({{"attn.0", attn.view({1, 2, 3})}}), unpadded);
  // tensor.rs test_empty: no tensors, without and with metadata.
  EXPECT_EQ(encode_safetensors({}), bytes_of({8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32}));
  std::string empty_with_metadata = bytes_of(
      {40,  0,  0,   0,   0,  0,   0,   0,   123, 34,  95,  95, 109, 101, 116, 97,  100, 97,  116, 97, 95, 95, 34, 58,
       123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58,  34,  112, 116, 34,  125, 125, 32, 32, 32, 32, 32});
  EXPECT_EQ(encode_safetensors({}, {{"framework", "pt"}}), empty_with_metadata);
  SafetensorsContents empty = decode_safetensors(empty_with_metadata, "empty");
  EXPECT_TRUE(empty.tensors.empty());
  EXPECT_EQ(empty.metadata.at("framework"), "pt");

  // test_simple.py: files written by older releases, without padding (N = 60), I32 [2,2] with
  // element [1][1] = 1; and one with metadata and 7 spaces of padding (N = 0x66).
  std::string python = std::string("<\0\0\0\0\0\0\0", 8) +
                       R"({"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}})" +
                       std::string("\0\0\0\0\0\0\0\0\0\0\0\0\1\0\0\0", 16);
  testing::TempDir dir;
  write_file_atomic(dir / "python.safetensors", python);
  for (const SafetensorsContents& contents :
       {decode_safetensors(python, "python"), load_safetensors(dir / "python.safetensors")}) {
    expect_same_tensor(contents.at("test"), at::tensor(std::vector<std::int32_t>{0, 0, 0, 1}).view({2, 2}), "test");
  }
  std::string with_metadata = std::string("f\0\0\0\0\0\0\0", 8) +
                              R"({"__metadata__":{"framework":"pt"},"test1":{"dtype":"I32","shape":[2,2],)" +
                              R"("data_offsets":[0,16]}}       )" + std::string(16, '\0');
  SafetensorsContents parsed = decode_safetensors(with_metadata, "python-metadata");
  EXPECT_EQ(parsed.metadata, (Metadata{{"framework", "pt"}}));
  expect_same_tensor(parsed.at("test1"), at::zeros({2, 2}, at::kInt), "test1");
}

TEST(SafetensorsTest, RejectsBadHeaderLengths) {
  EXPECT_THAT(error_message([] { decode_safetensors("1234567", "tiny.st"); }),
              HasSubstr("tiny.st: too small for a safetensors file: 7 bytes"));
  std::string valid = encode_safetensors({{"a", at::ones({2})}});
  std::string lying = valid;
  lying[0] = static_cast<char>(lying[0] + 100);
  EXPECT_THAT(error_message([&] { decode_safetensors(lying, "lie.st"); }),
              HasSubstr("lie.st: header length " + std::to_string(static_cast<unsigned char>(lying[0])) +
                        " runs past the end of the file (" + std::to_string(valid.size()) + " bytes)"));
  std::string huge = valid;
  huge[5] = 1;  // 2^40 + ...
  EXPECT_THAT(error_message([&] { decode_safetensors(huge, "huge.st"); }),
              HasSubstr("huge.st: header length 1099511627"));
  EXPECT_THAT(error_message([&] { decode_safetensors(huge, "huge.st"); }), HasSubstr("exceeds the limit"));
  EXPECT_THAT(error_message([&] { decode_safetensors(valid.substr(0, valid.size() - 1), "cut.st"); }),
              HasSubstr("cut.st: tensor 'a': data_offsets [0, 8] run past the end of the data section (7 bytes)"));
}

// Hand-built headers with one defect each; the message must name the file, the tensor and the defect.
TEST(SafetensorsTest, RejectsDefectiveHeaders) {
  struct Case {
    std::string header;
    std::size_t data_bytes;
    std::string defect;
  };
  const std::string i32 = R"("dtype":"I32","shape":[4])";
  const std::vector<Case> cases{
      {"not json", 0, "bad.st: header is not valid JSON"},
      {"[1,2]", 0, "bad.st: header is not a JSON object but array"},
      {R"({"a":[1]})", 0, "bad.st: tensor 'a': entry is not a JSON object"},
      {R"({"a":{"dtype":"I32","data_offsets":[0,16]}})", 16, "bad.st: tensor 'a': missing key 'shape'"},
      {R"({"a":{)" + i32 + R"(,"data_offsets":[0,16],"extra":1}})", 16, "tensor 'a': unexpected key 'extra'"},
      {R"({"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}})", 16,
       "tensor 'a': unknown or unsupported dtype 'F128'"},
      {R"({"a":{"dtype":"F8_E8M0","shape":[1],"data_offsets":[0,1]}})", 1, "unknown or unsupported dtype 'F8_E8M0'"},
      {R"({"a":{"dtype":7,"shape":[1],"data_offsets":[0,1]}})", 1, "tensor 'a': dtype is not a string"},
      {R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", 1,
       "tensor 'a': shape entry -1 is not a non-negative"},
      {R"({"a":{"dtype":"U8","shape":[2.5],"data_offsets":[0,1]}})", 1, "tensor 'a': shape entry 2.5 is not"},
      {R"({"a":{"dtype":"U8","shape":4,"data_offsets":[0,4]}})", 4, "tensor 'a': shape is not an array"},
      {R"({"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0,
       "tensor 'a': shape [4294967296,4294967296] overflows"},
      {R"({"a":{"dtype":"U8","shape":[3037000500,3037000500,0],"data_offsets":[0,0]}})", 0, "overflows"},
      {R"({"a":{)" + i32 + R"(,"data_offsets":[0,12]}})", 12,
       "tensor 'a': data_offsets [0, 12] span 12 bytes, but shape [4] of I32 needs 16"},
      {R"({"a":{)" + i32 + R"(,"data_offsets":[16,0]}})", 16, "tensor 'a': data_offsets [16, 0] end before they begin"},
      {R"({"a":{)" + i32 + R"(,"data_offsets":[0]}})", 16, "tensor 'a': data_offsets must be an array [begin, end]"},
      {R"({"a":{)" + i32 + R"(,"data_offsets":[0,-16]}})", 16, "tensor 'a': data_offsets entry -16"},
      {R"({"a":{)" + i32 + R"(,"data_offsets":[8,24]}})", 16,
       "tensor 'a': data_offsets [8, 24] run past the end of the data section (16 bytes)"},
      {R"({"a":{)" + i32 + R"(,"data_offsets":[0,16]},"b":{)" + i32 + R"(,"data_offsets":[8,24]}})", 24,
       "tensor 'b': data_offsets [8, 24] overlap tensor 'a' at [0, 16]"},
      {R"({"a":{)" + i32 + R"(,"data_offsets":[0,16]},"b":{)" + i32 + R"(,"data_offsets":[20,36]}})", 36,
       "tensor 'b': hole of 4 unused bytes before its data_offsets [20, 36]"},
      {R"({"a":{)" + i32 + R"(,"data_offsets":[4,20]}})", 20, "tensor 'a': hole of 4 unused bytes"},
      {R"({"a":{)" + i32 + R"(,"data_offsets":[0,16]}})", 20, "bad.st: 4 unused bytes after the last tensor"},
      {R"({"a":{)" + i32 + R"(,"data_offsets":[0,16]},"a":{)" + i32 + R"(,"data_offsets":[16,32]}})", 32,
       "bad.st: header has the key 'a' more than once"},
      {R"({"__metadata__":{"k":1},"a":{)" + i32 + R"(,"data_offsets":[0,16]}})", 16,
       "bad.st: __metadata__ value for 'k' is not a string but number"},
      {R"({"__metadata__":["x"]})", 0, "bad.st: __metadata__ is not an object of strings"},
      {"{\"a\xff\":1}", 0, "bad.st: header is not valid JSON"},
  };
  for (const Case& c : cases) {
    std::string bytes = file_bytes(c.header, std::string(c.data_bytes, '\x5a'));
    EXPECT_THAT(error_message([&] { decode_safetensors(bytes, "bad.st"); }), HasSubstr(c.defect)) << c.header;
  }
}

TEST(SafetensorsTest, FileLoadersReportTheSameDefectsWithThePath) {
  testing::TempDir dir;
  std::string header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],)"
                       R"("data_offsets":[4,12]}})";
  write_file_atomic(dir / "overlap.safetensors", file_bytes(header, std::string(12, '\1')));
  for (auto load : {&load_safetensors, &load_safetensors_header}) {
    std::string message = error_message([&] { load(dir / "overlap.safetensors"); });
    EXPECT_THAT(message, HasSubstr((dir / "overlap.safetensors").string()));
    EXPECT_THAT(message, HasSubstr("tensor 'v': data_offsets [4, 12] overlap tensor 'w'"));
  }
  write_file_atomic(dir / "tiny.safetensors", "abc");
  EXPECT_THAT(error_message([&] { load_safetensors(dir / "tiny.safetensors"); }), HasSubstr("too small"));
  EXPECT_THAT(error_message([&] { load_safetensors_header(dir / "tiny.safetensors"); }), HasSubstr("too small"));
  write_file_atomic(dir / "empty.safetensors", "");
  EXPECT_THAT(error_message([&] { load_safetensors(dir / "empty.safetensors"); }), HasSubstr("0 bytes"));
}

TEST(SafetensorsTest, EncoderRejectsBadNamesAndDtypes) {
  at::Tensor t = at::ones({2});
  EXPECT_THAT(error_message([&] {
                encode_safetensors({{"a", t}, {"a", t}});
              }),
              HasSubstr("the tensor name 'a' appears more than once"));
  EXPECT_THAT(error_message([&] { encode_safetensors({{"", t}}); }), HasSubstr("empty name"));
  EXPECT_THAT(error_message([&] { encode_safetensors({{"__metadata__", t}}); }), HasSubstr("is reserved"));
  EXPECT_THAT(error_message([&] {
                encode_safetensors({{"c", at::ones({2}, at::kComplexFloat)}});
              }),
              HasSubstr("tensor 'c' has dtype ComplexFloat"));
  EXPECT_THAT(error_message([&] { encode_safetensors({{"u", at::Tensor()}}); }), HasSubstr("tensor 'u' is undefined"));
  // A failed save leaves the previous file in place.
  testing::TempDir dir;
  save_safetensors(dir / "keep.safetensors", {{"a", t}});
  EXPECT_THROW(save_safetensors(dir / "keep.safetensors", {{"a", t}, {"a", t}}), Error);
  expect_same_tensor(load_safetensors(dir / "keep.safetensors").at("a"), t, "a");
}

}  // namespace
}  // namespace hone::io
