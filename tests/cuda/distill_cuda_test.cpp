// The passes that train, on the GPU: compress --device cuda trains the student there (the cached
// teacher outputs and the pruning masks follow the weights to the device) and hands back a CPU
// model that reloads like any compressed run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/compress/compress.h"
#include "hone/core/device.h"
#include "hone/run/run_dir.h"
#include "hone/train/evaluate.h"
#include "hone/train/trainer.h"
#include "support/temp_dir.h"

namespace hone::compress {
namespace {

TEST(DistillCudaTest, DistillAndGradualPruningTrainOnTheGpuAndReloadOnTheCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  testing::TempDir dir("hone-distill-cuda");
  train::TrainOptions o;
  o.model = "mlp";
  o.data = "digits";
  o.model_overrides = {{"hidden", {64}}};
  o.epochs = 8;
  o.batch_size = 32;
  o.learning_rate = 3e-3;
  o.workers = 0;
  o.progress = false;
  o.out_dir = dir / "teacher";
  train::train(o);

  CompressOptions c;
  c.source = (dir / "teacher").string();
  c.recipe = parse_recipe({{"passes",
                            {{{"pass", "prune_magnitude"}, {"amount", 0.7}},
                             {{"pass", "distill"}, {"epochs", 3}, {"batch_size", 32}, {"lr", 3e-3}},
                             {{"pass", "prune_gradual"},
                              {"target_sparsity", 0.8},
                              {"epochs", 6},
                              {"frequency", 10},
                              {"batch_size", 32},
                              {"lr", 2e-3}}}}},
                          "test");
  c.output = dir / "student";
  c.device = "cuda";
  c.measure = false;
  const auto report = compress_model(c);
  ASSERT_EQ(report.passes.size(), 3u);
  EXPECT_EQ(report.passes[1].details["training"]["epochs"].size(), 3u);

  auto model = run::load_run_model(dir / "student");
  const auto data = data::load_dataset("digits", {});
  const double accuracy = train::evaluate(*model, data.val, data.info.task, "val", c10::kCPU).score();
  // CPU and GPU kernels sum in another order: a near-tie may flip one or two of the 360 samples.
  EXPECT_NEAR(accuracy, report.passes[2].details["training"]["best_val_score"].get<double>(), 0.006)
      << "the GPU-trained weights came back to the CPU as they were scored";
  EXPECT_GT(accuracy, 0.85) << report.passes[1].details["training"].dump() << "\n"
                            << report.passes[2].details["training"].dump();
  std::int64_t n = 0, zeros = 0;
  for (const auto& p : model->parameters()) {
    if (p.dim() < 2) continue;
    n += p.numel();
    zeros += p.numel() - p.count_nonzero().item<std::int64_t>();
  }
  EXPECT_NEAR(static_cast<double>(zeros) / static_cast<double>(n), 0.8, 0.01);
}

}  // namespace
}  // namespace hone::compress
