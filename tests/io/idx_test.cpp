#include "hone/io/idx.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "hone/io/gzip.h"
#include "support/error_message.h"
#include "support/temp_dir.h"

namespace hone::io {
namespace {

using ::testing::HasSubstr;

const std::filesystem::path kFashionMnist = "/usr/share/datasets/fashion-mnist";

using hone::testing::error_message;

// Random, mostly non-zero values spanning the dtype's range (so byte order matters).
at::Tensor random_tensor(at::ScalarType dtype, at::IntArrayRef shape) {
  at::TensorOptions options = at::TensorOptions().dtype(dtype);
  switch (dtype) {
    case at::kByte:
      return at::randint(1, 256, shape, options);
    case at::kChar:
      return at::randint(-128, 128, shape, options);
    case at::kShort:
      return at::randint(-32768, 32768, shape, options);
    case at::kInt:
      return at::randint(-2147483648LL, 2147483647LL, shape, options);
    default:
      return at::randn(shape, options) * 1000;
  }
}

// Hand-built IDX bytes: magic 00 00 <code> <rank>, big-endian dims, then `payload`.
std::string idx_bytes(std::uint8_t code, const std::vector<std::uint32_t>& dims, const std::string& payload = "") {
  std::string out{'\0', '\0', static_cast<char>(code), static_cast<char>(dims.size())};
  for (std::uint32_t dim : dims) {
    for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<char>(dim >> shift));
  }
  return out + payload;
}

const std::vector<at::ScalarType> kIdxDtypes{at::kByte, at::kChar, at::kShort, at::kInt, at::kFloat, at::kDouble};

TEST(IdxTest, RoundTripsEveryDtypeAndShape) {
  at::manual_seed(1);
  const std::vector<std::vector<std::int64_t>> shapes{{7}, {3, 5}, {2, 3, 5}, {2, 1, 3, 1, 2, 1, 1, 3}, {0, 28}};
  for (at::ScalarType dtype : kIdxDtypes) {
    for (const auto& shape : shapes) {
      at::Tensor tensor = random_tensor(dtype, shape);
      at::Tensor back = parse_idx(encode_idx(tensor), "mem");
      EXPECT_EQ(back.scalar_type(), dtype);
      EXPECT_EQ(back.sizes(), tensor.sizes());
      EXPECT_TRUE(at::equal(back, tensor)) << c10::toString(dtype) << " " << tensor.sizes();
    }
  }
}

TEST(IdxTest, EncodesNonContiguousTensorsByValue) {
  at::manual_seed(2);
  for (at::ScalarType dtype : kIdxDtypes) {
    at::Tensor base = random_tensor(dtype, {6, 9});
    at::Tensor view = base.t().slice(0, 1, 9, 2);  // transposed and strided
    ASSERT_FALSE(view.is_contiguous());
    EXPECT_EQ(encode_idx(view), encode_idx(view.contiguous()));
    EXPECT_TRUE(at::equal(parse_idx(encode_idx(view), "view"), view));
  }
}

TEST(IdxTest, UsesBigEndianAsTheFormatSpecifies) {
  // int32 [258, -1] and float32 [1.0] built byte by byte from the spec.
  at::Tensor ints = at::tensor(std::vector<std::int32_t>{258, -1});
  EXPECT_EQ(encode_idx(ints), idx_bytes(0x0C, {2}, std::string("\x00\x00\x01\x02\xff\xff\xff\xff", 8)));
  at::Tensor floats = at::tensor(std::vector<float>{1.0f});
  EXPECT_EQ(encode_idx(floats), idx_bytes(0x0D, {1}, std::string("\x3f\x80\x00\x00", 4)));
  at::Tensor shorts = parse_idx(idx_bytes(0x0B, {1, 2}, std::string("\x12\x34\x80\x00", 4)), "hand");
  EXPECT_EQ(shorts.sizes(), at::IntArrayRef({1, 2}));
  EXPECT_EQ(shorts[0][0].item<std::int16_t>(), 0x1234);
  EXPECT_EQ(shorts[0][1].item<std::int16_t>(), -32768);
}

TEST(IdxTest, WritesPlainAndGzippedFilesAtomically) {
  testing::TempDir dir;
  at::manual_seed(3);
  at::Tensor tensor = random_tensor(at::kFloat, {4, 3, 2});
  write_idx(dir / "plain.idx", tensor);
  write_idx(dir / "sub" / "packed.idx.gz", tensor);
  EXPECT_FALSE(is_gzip(read_file(dir / "plain.idx")));
  EXPECT_TRUE(is_gzip(read_file(dir / "sub" / "packed.idx.gz")));
  EXPECT_TRUE(at::equal(read_idx(dir / "plain.idx"), tensor));
  EXPECT_TRUE(at::equal(read_idx(dir / "sub" / "packed.idx.gz"), tensor));
  // Only the two files remain: no temp files left behind.
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path())) files += entry.is_regular_file();
  EXPECT_EQ(files, 2U);
}

TEST(IdxTest, RejectsTruncatedAndOversizedFiles) {
  EXPECT_THAT(error_message([] { parse_idx(std::string(3, '\0'), "tiny.idx"); }),
              HasSubstr("tiny.idx: truncated: expected at least 4 bytes"));
  std::string header_only = idx_bytes(0x08, {10000, 28, 28});
  EXPECT_THAT(error_message([&] { parse_idx(header_only.substr(0, 10), "head.idx"); }),
              HasSubstr("head.idx: truncated: expected at least 16 bytes for the header"));
  std::string short_file = header_only + std::string(1000 - header_only.size(), '\x07');
  std::uint64_t expected = 16 + 10000ULL * 28 * 28;
  EXPECT_THAT(error_message([&] { parse_idx(short_file, "images.idx"); }),
              HasSubstr(fmt::format("images.idx: truncated: expected {} bytes, got 1000", expected)));
  std::string long_file = idx_bytes(0x0C, {2}, std::string(9, '\x01'));
  EXPECT_THAT(error_message([&] { parse_idx(long_file, "long.idx"); }),
              HasSubstr("long.idx: 1 trailing bytes: expected 16 bytes, got 17"));
}

