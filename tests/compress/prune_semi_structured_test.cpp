// 2:4 semi-structured sparsity: the magnitude mask against a brute-force loop, the compressed
// storage (values + 2-bit positions) round trip, corrupt positions rejected, the layer against the
// masked dense Linear, and the prune_semi_structured pass's choices, reasons, file size and reload.
// The cuSPARSELt path is tested on the GPU (tests/cuda/semi_structured_cuda_test.cpp).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "hone/core/error.h"
#include "hone/nn/linear_semi_structured.h"
#include "support/pass_runner.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone::compress {
namespace {

using testing::count_layers;
using testing::mentions;
using testing::run_pass;

using testing::table;

TEST(SemiStructuredTest, MaskKeepsTheTwoLargestOfEveryFourAsABruteForceLoopDoes) {
  torch::manual_seed(1);
  auto w = torch::randn({8, 32});
  w[0].slice(0, 0, 4).fill_(0.5);  // a tie: the first two positions are kept
  w[1].slice(0, 4, 8) = torch::tensor({-3.0, 1.0, 2.0, -0.5});
  const auto mask = nn::semi_structured_mask(w);
  ASSERT_EQ(mask.sizes(), w.sizes());
  ASSERT_EQ(mask.scalar_type(), torch::kBool);
  const auto magnitudes = w.abs();
  const auto a = magnitudes.accessor<float, 2>();
  const auto m = mask.accessor<bool, 2>();
  for (int r = 0; r < 8; ++r) {
    for (int g = 0; g < 8; ++g) {
      // Brute force: position i is kept when fewer than 2 others beat it (larger, or equal and earlier).
      for (int i = 0; i < 4; ++i) {
        int beaten_by = 0;
        for (int j = 0; j < 4; ++j) {
          const float ai = a[r][4 * g + i];
          const float aj = a[r][4 * g + j];
          if (j != i && (aj > ai || (aj == ai && j < i))) ++beaten_by;
        }
        EXPECT_EQ(m[r][4 * g + i], beaten_by < 2) << "row " << r << " group " << g << " position " << i;
      }
    }
  }
  EXPECT_TRUE(mask[0].slice(0, 0, 4).equal(torch::tensor({true, true, false, false})));
  EXPECT_TRUE(mask[1].slice(0, 4, 8).equal(torch::tensor({true, false, true, false})));
}

TEST(SemiStructuredTest, CompressedStorageRoundTripsAndRejectsCorruptPositions) {
  torch::manual_seed(2);
  const auto w = torch::randn({16, 48});
  const auto mask = nn::semi_structured_mask(w);
  const auto [values, meta] = nn::compress_semi_structured(w, mask);
  EXPECT_EQ(values.sizes(), (std::vector<std::int64_t>{16, 24}));
  EXPECT_EQ(meta.sizes(), (std::vector<std::int64_t>{16, 12}));
  EXPECT_EQ(meta.scalar_type(), torch::kByte);
  const auto dense = nn::expand_semi_structured(values, meta);
  EXPECT_TRUE(torch::equal(dense, w * mask)) << "exactly the kept weights, zeros elsewhere";
  EXPECT_EQ(dense.eq(0).sum().item<std::int64_t>(), w.numel() / 2);

  auto bad = meta.clone();
  bad[3][5] = 0b0101;  // i0 == i1
  EXPECT_THROW(nn::expand_semi_structured(values, bad), Error);
  bad[3][5] = 0b0001'0100;  // a bit above the two positions
  EXPECT_THROW(nn::expand_semi_structured(values, bad), Error);
  EXPECT_THROW(nn::expand_semi_structured(values.slice(1, 0, 20), meta), Error) << "values and meta disagree";
  EXPECT_THROW(nn::compress_semi_structured(w, torch::ones_like(mask)), Error) << "a mask that is not 2:4";
}

TEST(SemiStructuredTest, LayerComputesTheMaskedLinearOnTheCpuAndSaysSo) {
  torch::manual_seed(3);
  torch::nn::Linear linear(torch::nn::LinearOptions(64, 32).bias(true));
  auto layer = nn::LinearSemiStructuredImpl::from_float(*linear, torch::kFloat);
  const auto masked = linear->weight.detach() * nn::semi_structured_mask(linear->weight);
  EXPECT_TRUE(torch::equal(layer->dense_weight(), masked));
  const auto x = torch::randn({5, 7, 64});
  const auto y = layer->forward(x);
  EXPECT_EQ(y.sizes(), (std::vector<std::int64_t>{5, 7, 32}));
  const auto expected =
      torch::matmul(x.to(torch::kDouble), masked.to(torch::kDouble).t()) + linear->bias.detach().to(torch::kDouble);
  EXPECT_LT(testing::relative_error(y.to(torch::kDouble), expected), testing::kFp32Reordered.relative);
  EXPECT_NE(layer->kernel().find("dense (cpu"), std::string::npos) << layer->kernel();
  // Half the weights are gone: the output moves away from the dense layer's, but not beyond recognition.
  const auto change = testing::relative_error(y, linear->forward(x));
  EXPECT_GT(change, 0.05);
  EXPECT_LT(change, 0.9);

  // bf16 storage computes in bf16 and hands back the input's dtype.
  auto layer16 = nn::LinearSemiStructuredImpl::from_float(*linear, torch::kBFloat16);
  EXPECT_EQ(layer16->values.scalar_type(), torch::kBFloat16);
  const auto y16 = layer16->forward(x);
  EXPECT_EQ(y16.scalar_type(), torch::kFloat);
  EXPECT_LT(testing::relative_error(y16.to(torch::kDouble), expected), testing::kBf16.relative);
  EXPECT_THROW(layer->forward(torch::randn({2, 63})), Error);
}

TEST(SemiStructuredTest, RejectsShapesCuSparseLtCannotTake) {
  EXPECT_TRUE(nn::semi_structured_unsupported(64, 32).empty());
  EXPECT_NE(nn::semi_structured_unsupported(40, 32).find("in_features (40)"), std::string::npos);
  EXPECT_NE(nn::semi_structured_unsupported(64, 10).find("out_features (10)"), std::string::npos);
  EXPECT_THROW(nn::LinearSemiStructuredImpl(48, 8, true, torch::kFloat), Error);
  EXPECT_THROW(nn::LinearSemiStructuredImpl(48, 16, true, torch::kDouble), Error);
}

TEST(SemiStructuredPassTest, PrunesSupportedLinearsShrinksTheFileSaysWhyItSkipsAndReloads) {
  torch::manual_seed(4);
  // mlp 96 -> 64 -> 48 -> 10: the last layer (10 outputs) cannot be 2:4.
  auto model = models::make_model("mlp", table(96), {{"hidden", {64, 48}}, {"dropout", 0.0}});
  model->eval();
  const auto x = torch::randn({6, 96});
  ModelEditor editor(*model);
  testing::TempDir dir("hone-24");
  run::save_weights(dir / "dense.safetensors", *model);
  const auto report = run_pass(*model, editor, "prune_semi_structured", nlohmann::json::object());
  EXPECT_EQ(count_layers<nn::LinearSemiStructuredImpl>(*model), 2);
  EXPECT_EQ(count_layers<torch::nn::LinearImpl>(*model), 1);
  EXPECT_TRUE(mentions(report.skipped, "layers.6: Linear [48 -> 10] left dense: out_features (10) must be a multiple"))
      << (report.skipped.empty() ? "" : report.skipped[0]);
  ASSERT_EQ(report.details["layers"].size(), 2u);
  EXPECT_EQ(report.details["pruned_weights"].get<std::int64_t>(), (96 * 64 + 64 * 48) / 2);
  for (const auto& layer : report.details["layers"]) {
    // Dropping the 2 smaller of 4 Gaussian weights removes ~1/6 of the energy: error ≈ 0.4.
    EXPECT_GT(layer["weight_error"].get<double>(), 0.2);
    EXPECT_LT(layer["weight_error"].get<double>(), 0.6);
  }
  const auto actual = model->forward(x);
  run::save_weights(dir / "sparse.safetensors", *model);
  const auto dense_bytes = std::filesystem::file_size(dir / "dense.safetensors");
  const auto sparse_bytes = std::filesystem::file_size(dir / "sparse.safetensors");
  // Pruned layers keep 9/16 of their bytes; the 48 -> 10 layer stays as it was.
  EXPECT_LT(static_cast<double>(sparse_bytes), 0.62 * static_cast<double>(dense_bytes));
  auto rebuilt = testing::reload(*model, editor);
  EXPECT_EQ(count_layers<nn::LinearSemiStructuredImpl>(*rebuilt), 2);
  EXPECT_TRUE(torch::equal(rebuilt->forward(x), actual));

  auto model16 = models::make_model("mlp", table(96), {{"hidden", {64, 48}}, {"dropout", 0.0}});
  ModelEditor editor16(*model16);
  const auto report16 =
      run_pass(*model16, editor16, "prune_semi_structured", {{"dtype", "bf16"}, {"skip", {"layers.0"}}});
  EXPECT_EQ(count_layers<nn::LinearSemiStructuredImpl>(*model16), 1);
  EXPECT_TRUE(mentions(report16.skipped, "layers.0: listed in 'skip'"));
  EXPECT_TRUE(mentions(report16.changed, "bf16 values"));
  EXPECT_THROW(run_pass(*model16, editor16, "prune_semi_structured", {{"dtype", "int8"}}), UsageError);
}

TEST(SemiStructuredPassTest, LeavesConvolutionsAloneAndSaysWhy) {
  const data::DatasetInfo images{"images", data::TaskKind::kClassification, {1, 28, 28}, 10, 0, {}};
  auto model = models::make_model("cnn", images);
  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, "prune_semi_structured", nlohmann::json::object());
  EXPECT_TRUE(mentions(report.skipped, "Conv2d left dense: LibTorch has no 2:4 convolution"));
}

}  // namespace
}  // namespace hone::compress
