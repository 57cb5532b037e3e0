// prune_magnitude against a sort-based reference (exact counts per layer and globally, largest
// weights kept, ties); prune_structured on the zoo's mlp and cnn: hand-counted parameter drops,
// kept channels computing exactly what they did, and saved edits replaying onto a fresh model.
#include <gtest/gtest.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/torch.h>

#include "hone/compress/editor.h"
#include "hone/compress/pass.h"
#include "hone/core/error.h"
#include "hone/models/registry.h"
#include "hone/nn/edits.h"
#include "hone/nn/layer.h"
#include "hone/run/run_dir.h"
#include "support/batch_norm_statistics.h"
#include "support/error_message.h"
#include "support/relative_error.h"
#include "support/temp_dir.h"
#include "support/tolerances.h"

namespace hone::compress {
namespace {

data::DatasetInfo images() { return {"images", data::TaskKind::kClassification, {1, 28, 28}, 10, 0, {}}; }
data::DatasetInfo table(std::int64_t features) {
  return {"table", data::TaskKind::kClassification, {features}, 3, 0, {}};
}
data::DatasetInfo window() { return {"window", data::TaskKind::kForecasting, {30, 2}, 0, 3, {}}; }

PassReport run_pass(models::Model& model, ModelEditor& editor, const std::string& name, const nlohmann::json& options,
                    PassContext context = {}) {
  const auto& entry = find_pass(name);
  context.editor = &editor;
  return entry.make()->apply(model, validate_options(entry, options), context);
}

torch::Tensor& weight_of(models::Model& model, const std::string& path) {
  auto* slot = nn::find_slot(model, path).slot;
  if (auto* linear = slot->as<torch::nn::LinearImpl>()) return linear->weight;
  return slot->as<torch::nn::Conv2dImpl>()->weight;
}

std::int64_t zeros(const torch::Tensor& t) { return t.numel() - t.count_nonzero().item<std::int64_t>(); }

/// A cnn whose batch norms hold non-trivial statistics (as after training), in eval mode, in double.
models::ModelPtr trained_looking_cnn(std::uint64_t seed) {
  torch::manual_seed(static_cast<std::int64_t>(seed));
  auto model = models::make_model("cnn", images(), {{"widths", {8, 16}}, {"dropout", 0.0}});
  testing::give_batch_norms_trained_statistics(*model);
  model->to(torch::kDouble);
  model->eval();
  return model;
}

// --- prune_magnitude -------------------------------------------------------------------------

TEST(PruneMagnitudeTest, LayerScopeZeroesExactlyTheSmallestFractionOfEachLayer) {
  torch::manual_seed(1);
  auto model = models::make_model("mlp", table(37), {{"hidden", {23, 11}}});
  const std::vector<std::string> paths{"layers.0", "layers.3", "layers.6"};
  std::vector<torch::Tensor> originals;
  for (const auto& path : paths) originals.push_back(weight_of(*model, path).detach().clone());
  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, "prune_magnitude", {{"amount", 0.3}});
  ASSERT_EQ(report.details["layers"].size(), 3u);
  for (std::size_t i = 0; i < paths.size(); ++i) {
    const auto& after = weight_of(*model, paths[i]);
    const auto n = after.numel();
    const auto expected_zeros = static_cast<std::int64_t>(std::floor(0.3 * static_cast<double>(n)));
    EXPECT_EQ(zeros(after), expected_zeros) << paths[i];
    const auto pruned = after == 0;
    // Kept weights are untouched, and no pruned weight is larger than a kept one.
    EXPECT_TRUE(torch::equal(after.masked_select(~pruned), originals[i].masked_select(~pruned)));
    EXPECT_LE(originals[i].abs().masked_select(pruned).max().item<float>(),
              originals[i].abs().masked_select(~pruned).min().item<float>());
    const auto& row = report.details["layers"][i];
    EXPECT_EQ(row["path"], paths[i]);
    EXPECT_EQ(row["parameters"], n);
    EXPECT_EQ(row["zeros"], expected_zeros);
  }
  // Permanent: no mask buffer, no structural edit.
  EXPECT_TRUE(editor.edits().empty());
  EXPECT_EQ(models::count_buffer_elements(*model), 0);
}

TEST(PruneMagnitudeTest, GlobalScopeUsesOneThresholdOverAllLayers) {
  torch::manual_seed(2);
  auto model = models::make_model("mlp", table(20), {{"hidden", {16}}});
  {
    torch::NoGradGuard no_grad;
    auto& large = weight_of(*model, "layers.3");  // every weight of the second layer is > 1
    large.copy_(large.sign() * (large.abs() + 1));
  }
  std::vector<torch::Tensor> flat;
  for (const auto* path : {"layers.0", "layers.3"}) flat.push_back(weight_of(*model, path).detach().flatten().clone());
  const auto all = torch::cat(flat).abs();
  const auto total = all.numel();
  const auto k = static_cast<std::int64_t>(std::floor(0.4 * static_cast<double>(total)));
  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, "prune_magnitude", {{"amount", 0.4}, {"scope", "global"}});
  const auto pruned =
      torch::cat({weight_of(*model, "layers.0").flatten(), weight_of(*model, "layers.3").flatten()}) == 0;
  EXPECT_EQ(pruned.sum().item<std::int64_t>(), k);
  EXPECT_LE(all.masked_select(pruned).max().item<float>(), all.masked_select(~pruned).min().item<float>());
  // Only the small layer loses weights: 0.4 * (320 + 48) = 147 < 320.
  EXPECT_EQ(zeros(weight_of(*model, "layers.3")), 0);
  EXPECT_EQ(report.details["layers"][0]["zeros"], k);
  EXPECT_NEAR(report.details["total_sparsity"].get<double>(), static_cast<double>(k) / static_cast<double>(total),
              1e-12);
}