TEST(IdxTest, RejectsBadMagicTypeAndRank) {
  std::string good = idx_bytes(0x08, {2}, "ab");
  std::string bad_magic = good;
  bad_magic[0] = 1;
  EXPECT_THAT(error_message([&] { parse_idx(bad_magic, "m.idx"); }), HasSubstr("m.idx: bad IDX magic 01 00 08 01"));
  bad_magic = good;
  bad_magic[1] = '\x08';
  EXPECT_THAT(error_message([&] { parse_idx(bad_magic, "m.idx"); }), HasSubstr("bad IDX magic"));
  EXPECT_THAT(error_message([] { parse_idx(idx_bytes(0x0A, {2}, "ab"), "t.idx"); }),
              HasSubstr("t.idx: unknown IDX type code 0x0a"));
  EXPECT_THAT(error_message([] { parse_idx(idx_bytes(0x08, {}, ""), "r.idx"); }),
              HasSubstr("r.idx: IDX rank 0 is outside 1..8"));
  EXPECT_THAT(error_message([] {
                parse_idx(idx_bytes(0x08, {1, 1, 1, 1, 1, 1, 1, 1, 1}, "a"), "r.idx");
              }),
              HasSubstr("IDX rank 9 is outside 1..8"));
}

TEST(IdxTest, RejectsDimsWhoseProductOverflows) {
  // 8 dims of 2^32-1: the product wraps a 64-bit counter, so a naive check could match any size.
  std::vector<std::uint32_t> huge(8, 0xFFFFFFFFu);
  EXPECT_THAT(error_message([&] { parse_idx(idx_bytes(0x08, huge, "x"), "o.idx"); }), HasSubstr("o.idx: IDX dims"));
  EXPECT_THAT(error_message([&] { parse_idx(idx_bytes(0x08, huge, "x"), "o.idx"); }), HasSubstr("overflow"));
  // A zero dim does not excuse the others: LibTorch would still overflow computing strides.
  std::vector<std::uint32_t> zero_trick{0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0};
  EXPECT_THAT(error_message([&] { parse_idx(idx_bytes(0x08, zero_trick), "z.idx"); }), HasSubstr("overflow"));
  // An honest empty file is fine.
  at::Tensor empty = parse_idx(idx_bytes(0x0D, {0, 28, 28}), "empty.idx");
  EXPECT_EQ(empty.sizes(), at::IntArrayRef({0, 28, 28}));
  EXPECT_EQ(empty.scalar_type(), at::kFloat);
}

TEST(IdxTest, EncodeRejectsWhatIdxCannotHold) {
  EXPECT_THAT(error_message([] { encode_idx(at::ones({2}, at::kBool)); }), HasSubstr("dtype Bool cannot be stored"));
  EXPECT_THAT(error_message([] { encode_idx(at::ones({2}, at::kLong)); }), HasSubstr("dtype Long cannot be stored"));
  EXPECT_THAT(error_message([] { encode_idx(at::scalar_tensor(1.0)); }), HasSubstr("got a 0-dim tensor"));
  EXPECT_THAT(error_message([] { encode_idx(at::ones(std::vector<std::int64_t>(9, 1))); }),
              HasSubstr("got a 9-dim tensor"));
  EXPECT_THAT(error_message([] { encode_idx(at::Tensor()); }), HasSubstr("undefined"));
}

TEST(IdxTest, ReadsRealFashionMnistLabels) {
  const auto path = kFashionMnist / "t10k-labels-idx1-ubyte.gz";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is not installed";
  at::Tensor labels = read_idx(path);
  ASSERT_EQ(labels.scalar_type(), at::kByte);
  ASSERT_EQ(labels.sizes(), at::IntArrayRef({10000}));
  EXPECT_LE(labels.max().item<int>(), 9);
  // The test split is balanced: each of the 10 classes appears exactly 1000 times.
  at::Tensor counts = at::bincount(labels.to(at::kLong), {}, 10);
  EXPECT_TRUE(at::equal(counts, at::full({10}, 1000, at::kLong))) << counts;
  // Re-encoding reproduces the file's bytes exactly.
  EXPECT_EQ(encode_idx(labels), read_maybe_gzipped(path));
}

TEST(IdxTest, ReadsRealFashionMnistImages) {
  const auto path = kFashionMnist / "t10k-images-idx3-ubyte.gz";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is not installed";
  at::Tensor images = read_idx(path);
  ASSERT_EQ(images.scalar_type(), at::kByte);
  ASSERT_EQ(images.sizes(), at::IntArrayRef({10000, 28, 28}));
  // Every image has ink, and the pixels use the whole 0..255 range.
  at::Tensor per_image_max = images.reshape({10000, -1}).amax(1);
  EXPECT_TRUE(per_image_max.gt(0).all().item<bool>());
  EXPECT_EQ(images.min().item<int>(), 0);
  EXPECT_EQ(images.max().item<int>(), 255);
  EXPECT_EQ(encode_idx(images), read_maybe_gzipped(path));
}

}  // namespace
}  // namespace hone::io
