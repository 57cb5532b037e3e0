#include "hone/core/fs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "hone/core/error.h"
#include "support/temp_dir.h"

namespace hone {
namespace {

using ::testing::HasSubstr;

std::size_t count_files(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

TEST(FsTest, AtomicWriteThenReadRoundTrips) {
  testing::TempDir dir;
  const std::string bytes("hone\0binary\xff", 12);
  write_file_atomic(dir / "a.bin", bytes);
  EXPECT_EQ(read_file(dir / "a.bin"), bytes);
  write_file_atomic(dir / "a.bin", std::string("second"));
  EXPECT_EQ(read_file(dir / "a.bin"), "second");
  EXPECT_EQ(count_files(dir.path()), 1u) << "no temp file may remain";
}

TEST(FsTest, RemoveTreeRemovesNestedEntriesButNotWhatALinkPointsTo) {
  testing::TempDir dir;
  namespace fs = std::filesystem;
  const auto outside = dir / "outside";
  fs::create_directories(outside);
  write_file_atomic(outside / "keep.txt", std::string("kept"));
  const auto tree = dir / "tree";
  fs::create_directories(tree / "a" / "b");
  write_file_atomic(tree / "top.txt", std::string("1"));
  write_file_atomic(tree / "a" / "b" / "deep.txt", std::string("2"));
  fs::create_directory_symlink(outside, tree / "a" / "link");
  EXPECT_TRUE(remove_tree(tree));
  EXPECT_FALSE(fs::exists(tree));
  EXPECT_EQ(read_file(outside / "keep.txt"), "kept") << "a symbolic link is removed, not followed";
  EXPECT_TRUE(remove_tree(tree)) << "a missing path is already removed";
  write_file_atomic(dir / "file.txt", std::string("x"));
  EXPECT_TRUE(remove_tree(dir / "file.txt"));
  EXPECT_FALSE(fs::exists(dir / "file.txt"));
}

TEST(FsTest, FailingWriterLeavesTheOldFileAndNoTempFile) {
  testing::TempDir dir;
  write_file_atomic(dir / "keep.txt", std::string("original"));
  EXPECT_THROW(write_file_atomic(dir / "keep.txt",
                                 [](const std::filesystem::path& temp) {
                                   write_file_atomic(temp, std::string("partial"));
                                   fail("writer broke halfway");
                                 }),
               Error);
  EXPECT_EQ(read_file(dir / "keep.txt"), "original");
  EXPECT_EQ(count_files(dir.path()), 1u);
}

TEST(FsTest, AtomicWriteCreatesParentDirectories) {
  testing::TempDir dir;
  write_file_atomic(dir / "x/y/z.txt", std::string("deep"));
  EXPECT_EQ(read_file(dir / "x/y/z.txt"), "deep");
}

TEST(FsTest, ReadMissingFileNamesThePath) {
  testing::TempDir dir;
  try {
    read_file(dir / "missing.bin");
    FAIL() << "expected hone::Error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("missing.bin"));
  }
}

TEST(FsTest, MappedFileSeesTheBytesAndWritesDoNotReachTheFile) {
  testing::TempDir dir;
  write_file_atomic(dir / "m.bin", std::string("0123456789"));
  MappedFile map(dir / "m.bin");
  ASSERT_EQ(map.size(), 10u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(map.data()), map.size()), "0123456789");
  const_cast<std::byte*>(map.data())[0] = std::byte{'X'};  // copy-on-write mapping
  EXPECT_EQ(read_file(dir / "m.bin"), "0123456789");
  MappedFile moved(std::move(map));
  EXPECT_EQ(moved.size(), 10u);
  EXPECT_EQ(map.size(), 0u);
}

TEST(FsTest, MappedFileRejectsDirectoriesAndMissingFiles) {
  testing::TempDir dir;
  EXPECT_THROW(MappedFile{dir.path()}, Error);
  EXPECT_THROW(MappedFile{dir / "nope"}, Error);
  write_file_atomic(dir / "empty", std::string());
  MappedFile empty(dir / "empty");
  EXPECT_EQ(empty.size(), 0u);
}

}  // namespace
}  // namespace hone