TEST(PruneMagnitudeTest, TiesAtTheThresholdPruneNoMoreThanAskedFirstPositionsFirst) {
  auto model = models::make_model("mlp", table(5), {{"hidden", {2}}});
  {
    torch::NoGradGuard no_grad;
    weight_of(*model, "layers.0").fill_(0.5);  // 10 equal magnitudes
    weight_of(*model, "layers.0")[1][4] = -0.5;
  }
  ModelEditor editor(*model);
  run_pass(*model, editor, "prune_magnitude", {{"amount", 0.35}, {"layers", {"linear"}}, {"skip", {"layers.3"}}});
  const auto flat = weight_of(*model, "layers.0").flatten();
  EXPECT_EQ(zeros(flat), 3);  // floor(3.5), not all ten tied weights
  EXPECT_TRUE(torch::equal(flat.narrow(0, 0, 3), torch::zeros({3})));
  EXPECT_EQ(zeros(weight_of(*model, "layers.3")), 0);  // skipped
}

TEST(PruneMagnitudeTest, LayerKindsSelectConvOrLinear) {
  auto model = trained_looking_cnn(3);
  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, "prune_magnitude", {{"amount", 0.5}, {"layers", {"conv2d"}}});
  EXPECT_EQ(zeros(weight_of(*model, "classifier")), 0);
  const auto& stem = weight_of(*model, "features.0");
  EXPECT_EQ(zeros(stem), stem.numel() / 2);
  EXPECT_EQ(report.details["layers"].size(), 6u);  // stem, 2 x (conv1, conv2), one shortcut
  EXPECT_NE(report.details["note"].get<std::string>().find("dense"), std::string::npos);
}

// --- prune_structured: mlp -----------------------------------------------------------------

