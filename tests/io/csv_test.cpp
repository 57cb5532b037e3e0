#include "hone/io/csv.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
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

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Rows = std::vector<std::vector<std::string>>;

using hone::testing::error_message;

TEST(CsvTest, ParsesHeaderAndRows) {
  CsvTable table = parse_csv("a,b,c\n1,2,3\n4,5,6\n", "t.csv");
  EXPECT_EQ(table.source, "t.csv");
  EXPECT_THAT(table.header, ElementsAre("a", "b", "c"));
  EXPECT_EQ(table.rows, (Rows{{"1", "2", "3"}, {"4", "5", "6"}}));
  EXPECT_THAT(table.line_numbers, ElementsAre(2, 3));
}

TEST(CsvTest, HandlesRfc4180Quoting) {
  std::string text =
      "name,note\n"
      "\"x, y\",\"he said \"\"hi\"\"\"\n"
      "\"multi\nline\",\"\"\n"
      "plain,\"a\"\"\"\n";
  CsvTable table = parse_csv(text, "q.csv");
  EXPECT_EQ(table.rows, (Rows{{"x, y", "he said \"hi\""}, {"multi\nline", ""}, {"plain", "a\""}}));
  // The quoted newline moves the next row's line number on.
  EXPECT_THAT(table.line_numbers, ElementsAre(2, 3, 5));
}

TEST(CsvTest, ToleratesCrlfAndAMissingFinalNewline) {
  CsvTable crlf = parse_csv("a,b\r\n1,\"x\r\ny\"\r\n3,4", "crlf.csv");
  EXPECT_THAT(crlf.header, ElementsAre("a", "b"));
  EXPECT_EQ(crlf.rows, (Rows{{"1", "x\r\ny"}, {"3", "4"}}));
  EXPECT_THAT(crlf.line_numbers, ElementsAre(2, 4));
  EXPECT_THAT(error_message([] { parse_csv("a,b\r1,2\n", "cr.csv"); }), HasSubstr("cr.csv:1: stray carriage return"));
}

TEST(CsvTest, EmptyFieldsAndTrailingDelimiters) {
  CsvTable table = parse_csv("a,b,c\n,,\n1,,\n", "e.csv");
  EXPECT_EQ(table.rows, (Rows{{"", "", ""}, {"1", "", ""}}));
  CsvTable last = parse_csv("a,b\n1,", "end.csv");
  EXPECT_EQ(last.rows, (Rows{{"1", ""}}));
}

TEST(CsvTest, BlankLinesAtTheEndAreIgnoredButNotInside) {
  CsvTable table = parse_csv("a\n1\n2\n\n\r\n\n", "b.csv");
  EXPECT_EQ(table.rows.size(), 2U);
  EXPECT_THAT(error_message([] { parse_csv("a,b\n1,2\n\n3,4\n", "gap.csv"); }),
              HasSubstr("gap.csv:3: blank line inside the data"));
}

TEST(CsvTest, RejectsRaggedRowsWithTheLine) {
  EXPECT_THAT(error_message([] { parse_csv("a,b\n1,2\n3\n", "r.csv"); }),
              HasSubstr("r.csv:3: expected 2 fields, got 1"));
  EXPECT_THAT(error_message([] { parse_csv("a,b\n\"1\n2\",2\n3,4,5\n", "r.csv"); }),
              HasSubstr("r.csv:4: expected 2 fields, got 3"));
  CsvOptions no_header;
  no_header.header = false;
  EXPECT_THAT(error_message([&] { parse_csv("1,2,3\n4,5\n", "n.csv", no_header); }),
              HasSubstr("n.csv:2: expected 3 fields, got 2"));
}

TEST(CsvTest, RejectsMalformedQuoting) {
  EXPECT_THAT(error_message([] { parse_csv("a,b\n1,\"open\n2,3\n", "u.csv"); }),
              HasSubstr("u.csv:4: unterminated quoted field (opened at line 2)"));
  EXPECT_THAT(error_message([] { parse_csv("a,b\n1,x\"y\n", "i.csv"); }),
              HasSubstr("i.csv:2: quote inside an unquoted field"));
  EXPECT_THAT(error_message([] { parse_csv("a,b\n\"ab\"c,d\n", "j.csv"); }),
              HasSubstr("j.csv:2: unexpected character 'c' after the closing quote"));
}

