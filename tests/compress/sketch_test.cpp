// The sketch pass: fixed (L, k) replaces exactly the chosen Linears that get cheaper, and the model
// then computes what the sketched operator and the effective dense weights say; the auto-tuner
// keeps layers dense (with reasons) when no candidate fits the accuracy budget or is fast enough,
// and sketches a large layer when the budget allows; saved edits rebuild the sketched model.
#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>
#include <torch/torch.h>

#include "hone/compress/editor.h"
#include "hone/compress/pass.h"
#include "hone/core/error.h"
#include "hone/models/registry.h"
#include "hone/nn/edits.h"
#include "hone/nn/layer.h"
#include "hone/nn/sketched_conv2d.h"
#include "hone/nn/sketched_linear.h"
#include "hone/ops/sketched_linear.h"
#include "hone/run/run_dir.h"
#include "support/error_message.h"
#include "support/relative_error.h"
#include "support/temp_dir.h"
#include "support/tolerances.h"

namespace hone::compress {
namespace {

data::DatasetInfo table(std::int64_t features) {
  return {"table", data::TaskKind::kClassification, {features}, 10, 0, {}};
}
data::DatasetInfo images() { return {"images", data::TaskKind::kClassification, {1, 28, 28}, 10, 0, {}}; }

/// mlp features -> hidden... -> 10, in eval mode.
models::ModelPtr mlp(std::int64_t seed, std::int64_t features, std::vector<std::int64_t> hidden) {
  torch::manual_seed(seed);
  auto model = models::make_model("mlp", table(features), {{"hidden", hidden}, {"dropout", 0.0}});
  model->eval();
  return model;
}

torch::nn::LinearImpl* linear_at(models::Model& model, const std::string& path) {
  return nn::find_slot(model, path).slot->as<torch::nn::LinearImpl>();
}
nn::SketchedLinearImpl* sketch_at(models::Model& model, const std::string& path) {
  return nn::find_slot(model, path).slot->as<nn::SketchedLinearImpl>();
}

/// The cnn zoo model with two stages (8 and 16 channels), in eval mode.
models::ModelPtr cnn(std::int64_t seed) {
  torch::manual_seed(seed);
  auto model = models::make_model("cnn", images(), {{"widths", {8, 16}}});
  model->eval();
  return model;
}

std::vector<std::int64_t> batch_of(std::int64_t rows, std::vector<std::int64_t> sample) {
  sample.insert(sample.begin(), rows);
  return sample;
}

/// An accuracy-like score in (0, 1]: 1 / (1 + relative output error against the original model
/// on fixed inputs), so its drop in points is 100 · e / (1 + e) for an output error e.
std::function<double(models::Model&)> output_fidelity(models::Model& original, std::vector<std::int64_t> sample) {
  const auto inputs = torch::randn(batch_of(32, std::move(sample)));
  torch::NoGradGuard no_grad;
  const auto expected = original.forward(inputs).detach().clone();
  return [inputs, expected](models::Model& model) {
    torch::NoGradGuard guard;
    return 1.0 / (1.0 + testing::relative_error(model.forward(inputs), expected));
  };
}

/// Calibration: one batch of 16 random samples (only their shape matters to the pass).
PassContext context_for(ModelEditor& editor, std::vector<std::int64_t> sample,
                        std::function<double(models::Model&)> score = nullptr) {
  PassContext context;
  context.editor = &editor;
  context.validation_score = std::move(score);
  context.calibration_batches = [sample](std::int64_t) {
    return std::vector<torch::Tensor>{torch::randn(batch_of(16, sample))};
  };
  return context;
}

PassReport run_pass(models::Model& model, PassContext& context, const nlohmann::json& options) {
  const auto& entry = find_pass("sketch");
  return entry.make()->apply(model, validate_options(entry, options), context);
}

bool mentions(const std::vector<std::string>& lines, const std::string& a, const std::string& b) {
  return std::any_of(lines.begin(), lines.end(), [&](const auto& line) {
    return line.find(a) != std::string::npos && line.find(b) != std::string::npos;
  });
}

TEST(SketchPassTest, FixedTermsAndRankReplaceExactlyTheMatchingLinears) {
  // layers.0 64 -> 48, layers.3 48 -> 40, layers.6 40 -> 10.
  auto model = mlp(1, 64, {48, 40});
  auto dense = mlp(1, 64, {48, 40});
  ModelEditor editor(*model);
  auto context = context_for(editor, {64});
  const auto report =
      run_pass(*model, context, {{"terms", 2}, {"rank", 4}, {"layers", {"layers.*"}}, {"skip", {"layers.3"}}});

  // layers.0: 2*2*4*(64+48) = 1792 < 3072 multiply-adds; layers.6: 2*2*4*50 = 800 >= 400.
  ASSERT_EQ(report.changed.size(), 1u);
  EXPECT_NE(report.changed[0].find("layers.0"), std::string::npos) << report.changed[0];
  EXPECT_TRUE(mentions(report.skipped, "layers.3", "'skip'"));
  EXPECT_TRUE(mentions(report.skipped, "layers.6", "would not reduce"));
  ASSERT_EQ(editor.edits().size(), 1u);
  EXPECT_EQ(editor.edits()[0]["path"], "layers.0");
  EXPECT_EQ(editor.edits()[0]["layer"],
            (nlohmann::json{
                {"kind", "sketched_linear"}, {"in", 64}, {"out", 48}, {"terms", 2}, {"rank", 4}, {"bias", true}}));
  auto* sketch = sketch_at(*model, "layers.0");
  ASSERT_NE(sketch, nullptr);
  EXPECT_EQ(sketch->options().terms, 2);
  EXPECT_EQ(sketch->options().rank, 4);
  EXPECT_NE(linear_at(*model, "layers.3"), nullptr);
  EXPECT_NE(linear_at(*model, "layers.6"), nullptr);

  torch::NoGradGuard no_grad;
  const auto x = torch::randn({7, 64});
  // The slot computes the sketched operator on its own tensors...
  const auto expected_layer =
      ops::sketched_linear_reference(x, sketch->s1, sketch->s2, sketch->u1, sketch->u2, sketch->bias);
  EXPECT_LT(testing::relative_error(nn::find_slot(*model, "layers.0").slot->operator()(x), expected_layer),
            testing::kFp32Reordered.relative);
  // ...which the whole model uses in place of the dense layer: the original model with the
  // effective dense weight gives the same outputs.
  linear_at(*dense, "layers.0")->weight.copy_(sketch->effective_weight());
  EXPECT_LT(testing::relative_error(model->forward(x), dense->forward(x)), testing::kFp32Reordered.relative);
}

TEST(SketchPassTest, PatternsSelectPathsAndUnmatchedPatternsAreReported) {
  auto model = mlp(2, 64, {48, 48});
  ModelEditor editor(*model);
  auto context = context_for(editor, {64});
  const auto report = run_pass(*model, context, {{"terms", 1}, {"rank", 4}, {"layers", {"*.3", "blocks.*"}}});
  ASSERT_EQ(editor.edits().size(), 1u);
  EXPECT_EQ(editor.edits()[0]["path"], "layers.3");
  EXPECT_NE(linear_at(*model, "layers.0"), nullptr);
  EXPECT_TRUE(mentions(report.skipped, "'blocks.*'", "matches no Linear"));
}

TEST(SketchPassTest, LayersGetDifferentSketches) {
  auto model = mlp(3, 48, {48});
  ModelEditor editor(*model);
  auto context = context_for(editor, {48});
  auto other = mlp(3, 48, {48});
  ModelEditor other_editor(*other);
  auto other_context = context_for(other_editor, {48});
  // layers.0 and layers.3 (48 -> 10) both shrink at L=1, k=2.
  run_pass(*model, context, {{"terms", 1}, {"rank", 2}, {"seed", 7}});
  run_pass(*other, other_context, {{"terms", 1}, {"rank", 2}, {"seed", 7}});
  ASSERT_EQ(editor.edits().size(), 2u);
  EXPECT_FALSE(torch::equal(sketch_at(*model, "layers.0")->u2, sketch_at(*model, "layers.3")->u2));
  // The same seed gives the same sketches.
  EXPECT_TRUE(torch::equal(sketch_at(*model, "layers.0")->u1, sketch_at(*other, "layers.0")->u1));
}

TEST(SketchPassTest, SketchesThatWouldNotShrinkMultiplyAddsAreSkipped) {
  auto model = mlp(4, 8, {8});  // layers.0 8 -> 8, layers.3 8 -> 10
  ModelEditor editor(*model);
  auto context = context_for(editor, {8});
  const auto x = torch::randn({3, 8});
  const auto before = model->forward(x);
  const auto report = run_pass(*model, context, {{"terms", 1}, {"rank", 16}});
  EXPECT_TRUE(report.changed.empty());
  // 2*1*16*(8+8) = 512 >= 64.
  EXPECT_TRUE(mentions(report.skipped, "layers.0", "would not reduce multiply-adds"));
  EXPECT_TRUE(mentions(report.skipped, "layers.0", "512 >= 64"));
  EXPECT_TRUE(editor.edits().empty());
  EXPECT_TRUE(torch::equal(model->forward(x), before));
}

TEST(SketchPassTest, AutoTunerKeepsLayersDenseWhenNoCandidateMeetsTheBudget) {
  auto model = mlp(5, 64, {48});  // layers.0 64 -> 48; layers.3 48 -> 10
  const auto original = mlp(5, 64, {48});
  ModelEditor editor(*model);
  int evaluations = 0;
  auto fidelity = output_fidelity(*original, {64});
  auto context = context_for(editor, {64}, [&](models::Model& m) {
    ++evaluations;
    return fidelity(m);
  });
  const auto x = torch::randn({5, 64});
  const auto before = model->forward(x);
  // min_speedup 0 lets every cheaper candidate through to the accuracy check, whatever the timing.
  const auto report = run_pass(
      *model, context, {{"accuracy_budget", 1.0}, {"min_speedup", 0.0}, {"terms_grid", {1, 2}}, {"rank_grid", {5, 8}}});
  EXPECT_TRUE(report.changed.empty());
  EXPECT_TRUE(editor.edits().empty());
  EXPECT_NE(linear_at(*model, "layers.0"), nullptr);
  EXPECT_TRUE(torch::equal(model->forward(x), before));
  // layers.0 costs 3072 multiply-adds per row and (L, k) 2Lk*112: (1,5), (1,8), (2,5) are cheaper,
  // (2,8) is not. layers.3 costs 480 and every (L, k) at least 2*5*58 = 580.
  EXPECT_TRUE(mentions(report.skipped, "layers.0", "all 3 faster candidates exceed the accuracy budget"));
  EXPECT_TRUE(mentions(report.skipped, "layers.3", "no (L,k) in the grids has fewer multiply-adds"));
  EXPECT_EQ(evaluations, 1 + 3);
  const auto& rows = report.details["layers"];
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["path"], "layers.0");
  EXPECT_TRUE(rows[0]["choice"].is_null());
  EXPECT_GT(rows[0]["dense_ms"].get<double>(), 0);
  ASSERT_EQ(rows[0]["candidates"].size(), 3u);
  for (const auto& candidate : rows[0]["candidates"]) {
    EXPECT_GT(candidate["drop"].get<double>(), 1.0) << candidate.dump();
    EXPECT_LT(candidate["score"].get<double>(), 1.0) << candidate.dump();
    EXPECT_EQ(candidate["result"], "over the accuracy budget");
  }
  EXPECT_EQ(report.details["score_before"], 1.0);
  EXPECT_EQ(report.details["drop_unit"], "accuracy points");
}

TEST(SketchPassTest, AutoTunerKeepsLayersDenseWhenNoCandidateIsFastEnough) {
  auto model = mlp(6, 64, {48});
  const auto original = mlp(6, 64, {48});
  ModelEditor editor(*model);
  auto context = context_for(editor, {64}, output_fidelity(*original, {64}));
  const auto report =
      run_pass(*model, context, {{"min_speedup", 1e6}, {"accuracy_budget", 100.0}, {"rank_grid", {4, 8}}});
  EXPECT_TRUE(report.changed.empty());
  EXPECT_TRUE(editor.edits().empty());
  EXPECT_TRUE(mentions(report.skipped, "layers.0", "no (L,k) faster than dense: best"));
  for (const auto& candidate : report.details["layers"][0]["candidates"]) {
    EXPECT_TRUE(candidate["score"].is_null());
    EXPECT_EQ(candidate["result"], "slower than min_speedup");
  }
}

TEST(SketchPassTest, AutoTunerSketchesALargeLayerWhenTheBudgetAllows) {
  // 1024 x 1024 at batch 64: L=1, k=16 needs 16x fewer multiply-adds, clearly faster on a CPU.
  // One thread: on a shared machine, multi-threaded kernels wait for time slices that swamp the
  // difference being measured.
  const auto threads = at::get_num_threads();
  at::set_num_threads(1);
  struct RestoreThreads {
    int threads;
    ~RestoreThreads() { at::set_num_threads(threads); }
  } restore_threads{threads};
  auto model = mlp(7, 1024, {1024});
  const auto original = mlp(7, 1024, {1024});
  ModelEditor editor(*model);
  auto context = context_for(editor, {1024}, output_fidelity(*original, {1024}));
  const auto report = run_pass(*model, context,
                               {{"layers", {"layers.0"}},
                                {"accuracy_budget", 100.0},
                                {"batch", 64},
                                {"terms_grid", {1, 2}},
                                {"rank_grid", {16, 32}}});
  ASSERT_EQ(report.changed.size(), 1u) << report.details.dump(2);
  const auto& row = report.details["layers"][0];
  ASSERT_FALSE(row["choice"].is_null()) << row.dump(2);
  EXPECT_GE(row["choice"]["speedup"].get<double>(), 1.1) << row.dump(2);
  EXPECT_EQ(row["input_shape"], (std::vector<std::int64_t>{16, 1024}));
  EXPECT_EQ(row["timing_shape"], (std::vector<std::int64_t>{64, 1024}));
  auto* sketch = sketch_at(*model, "layers.0");
  ASSERT_NE(sketch, nullptr);
  EXPECT_EQ(sketch->options().terms, row["choice"]["terms"].get<std::int64_t>());
  EXPECT_EQ(sketch->options().rank, row["choice"]["rank"].get<std::int64_t>());
  ASSERT_EQ(editor.edits().size(), 1u);
  EXPECT_EQ(editor.edits()[0]["layer"]["terms"], row["choice"]["terms"]);
  // The chosen candidate is the fastest one that passed min_speedup (all are within budget here).
  for (const auto& candidate : row["candidates"]) {
    if (candidate["result"] == "chosen") continue;
    EXPECT_GE(candidate["ms"].get<double>(), row["choice"]["ms"].get<double>()) << candidate.dump();
  }
  EXPECT_DOUBLE_EQ(report.details["score_after"].get<double>(), row["choice"]["score"].get<double>());
}

TEST(SketchPassTest, ForecasterBudgetIsAPercentOfTheScore) {
  auto model = mlp(8, 64, {48});
  const auto original = mlp(8, 64, {48});
  ModelEditor editor(*model);
  auto fidelity = output_fidelity(*original, {64});
  // Like -RMSE: -1 for the original, -(1 + e) with output error e.
  auto context = context_for(editor, {64}, [&](models::Model& m) { return -1.0 / fidelity(m); });
  const auto report = run_pass(*model, context,
                               {{"layers", {"layers.0"}},
                                {"min_speedup", 0.0},
                                {"accuracy_budget", 1e6},
                                {"terms_grid", {1}},
                                {"rank_grid", {4}}});
  ASSERT_EQ(report.changed.size(), 1u);
  const auto& choice = report.details["layers"][0]["choice"];
  const double score = choice["score"].get<double>();
  EXPECT_NEAR(choice["drop"].get<double>(), 100 * (-1.0 - score) / 1.0, 1e-9);
  EXPECT_EQ(report.details["drop_unit"], "percent of |score|");
}

TEST(SketchPassTest, AutoTuningWithoutDataIsAnErrorButFixedSketchesNeedNone) {
  auto model = mlp(9, 64, {48});
  ModelEditor editor(*model);
  PassContext context;
  context.editor = &editor;
  try {
    run_pass(*model, context, {{"terms", 1}});
    ADD_FAILURE() << "auto-tuning ran without a validation score";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("validation score"), std::string::npos) << error.what();
  }
  context.validation_score = [](models::Model&) { return 0.5; };
  context.calibration_batches = [](std::int64_t) { return std::vector<torch::Tensor>{}; };
  try {
    run_pass(*model, context, {});
    ADD_FAILURE() << "auto-tuning ran without a calibration batch";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("calibration batch"), std::string::npos) << error.what();
  }
  EXPECT_TRUE(editor.edits().empty());
  PassContext bare;
  bare.editor = &editor;
  const auto report = run_pass(*model, bare, {{"terms", 1}, {"rank", 8}});
  EXPECT_EQ(report.changed.size(), 1u);
}

