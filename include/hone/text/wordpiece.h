#pragma once
/// @file BERT's WordPiece tokenizer, token-for-token the same as the reference that ships with
/// BERT-family models on the Hugging Face hub (the Rust `tokenizers` pipeline BertNormalizer ->
/// BertPreTokenizer -> WordPiece -> [CLS] ... [SEP], which transformers' BertTokenizer wraps).
///
/// Per text, in the reference's order:
///   1. special tokens written in the text ("[CLS]", "[SEP]", "[MASK]"...) are cut out first and
///      become their ids; the pieces between them go through steps 2-7 separately;
///   2. clean: drop U+0000, U+FFFD and control characters (categories Cc, Cf, Co except tab,
///      newline, carriage return); every White_Space character becomes ' ';
///   3. CJK ideographs (BERT's code point ranges) get a space on each side;
///   4. strip accents: canonical decomposition (NFD), then drop nonspacing marks (category Mn);
///   5. lowercase each code point (full, context-free case mapping);
///   6. split on whitespace, and isolate each punctuation character (ASCII 33-47, 58-64, 91-96,
///      123-126, and categories Pc Pd Ps Pe Pi Pf Po) as a word of its own;
///   7. WordPiece: greedy longest-match-first from the start of each word, continuations prefixed
///      "##"; a word with no match at some position, or longer than max_chars_per_word code points,
///      becomes one [UNK].
/// Unicode data (decomposition, case mapping, categories) comes from utf8proc.
///
/// No torch types here: the tokenizer is plain C++ and thread-safe (every method is const).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hone::text {

/// How BERT's basic tokenization behaves; the defaults are those of uncased BERT models such as
/// all-MiniLM-L6-v2 (tokenizer_config.json: do_lower_case true, tokenize_chinese_chars true,
/// strip_accents null, which follows do_lower_case).
struct WordPieceOptions {
  bool lowercase = true;                  ///< do_lower_case
  bool strip_accents = true;              ///< NFD + drop Mn; Hugging Face's `null` means "same as lowercase"
  bool split_cjk = true;                  ///< tokenize_chinese_chars
  std::int64_t max_chars_per_word = 100;  ///< longer words become [UNK] (max_input_chars_per_word)
  /// Special tokens ([PAD] [UNK] [CLS] [SEP] [MASK]) written literally in a text become their ids,
  /// as in the reference (they are its "added tokens", matched before normalization).
  bool match_special_tokens = true;
};

/// Texts encoded for a model: `rows` x `cols` ids, row-major, each row padded with pad_id() up to
/// the longest row (dynamic padding). lengths[r] counts row r's ids before padding, so the
/// attention mask of row r is 1 for columns < lengths[r].
struct EncodedBatch {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<std::int64_t> ids;
  std::vector<std::int64_t> lengths;
  std::vector<bool> truncated;  ///< row r lost word pieces to max_length
};

class WordPieceTokenizer {
 public:
  /// Reads a BERT vocab.txt: one token per line, id = line number - 1 (a trailing "\r" is ignored).
  /// Throws hone::Error naming the file (and line) for: a missing or unreadable file, an empty file,
  /// an empty line, a line that is not UTF-8, a duplicate token, and a missing [PAD], [UNK], [CLS]
  /// or [SEP].
  static WordPieceTokenizer from_vocab_file(const std::string& path, WordPieceOptions options = {});

  /// The word pieces of a UTF-8 text, without [CLS]/[SEP] and without truncation.
  /// Throws hone::Error naming the byte offset of invalid UTF-8 (this applies to every method below).
  std::vector<std::string> tokenize(std::string_view utf8) const;

  /// The ids of the word pieces of `utf8`, without [CLS]/[SEP] and without truncation.
  std::vector<std::int64_t> tokenize_ids(std::string_view utf8) const;

  /// [CLS] pieces [SEP], at most max_length ids (>= 2): pieces beyond max_length - 2 are dropped
  /// (the reference's truncation of a single text) and *truncated, when given, says so.
  std::vector<std::int64_t> encode(std::string_view utf8, std::int64_t max_length, bool* truncated = nullptr) const;

  /// encode() of each text, padded with pad_id() to the longest row (at least 2 columns when there
  /// is a text; 0 x 0 for none).
  EncodedBatch encode_batch(const std::vector<std::string>& texts, std::int64_t max_length) const;

  std::int64_t vocab_size() const { return static_cast<std::int64_t>(tokens_.size()); }
  std::int64_t pad_id() const { return pad_id_; }
  std::int64_t unk_id() const { return unk_id_; }
  std::int64_t cls_id() const { return cls_id_; }
  std::int64_t sep_id() const { return sep_id_; }
  const WordPieceOptions& options() const { return options_; }

  /// The token of `id`; throws hone::Error when id is outside [0, vocab_size()).
  const std::string& token(std::int64_t id) const;
  /// The id of `token`, if it is in the vocabulary.
  std::optional<std::int64_t> id(std::string_view token) const;

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };
  struct Workspace;
  struct SpecialToken {
    std::u32string text;
    std::int64_t id = 0;
  };

  WordPieceTokenizer() = default;
  void append_ids(std::string_view utf8, Workspace& work, std::vector<std::int64_t>& ids) const;
  void append_segment_ids(std::u32string_view segment, Workspace& work, std::vector<std::int64_t>& ids) const;
  void append_word_ids(Workspace& work, std::vector<std::int64_t>& ids) const;
  std::vector<std::int64_t> encode_with(std::string_view utf8, std::int64_t max_length, Workspace& work,
                                        bool* truncated) const;

  WordPieceOptions options_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, std::int64_t, StringHash, std::equal_to<>> ids_;
  std::vector<SpecialToken> special_tokens_;
  std::int64_t pad_id_ = 0;
  std::int64_t unk_id_ = 0;
  std::int64_t cls_id_ = 0;
  std::int64_t sep_id_ = 0;
};

}  // namespace hone::text
