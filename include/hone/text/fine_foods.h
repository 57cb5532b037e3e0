#pragma once
/// @file The downstream text task: Amazon fine-food reviews (r-cran-modeldata's small_fine_foods,
/// exported by the set-up), label "great" or "other", as frozen all-MiniLM-L6-v2 sentence
/// embeddings, computed once per machine and encoder and cached beside the exported reviews.
///
/// The encoder can be changed before it embeds (FineFoodsEncoder::transform): layers above this
/// module register variants that way — compress registers `fine-foods-int8` and
/// `fine-foods-2of4` (hone/compress/encoder_datasets.h) — so text never depends on compress.
///
///   text::register_text_datasets();                       // adds "fine-foods" to the registry
///   data::LoadedData d = data::load_dataset("fine-foods");
#include <functional>
#include <string>
#include <vector>

#include "hone/data/datasets.h"
#include "hone/text/sentence_encoder.h"

namespace hone::text {

/// Which encoder embeds the reviews.
struct FineFoodsEncoder {
  std::string dataset;       ///< the dataset's registry name, e.g. "fine-foods-int8"
  std::string cache_prefix;  ///< cache files <prefix>-<split>.safetensors, e.g. "minilm-int8"
  std::string features;      ///< what the features are, for the run's provenance
  std::string tag;           ///< "" for the fp32 encoder, else what changed it (part of the cache key)
  /// Applied to the fp32 encoder (loaded on the CPU) before it embeds; empty for the fp32 encoder.
  std::function<void(SentenceEncoder&)> transform;
};

/// The fp32 encoder's variant ("fine-foods").
FineFoodsEncoder fine_foods_fp32_encoder();

data::DatasetInfo fine_foods_info(const FineFoodsEncoder& encoder);
data::LoadedData load_fine_foods(const data::DataOptions& options, const FineFoodsEncoder& encoder);

/// fine-foods-text: the same reviews and splits as WordPiece token ids [128] (all-MiniLM-L6-v2's
/// vocabulary, [PAD]-padded, longer reviews truncated), for fine-tuning the encoder itself:
/// `hone train -m minilm -d fine-foods-text`.
data::DatasetInfo fine_foods_text_info();

/// The review texts of a split as exported by the set-up ("train" or "test": the files' own
/// splits, in file order, before fine-foods' validation shuffle), for real text inputs outside the
/// datasets (serve's verification sentences and /embed request bodies). Throws hone::Error naming
/// the file when it is missing or malformed.
std::vector<std::string> load_fine_foods_texts(const std::string& split);

/// Registers "fine-foods" and "fine-foods-text" in the data registry (once; later calls do nothing).
void register_text_datasets();

}  // namespace hone::text