TEST(SketchPassTest, SavedEditsRebuildTheSketchedModel) {
  testing::TempDir dir;
  auto model = mlp(10, 64, {48});
  ModelEditor editor(*model);
  auto context = context_for(editor, {64});
  run_pass(*model, context, {{"terms", 2}, {"rank", 4}, {"seed", 3}});
  ASSERT_EQ(editor.edits().size(), 1u);
  run::save_weights(dir / "w.safetensors", *model);
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({4, 64});
  const auto expected = model->forward(x);

  auto fresh = models::make_model("mlp", table(64), {{"hidden", {48}}, {"dropout", 0.0}});
  nn::replay_edits(*fresh, editor.edits());
  run::load_weights(dir / "w.safetensors", *fresh);
  fresh->eval();
  ASSERT_NE(sketch_at(*fresh, "layers.0"), nullptr);
  const auto loaded_buffers = fresh->named_buffers();
  for (const auto& item : model->named_buffers()) {
    ASSERT_NE(loaded_buffers.find(item.key()), nullptr) << item.key();
    EXPECT_TRUE(torch::equal(loaded_buffers[item.key()], item.value())) << item.key();
  }
  const auto loaded = fresh->named_parameters();
  for (const auto& item : model->named_parameters()) {
    ASSERT_NE(loaded.find(item.key()), nullptr) << item.key();
    EXPECT_TRUE(torch::equal(loaded[item.key()], item.value())) << item.key();
  }
  EXPECT_TRUE(torch::equal(fresh->forward(x), expected));
}

