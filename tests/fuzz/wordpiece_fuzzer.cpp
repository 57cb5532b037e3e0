// The WordPiece tokenizer: arbitrary bytes as text, through all-MiniLM-L6-v2's real vocabulary
// (data::minilm_dir()/vocab.txt). An input that starts with "VOCAB\n" is instead read as a
// vocab.txt file, so the vocabulary reader is fuzzed too.
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "fuzz_target.h"
#include "hone/data/paths.h"
#include "hone/text/wordpiece.h"

namespace {

const hone::text::WordPieceTokenizer& minilm_tokenizer() {
  static const auto tokenizer = [] {
    try {
      return std::make_unique<hone::text::WordPieceTokenizer>(
          hone::text::WordPieceTokenizer::from_vocab_file((hone::data::minilm_dir() / "vocab.txt").string()));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "wordpiece fuzzer needs the MiniLM vocabulary (make setup): %s\n", e.what());
      std::exit(77);
    }
  }();
  return *tokenizer;
}

void fuzz_vocab_file(std::string_view bytes) {
  const int fd = memfd_create("fuzz-vocab.txt", 0);
  if (fd < 0 || write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) std::abort();
  hone::fuzz::expect_rejection_only([&] {
    const auto tokenizer = hone::text::WordPieceTokenizer::from_vocab_file("/proc/self/fd/" + std::to_string(fd));
    tokenizer.encode("hone fuzzes its readers", 16);
  });
  close(fd);
}

}  // namespace

HONE_FUZZ_TARGET(wordpiece) {
  const std::string_view input = hone::fuzz::as_view(data, size);
  constexpr std::string_view kVocabMode = "VOCAB\n";
  if (input.starts_with(kVocabMode)) {
    fuzz_vocab_file(input.substr(kVocabMode.size()));
    return 0;
  }
  const auto& tokenizer = minilm_tokenizer();
  hone::fuzz::expect_rejection_only([&] {
    const auto pieces = tokenizer.tokenize(input);
    const auto ids = tokenizer.tokenize_ids(input);
    if (pieces.size() != ids.size()) std::abort();
    for (const auto id : ids)
      if (id < 0 || id >= tokenizer.vocab_size()) std::abort();
    bool truncated = false;
    const auto encoded = tokenizer.encode(input, 16, &truncated);
    if (encoded.size() > 16 || encoded.size() < 2) std::abort();
    tokenizer.encode_batch({std::string(input), std::string(input.substr(0, input.size() / 2))}, 32);
  });
  return 0;
}
