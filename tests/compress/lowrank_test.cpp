// lowrank_svd against singular values computed here: the energy rule picks the smallest rank that
// reaches the threshold, an exactly low-rank weight is reproduced, layers that would not shrink
// are left alone, and the saved edits rebuild the factorized model. The same for 1x1 convolutions
// (kinds ["conv2d"]), whose other kernels and groups are reported and left alone.
#include <gtest/gtest.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "hone/compress/editor.h"
#include "hone/compress/pass.h"
#include "hone/core/error.h"
#include "hone/models/registry.h"
#include "hone/nn/conv2d_lowrank.h"
#include "hone/nn/edits.h"
#include "hone/nn/layer.h"
#include "hone/nn/layer_kinds.h"
#include "hone/nn/linear_lowrank.h"
#include "hone/run/run_dir.h"
#include "support/batch_norm_statistics.h"
#include "support/error_message.h"
#include "support/pass_runner.h"
#include "support/relative_error.h"
#include "support/temp_dir.h"
#include "support/tolerances.h"

namespace hone::compress {
namespace {

using testing::count_layers;

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
  run::save_weights(dir / "w.safetensors", *model);
  const auto x = torch::randn({4, 64});
  const auto expected = model->forward(x);

  auto fresh = models::make_model("mlp", table(), {{"hidden", {40}}, {"dropout", 0.0}});
  nn::replay_edits(*fresh, editor.edits());
  run::load_weights(dir / "w.safetensors", *fresh);
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

// --- 1x1 convolutions --------------------------------------------------------------------------

/// lowrank_svd's Conv2d cases in one chain: layers.0 a 1x1 conv 12 -> 24 with stride 2, padding 1
/// and a bias; layers.1 a 3x3 conv; layers.2 a grouped 1x1 conv; layers.3 a bias-free 1x1 conv 24 -> 20.
class ConvStack : public models::Model {
 public:
  ConvStack() {
    layers_ = register_module("layers", nn::Chain());
    layers_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(12, 24, 1).stride(2).padding(1)));
    layers_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(24, 24, 3).padding(1)));
    layers_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(24, 24, 1).groups(4)));
    layers_->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(24, 20, 1).bias(false)));
  }
  torch::Tensor forward(torch::Tensor x) override { return layers_->forward(x); }
  std::string architecture() const override { return "conv_stack"; }
  nlohmann::json config() const override { return nlohmann::json::object(); }

 private:
  nn::Chain layers_{nullptr};
};

torch::nn::Conv2dImpl& conv_at(models::Model& model, const std::string& path) {
  return *nn::find_slot(model, path).slot->as<torch::nn::Conv2dImpl>();
}

/// A ConvStack whose layers.0 weight has rank 3.
std::shared_ptr<ConvStack> conv_stack_with_rank_3(std::int64_t seed) {
  torch::manual_seed(seed);
  auto model = std::make_shared<ConvStack>();
  torch::NoGradGuard no_grad;
  conv_at(*model, "layers.0")
      .weight.copy_(torch::randn({24, 3}).matmul(torch::randn({3, 12})).view({24, 12, 1, 1}) / 4);
  model->eval();
  return model;
}

TEST(LowRankConvTest, FullRankFactorsReproduceTheConvolution) {
  // Odd sizes, stride, padding and dilation on the first factor; the reference is at::conv2d in double.
  torch::manual_seed(5);
  const std::int64_t in = 7, out = 5, rank = 5;
  const auto weight = torch::randn({out, in, 1, 1}, torch::kDouble);
  const auto bias = torch::randn({out}, torch::kDouble);
  const auto [u, s, vh] = torch::linalg_svd(weight.view({out, in}), /*full_matrices=*/false);
  const auto root = s.sqrt();
  nn::Conv2dLowRank layer(nn::Conv2dLowRankOptions{in, rank, out, {2, 3}, {1, 2}, {2, 1}, true});
  {
    torch::NoGradGuard no_grad;
    layer->first().as<torch::nn::Conv2dImpl>()->weight.copy_((root.unsqueeze(1) * vh).view({rank, in, 1, 1}));
    layer->second().as<torch::nn::Conv2dImpl>()->weight.copy_((u * root.unsqueeze(0)).view({out, rank, 1, 1}));
    layer->second().as<torch::nn::Conv2dImpl>()->bias.copy_(bias);
  }
  const auto x = torch::randn({3, in, 9, 11});
  const auto expected = torch::conv2d(x.to(torch::kDouble), weight, bias, {2, 3}, {1, 2}, {2, 1});
  const auto actual = layer->forward(x);
  ASSERT_EQ(actual.sizes(), expected.sizes());
  EXPECT_LT(testing::relative_error(actual, expected), testing::kFp32Reordered.relative);
  // Zero padding stays exact: the padded border holds the bias alone.
  EXPECT_LT(testing::relative_error(actual.select(2, 0), expected.select(2, 0)), testing::kFp32Reordered.relative);
}

