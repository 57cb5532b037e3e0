#pragma once
/// @file The pretrained all-MiniLM-L6-v2 as a target: the one place that turns a name into the real
/// sentence encoder (the weights, tokenizer and pooling `hone embed` uses, from data::minilm_dir()),
/// so that export, bench, compress and serve load the same model. The zoo's `minilm` stays the
/// architecture with random weights (timing only); `minilm-pretrained` is the real one.
///
///   runtime::ModelTarget t = runtime::load_target("minilm-pretrained");   // export, bench, compress
///   runtime::PretrainedEncoder e = runtime::load_pretrained_minilm({.device = c10::kCUDA});   // + tokenizer
///
/// Its DatasetInfo names `fine-foods-text` (real Amazon fine-food reviews as WordPiece ids in this
/// tokenizer's vocabulary) with no classes: what verifies the encoder on real text (`hone export`
/// compares onnxruntime's embeddings of the test split's reviews with hone's), and what a run
/// compressed from this target records as its dataset, so the compressed run is verified on the
/// same reviews.
#include <cstdint>
#include <string>
#include <string_view>

#include "hone/runtime/target.h"
#include "hone/text/sentence_encoder.h"

namespace hone::runtime {

/// The name runtime::load_target knows for the pretrained all-MiniLM-L6-v2.
inline constexpr std::string_view kPretrainedMiniLm = "minilm-pretrained";

struct PretrainedEncoder {
  ModelTarget target;             ///< target.model is encoder.model_ptr()
  text::SentenceEncoder encoder;  ///< tokenizer, max length, batched encode()
};

/// Loads all-MiniLM-L6-v2 from data::minilm_dir() (HONE_MINILM_DIR) on the options' device and
/// dtype, and registers the text datasets (fine-foods-text). `seq_len` is the timing input's
/// token count (0: the encoder's max length, 256). Throws hone::Error naming a missing file and
/// the package that installs it.
PretrainedEncoder load_pretrained_minilm(const text::SentenceEncoderOptions& options = {}, std::int64_t seq_len = 0);

}  // namespace hone::runtime
