// fuse_conv_bn against the unfolded pairs; the editor's record replays onto a fresh model; recipe
// and option validation name what is wrong.
#include <gtest/gtest.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/torch.h>

#include "hone/compress/compress.h"
#include "hone/compress/editor.h"
#include "hone/compress/pass.h"
#include "hone/core/error.h"
#include "hone/models/registry.h"
#include "hone/nn/edits.h"
#include "hone/nn/layer.h"
#include "support/batch_norm_statistics.h"
#include "support/error_message.h"
#include "support/pass_runner.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone::compress {
namespace {

using testing::count_layers;

data::DatasetInfo images() { return {"images", data::TaskKind::kClassification, {1, 28, 28}, 10, 0, {}}; }

/// A cnn whose batch norms hold non-trivial statistics (as after training), in eval mode.
models::ModelPtr trained_looking_cnn(std::uint64_t seed) {
  torch::manual_seed(static_cast<std::int64_t>(seed));
  auto model = models::make_model("cnn", images(), {{"widths", {8, 16}}});
  testing::give_batch_norms_trained_statistics(*model);
  model->eval();
  return model;
}

PassReport run_pass(models::Model& model, ModelEditor& editor, const std::string& name,
                    const nlohmann::json& options = {}) {
  const auto& entry = find_pass(name);
  PassContext context;
  context.editor = &editor;
  return entry.make()->apply(model, validate_options(entry, options), context);
}

TEST(FuseConvBnTest, FoldedCnnEqualsTheUnfoldedOneAndHasNoBatchNorms) {
  auto model = trained_looking_cnn(1);
  const auto x = torch::randn({3, 1, 28, 28});
  const auto expected = model->forward(x);
  const auto norms_before = count_layers<torch::nn::BatchNorm2dImpl>(*model);
  ASSERT_EQ(norms_before, 6);  // stem, 2 per block x 2 blocks, 1 shortcut
  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, "fuse_conv_bn");
  EXPECT_EQ(report.changed.size(), 6u);
  EXPECT_EQ(count_layers<torch::nn::BatchNorm2dImpl>(*model), 0);
  EXPECT_EQ(count_layers<torch::nn::IdentityImpl>(*model), 6);
  const auto actual = model->forward(x);
  EXPECT_LT(testing::relative_error(actual, expected), testing::kFp32Reordered.relative);
}

TEST(FuseConvBnTest, ParametersShrinkByTheNormsAndGainConvBiases) {
  auto model = trained_looking_cnn(2);
  const auto before = models::count_parameters(*model);
  std::int64_t norm_params = 0, conv_outputs = 0;
  for (const auto& ref : nn::all_slots(*model)) {
    if (auto* bn = ref.slot->as<torch::nn::BatchNorm2dImpl>()) {
      norm_params += 2 * bn->weight.numel();
      conv_outputs += bn->weight.numel();  // each gets one bias per channel
    }
  }
  ModelEditor editor(*model);
  run_pass(*model, editor, "fuse_conv_bn");
  EXPECT_EQ(models::count_parameters(*model), before - norm_params + conv_outputs);
}

TEST(FuseConvBnTest, SavedEditsReplayOntoAFreshModelAndReproduceTheOutputs) {
  auto model = trained_looking_cnn(3);
  ModelEditor editor(*model);
  run_pass(*model, editor, "fuse_conv_bn");
  const auto x = torch::randn({2, 1, 28, 28});
  const auto expected = model->forward(x);
  auto fresh = testing::reload(*model, editor);
  EXPECT_TRUE(torch::equal(fresh->forward(x), expected));
}

TEST(FuseConvBnTest, ModelWithoutPairsIsUnchangedAndSaysSo) {
  torch::manual_seed(0);
  auto model = models::make_model("mlp", images());
  const auto before = models::count_parameters(*model);
  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, "fuse_conv_bn");
  EXPECT_TRUE(report.changed.empty());
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_NE(report.skipped[0].find("no Conv2d"), std::string::npos);
  EXPECT_EQ(models::count_parameters(*model), before);
  EXPECT_TRUE(editor.edits().empty());
}