TEST(LowRankConvTest, ExactlyLowRankConvIsReproducedAndOtherConvsAreLeftAloneWithReasons) {
  auto model = conv_stack_with_rank_3(6);
  const auto x = torch::randn({2, 12, 9, 7});
  const auto expected = model->forward(x);
  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, {{"energy", 1.0}, {"kinds", {"conv2d"}}});
  ASSERT_EQ(report.details["layers"].size(), 1u) << report.details.dump();
  const auto& row = report.details["layers"][0];
  EXPECT_EQ(row["path"], "layers.0");
  EXPECT_EQ(row["rank"], 3);
  EXPECT_EQ(row["parameters_before"], 12 * 24 + 24);
  EXPECT_EQ(row["parameters_after"], 3 * (12 + 24) + 24);

  auto* lowrank = nn::find_slot(*model, "layers.0").slot->as<nn::Conv2dLowRankImpl>();
  ASSERT_NE(lowrank, nullptr);
  const auto& first = lowrank->first().as<torch::nn::Conv2dImpl>()->options;
  const auto& second = lowrank->second().as<torch::nn::Conv2dImpl>()->options;
  const auto two = [](const torch::ExpandingArray<2>& a) { return std::vector<std::int64_t>{a->at(0), a->at(1)}; };
  EXPECT_EQ(two(first.stride()), (std::vector<std::int64_t>{2, 2}));
  EXPECT_EQ(first.bias(), false);
  EXPECT_EQ(two(second.stride()), (std::vector<std::int64_t>{1, 1}));
  EXPECT_EQ(second.bias(), true);
  EXPECT_LT(testing::relative_error(model->forward(x), expected), testing::kFp32Reordered.relative);

  const auto skipped = [&](const std::string& path) {
    for (const auto& line : report.skipped) {
      if (line.rfind(path + ":", 0) == 0) return line;
    }
    return std::string();
  };
  EXPECT_NE(skipped("layers.1").find("kernel 3x3"), std::string::npos) << skipped("layers.1");
  EXPECT_NE(skipped("layers.2").find("groups = 4"), std::string::npos) << skipped("layers.2");
  EXPECT_NE(skipped("layers.3").find("would not reduce"), std::string::npos) << skipped("layers.3");
  EXPECT_EQ(count_layers<torch::nn::Conv2dImpl>(*model), 3 + 2);  // 3 untouched + the two factors
}

TEST(LowRankConvTest, ConvolutionsAreOnlyConsideredWhenAsked) {
  auto model = conv_stack_with_rank_3(7);
  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, {{"energy", 1.0}});  // default kinds: linear
  EXPECT_TRUE(report.changed.empty());
  EXPECT_TRUE(editor.edits().empty());
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_NE(report.skipped[0].find("no layer of the kinds"), std::string::npos) << report.skipped[0];

  // 'layers' narrows the choice and names a pattern that matched nothing.
  const auto narrowed =
      run_pass(*model, editor, {{"energy", 1.0}, {"kinds", {"conv2d"}}, {"layers", {"layers.3", "nope.*"}}});
  EXPECT_TRUE(narrowed.changed.empty());
  ASSERT_EQ(narrowed.skipped.size(), 2u);
  EXPECT_NE(narrowed.skipped[0].find("layers.3"), std::string::npos) << narrowed.skipped[0];
  EXPECT_NE(narrowed.skipped[1].find("'nope.*' matches no layer"), std::string::npos) << narrowed.skipped[1];
}

TEST(LowRankConvTest, SavedEditsRebuildTheFactorizedConvolution) {
  testing::TempDir dir;
  auto model = conv_stack_with_rank_3(8);
  ModelEditor editor(*model);
  run_pass(*model, editor, {{"energy", 1.0}, {"kinds", {"conv2d"}}});
  ASSERT_EQ(editor.edits().size(), 1u);
  run::save_weights(dir / "w.safetensors", *model);
  const auto x = torch::randn({2, 12, 8, 8});
  const auto expected = model->forward(x);

  torch::manual_seed(99);  // different placeholder values
  auto fresh = std::make_shared<ConvStack>();
  nn::replay_edits(*fresh, editor.edits());
  run::load_weights(dir / "w.safetensors", *fresh);
  fresh->eval();
  EXPECT_NE(nn::find_slot(*fresh, "layers.0").slot->as<nn::Conv2dLowRankImpl>(), nullptr);
  const auto loaded = fresh->named_parameters();
  for (const auto& item : model->named_parameters()) {
    ASSERT_NE(loaded.find(item.key()), nullptr) << item.key();
    EXPECT_TRUE(torch::equal(loaded[item.key()], item.value())) << item.key();
  }
  EXPECT_LT(testing::relative_error(fresh->forward(x), expected), testing::kFp32.relative);
}

data::DatasetInfo images() { return {"images", data::TaskKind::kClassification, {1, 28, 28}, 10, 0, {}}; }

models::ModelPtr small_mobilenet(std::int64_t seed) {
  torch::manual_seed(seed);
  auto model = models::make_model("mobilenet", images(),
                                  {{"stem_width", 8}, {"widths", {12, 16}}, {"strides", {1, 2}}, {"dropout", 0.0}});
  testing::give_batch_norms_trained_statistics(*model);
  model->eval();
  return model;
}

