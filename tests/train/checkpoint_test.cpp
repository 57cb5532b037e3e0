#include "hone/train/train_state.h"

#include "hone/run/checkpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "hone/models/mlp.h"
#include "support/temp_dir.h"

namespace hone::train {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<models::Mlp> small_mlp(std::int64_t hidden = 7) {
  models::MlpConfig c;
  c.in_features = 5;
  c.hidden = {hidden};
  c.out_features = 3;
  c.dropout = 0;  // deterministic steps: the checkpoint test compares two runs step for step
  return std::make_shared<models::Mlp>(c);
}

TEST(CheckpointTest, CheckpointRestoresModelAndOptimizerAndDetectsMixedEpochs) {
  testing::TempDir dir;
  torch::manual_seed(5);
  auto model = small_mlp();
  auto opt = make_optimizer({}, make_param_groups(*model, {}));
  const at::Tensor lr = torch::full({}, 1e-2f);
  for (int i = 0; i < 3; ++i) {
    opt->zero_grad();
    model->forward(torch::randn({4, 5})).pow(2).mean().backward();
    opt->step(lr, {});
  }
  TrainState state;
  state.epochs_done = 2;
  state.global_step = 3;
  state.best_epoch = 2;
  state.best_score = 0.5;
  save_checkpoint(dir.path(), *model, *opt, state);
  ASSERT_TRUE(run::has_checkpoint(dir.path()));

  auto restored = small_mlp();
  auto opt2 = make_optimizer({}, make_param_groups(*restored, {}));
  const TrainState back = load_checkpoint(dir.path(), *restored, *opt2);
  EXPECT_EQ(back.epochs_done, 2);
  EXPECT_EQ(back.global_step, 3);
  // Same next step from both.
  const torch::Tensor x = torch::randn({4, 5});
  opt->zero_grad();
  opt2->zero_grad();
  model->forward(x).pow(2).mean().backward();
  opt->step(lr, {});
  restored->forward(x).pow(2).mean().backward();
  opt2->step(lr, {});
  for (std::size_t i = 0; i < model->parameters().size(); ++i) {
    EXPECT_TRUE(torch::equal(model->parameters()[i], restored->parameters()[i]));
  }

  // A state.json from another epoch than the weights is refused.
  TrainState other = state;
  other.epochs_done = 3;
  write_file_atomic(dir / "checkpoint/state.json", to_json(other).dump());
  EXPECT_THROW(load_checkpoint(dir.path(), *restored, *opt2), Error);
  // A corrupt optimizer file is refused with its name.
  write_file_atomic(dir / "checkpoint/state.json", to_json(state).dump());
  write_file_atomic(dir / "checkpoint/optimizer.safetensors", std::string("garbage"));
  try {
    load_checkpoint(dir.path(), *restored, *opt2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("optimizer.safetensors"));
  }
}

}  // namespace
}  // namespace hone::train