TEST(CsvTest, SkipsLinesAndNamesColumnsWithoutHeader) {
  CsvOptions options;
  options.skip_lines = 1;
  CsvTable table = parse_csv("150,4,setosa\na,b\n1,2\n", "s.csv", options);
  EXPECT_THAT(table.header, ElementsAre("a", "b"));
  EXPECT_THAT(table.line_numbers, ElementsAre(3));

  options.header = false;
  CsvTable bare = parse_csv("skip me\n1;2\n", "s.csv", {.delimiter = ';', .header = false, .skip_lines = 1});
  EXPECT_THAT(bare.header, ElementsAre("c0", "c1"));
  EXPECT_EQ(bare.rows, (Rows{{"1", "2"}}));

  options.skip_lines = 5;
  EXPECT_THAT(error_message([&] { parse_csv("x\ny\n", "few.csv", options); }),
              HasSubstr("few.csv: cannot skip 5 lines: the file has only 2"));
}

TEST(CsvTest, EmptyInputAndBom) {
  EXPECT_THAT(error_message([] { parse_csv("", "empty.csv"); }), HasSubstr("empty.csv: empty CSV: no header line"));
  CsvOptions no_header;
  no_header.header = false;
  CsvTable nothing = parse_csv("", "empty.csv", no_header);
  EXPECT_TRUE(nothing.rows.empty());
  CsvTable bom = parse_csv(
      "\xEF\xBB\xBF"
      "a,b\n1,2\n",
      "bom.csv");
  EXPECT_THAT(bom.header, ElementsAre("a", "b"));
}

TEST(CsvTest, TabDelimiterKeepsCommasInFields) {
  CsvTable table = parse_csv("a\tb\n1,5\t2\n", "t.tsv", {.delimiter = '\t'});
  EXPECT_EQ(table.rows, (Rows{{"1,5", "2"}}));
  EXPECT_THAT(error_message([] { parse_csv("a\n", "d.csv", {.delimiter = '"'}); }), HasSubstr("invalid CSV delimiter"));
}

TEST(CsvTest, ToTensorIsFloat64InColumnOrder) {
  CsvTable table = parse_csv("x,y,z\n1.5,-2,3e2\n4,nan,-0.25\n", "n.csv");
  at::Tensor all = table.to_tensor();
  EXPECT_EQ(all.scalar_type(), at::kDouble);
  EXPECT_EQ(all.sizes(), at::IntArrayRef({2, 3}));
  EXPECT_EQ(all[0][2].item<double>(), std::strtod("3e2", nullptr));
  EXPECT_TRUE(std::isnan(all[1][1].item<double>()));
  at::Tensor picked = table.to_tensor({2, 0});
  EXPECT_TRUE(at::equal(picked, at::stack({all.select(1, 2), all.select(1, 0)}, 1)));
  EXPECT_EQ(table.to_tensor(std::vector<std::size_t>{}).sizes(), at::IntArrayRef({2, 0}));
  EXPECT_THAT(error_message([&] { table.to_tensor({3}); }), HasSubstr("n.csv: column index 3 is out of range"));
}

TEST(CsvTest, ToTensorNamesTheBadCell) {
  CsvTable table = parse_csv("a,b\n1,2\n3,12abc\n", "bad.csv");
  EXPECT_THAT(error_message([&] { table.to_tensor(); }), HasSubstr("bad.csv:3: column 'b': '12abc' is not a number"));
  EXPECT_NO_THROW(table.to_tensor({0}));
  CsvTable empty_cell = parse_csv("a,b\n1,\n", "gap.csv");
  EXPECT_THAT(error_message([&] { empty_cell.to_tensor(); }), HasSubstr("gap.csv:2: column 'b': '' is not a number"));
}

