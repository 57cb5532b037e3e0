// Fine-tuning MiniLM: the fine-foods-text dataset (the real reviews as WordPiece ids) and the
// classifier that starts from the pretrained all-MiniLM-L6-v2.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "hone/core/error.h"
#include "hone/data/datasets.h"
#include "hone/data/paths.h"
#include "hone/models/bert_encoder.h"
#include "hone/models/registry.h"
#include "hone/text/fine_foods.h"
#include "hone/text/sentence_encoder.h"
#include "hone/train/pretrained.h"
#include "hone/train/trainer.h"
#include "support/temp_dir.h"

namespace hone::text {
namespace {

namespace fs = std::filesystem;

/// The reviews of one exported split, in file order.
std::vector<std::string> review_texts(const std::string& split) {
  std::ifstream in(data::exported_data_dir() / "fine-foods" / (split + ".tsv"));
  std::vector<std::string> texts;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) texts.push_back(line.substr(line.find('\t') + 1));
  return texts;
}

TEST(FineFoodsTextTest, TheReviewsAreWordPieceIdsOfTheModelsVocabulary) {
  register_text_datasets();
  const data::LoadedData d = data::load_dataset("fine-foods-text");
  const auto tokenizer = WordPieceTokenizer::from_vocab_file((data::minilm_dir() / "vocab.txt").string());
  EXPECT_EQ(d.info.vocab_size, tokenizer.vocab_size());
  EXPECT_EQ(d.info.input_shape, (std::vector<std::int64_t>{128}));
  const auto& test = d.test.dataset;
  const auto texts = review_texts("test");
  ASSERT_EQ(test.count(), static_cast<std::int64_t>(texts.size()));
  EXPECT_EQ(d.train.dataset.count() + d.val.dataset.count(), static_cast<std::int64_t>(review_texts("train").size()));
  // The test split keeps the file's order: row i is review i, encoded and padded.
  for (const std::size_t i : {std::size_t{0}, texts.size() / 2, texts.size() - 1}) {
    const auto ids = tokenizer.encode(texts[i], 128);
    const at::Tensor row = test.inputs()[static_cast<std::int64_t>(i)];
    for (std::size_t t = 0; t < 128; ++t) {
      const std::int64_t want = t < ids.size() ? ids[t] : tokenizer.pad_id();
      ASSERT_EQ(row[static_cast<std::int64_t>(t)].item<std::int64_t>(), want) << "review " << i << " token " << t;
    }
  }
  const at::Tensor labels = d.train.dataset.targets();
  EXPECT_TRUE(labels.ge(0).logical_and(labels.le(1)).all().item<bool>());
  EXPECT_GT(labels.sum().item<std::int64_t>(), 0) << "both classes occur";
}

TEST(FineFoodsTextTest, TheClassifierStartsFromThePretrainedEncoderAndKeepsItsHead) {
  ASSERT_TRUE(fs::is_regular_file(data::minilm_dir() / "model.safetensors")) << "run `make setup`";
  torch::manual_seed(0);
  models::ModelPtr model = models::make_model("minilm", fine_foods_text_info());
  auto& bert = dynamic_cast<models::BertEncoder&>(*model);
  ASSERT_EQ(bert.bert_config().num_classes, 2);
  const at::Tensor head_before = bert.named_parameters()["head.weight"].detach().clone();
  const auto pretrained = train::initialize_weights(*model, "auto");
  ASSERT_TRUE(pretrained.has_value());
  EXPECT_EQ(pretrained->prefixes, (std::vector<std::string>{"embeddings.", "layers."}));
  const SentenceEncoder reference = SentenceEncoder::load(data::minilm_dir());
  auto mine = bert.named_parameters();
  for (const auto& item : reference.model().named_parameters()) {
    ASSERT_TRUE(mine.contains(item.key())) << item.key();
    EXPECT_TRUE(torch::equal(mine[item.key()], item.value())) << item.key() << " is not the pretrained weight";
  }
  EXPECT_TRUE(torch::equal(mine["head.weight"], head_before)) << "the new head keeps its initialization";
  model->eval();
  const at::Tensor ids = torch::tensor({{101, 2023, 2003, 2204, 102, 0}}, torch::kLong);
  const at::Tensor logits = model->forward(ids);
  EXPECT_EQ(logits.sizes(), (c10::IntArrayRef{1, 2}));
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());

  torch::manual_seed(0);
  models::ModelPtr random = models::make_model("minilm", fine_foods_text_info());
  EXPECT_FALSE(train::initialize_weights(*random, "random").has_value());
  models::BertEncoderConfig small;
  small.num_layers = 3;
  models::BertEncoder other(small);
  EXPECT_THROW(load_pretrained_bert(other, data::minilm_dir()), Error) << "another BERT's sizes";
}

TEST(FineFoodsTextTest, AShortFineTuningRunTrainsAndSavesAReloadableClassifier) {
  register_text_datasets();  // ctest runs each test in its own process
  testing::TempDir dir;
  train::TrainOptions o;
  o.model = "minilm";
  o.data = "fine-foods-text";
  o.data_options.limit = 48;
  o.epochs = 1;
  o.batch_size = 16;
  o.max_steps_per_epoch = 3;
  o.workers = 0;
  o.out_dir = dir / "ff";
  o.progress = false;
  const train::TrainResult r = train::train(o);
  ASSERT_EQ(r.state.history.size(), 1u);
  EXPECT_EQ(r.state.history[0].steps, 3);
  EXPECT_TRUE(std::isfinite(r.state.history[0].train_loss));
  EXPECT_LT(r.state.history[0].first_step_loss, 2.0) << "two classes from a pretrained encoder start near ln 2";
  const auto config = nlohmann::json::parse(std::ifstream(dir / "ff" / "config.json"));
  EXPECT_EQ(config["train_options"]["initial_weights"], data::minilm_dir().string());
  EXPECT_TRUE(fs::is_regular_file(dir / "ff" / "model.safetensors"));
}

}  // namespace
}  // namespace hone::text
