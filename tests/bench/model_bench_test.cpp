#include "hone/bench/model_bench.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/core/error.h"
#include "hone/models/registry.h"
#include "hone/train/trainer.h"
#include "support/temp_dir.h"

namespace hone::bench {
namespace {

TEST(ModelBenchTest, ParsesBatchLists) {
  EXPECT_EQ(parse_batch_list("1,8,64"), (std::vector<std::int64_t>{1, 8, 64}));
  EXPECT_EQ(parse_batch_list("256"), (std::vector<std::int64_t>{256}));
  for (const char* bad : {"", "0", "1,,2", "8x", "-1", "1,a"}) EXPECT_THROW(parse_batch_list(bad), UsageError) << bad;
}

TEST(ModelBenchTest, ZooModelReportsEveryBatchAndCountsFlopsByHand) {
  BenchOptions options;
  options.batches = {1, 3};
  options.warmup = 1;
  options.iterations = 4;
  const BenchReport r = bench_model("mlp", options);
  ASSERT_EQ(r.results.size(), 2u);
  EXPECT_EQ(r.input_shape, (std::vector<std::int64_t>{1, 28, 28}));
  // Default MLP on Fashion-MNIST shapes: 784 -> 256 -> 128 -> 10, a multiply-add = 2 FLOPs.
  EXPECT_EQ(r.flops_per_sample, 2 * (784 * 256 + 256 * 128 + 128 * 10));
  EXPECT_EQ(r.parameters, (784 * 256 + 256) + (256 * 128 + 128) + (128 * 10 + 10));
  EXPECT_EQ(r.memory_bytes, 4 * r.parameters);
  for (const auto& row : r.results) {
    EXPECT_EQ(row.latency_ms.count, 4);
    EXPECT_GT(row.latency_ms.p50, 0.0);
    EXPECT_LE(row.latency_ms.min, row.latency_ms.p50);
    EXPECT_LE(row.latency_ms.p50, row.latency_ms.max);
    EXPECT_NEAR(row.samples_per_second, static_cast<double>(row.batch) * 1000.0 / row.latency_ms.mean, 1e-6);
  }
  const auto j = r.to_json();
  EXPECT_EQ(j.at("schema"), "hone-bench/1");
  EXPECT_EQ(j.at("results").size(), 2u);
  EXPECT_THAT(r.to_text(), ::testing::HasSubstr("p99"));
}

TEST(ModelBenchTest, RunDirectoryUsesItsWeightsShapeAndFile) {
  testing::TempDir dir;
  train::TrainOptions o;
  o.model = "mlp";
  o.data = "digits";
  o.epochs = 1;
  o.max_steps_per_epoch = 2;
  o.out_dir = dir / "run";
  o.progress = false;
  train::train(o);
  BenchOptions options;
  options.warmup = 0;
  options.iterations = 2;
  const BenchReport r = bench_model((dir / "run").string(), options);
  EXPECT_EQ(r.architecture, "mlp");
  EXPECT_EQ(r.input_shape, (std::vector<std::int64_t>{1, 8, 8}));
  EXPECT_EQ(r.file_bytes, static_cast<std::int64_t>(std::filesystem::file_size(dir / "run/model.safetensors")));
  EXPECT_GT(r.file_bytes, r.memory_bytes) << "the file holds the weights plus a header";
}

TEST(ModelBenchTest, UnknownTargetsAndBadOptionsAreRejected) {
  BenchOptions options;
  EXPECT_THROW(bench_model("no-such-model", options), UsageError);
  options.iterations = 0;
  EXPECT_THROW(bench_model("mlp", options), UsageError);
}

}  // namespace
}  // namespace hone::bench
