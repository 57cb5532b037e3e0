#include "hone/runtime/target.h"

#include <torch/utils.h>

#include <filesystem>

#include "hone/core/error.h"
#include "hone/data/datasets.h"
#include "hone/data/paths.h"
#include "hone/models/registry.h"
#include "hone/run/run_dir.h"
#include "hone/runtime/pretrained_target.h"
#include "hone/text/fine_foods.h"

namespace hone::runtime {
namespace fs = std::filesystem;
namespace {

/// Which dataset's shapes a zoo model is timed on when no run directory gives one.
data::DatasetInfo default_inputs_for(const std::string& architecture, std::int64_t seq_len) {
  if (architecture == "minilm") {
    HONE_CHECK(seq_len >= 1, "sequence length must be >= 1, got {}", seq_len);
    data::DatasetInfo info;
    info.name = "random token ids";
    info.task = data::TaskKind::kClassification;
    info.input_shape = {seq_len};
    info.vocab_size = 30522;  // all-MiniLM-L6-v2's WordPiece vocabulary
    return info;
  }
  const bool forecaster = architecture == "lstm" || architecture == "attention";
  return data::describe_dataset(forecaster ? "goldsilver" : "fashion-mnist");
}

}  // namespace

PretrainedEncoder load_pretrained_minilm(const text::SentenceEncoderOptions& options, std::int64_t seq_len) {
  HONE_CHECK(seq_len >= 0, "sequence length must be >= 0, got {}", seq_len);
  text::register_text_datasets();
  const fs::path dir = data::minilm_dir();
  text::SentenceEncoder encoder = text::SentenceEncoder::load(dir, options);
  ModelTarget target;
  target.target = std::string(kPretrainedMiniLm);
  target.model = encoder.model_ptr();
  // The reviews as token ids, without the dataset's great/other labels: the encoder's outputs are
  // embeddings, and those reviews are what it is verified on.
  target.info = text::fine_foods_text_info();
  target.info.num_classes = 0;
  target.info.class_names.clear();
  target.info.input_shape = {seq_len > 0 ? seq_len : encoder.max_length()};
  target.info.vocab_size = encoder.tokenizer().vocab_size();
  const fs::path weights = dir / "model.safetensors";
  target.weights = weights.string();
  std::error_code ec;
  target.file_bytes = static_cast<std::int64_t>(fs::file_size(weights, ec));
  return {std::move(target), std::move(encoder)};
}

ModelTarget load_target(const std::string& target, std::int64_t seq_len) {
  if (target == kPretrainedMiniLm) return load_pretrained_minilm({}, seq_len).target;
  // A run compressed from the pretrained encoder records fine-foods-text as its dataset.
  text::register_text_datasets();
  ModelTarget result;
  result.target = target;
  std::error_code ec;
  if (target.find('/') != std::string::npos && !fs::is_directory(target, ec)) {
    fail("no run directory at '{}' (training writes one; zoo model names have no '/')", target);
  }
  if (fs::is_directory(target, ec)) {
    const run::RunConfig config = run::load_run_config(target);
    result.model = run::load_run_model(target);
    // A run compressed from a zoo name (random weights) has no real dataset: it takes the zoo
    // model's inputs (token ids for minilm).
    result.info = data::is_dataset(config.dataset) ? data::describe_dataset(config.dataset, config.data_options)
                                                   : default_inputs_for(config.architecture, seq_len);
    const fs::path weights = fs::path(target) / "model.safetensors";
    result.file_bytes = static_cast<std::int64_t>(fs::file_size(weights));
    result.weights = weights.string();
    return result;
  }
  const models::ModelEntry& entry = models::find_model(target);  // UsageError listing names if unknown
  torch::manual_seed(0);
  result.info = default_inputs_for(entry.name, seq_len);
  result.model = models::make_model(entry.name, result.info);
  result.weights = "random (timing only)";
  return result;
}

}  // namespace hone::runtime
