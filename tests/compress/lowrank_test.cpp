// lowrank_svd against singular values computed here: the energy rule picks the smallest rank that
// reaches the threshold, an exactly low-rank weight is reproduced, layers that would not shrink
// are left alone, and the saved edits rebuild the factorized model.
#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>
#include <torch/torch.h>

#include "hone/compress/editor.h"
#include "hone/compress/pass.h"
#include "hone/core/error.h"
#include "hone/models/registry.h"
#include "hone/nn/layer.h"
#include "hone/nn/layer_kinds.h"
#include "hone/nn/linear_lowrank.h"
#include "hone/train/checkpoint.h"
#include "support/error_message.h"
#include "support/relative_error.h"
#include "support/temp_dir.h"
#include "support/tolerances.h"

namespace hone::compress {
namespace {

data::DatasetInfo table() { return {"table", data::TaskKind::kClassification, {64}, 10, 0, {}}; }

/// mlp 64 -> 40 -> 10, in eval mode.
models::ModelPtr small_mlp(std::int64_t seed) {
  torch::manual_seed(seed);
  auto model = models::make_model("mlp", table(), {{"hidden", {40}}, {"dropout", 0.0}});
  model->eval();
  return model;
}

PassReport run_pass(models::Model& model, ModelEditor& editor, const nlohmann::json& options) {
  const auto& entry = find_pass("lowrank_svd");
  PassContext context;
  context.editor = &editor;
  return entry.make()->apply(model, validate_options(entry, options), context);
}

torch::nn::LinearImpl& linear_at(models::Model& model, const std::string& path) {
  return *nn::find_slot(model, path).slot->as<torch::nn::LinearImpl>();
}

TEST(LowRankSvdTest, EnergyPicksTheSmallestRankReachingTheThreshold) {
  auto model = small_mlp(1);
  const auto weight = linear_at(*model, "layers.0").weight.detach().clone();
  const auto bias = linear_at(*model, "layers.0").bias.detach().clone();
  const auto squared = torch::linalg_svdvals(weight.to(torch::kDouble)).square();
  const auto energy = (squared.cumsum(0) / squared.sum());
  const double threshold = 0.6;
  const auto expected_rank = (energy < threshold).sum().item<std::int64_t>() + 1;
  ASSERT_GE(energy[expected_rank - 1].item<double>(), threshold);
  ASSERT_LT(energy[expected_rank - 2].item<double>(), threshold);

  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, {{"energy", threshold}, {"skip", {"layers.3"}}});
  ASSERT_EQ(report.details["layers"].size(), 1u);
  const auto& row = report.details["layers"][0];
  EXPECT_EQ(row["path"], "layers.0");
  EXPECT_EQ(row["rank"], expected_rank);
  EXPECT_NEAR(row["energy_kept"].get<double>(), energy[expected_rank - 1].item<double>(), 1e-12);
  EXPECT_EQ(row["parameters_before"], 64 * 40 + 40);
  EXPECT_EQ(row["parameters_after"], expected_rank * (64 + 40) + 40);

  auto* lowrank = nn::find_slot(*model, "layers.0").slot->as<nn::LinearLowRankImpl>();
  ASSERT_NE(lowrank, nullptr);
  EXPECT_EQ(lowrank->first().as<torch::nn::LinearImpl>()->weight.sizes(),
            (std::vector<std::int64_t>{expected_rank, 64}));
  EXPECT_EQ(lowrank->second().as<torch::nn::LinearImpl>()->weight.sizes(),
            (std::vector<std::int64_t>{40, expected_rank}));
  // Reference: the truncated SVD product in double.
  const auto [u, s, vh] = torch::linalg_svd(weight.to(torch::kDouble), /*full_matrices=*/false);
  const auto truncated = u.narrow(1, 0, expected_rank)
                             .matmul(torch::diag(s.narrow(0, 0, expected_rank)))
                             .matmul(vh.narrow(0, 0, expected_rank));
  const auto x = torch::randn({5, 7, 64});
  const auto expected = torch::matmul(x.to(torch::kDouble), truncated.t()) + bias.to(torch::kDouble);
  EXPECT_LT(testing::relative_error(lowrank->forward(x), expected), testing::kFp32Reordered.relative);
}

TEST(LowRankSvdTest, ExactlyLowRankWeightIsReproducedAtItsFullRank) {
  auto model = small_mlp(2);
  {
    torch::NoGradGuard no_grad;
    linear_at(*model, "layers.0").weight.copy_(torch::randn({40, 5}).matmul(torch::randn({5, 64})) / 8);
  }
  const auto x = torch::randn({9, 64});
  const auto expected = model->forward(x);
  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, {{"energy", 1.0}});
  ASSERT_EQ(report.details["layers"].size(), 1u);
  EXPECT_EQ(report.details["layers"][0]["rank"], 5);
  EXPECT_LT(testing::relative_error(model->forward(x), expected), testing::kFp32Reordered.relative);
  // layers.3 (40 -> 10) is random, so full rank 10: 10 * 50 >= 400 would not shrink it.
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_NE(report.skipped[0].find("layers.3"), std::string::npos) << report.skipped[0];
  EXPECT_NE(report.skipped[0].find("would not reduce"), std::string::npos) << report.skipped[0];
  EXPECT_NE(nn::find_slot(*model, "layers.3").slot->as<torch::nn::LinearImpl>(), nullptr);
}

