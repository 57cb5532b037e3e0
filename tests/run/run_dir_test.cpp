#include "hone/run/run_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "hone/io/safetensors.h"
#include "hone/models/mlp.h"
#include "hone/models/resnet_cnn.h"
#include "support/temp_dir.h"

namespace hone::run {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<models::Mlp> small_mlp(std::int64_t hidden = 7) {
  models::MlpConfig c;
  c.in_features = 5;
  c.hidden = {hidden};
  c.out_features = 3;
  c.dropout = 0;
  return std::make_shared<models::Mlp>(c);
}

TEST(RunDirTest, SparseStorageShrinksAMostlyZeroModelAndRestoresItExactly) {
  testing::TempDir dir;
  torch::manual_seed(3);
  auto a = small_mlp(200);  // fc weights [200, 5] and [3, 200]: 1000 and 600 values
  {
    torch::NoGradGuard no_grad;
    for (auto& p : a->parameters())
      if (p.dim() == 2) p.mul_(torch::rand(p.sizes()).lt(0.1).to(p.dtype()));  // ~90 % zeros
  }
  save_weights(dir / "dense.safetensors", *a, {}, WeightStorage::kDense);
  const auto metadata = std::map<std::string, std::string>{{"note", "sparse"}};
  save_weights(dir / "sparse.safetensors", *a, metadata, WeightStorage::kSparse);
  const auto dense_bytes = std::filesystem::file_size(dir / "dense.safetensors");
  const auto sparse_bytes = std::filesystem::file_size(dir / "sparse.safetensors");
  EXPECT_LT(static_cast<double>(sparse_bytes), 0.7 * static_cast<double>(dense_bytes))
      << dense_bytes << " -> " << sparse_bytes;
  auto b = small_mlp(200);
  EXPECT_EQ(load_weights(dir / "sparse.safetensors", *b).at("note"), "sparse");
  for (std::size_t i = 0; i < a->parameters().size(); ++i)
    EXPECT_TRUE(torch::equal(a->parameters()[i], b->parameters()[i])) << "parameter " << i;

  // A file whose mask keeps more values than it stores is refused, naming the tensor.
  const auto bits = torch::full({125}, 255, torch::kByte);  // 1000 bits set
  io::save_safetensors(dir / "lying.safetensors",
                       {{"net.0.weight::values", torch::ones({10})}, {"net.0.weight::mask", bits}},
                       {{"hone_sparse", R"({"net.0.weight": [200, 5]})"}});
  try {
    load_weights(dir / "lying.safetensors", *b);
    ADD_FAILURE() << "a lying sparse tensor loaded";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("net.0.weight"));
    EXPECT_THAT(e.what(), HasSubstr("keeps 1000 values but 10 are stored"));
  }
}

TEST(RunDirTest, WeightsRoundTripIncludingBuffers) {
  testing::TempDir dir;
  torch::manual_seed(1);
  models::ResNetCnnConfig c;
  c.widths = {4, 6};
  auto a = std::make_shared<models::ResNetCnn>(c);
  a->train();
  a->forward(torch::randn({3, 1, 9, 9}));  // moves BatchNorm running statistics off their defaults
  save_weights(dir / "w.safetensors", *a, {{"note", "x"}});
  torch::manual_seed(2);
  auto b = std::make_shared<models::ResNetCnn>(c);
  const auto metadata = load_weights(dir / "w.safetensors", *b);
  EXPECT_EQ(metadata.at("note"), "x");
  a->eval();
  b->eval();
  const torch::Tensor x = torch::randn({2, 1, 9, 9});
  EXPECT_TRUE(torch::equal(a->forward(x), b->forward(x)));
}

TEST(RunDirTest, StrictLoadNamesMissingExtraAndMisshapenTensors) {
  testing::TempDir dir;
  auto a = small_mlp(7);
  save_weights(dir / "w.safetensors", *a);
  auto wider = small_mlp(8);
  try {
    load_weights(dir / "w.safetensors", *wider);
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("shape"));
  }
  models::MlpConfig deeper;
  deeper.in_features = 5;
  deeper.hidden = {7, 7};
  deeper.out_features = 3;
  auto d = std::make_shared<models::Mlp>(deeper);
  EXPECT_THROW(load_weights(dir / "w.safetensors", *d), Error);
}

TEST(RunDirTest, RunConfigRoundTripsAndRejectsForeignFiles) {
  testing::TempDir dir;
  RunConfig c;
  c.architecture = "mlp";
  c.model_config = small_mlp()->config();
  c.dataset = "digits";
  c.data_options.window = 12;
  c.data_options.limit = 34;
  save_run_config(dir.path(), c);
  const RunConfig back = load_run_config(dir.path());
  EXPECT_EQ(back.architecture, "mlp");
  EXPECT_EQ(back.model_config, c.model_config);
  EXPECT_EQ(back.data_options.window, 12);
  EXPECT_EQ(back.data_options.limit, 34);

  write_file_atomic(dir / "config.json", std::string("{\"format\": \"something-else\"}"));
  EXPECT_THROW(load_run_config(dir.path()), Error);
  write_file_atomic(dir / "config.json", std::string("{not json"));
  try {
    load_run_config(dir.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("config.json"));
  }
  EXPECT_THROW(load_run_config(dir / "nope"), Error);
}

}  // namespace
}  // namespace hone::run
