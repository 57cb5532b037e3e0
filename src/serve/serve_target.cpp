#include "hone/serve/serve_target.h"

#include "hone/core/device.h"
#include "hone/runtime/pretrained_target.h"

namespace hone::serve {

ServeTarget load_serve_target(const std::string& target, const ServeTargetOptions& options) {
  ServeTarget out;
  if (target != "minilm" && target != runtime::kPretrainedMiniLm) {
    out.model = runtime::load_target(target, options.seq_len);
    return out;
  }
  // The one loader of the pretrained encoder (runtime/pretrained_target.h), with its tokenizer.
  text::SentenceEncoderOptions encoder_options;
  encoder_options.device = parse_device(options.device);
  encoder_options.dtype = parse_dtype(options.dtype);
  runtime::PretrainedEncoder pretrained = runtime::load_pretrained_minilm(encoder_options);
  out.model = std::move(pretrained.target);
  out.model.target = target;
  out.text_encoder = std::move(pretrained.encoder);
  return out;
}

}  // namespace hone::serve