TEST(SketchPassTest, FixedSketchesConvolutionsWithTheirEffectiveWeights) {
  // features.3 is the first block (8 -> 8 channels, 3x3): 2*1*2*(72 + 8) = 320 < 576 per pixel.
  auto model = cnn(11);
  auto dense = cnn(11);
  ModelEditor editor(*model);
  auto context = context_for(editor, {1, 28, 28});
  const auto report = run_pass(*model, context, {{"terms", 1}, {"rank", 2}, {"layers", {"features.3.*"}}});
  ASSERT_EQ(editor.edits().size(), 2u) << editor.edits().dump();
  EXPECT_EQ(editor.edits()[0]["path"], "features.3.conv1");
  EXPECT_EQ(editor.edits()[1]["path"], "features.3.conv2");
  EXPECT_EQ(editor.edits()[0]["layer"]["kind"], "sketched_conv2d");
  EXPECT_EQ(report.changed.size(), 2u);
  torch::NoGradGuard no_grad;
  for (const auto* path : {"features.3.conv1", "features.3.conv2"}) {
    auto* sketch = nn::find_slot(*model, path).slot->as<nn::SketchedConv2dImpl>();
    ASSERT_NE(sketch, nullptr) << path;
    nn::find_slot(*dense, path).slot->as<torch::nn::Conv2dImpl>()->weight.copy_(sketch->effective_weight());
  }
  const auto x = torch::randn({3, 1, 28, 28});
  EXPECT_LT(testing::relative_error(model->forward(x), dense->forward(x)), testing::kFp32Reordered.relative);
}

