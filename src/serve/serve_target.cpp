#include "hone/serve/serve_target.h"

#include <filesystem>

#include "hone/core/device.h"
#include "hone/data/paths.h"

namespace hone::serve {
namespace fs = std::filesystem;

ServeTarget load_serve_target(const std::string& target, const ServeTargetOptions& options) {
  ServeTarget out;
  if (target != "minilm") {
    out.model = runtime::load_target(target, options.seq_len);
    return out;
  }
  text::SentenceEncoderOptions encoder_options;
  encoder_options.device = parse_device(options.device);
  encoder_options.dtype = parse_dtype(options.dtype);
  const fs::path dir = data::minilm_dir();
  text::SentenceEncoder encoder = text::SentenceEncoder::load(dir, encoder_options);
  runtime::ModelTarget& model = out.model;
  model.target = target;
  model.model = encoder.model_ptr();
  model.info.name = "all-MiniLM-L6-v2 (pretrained)";
  model.info.task = data::TaskKind::kClassification;
  model.info.input_shape = {encoder.max_length()};
  model.info.vocab_size = encoder.tokenizer().vocab_size();
  const fs::path weights = dir / "model.safetensors";
  model.weights = weights.string();
  std::error_code ec;
  model.file_bytes = static_cast<std::int64_t>(fs::file_size(weights, ec));
  out.text_encoder = std::move(encoder);
  return out;
}

}  // namespace hone::serve
