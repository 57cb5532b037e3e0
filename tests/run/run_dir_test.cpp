#include "hone/run/run_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/core/error.h"
#include "hone/core/fs.h"
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