TEST(PruneStructuredTest, MlpRemovingOnlyDeadNeuronsKeepsTheOutputAndCountsMatch) {
  torch::manual_seed(4);
  auto model = models::make_model("mlp", table(12), {{"hidden", {10, 8}}, {"dropout", 0.0}});
  model->to(torch::kDouble);
  model->eval();
  {
    // Neurons 2, 5, 7 of hidden 0 and 0, 6 of hidden 1 compute relu(0) = 0 for every input.
    torch::NoGradGuard no_grad;
    auto* first = nn::find_slot(*model, "layers.0").slot->as<torch::nn::LinearImpl>();
    auto* second = nn::find_slot(*model, "layers.3").slot->as<torch::nn::LinearImpl>();
    for (const auto c : {2, 5, 7}) {
      first->weight[c].zero_();
      first->bias[c].zero_();
    }
    for (const auto c : {0, 6}) {
      second->weight[c].zero_();
      second->bias[c].zero_();
    }
  }
  const auto x = torch::randn({6, 12}, torch::kDouble);
  const auto expected = model->forward(x);
  const auto first_before = weight_of(*model, "layers.0").clone();
  EXPECT_EQ(models::count_parameters(*model), (12 * 10 + 10) + (10 * 8 + 8) + (8 * 3 + 3));

  ModelEditor editor(*model);
  // floor(0.3 * 10) = 3 and floor(0.3 * 8) = 2 channels go: exactly the dead ones.
  const auto report = run_pass(*model, editor, "prune_structured", {{"amount", 0.3}, {"criterion", "l1"}});
  EXPECT_EQ(models::count_parameters(*model), (12 * 7 + 7) + (7 * 6 + 6) + (6 * 3 + 3));
  EXPECT_EQ(report.details["parameters_before"], 245);
  EXPECT_EQ(report.details["parameters_after"], 160);
  ASSERT_EQ(report.details["groups"].size(), 2u);
  EXPECT_EQ(report.details["groups"][0], (nlohmann::json{{"name", "hidden 0"}, {"before", 10}, {"after", 7}}));
  EXPECT_EQ(report.details["groups"][1], (nlohmann::json{{"name", "hidden 1"}, {"before", 8}, {"after", 6}}));
  // The kept rows, in their original order.
  const auto kept = torch::tensor({0, 1, 3, 4, 6, 8, 9}, torch::kLong);
  EXPECT_TRUE(torch::equal(weight_of(*model, "layers.0"), first_before.index_select(0, kept)));
  EXPECT_EQ(nn::find_slot(*model, "layers.0").slot->as<torch::nn::LinearImpl>()->options.out_features(), 7);
  EXPECT_EQ(nn::find_slot(*model, "layers.3").slot->as<torch::nn::LinearImpl>()->options.in_features(), 7);
  EXPECT_LT(testing::relative_error(model->forward(x), expected), testing::kFp64.relative);
}

TEST(PruneStructuredTest, KeepCountHonoursMinChannelsRoundToAndGroupFilter) {
  torch::manual_seed(5);
  using Sizes = std::pair<std::int64_t, std::int64_t>;  // kept neurons of hidden 0 and 1
  const auto kept = [](const nlohmann::json& options) {
    auto model = models::make_model("mlp", table(12), {{"hidden", {10, 10}}});
    ModelEditor editor(*model);
    run_pass(*model, editor, "prune_structured", options);
    return Sizes(weight_of(*model, "layers.0").size(0), weight_of(*model, "layers.3").size(0));
  };
  EXPECT_EQ(kept({{"amount", 0.5}}), Sizes(5, 5));
  EXPECT_EQ(kept({{"amount", 0.5}, {"round_to", 4}}), Sizes(8, 8));
  EXPECT_EQ(kept({{"amount", 0.5}, {"round_to", 16}}), Sizes(5, 5));  // impossible
  EXPECT_EQ(kept({{"amount", 0.9}, {"min_channels", 3}}), Sizes(3, 3));
  EXPECT_EQ(kept({{"amount", 0.5}, {"groups", {"hidden 1"}}}), Sizes(10, 5));
}

// --- prune_structured: cnn -----------------------------------------------------------------

/// The stem's output for `x`, then block features.3's conv1 -> bn1, called slot by slot.
torch::Tensor block_inner(models::Model& model, const torch::Tensor& x) {
  auto h = x;
  for (const auto* path : {"features.0", "features.1", "features.2", "features.3.conv1", "features.3.bn1"}) {
    h = (*nn::find_slot(model, path).slot)(h);
  }
  return h;
}

