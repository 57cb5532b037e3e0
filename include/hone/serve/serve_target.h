#pragma once
/// @file What `hone serve` loads: a run directory or zoo model (runtime::load_target) and, for a
/// sentence encoder, the tokenizer that lets the server take text (TEI /embed).
///
/// Why not runtime::load_target alone: a zoo name there means random weights (timing only), but
/// serving `minilm` means serving the real pretrained all-MiniLM-L6-v2 — the same weights,
/// tokenizer and pooling as `hone embed`, so served embeddings can be checked against it.
///
///     ServeTarget target = load_serve_target("minilm", {.device = "cuda", .dtype = "bf16"});
///     ModelService service(std::move(target), options);   // /embed is served
#include <cstdint>
#include <optional>
#include <string>

#include "hone/runtime/target.h"
#include "hone/text/sentence_encoder.h"

namespace hone::serve {

struct ServeTarget {
  runtime::ModelTarget model;
  /// Set for a sentence encoder with its tokenizer: model.model is text_encoder->model_ptr().
  std::optional<text::SentenceEncoder> text_encoder;
};

struct ServeTargetOptions {
  std::string device = "cpu";
  std::string dtype = "fp32";
  /// Zoo token models without a tokenizer: tokens per random input (runtime::load_target's).
  std::int64_t seq_len = 128;
};

/// "minilm" or "minilm-pretrained": the pretrained all-MiniLM-L6-v2 through
/// runtime::load_pretrained_minilm (data::minilm_dir(), HONE_MINILM_DIR), as `hone embed` loads
/// it, on the options' device and dtype; its input shape is the encoder's max length (256 tokens).
/// Serving takes "minilm" for the real encoder too, since serving random weights has no use.
/// Anything else: runtime::load_target. Throws hone::Error naming the missing file (and the
/// package that installs it).
ServeTarget load_serve_target(const std::string& target, const ServeTargetOptions& options = {});

}  // namespace hone::serve
