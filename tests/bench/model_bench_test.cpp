#include "hone/bench/model_bench.h"

#include "hone/runtime/device_probe.h"
#include "hone/runtime/forward_runner.h"
#include "hone/runtime/settings.h"
#include "hone/runtime/target.h"
#include "hone/runtime/units.h"

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

TEST(ModelBenchTest, CompareOfAModelWithItselfIsAboutOne) {
  BenchOptions options;
  options.batches = {4};
  options.warmup = 5;
  options.iterations = 120;
  const CompareReport r = compare_models("mlp", "mlp", options);
  ASSERT_EQ(r.a.results.size(), 1u);
  ASSERT_EQ(r.b.results.size(), 1u);
  EXPECT_EQ(r.a.parameters, r.b.parameters);
  // Interleaved runs of the same work: medians agree closely even on a busy machine.
  const double ratio = r.b.results[0].latency_ms.p50 / r.a.results[0].latency_ms.p50;
  EXPECT_GT(ratio, 0.67);
  EXPECT_LT(ratio, 1.5);
  const auto j = r.to_json();
  EXPECT_EQ(j.at("schema"), "hone-bench-compare/1");
  EXPECT_DOUBLE_EQ(j.at("ratio_b_over_a").at("latency").at(0).at("p50").get<double>(), ratio);
  EXPECT_THAT(r.to_text(), ::testing::HasSubstr("B/A p50"));
}

TEST(ModelBenchTest, DtypeChannelsLastAndTokenInputsAreReported) {
  BenchOptions options;
  options.warmup = 0;
  options.iterations = 2;
  options.dtype = "bf16";
  const BenchReport bf16 = bench_model("mlp", options);
  EXPECT_EQ(bf16.dtype, "bf16");
  EXPECT_EQ(bf16.memory_bytes, 2 * bf16.parameters) << "bf16 weights take 2 bytes each";

  options.dtype = "fp32";
  options.channels_last = true;
  const BenchReport nhwc = bench_model("cnn", options);
  EXPECT_TRUE(nhwc.channels_last);
  EXPECT_EQ(nhwc.to_json().at("channels_last"), true);

  options.channels_last = false;
  options.amp = true;
  const BenchReport amp = bench_model("mlp", options);
  EXPECT_TRUE(amp.amp);
  EXPECT_EQ(amp.memory_bytes, 4 * amp.parameters) << "--amp keeps fp32 weights";
}

TEST(ModelBenchTest, TextModelsTakeRandomTokenIds) {
  runtime::RunSettings settings;
  data::DatasetInfo tokens;
  tokens.input_shape = {16};
  tokens.vocab_size = 30522;
  const auto ids = runtime::make_random_input(tokens, 3, settings);
  EXPECT_EQ(ids.scalar_type(), torch::kLong);
  EXPECT_EQ(ids.sizes(), (std::vector<std::int64_t>{3, 16}));
  EXPECT_GE(ids.min().item<std::int64_t>(), 1000) << "no padding or special tokens";
  EXPECT_LT(ids.max().item<std::int64_t>(), 30522);
  const runtime::ModelTarget target = runtime::load_target("minilm", 24);
  EXPECT_EQ(target.info.input_shape, (std::vector<std::int64_t>{24}));
  EXPECT_EQ(target.weights, "random (timing only)");
}

TEST(ModelBenchTest, ChannelsLastOutputsEqualContiguousOutputs) {
  torch::manual_seed(9);
  runtime::ModelTarget target = runtime::load_target("cnn");
  runtime::RunSettings settings;
  runtime::prepare_model(*target.model, settings);
  const auto x = torch::randn({2, 1, 28, 28});
  torch::NoGradGuard no_grad;
  const auto reference = target.model->forward(x);
  settings.channels_last = true;
  runtime::prepare_model(*target.model, settings);
  const auto nhwc = target.model->forward(x.contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(torch::allclose(nhwc, reference, 1e-4, 1e-5));
}

TEST(ModelBenchTest, OptionsThatCannotWorkHereAreUsageErrors) {
  BenchOptions options;
  options.iterations = 1;
  options.dtype = "fp8";
  EXPECT_THROW(bench_model("mlp", options), UsageError);
  options.dtype = "bf16";
  options.amp = true;
  EXPECT_THROW(bench_model("mlp", options), UsageError);
  options = BenchOptions{};
  options.cuda_graphs = true;
  EXPECT_THROW(bench_model("mlp", options), UsageError);
  options = BenchOptions{};
  EXPECT_THROW(find_max_batch("mlp", options, 1 << 30), UsageError) << "CPU memory cannot be budgeted";
}

TEST(ModelBenchTest, ParsesMemorySizes) {
  EXPECT_EQ(runtime::parse_bytes("8GiB"), 8LL << 30);
  EXPECT_EQ(runtime::parse_bytes("512MiB"), 512LL << 20);
  EXPECT_EQ(runtime::parse_bytes("1.5GB"), 1'500'000'000LL);
  EXPECT_EQ(runtime::parse_bytes("1000"), 1000);
  EXPECT_EQ(runtime::parse_bytes("2k"), 2048);
  for (const char* bad : {"", "GiB", "-1GiB", "0", "8XB", "1e30GiB", "nan"}) {
    EXPECT_THROW(runtime::parse_bytes(bad), UsageError) << bad;
  }
  EXPECT_EQ(runtime::bytes_text(1536), "1.5 KiB");
  EXPECT_EQ(runtime::bytes_text(3LL << 30), "3.00 GiB");
}

}  // namespace
}  // namespace hone::bench
