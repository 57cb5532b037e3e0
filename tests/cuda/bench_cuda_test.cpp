// CUDA parts of bench and the text model: graph replay equals eager, autocast stays close to
// fp32, find-batch respects its budget, and the pretrained MiniLM in bf16 matches the fp32
// reference embeddings (cosine >= 0.999). Skipped where no GPU is visible.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>

#include "hone/bench/model_bench.h"
#include "hone/core/device.h"
#include "hone/data/paths.h"
#include "hone/io/safetensors.h"
#include "hone/runtime/device_probe.h"
#include "hone/runtime/forward_runner.h"
#include "hone/runtime/settings.h"
#include "hone/runtime/target.h"
#include "hone/runtime/units.h"
#include "hone/text/sentence_encoder.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone::bench {
namespace {

using testing::relative_error;

class GraphCudaTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GraphCudaTest, GraphReplayEqualsEagerAndFollowsNewInputs) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  torch::manual_seed(21);
  runtime::ModelTarget target = runtime::load_target(GetParam(), 32);
  runtime::RunSettings settings;
  settings.device = torch::kCUDA;
  runtime::prepare_model(*target.model, settings);
  const torch::Tensor input = runtime::make_random_input(target.info, 4, settings);
  torch::NoGradGuard no_grad;
  const torch::Tensor eager = target.model->forward(input).clone();
  runtime::ForwardRunner graph(*target.model, input, settings, /*cuda_graph=*/true, /*warmup=*/2);
  ASSERT_TRUE(graph.uses_cuda_graph());
  EXPECT_LT(relative_error(graph.run().clone(), eager), testing::kFp32Reordered.relative) << GetParam();
  // The graph reads its input buffer on each replay: new values in place give new outputs.
  input.copy_(runtime::make_random_input(target.info, 4, settings));
  const torch::Tensor eager2 = target.model->forward(input).clone();
  EXPECT_LT(relative_error(graph.run().clone(), eager2), testing::kFp32Reordered.relative) << GetParam();
  EXPECT_GT(relative_error(eager2, eager), 1e-3) << "the second input must differ from the first";
}

INSTANTIATE_TEST_SUITE_P(Zoo, GraphCudaTest, ::testing::Values("mlp", "cnn", "transformer", "minilm"));

TEST(BenchCudaTest, AutocastStaysCloseToFp32) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  torch::manual_seed(22);
  runtime::ModelTarget target = runtime::load_target("transformer");
  runtime::RunSettings settings;
  settings.device = torch::kCUDA;
  runtime::prepare_model(*target.model, settings);
  const auto x = runtime::make_random_input(target.info, 8, settings);
  torch::NoGradGuard no_grad;
  at::globalContext().setAllowTF32CuBLAS(false);
  const auto fp32 = target.model->forward(x);
  settings.amp = true;
  torch::Tensor amp;
  {
    runtime::AutocastScope autocast(settings);
    amp = target.model->forward(x);
  }
  EXPECT_LT(relative_error(amp.to(torch::kFloat), fp32), 5 * testing::kBf16.relative);
  EXPECT_GT(relative_error(amp.to(torch::kFloat), fp32), 0.0) << "autocast did not lower any precision";
}

TEST(BenchCudaTest, FindBatchRespectsTheBudgetAndBenchesTheAnswer) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  BenchOptions options;
  options.device = "cuda";
  options.warmup = 1;
  options.iterations = 3;
  const std::int64_t budget = 64LL << 20;  // 64 MiB: the cnn fits only a limited batch
  const FindBatchReport r = find_max_batch("cnn", options, budget, 1 << 16);
  ASSERT_GT(r.search.largest_batch, 1);
  EXPECT_LE(r.search.largest_batch_peak_bytes, budget);
  bool next_failed = false;
  for (const auto& t : r.search.trials) {
    if (t.fits) {
      EXPECT_LE(t.peak_bytes, budget) << t.batch;
    }
    if (t.batch == r.search.largest_batch + 1) next_failed = !t.fits;
    if (t.batch > r.search.largest_batch) {
      EXPECT_FALSE(t.fits) << t.batch;
    }
  }
  EXPECT_TRUE(next_failed || r.search.largest_batch == (1 << 16)) << "bisection must end next to a failing batch";
  ASSERT_EQ(r.bench.results.size(), 1u);
  EXPECT_EQ(r.bench.results[0].batch, r.search.largest_batch);
}

TEST(BenchCudaTest, PretrainedMiniLmInBf16MatchesTheFp32Reference) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  const char* source_dir = std::getenv("HONE_SOURCE_DIR");
  ASSERT_NE(source_dir, nullptr);
  ASSERT_TRUE(std::filesystem::is_regular_file(data::minilm_dir() / "model.safetensors"))
      << "all-MiniLM-L6-v2 not at " << data::minilm_dir() << ": set HONE_MINILM_DIR (a bf16 copy will do)";
  const auto fixture =
      io::load_safetensors(std::filesystem::path(source_dir) / "tests/fixtures/minilm/embeddings.safetensors");
  const auto texts = nlohmann::json::parse(fixture.metadata.at("texts")).get<std::vector<std::string>>();
  text::SentenceEncoderOptions options;
  options.device = torch::kCUDA;
  options.dtype = torch::kBFloat16;
  const auto encoder = text::SentenceEncoder::load(data::minilm_dir(), options);
  const auto got = encoder.encode(texts);
  const auto cosine = torch::nn::functional::cosine_similarity(
      got.vectors.to(torch::kDouble), fixture.at("embeddings").to(torch::kDouble),
      torch::nn::functional::CosineSimilarityFuncOptions().dim(1));
  EXPECT_GE(cosine.min().item<double>(), 0.999) << "worst text " << cosine.argmin().item<std::int64_t>();
  EXPECT_LT(cosine.min().item<double>(), 0.999999) << "bf16 cannot be this exact: is the dtype really bf16?";
}

}  // namespace
}  // namespace hone::bench