TEST(SketchPassTest, GroupedConvolutionsStayDense) {
  torch::manual_seed(12);
  auto model = models::make_model("mobilenet", images(), {{"stem_width", 8}, {"widths", {8}}, {"strides", {1}}});
  model->eval();
  ModelEditor editor(*model);
  auto context = context_for(editor, {1, 28, 28});
  // features.3 is depthwise (groups 8) then pointwise (1x1, 8 -> 8: 2*1*1*(8 + 8) = 32 < 64).
  const auto report = run_pass(*model, context, {{"terms", 1}, {"rank", 1}, {"layers", {"features.3"}}});
  EXPECT_TRUE(mentions(report.skipped, "features.3.depthwise", "groups = 8"));
  ASSERT_EQ(editor.edits().size(), 1u);
  EXPECT_EQ(editor.edits()[0]["path"], "features.3.pointwise");
  EXPECT_NE(nn::find_slot(*model, "features.3.depthwise").slot->as<torch::nn::Conv2dImpl>(), nullptr);
}

TEST(SketchPassTest, AutoTunerTimesConvolutionsOnTheirRecordedImageShape) {
  auto model = cnn(13);
  const auto original = cnn(13);
  ModelEditor editor(*model);
  auto context = context_for(editor, {1, 28, 28}, output_fidelity(*original, {1, 28, 28}));
  // features.4.conv2 (16 -> 16, 3x3) sees the second stage's 14x14 maps.
  const auto report = run_pass(*model, context,
                               {{"layers", {"features.4.conv2"}},
                                {"min_speedup", 0.0},
                                {"accuracy_budget", 100.0},
                                {"batch", 4},
                                {"terms_grid", {1}},
                                {"rank_grid", {2}}});
  ASSERT_EQ(report.changed.size(), 1u) << report.details.dump(2);
  const auto& row = report.details["layers"][0];
  EXPECT_EQ(row["input_shape"], (std::vector<std::int64_t>{16, 16, 14, 14}));
  EXPECT_EQ(row["timing_shape"], (std::vector<std::int64_t>{4, 16, 14, 14}));
  EXPECT_NE(nn::find_slot(*model, "features.4.conv2").slot->as<nn::SketchedConv2dImpl>(), nullptr);
}

