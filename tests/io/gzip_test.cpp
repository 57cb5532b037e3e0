#include "hone/io/gzip.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>

#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "support/error_message.h"
#include "support/temp_dir.h"

namespace hone::io {
namespace {

using ::testing::HasSubstr;

std::string random_bytes(std::size_t size, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(byte(rng));
  return bytes;
}

using hone::testing::error_message;

// The gzip trailer's ISIZE field: the uncompressed size mod 2^32, written by the compressor.
std::uint32_t trailer_size(const std::string& gz) {
  const auto* tail = reinterpret_cast<const unsigned char*>(gz.data() + gz.size() - 4);
  return std::uint32_t{tail[0]} | std::uint32_t{tail[1]} << 8 | std::uint32_t{tail[2]} << 16 |
         std::uint32_t{tail[3]} << 24;
}

TEST(GzipTest, RoundTripsRandomBytesOfOddSizes) {
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{977}, (std::size_t{1} << 20) + 7}) {
    std::string bytes = random_bytes(size, static_cast<unsigned>(size) + 1);
    std::string gz = gzip(bytes);
    EXPECT_TRUE(is_gzip(gz));
    EXPECT_EQ(trailer_size(gz), static_cast<std::uint32_t>(size));
    EXPECT_EQ(gunzip(gz, "random"), bytes) << "size " << size;
  }
}

TEST(GzipTest, CompressesRepetitiveData) {
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "line " + std::to_string(i % 17) + "\n";
  std::string gz = gzip(text);
  EXPECT_LT(gz.size(), text.size() / 10);
  EXPECT_EQ(gunzip(gz, "text"), text);
}

TEST(GzipTest, IsGzipChecksTheMagic) {
  EXPECT_TRUE(is_gzip(std::string("\x1f\x8b", 2)));
  EXPECT_FALSE(is_gzip(std::string("\x1f", 1)));
  EXPECT_FALSE(is_gzip(""));
  EXPECT_FALSE(is_gzip("plain text"));
}

TEST(GzipTest, RejectsInputWithoutMagic) {
  EXPECT_THAT(error_message([] { gunzip("plain text", "notes.txt"); }), HasSubstr("notes.txt: not a gzip stream"));
  EXPECT_THAT(error_message([] { gunzip("", "empty.gz"); }), HasSubstr("empty.gz: not a gzip stream"));
}

TEST(GzipTest, RejectsTruncatedStreams) {
  std::string gz = gzip(random_bytes(5000, 7));
  for (std::size_t keep : {std::size_t{2}, std::size_t{9}, gz.size() / 2, gz.size() - 4, gz.size() - 1}) {
    std::string cut = gz.substr(0, keep);
    EXPECT_THAT(error_message([&] { gunzip(cut, "cut.gz"); }), HasSubstr("cut.gz: truncated gzip stream"))
        << "kept " << keep << " of " << gz.size() << " bytes";
  }
}

TEST(GzipTest, RejectsBadCrc) {
  std::string gz = gzip(random_bytes(3000, 11));
  gz[gz.size() - 8] = static_cast<char>(gz[gz.size() - 8] ^ 0x01);  // first byte of the CRC32
  std::string message = error_message([&] { gunzip(gz, "crc.gz"); });
  EXPECT_THAT(message, HasSubstr("crc.gz: corrupt gzip stream"));
  EXPECT_THAT(message, HasSubstr("incorrect data check"));
}

TEST(GzipTest, RejectsBadLengthInTrailer) {
  std::string gz = gzip(random_bytes(3000, 12));
  gz[gz.size() - 4] = static_cast<char>(gz[gz.size() - 4] ^ 0x01);  // first byte of ISIZE
  EXPECT_THAT(error_message([&] { gunzip(gz, "len.gz"); }), HasSubstr("incorrect length check"));
}

TEST(GzipTest, RejectsCorruptDeflateData) {
  std::string gz = gzip(random_bytes(3000, 13));
  gz[10] = static_cast<char>(0xff);  // first deflate block header: BTYPE 11 is reserved
  std::string message = error_message([&] { gunzip(gz, "block.gz"); });
  EXPECT_THAT(message, HasSubstr("block.gz: corrupt gzip stream"));
  EXPECT_THAT(message, HasSubstr("invalid block type"));
}

TEST(GzipTest, RejectsTrailingGarbage) {
  std::string gz = gzip("payload") + "junk";
  EXPECT_THAT(error_message([&] { gunzip(gz, "tail.gz"); }),
              HasSubstr("tail.gz: 4 bytes of trailing garbage after gzip member 1"));
}

TEST(GzipTest, AcceptsConcatenatedMembersLikeGzipDoes) {
  std::string a = random_bytes(1234, 21);
  std::string b = random_bytes(4321, 22);
  EXPECT_EQ(gunzip(gzip(a) + gzip(b) + gzip(""), "members.gz"), a + b);
  // A corrupt second member is still an error.
  std::string second = gzip(b);
  second[second.size() - 8] = static_cast<char>(second[second.size() - 8] ^ 0x10);
  EXPECT_THAT(error_message([&] { gunzip(gzip(a) + second, "members.gz"); }), HasSubstr("incorrect data check"));
}

TEST(GzipTest, EnforcesTheSizeCap) {
  std::string bytes = random_bytes(1000, 31);
  std::string gz = gzip(bytes);
  EXPECT_EQ(gunzip(gz, "cap.gz", 1000), bytes);
  EXPECT_THAT(error_message([&] { gunzip(gz, "cap.gz", 999); }),
              HasSubstr("cap.gz: decompressed data exceeds the limit of 999 bytes"));
  // A small stream that inflates far past the cap (a "zip bomb") stops at the cap.
  std::string bomb = gzip(std::string(std::size_t{64} << 20, 'a'));
  EXPECT_LT(bomb.size(), std::size_t{1} << 20);
  EXPECT_THAT(error_message([&] { gunzip(bomb, "bomb.gz", std::size_t{1} << 20); }),
              HasSubstr("exceeds the limit of 1048576 bytes"));
}

TEST(GzipTest, ReadMaybeGzippedDetectsByMagicNotName) {
  testing::TempDir dir;
  std::string bytes = random_bytes(2048, 41);
  write_file_atomic(dir / "plain.gz", "not compressed, despite the name\n");
  write_file_atomic(dir / "packed.bin", gzip(bytes));
  EXPECT_EQ(read_maybe_gzipped(dir / "packed.bin"), bytes);
  EXPECT_EQ(read_maybe_gzipped(dir / "plain.gz"), "not compressed, despite the name\n");
  EXPECT_THAT(error_message([&] { read_maybe_gzipped(dir / "missing.gz"); }), HasSubstr("missing.gz"));
}

TEST(GzipTest, ReadsRealCompressedDatasets) {
  const std::filesystem::path path = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is not installed";
  std::string gz = read_file(path);
  std::string text = read_maybe_gzipped(path);
  // The compressor recorded the size in the trailer; sklearn documents 1797 digits, one per line.
  EXPECT_EQ(static_cast<std::uint32_t>(text.size()), trailer_size(gz));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1797);
  EXPECT_EQ(gunzip(gzip(text), "again"), text);
}

}  // namespace
}  // namespace hone::io