TEST(LowRankConvTest, MobileNetPointwiseConvsAreFactorizedForAParameterReductionTarget) {
  auto model = small_mobilenet(9);
  // The expected rank of every pointwise conv, from its shape: the largest r with
  // r * (in + out) <= 0.5 * in * out (bias-free).
  std::map<std::string, std::int64_t> expected_rank;
  std::int64_t expected_parameters = models::count_parameters(*model);
  for (const auto& ref : nn::all_slots(*model)) {
    auto* conv = ref.slot->as<torch::nn::Conv2dImpl>();
    if (conv == nullptr || conv->weight.size(2) != 1 || conv->options.groups() != 1) continue;
    const auto out = conv->weight.size(0), in = conv->weight.size(1);
    const auto rank = static_cast<std::int64_t>(std::floor(0.5 * double(in * out) / double(in + out)));
    expected_rank[ref.path] = rank;
    expected_parameters += rank * (in + out) - in * out;
  }
  ASSERT_EQ(expected_rank.size(), 2u);  // one pointwise conv per block

  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, {{"parameter_reduction", 0.5}, {"kinds", {"conv2d"}}});
  ASSERT_EQ(report.details["layers"].size(), expected_rank.size()) << report.details.dump();
  for (const auto& row : report.details["layers"]) {
    const auto path = row["path"].get<std::string>();
    ASSERT_EQ(expected_rank.count(path), 1u) << path;
    EXPECT_EQ(row["rank"], expected_rank[path]) << path;
    EXPECT_NE(nn::find_slot(*model, path).slot->as<nn::Conv2dLowRankImpl>(), nullptr) << path;
  }
  EXPECT_EQ(models::count_parameters(*model), expected_parameters);
  // The stem (3x3) and the depthwise convs (3x3, grouped) are reported, not factorized.
  for (const auto& path : {"features.0", "features.3.depthwise", "features.4.depthwise"}) {
    const bool reported = std::any_of(report.skipped.begin(), report.skipped.end(), [&](const std::string& line) {
      return line.rfind(std::string(path) + ": left as it is", 0) == 0;
    });
    EXPECT_TRUE(reported) << path;
  }
}

TEST(LowRankConvTest, BatchNormsFoldIntoTheSecondFactor) {
  auto model = small_mobilenet(10);
  ModelEditor editor(*model);
  run_pass(*model, editor, {{"parameter_reduction", 0.5}, {"kinds", {"conv2d"}}});
  const auto x = torch::randn({3, 1, 28, 28});
  const auto factorized = model->forward(x);
  const auto& fold = find_pass("fuse_conv_bn");
  PassContext context;
  context.editor = &editor;
  const auto report = fold.make()->apply(*model, validate_options(fold, {}), context);
  EXPECT_EQ(count_layers<torch::nn::BatchNorm2dImpl>(*model), 0);
  EXPECT_EQ(report.changed.size(), 5u);  // stem, 2 depthwise, 2 pointwise (into their second factors)
  EXPECT_LT(testing::relative_error(model->forward(x), factorized), testing::kFp32Reordered.relative);

  // The fold into a factor replays too.
  auto fresh = models::make_model("mobilenet", model->config());
  nn::replay_edits(*fresh, editor.edits());
  EXPECT_EQ(count_layers<torch::nn::BatchNorm2dImpl>(*fresh), 0);
  EXPECT_EQ(count_layers<nn::Conv2dLowRankImpl>(*fresh), 2);
}

TEST(LowRankConvTest, LayerKindRejectsBadSpecs) {
  const nlohmann::json good = {{"kind", "conv2d_lowrank"}, {"in", 4},           {"rank", 2},          {"out", 3},
                               {"stride", {2, 2}},         {"padding", {1, 1}}, {"dilation", {1, 1}}, {"bias", true}};
  const auto layer = nn::build_layer(good);
  EXPECT_EQ(layer.call(torch::randn({2, 4, 5, 5})).sizes(), (std::vector<std::int64_t>{2, 3, 4, 4}));
  auto zero_rank = good;
  zero_rank["rank"] = 0;
  EXPECT_THROW(nn::build_layer(zero_rank), Error);
  auto short_stride = good;
  short_stride["stride"] = {2};
  EXPECT_THROW(nn::build_layer(short_stride), Error);
  auto missing = good;
  missing.erase("padding");
  EXPECT_THROW(nn::build_layer(missing), Error);
}

TEST(LowRankOptionsTest, KindsAreChecked) {
  const auto& entry = find_pass("lowrank_svd");
  const auto message = testing::usage_error_message([&] { validate_options(entry, {{"kinds", {"conv3d"}}}); });
  EXPECT_NE(message.find("'kinds'"), std::string::npos) << message;
  EXPECT_EQ(validate_options(entry, nlohmann::json::object())["kinds"], nlohmann::json::array({"linear"}));
}

}  // namespace
}  // namespace hone::compress