TEST(SketchOptionsTest, BadOptionsAreUsageErrorsNamingTheOption) {
  const auto& entry = find_pass("sketch");
  const auto message = [&](const nlohmann::json& options) {
    return testing::usage_error_message([&] { validate_options(entry, options); });
  };
  EXPECT_NE(message({{"terms_grid", {1, 0}}}).find("'terms_grid'"), std::string::npos);
  EXPECT_NE(message({{"terms_grid", nlohmann::json::array()}}).find("'terms_grid'"), std::string::npos);
  EXPECT_NE(message({{"rank_grid", {16, 2.5}}}).find("'rank_grid'"), std::string::npos);
  EXPECT_NE(message({{"rank_grid", {"16"}}}).find("'rank_grid'"), std::string::npos);
  EXPECT_NE(message({{"rank_grid", 16}}).find("'rank_grid'"), std::string::npos);
  EXPECT_NE(message({{"rank", -1}}).find("'rank'"), std::string::npos);
  EXPECT_NE(message({{"accuracy_budget", -0.5}}).find("'accuracy_budget'"), std::string::npos);
  EXPECT_NE(message({{"batch", 0}}).find("'batch'"), std::string::npos);
  EXPECT_NE(message({{"layers", "layers.0"}}).find("'layers'"), std::string::npos);
  EXPECT_NE(message({{"ranks", {16}}}).find("'ranks'"), std::string::npos);
  const auto defaults = validate_options(entry, nlohmann::json::object());
  EXPECT_EQ(defaults["terms_grid"], (std::vector<std::int64_t>{1, 2, 4, 8}));
  EXPECT_EQ(defaults["rank_grid"], (std::vector<std::int64_t>{16, 32, 64, 128}));
  EXPECT_EQ(defaults["accuracy_budget"], 1.0);
  EXPECT_EQ(defaults["min_speedup"], 1.1);
  EXPECT_EQ(defaults["batch"], 64);
}

TEST(SketchOptionsTest, RunsAfterFoldingAndBeforeQuantization) {
  const auto& registry = pass_registry();
  const auto position = [&](const std::string& name) {
    return std::find_if(registry.begin(), registry.end(), [&](const auto& e) { return e.name == name; }) -
           registry.begin();
  };
  EXPECT_EQ(position("sketch"), position("fuse_conv_bn") + 1);
  EXPECT_LT(position("sketch"), position("quant_int8_static"));
}

}  // namespace
}  // namespace hone::compress