TEST(PruneStructuredTest, CnnInnerGroupKeepsTheKeptChannelsOutputsExactly) {
  auto model = trained_looking_cnn(6);
  auto* bn1 = nn::find_slot(*model, "features.3.bn1").slot->as<torch::nn::BatchNorm2dImpl>();
  auto* conv1 = nn::find_slot(*model, "features.3.conv1").slot->as<torch::nn::Conv2dImpl>();
  {
    // Channel 0 has by far the largest weights, but its norm scales it to almost nothing.
    torch::NoGradGuard no_grad;
    conv1->weight[0].mul_(50);
    bn1->weight[0] = 1e-4;
  }
  // Reference ranking: ||W[c]||_2 * |gamma_c| / sqrt(var_c + eps), top 4 kept in index order.
  const auto effective = conv1->weight.detach().flatten(1).norm(2, 1) * bn1->weight.detach().abs() /
                         (bn1->running_var.detach() + bn1->options.eps()).sqrt();
  const auto expected_keep = std::get<0>(torch::sort(std::get<1>(torch::topk(effective, 4))));
  EXPECT_FALSE((expected_keep == 0).any().item<bool>());

  const auto x = torch::randn({2, 1, 28, 28}, torch::kDouble);
  const auto inner_before = block_inner(*model, x);
  const auto conv1_before = conv1->weight.detach().clone();
  const auto parameters_before = models::count_parameters(*model);
  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, "prune_structured", {{"amount", 0.5}, {"groups", {"features.3 inner"}}});
  ASSERT_EQ(report.changed.size(), 1u) << report.changed.size();
  EXPECT_TRUE(torch::equal(conv1->weight, conv1_before.index_select(0, expected_keep)));
  // conv1 loses 4 of its 8 output rows (8*3*3 each), bn1 4 gammas and betas, conv2 4 input columns.
  EXPECT_EQ(models::count_parameters(*model), parameters_before - 4 * 72 - 8 - 8 * 4 * 9);
  EXPECT_EQ(conv1->options.out_channels(), 4);
  EXPECT_EQ(bn1->options.num_features(), 4);
  const auto inner_after = block_inner(*model, x);
  EXPECT_LT(testing::relative_error(inner_after, inner_before.index_select(1, expected_keep)), testing::kFp64.relative);
  EXPECT_EQ(model->forward(x).sizes(), (std::vector<std::int64_t>{2, 10}));
}

TEST(PruneStructuredTest, CnnAllGroupsRunAndTheSavedEditsReplayExactly) {
  testing::TempDir dir;
  auto model = trained_looking_cnn(7);
  ModelEditor editor(*model);
  const auto before = models::count_parameters(*model);
  const auto report = run_pass(*model, editor, "prune_structured", {{"amount", 0.5}});
  // Groups: features.3 inner, features.4 inner, stream 0 (stem + features.3), stream 3 (features.4).
  ASSERT_EQ(report.details["groups"].size(), 4u);
  for (const auto& group : report.details["groups"]) {
    EXPECT_EQ(group["after"].get<std::int64_t>() * 2, group["before"].get<std::int64_t>()) << group.dump();
  }
  EXPECT_LT(models::count_parameters(*model), before);
  EXPECT_EQ(nn::find_slot(*model, "classifier").slot->as<torch::nn::LinearImpl>()->weight.size(1), 8);
  const auto x = torch::randn({3, 1, 28, 28}, torch::kDouble);
  const auto expected = model->forward(x);
  EXPECT_EQ(expected.sizes(), (std::vector<std::int64_t>{3, 10}));

  run::save_weights(dir / "w.safetensors", *model);
  auto fresh = models::make_model("cnn", images(), {{"widths", {8, 16}}, {"dropout", 0.0}});
  fresh->to(torch::kDouble);
  nn::replay_edits(*fresh, editor.edits());
  run::load_weights(dir / "w.safetensors", *fresh);
  fresh->eval();
  EXPECT_TRUE(torch::equal(fresh->forward(x), expected));
}