TEST(LowRankSvdTest, ParameterReductionPicksTheLargestRankThatRemovesTheFraction) {
  auto model = small_mlp(3);
  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, {{"parameter_reduction", 0.5}, {"skip", {"layers.3"}}});
  ASSERT_EQ(report.details["layers"].size(), 1u);
  // (2560 + 40) / 2 = 1300 >= r * 104 + 40  <=>  r <= 12.
  EXPECT_EQ(report.details["layers"][0]["rank"], 12);
  EXPECT_EQ(report.details["layers"][0]["parameters_after"], 12 * 104 + 40);
  EXPECT_EQ(models::count_parameters(*model), (12 * 104 + 40) + (40 * 10 + 10));
  // A reduction no rank >= min_rank reaches is skipped, not forced.
  auto other = small_mlp(3);
  ModelEditor other_editor(*other);
  const auto none = run_pass(*other, other_editor, {{"parameter_reduction", 0.5}, {"min_rank", 13}});
  EXPECT_TRUE(none.changed.empty());
  EXPECT_TRUE(other_editor.edits().empty());
}

TEST(LowRankSvdTest, SavedEditsRebuildTheFactorizedModel) {
  testing::TempDir dir;
  auto model = small_mlp(4);
  ModelEditor editor(*model);
  run_pass(*model, editor, {{"energy", 0.5}});
  train::save_weights(dir / "w.safetensors", *model);
  const auto x = torch::randn({4, 64});
  const auto expected = model->forward(x);

  auto fresh = models::make_model("mlp", table(), {{"hidden", {40}}, {"dropout", 0.0}});
  replay_edits(*fresh, editor.edits());
  train::load_weights(dir / "w.safetensors", *fresh);
  fresh->eval();
  EXPECT_NE(nn::find_slot(*fresh, "layers.0").slot->as<nn::LinearLowRankImpl>(), nullptr);
  const auto loaded = fresh->named_parameters();
  for (const auto& item : model->named_parameters()) {
    ASSERT_NE(loaded.find(item.key()), nullptr) << item.key();
    EXPECT_TRUE(torch::equal(loaded[item.key()], item.value())) << item.key();
  }
  // Same weights bit for bit; fp32 GEMM may still round differently on differently aligned memory.
  EXPECT_LT(testing::relative_error(fresh->forward(x), expected), testing::kFp32.relative);
}

TEST(LowRankSvdTest, LayerKindRejectsBadSpecs) {
  EXPECT_THROW(nn::build_layer({{"kind", "linear_lowrank"}, {"in", 4}, {"rank", 0}, {"out", 3}, {"bias", true}}),
               Error);
  EXPECT_THROW(nn::build_layer({{"kind", "linear_lowrank"}, {"in", 4}, {"out", 3}, {"bias", true}}), Error);
  const auto layer = nn::build_layer({{"kind", "linear_lowrank"}, {"in", 4}, {"rank", 2}, {"out", 3}, {"bias", false}});
  EXPECT_EQ(layer.call(torch::randn({2, 4})).sizes(), (std::vector<std::int64_t>{2, 3}));
}

TEST(LowRankOptionsTest, BadOptionsAreUsageErrorsNamingTheOption) {
  const auto& entry = find_pass("lowrank_svd");
  const auto message = [&](const nlohmann::json& options) {
    return testing::usage_error_message([&] { validate_options(entry, options); });
  };
  EXPECT_NE(message({{"energy", 0.0}}).find("'energy'"), std::string::npos);
  EXPECT_NE(message({{"energy", 1.5}}).find("'energy'"), std::string::npos);
  EXPECT_NE(message({{"parameter_reduction", 1.0}}).find("'parameter_reduction'"), std::string::npos);
  EXPECT_NE(message({{"min_rank", 0}}).find("'min_rank'"), std::string::npos);
  EXPECT_NE(message({{"skip", "layers.0"}}).find("'skip'"), std::string::npos);
  EXPECT_EQ(validate_options(entry, nlohmann::json::object())["energy"], 0.95);
}

}  // namespace
}  // namespace hone::compress