TEST(FuseConvBnTest, ReplayRejectsEditsThatDoNotApply) {
  auto model = models::make_model("cnn", images(), {{"widths", {8, 16}}});
  const auto message = testing::error_message([&] {
    nn::replay_edits(*model, nlohmann::json::array(
                                 {{{"op", "replace"}, {"path", "features.9"}, {"layer", {{"kind", "identity"}}}}}));
  });
  EXPECT_NE(message.find("edit 0"), std::string::npos) << message;
  EXPECT_NE(message.find("features.9"), std::string::npos) << message;
  const auto unknown = testing::error_message([&] {
    nn::replay_edits(
        *model, nlohmann::json::array({{{"op", "replace"}, {"path", "classifier"}, {"layer", {{"kind", "nope"}}}}}));
  });
  EXPECT_NE(unknown.find("unknown layer kind 'nope'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("identity"), std::string::npos) << unknown;
}

TEST(RecipeTest, UnknownPassListsTheValidOnes) {
  const auto message = testing::error_message([] { parse_recipe({{"passes", {{{"pass", "quantise"}}}}}, "r.json"); });
  EXPECT_NE(message.find("r.json"), std::string::npos) << message;
  EXPECT_NE(message.find("unknown compression pass 'quantise'"), std::string::npos) << message;
  EXPECT_NE(message.find("fuse_conv_bn"), std::string::npos) << message;
}

TEST(RecipeTest, UnknownOptionAndMalformedRecipesAreUsageErrors) {
  const auto option = testing::error_message([] {
    parse_recipe({{"passes", {{{"pass", "fuse_conv_bn"}, {"eps", 1}}}}}, "r.json");
  });
  EXPECT_NE(option.find("unknown option 'eps'"), std::string::npos) << option;
  EXPECT_THROW(parse_recipe(nlohmann::json::array(), "r.json"), UsageError);
  EXPECT_THROW(parse_recipe({{"passes", nlohmann::json::array()}}, "r.json"), UsageError);
  EXPECT_THROW(parse_recipe({{"passes", {{{"name", "fuse_conv_bn"}}}}}, "r.json"), UsageError);
  EXPECT_THROW(parse_recipe({{"passes", {{{"pass", "fuse_conv_bn"}}}}, {"extra", 1}}, "r.json"), UsageError);
}

TEST(RecipeTest, OptionTypesRangesAndChoicesAreChecked) {
  PassEntry entry{"demo", "", {}, nullptr};
  entry.options.push_back({"amount", OptionSpec::Type::Number, nullptr, {}, 0.0, 1.0, "fraction"});
  entry.options.push_back({"mode", OptionSpec::Type::String, "a", {"a", "b"}, -1e300, 1e300, "mode"});
  entry.options.push_back({"steps", OptionSpec::Type::Integer, 3, {}, 1, 10, "steps"});
  const auto filled = validate_options(entry, {{"amount", 0.5}});
  EXPECT_EQ(filled["mode"], "a");
  EXPECT_EQ(filled["steps"], 3);
  EXPECT_NE(
      testing::error_message([&] { validate_options(entry, nlohmann::json::object()); }).find("'amount' is required"),
      std::string::npos);
  EXPECT_NE(testing::error_message([&] {
              validate_options(entry, {{"amount", 1.5}});
            }).find("[0, 1]"),
            std::string::npos);
  EXPECT_NE(testing::error_message([&] {
              validate_options(entry, {{"amount", 0.5}, {"mode", "c"}});
            }).find("one of a, b"),
            std::string::npos);
  EXPECT_THROW(validate_options(entry, {{"amount", 0.5}, {"steps", 2.5}}), UsageError);
  EXPECT_THROW(validate_options(entry, {{"amount", "half"}}), UsageError);
}

}  // namespace
}  // namespace hone::compress