TEST(PruneStructuredTest, RecalibrationReestimatesBatchNormStatisticsOnRealBatches) {
  auto model = trained_looking_cnn(8);
  const auto batch = torch::randn({16, 1, 28, 28}, torch::kDouble);
  PassContext context;
  std::int64_t asked = 0;
  context.calibration_batches = [&](std::int64_t max_batches) {
    asked = max_batches;
    return std::vector<torch::Tensor>{batch};
  };
  ModelEditor editor(*model);
  const auto report =
      run_pass(*model, editor, "prune_structured",
               {{"amount", 0.5}, {"groups", {"features.3 inner"}}, {"recalibrate_batch_norm", true}}, context);
  EXPECT_EQ(asked, 32);
  EXPECT_EQ(report.details["recalibration_batches"], 1);
  EXPECT_FALSE(model->is_training());
  auto* bn1 = nn::find_slot(*model, "features.3.bn1").slot->as<torch::nn::BatchNorm2dImpl>();
  const auto running_mean = bn1->running_mean.clone(), running_var = bn1->running_var.clone();
  // Reference: bn1's input as the recalibration saw it (train mode: the stem's norm uses the
  // batch's statistics). One batch with a cumulative average: bn1's statistics are that batch's.
  torch::NoGradGuard no_grad;
  model->train();
  auto h = batch;
  for (const auto* path : {"features.0", "features.1", "features.2", "features.3.conv1"}) {
    h = (*nn::find_slot(*model, path).slot)(h);
  }
  model->eval();
  EXPECT_LT(testing::relative_error(running_mean, h.mean({0, 2, 3})), 1e-10);
  EXPECT_LT(testing::relative_error(running_var, h.var({0, 2, 3}, /*unbiased=*/true)), 1e-10);
  EXPECT_EQ(bn1->options.momentum().value_or(-1.0), 0.1);
}

TEST(PruneStructuredTest, ModelWithoutChannelGroupsIsUnchangedAndSaysSo) {
  torch::manual_seed(9);
  auto model = models::make_model("lstm", window());
  const auto before = models::count_parameters(*model);
  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, "prune_structured", {{"amount", 0.5}});
  EXPECT_TRUE(report.changed.empty());
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_NE(report.skipped[0].find("declares no channel groups"), std::string::npos) << report.skipped[0];
  EXPECT_EQ(models::count_parameters(*model), before);
  EXPECT_TRUE(editor.edits().empty());
}

TEST(PruneOptionsTest, BadOptionsAreUsageErrorsNamingTheOption) {
  const auto message = [](const std::string& pass, const nlohmann::json& options) {
    try {
      validate_options(find_pass(pass), options);
    } catch (const UsageError& error) {
      return std::string(error.what());
    }
    ADD_FAILURE() << pass << " accepted " << options.dump();
    return std::string();
  };
  EXPECT_NE(message("prune_magnitude", nlohmann::json::object()).find("'amount'"), std::string::npos);
  EXPECT_NE(message("prune_magnitude", {{"amount", 1.0}}).find("'amount'"), std::string::npos);
  EXPECT_NE(message("prune_magnitude", {{"amount", 0.5}, {"scope", "model"}}).find("'scope'"), std::string::npos);
  EXPECT_NE(message("prune_magnitude", {{"amount", 0.5}, {"layers", {"lstm"}}}).find("'layers'"), std::string::npos);
  EXPECT_NE(message("prune_structured", {{"amount", -0.1}}).find("'amount'"), std::string::npos);
  EXPECT_NE(message("prune_structured", {{"amount", 0.5}, {"criterion", "l3"}}).find("'criterion'"), std::string::npos);
  EXPECT_NE(message("prune_structured", {{"amount", 0.5}, {"round_to", 0}}).find("'round_to'"), std::string::npos);
  EXPECT_NE(message("prune_structured", {{"amount", 0.5}, {"min_channels", 1.5}}).find("'min_channels'"),
            std::string::npos);
}

}  // namespace
}  // namespace hone::compress