TEST(CsvTest, ColumnIndexNamesTheColumns) {
  CsvTable table = parse_csv("a,b,a\n1,2,3\n", "c.csv");
  EXPECT_EQ(table.column_index("b"), 1U);
  EXPECT_THAT(error_message([&] { table.column_index("z"); }), HasSubstr("c.csv: no column 'z' (columns: a, b, a)"));
  EXPECT_THAT(error_message([&] { table.column_index("a"); }), HasSubstr("'a' is ambiguous: it appears 2 times"));
}

TEST(CsvTest, ParseNumberAcceptsWholeNumbersWithSurroundingBlanks) {
  // Expected values come from strtod on the trimmed text (the C library as reference).
  for (std::string text : {"1", "-2.5", "1e3", "-1.25E-3", ".5", "5.", "0", "-0", "123456789012345678"}) {
    for (const std::string& padded : {text, " " + text, text + " ", "\t" + text + "  "}) {
      double value = 0;
      ASSERT_TRUE(parse_number(padded, value)) << "'" << padded << "'";
      EXPECT_EQ(value, std::strtod(text.c_str(), nullptr)) << padded;
    }
  }
  double value = 0;
  ASSERT_TRUE(parse_number("+3.5", value));
  EXPECT_EQ(value, 3.5);
  ASSERT_TRUE(parse_number("nan", value));
  EXPECT_TRUE(std::isnan(value));
  ASSERT_TRUE(parse_number("-inf", value));
  EXPECT_TRUE(std::isinf(value) && value < 0);
  ASSERT_TRUE(parse_number("Infinity", value));
  EXPECT_TRUE(std::isinf(value) && value > 0);
}

TEST(CsvTest, ParseNumberRejectsPartialEmptyAndOddInput) {
  for (const char* text :
       {"", " ", "\t ", "12abc", "abc", "1 2", "0x10", "--1", "+-1", "++1", "+", "-", "1e", "e5", "1,5", "1e999",
        "\xC2\xA0"
        "1"}) {
    double value = 42.0;
    EXPECT_FALSE(parse_number(text, value)) << "'" << text << "'";
    EXPECT_EQ(value, 42.0) << "a failed parse must leave the value alone";
  }
}

TEST(CsvTest, ReadsPlainAndGzippedFiles) {
  testing::TempDir dir;
  std::string text = "a,b\n1,2\n3,4\n";
  write_file_atomic(dir / "t.csv", text);
  write_file_atomic(dir / "t.csv.gz", gzip(text));
  CsvTable plain = read_csv(dir / "t.csv");
  CsvTable packed = read_csv(dir / "t.csv.gz");
  EXPECT_EQ(plain.rows, packed.rows);
  EXPECT_EQ(packed.source, (dir / "t.csv.gz").string());
  write_file_atomic(dir / "bad.csv", "a,b\n1,2\n3\n");
  EXPECT_THAT(error_message([&] { read_csv(dir / "bad.csv"); }),
              HasSubstr((dir / "bad.csv").string() + ":3: expected 2 fields, got 1"));
}

TEST(CsvTest, ReadsRealSklearnDigits) {
  const std::filesystem::path path = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is not installed";
  CsvTable table = read_csv(path, {.header = false});
  // sklearn's documentation: 1797 8x8 images with pixel values 0..16, then the label 0..9.
  ASSERT_EQ(table.rows.size(), 1797U);
  ASSERT_EQ(table.header.size(), 65U);
  at::Tensor data = table.to_tensor();
  ASSERT_EQ(data.sizes(), at::IntArrayRef({1797, 65}));
  at::Tensor pixels = data.slice(1, 0, 64);
  at::Tensor labels = data.select(1, 64);
  EXPECT_TRUE(at::equal(pixels, pixels.round()));
  EXPECT_GE(pixels.min().item<double>(), 0);
  EXPECT_LE(pixels.max().item<double>(), 16);
  EXPECT_TRUE(at::equal(labels, labels.round()));
  at::Tensor counts = at::bincount(labels.to(at::kLong), {}, 10);
  EXPECT_EQ(counts.size(0), 10);
  EXPECT_TRUE(counts.gt(0).all().item<bool>()) << "every digit occurs";
  EXPECT_EQ(table.line_numbers.back(), 1797U);
}

}  // namespace
}  // namespace hone::io
