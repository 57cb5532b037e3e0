// The quantization passes on zoo models: which layers change (counted before/after), outputs stay
// close to float, what is skipped says why, and a saved compressed model reloads to the same outputs.
// With an accuracy budget, the int8 passes keep the layers whose int8 costs most in float.
#include <gtest/gtest.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/torch.h>

#include <fmt/format.h>

#include <algorithm>
#include <functional>

#include "hone/compress/editor.h"
#include "hone/compress/pass.h"
#include "hone/core/error.h"
#include "hone/models/registry.h"
#include "hone/nn/conv2d_float.h"
#include "hone/nn/conv2d_int8.h"
#include "hone/nn/edits.h"
#include "hone/nn/layer.h"
#include "hone/nn/linear_float.h"
#include "hone/nn/linear_int8.h"
#include "hone/nn/linear_int8_dynamic.h"
#include "hone/nn/lstm_int8_dynamic.h"
#include "hone/nn/residual_add_int8.h"
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
using testing::mentions;
using testing::reload;

data::DatasetInfo images() { return {"images", data::TaskKind::kClassification, {1, 28, 28}, 10, 0, {}}; }
data::DatasetInfo windows() { return {"window", data::TaskKind::kForecasting, {30, 2}, 0, 3, {}}; }

/// A cnn whose batch norms hold non-trivial statistics (as after training), in eval mode.
models::ModelPtr trained_looking_cnn(std::int64_t seed) {
  torch::manual_seed(seed);
  auto model = models::make_model("cnn", images(), {{"widths", {8, 16}}});
  testing::give_batch_norms_trained_statistics(*model);
  model->eval();
  return model;
}

models::ModelPtr lstm_model(std::int64_t seed) {
  torch::manual_seed(seed);
  auto model = models::make_model("lstm", windows(), {{"num_layers", 2}});
  torch::NoGradGuard no_grad;
  for (auto& parameter : model->parameters()) {
    if (parameter.abs().max().item<double>() == 0) parameter.normal_(0, 0.3);  // the head starts at zero
  }
  model->eval();
  return model;
}

PassReport run_pass(models::Model& model, ModelEditor& editor, const std::string& name, const nlohmann::json& options,
                    std::vector<torch::Tensor> batches = {},
                    std::function<double(models::Model&)> validation_score = nullptr) {
  const auto& entry = find_pass(name);
  PassContext context;
  context.editor = &editor;
  context.validation_score = std::move(validation_score);
  if (!batches.empty()) {
    context.calibration_batches = [batches](std::int64_t n) {
      return std::vector<torch::Tensor>(batches.begin(), batches.begin() + std::min<std::int64_t>(n, batches.size()));
    };
  }
  return entry.make()->apply(model, validate_options(entry, options), context);
}

std::vector<torch::Tensor> image_batches(std::int64_t n) {
  std::vector<torch::Tensor> batches;
  for (std::int64_t i = 0; i < n; ++i) batches.push_back(torch::randn({8, 1, 28, 28}));
  return batches;
}

TEST(QuantPassesTest, DynamicReplacesLstmAndLinearAndReloads) {
  auto model = lstm_model(1);
  const auto x = torch::randn({4, 30, 2});
  const auto expected = model->forward(x);
  ASSERT_EQ(count_layers<torch::nn::LSTMImpl>(*model), 1);
  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, "quant_int8_dynamic", {});
  EXPECT_EQ(count_layers<torch::nn::LSTMImpl>(*model), 0);
  EXPECT_EQ(count_layers<torch::nn::LinearImpl>(*model), 0);
  EXPECT_EQ(count_layers<nn::LstmInt8DynamicImpl>(*model), 1);
  EXPECT_EQ(count_layers<nn::LinearInt8DynamicImpl>(*model), 1);
  ASSERT_EQ(report.details["layers"].size(), 2u);
  EXPECT_LT(report.details["layers"][0]["weight_error"].get<double>(), 0.02);
  const auto actual = model->forward(x);
  EXPECT_LT(testing::relative_error(actual, expected), testing::kInt8Layer.relative);
  auto rebuilt = reload(*model, editor);
  EXPECT_TRUE(torch::equal(rebuilt->forward(x), actual));
}

TEST(QuantPassesTest, DynamicLeavesConvolutionsAndSkippedPathsAlone) {
  auto model = trained_looking_cnn(2);
  const auto convs = count_layers<torch::nn::Conv2dImpl>(*model);
  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, "quant_int8_dynamic", {{"per_channel", false}});
  EXPECT_EQ(count_layers<torch::nn::Conv2dImpl>(*model), convs);
  EXPECT_EQ(count_layers<nn::LinearInt8DynamicImpl>(*model), 1);
  EXPECT_TRUE(
      mentions(report.skipped, "features.0: Conv2d is not supported by dynamic quantization (use quant_int8_static)"));

  auto lstm = lstm_model(3);
  ModelEditor lstm_editor(*lstm);
  const auto skipped = run_pass(*lstm, lstm_editor, "quant_int8_dynamic", {{"skip", {"head"}}, {"layers", {"lstm"}}});
  EXPECT_EQ(count_layers<torch::nn::LinearImpl>(*lstm), 1);
  EXPECT_EQ(count_layers<nn::LstmInt8DynamicImpl>(*lstm), 1);
  EXPECT_TRUE(mentions(skipped.skipped, "head: Linear left in float"));
}

TEST(QuantPassesTest, StaticNeedsCalibrationData) {
  auto model = trained_looking_cnn(4);
  ModelEditor editor(*model);
  try {
    run_pass(*model, editor, "quant_int8_static", {});
    FAIL() << "expected hone::Error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("calibration data"), std::string::npos) << error.what();
  }
  EXPECT_TRUE(editor.edits().empty());
}

TEST(QuantPassesTest, StaticCnnAfterFuseIsAllInt8AndCloseToFloat) {
  auto model = trained_looking_cnn(5);
  ModelEditor editor(*model);
  run_pass(*model, editor, "fuse_conv_bn", {});
  const auto x = torch::randn({16, 1, 28, 28});
  const auto expected = model->forward(x);
  const auto convs = count_layers<torch::nn::Conv2dImpl>(*model);
  ASSERT_EQ(convs, 6);  // stem, 2 per block x 2 blocks, 1 shortcut
  const auto report = run_pass(*model, editor, "quant_int8_static", {{"calibration_batches", 4}}, image_batches(6));
  EXPECT_EQ(count_layers<torch::nn::Conv2dImpl>(*model), 0);
  EXPECT_EQ(count_layers<nn::Conv2dInt8Impl>(*model), convs);
  EXPECT_EQ(count_layers<nn::ResidualAddInt8Impl>(*model), 2);
  EXPECT_EQ(count_layers<nn::LinearInt8Impl>(*model), 1);
  EXPECT_EQ(count_layers<torch::nn::ReLUImpl>(*model), 0);  // stem and relu1 x 2 fused into their convs
  EXPECT_EQ(report.details["layers"].size(), 9u);
  const auto classifier = nn::find_slot(*model, "classifier").slot->as<nn::LinearInt8Impl>();
  ASSERT_NE(classifier, nullptr);
  EXPECT_TRUE(classifier->options().dequantize_output);
  const auto actual = model->forward(x);
  ASSERT_FALSE(actual.is_quantized());
  EXPECT_LT(testing::relative_error(actual, expected), testing::kInt8Model.relative);
  auto rebuilt = reload(*model, editor);
  EXPECT_TRUE(torch::equal(rebuilt->forward(x), actual));
}

TEST(QuantPassesTest, StaticObserversAllStayCloseToFloat) {
  for (const std::string observer : {"minmax", "percentile", "entropy"}) {
    auto model = trained_looking_cnn(6);
    ModelEditor editor(*model);
    run_pass(*model, editor, "fuse_conv_bn", {});
    const auto x = torch::randn({16, 1, 28, 28});
    const auto expected = model->forward(x);
    const auto report = run_pass(*model, editor, "quant_int8_static",
                                 {{"observer", observer}, {"calibration_batches", 4}}, image_batches(4));
    EXPECT_EQ(count_layers<nn::Conv2dInt8Impl>(*model), 6) << observer;
    EXPECT_LT(testing::relative_error(model->forward(x), expected), testing::kInt8Model.relative)
        << observer << ": " << report.details.dump();
  }
}

TEST(QuantPassesTest, StaticWithoutFuseSkipsConvsFollowedByBatchNorm) {
  auto model = trained_looking_cnn(7);
  const auto x = torch::randn({16, 1, 28, 28});
  const auto expected = model->forward(x);
  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, "quant_int8_static", {}, image_batches(2));
  EXPECT_EQ(count_layers<nn::Conv2dInt8Impl>(*model), 0);
  EXPECT_EQ(count_layers<torch::nn::BatchNorm2dImpl>(*model), 6);
  EXPECT_EQ(count_layers<nn::ResidualAddInt8Impl>(*model), 2);
  EXPECT_TRUE(mentions(report.skipped, "features.0: Conv2d is followed by BatchNorm2d features.1; put fuse_conv_bn"));
  EXPECT_LT(testing::relative_error(model->forward(x), expected), testing::kInt8Model.relative);
}

TEST(QuantPassesTest, FloatConvertsLinearAndConvAndReloads) {
  for (const std::string dtype : {"fp16", "bf16"}) {
    auto model = trained_looking_cnn(8);
    const auto x = torch::randn({4, 1, 28, 28});
    const auto expected = model->forward(x);
    ModelEditor editor(*model);
    const auto report = run_pass(*model, editor, "quant_float", {{"dtype", dtype}});
    EXPECT_EQ(count_layers<torch::nn::Conv2dImpl>(*model), 0);
    EXPECT_EQ(count_layers<nn::Conv2dFloatImpl>(*model), 6);
    EXPECT_EQ(count_layers<nn::LinearFloatImpl>(*model), 1);
    EXPECT_EQ(report.details["layers"].size(), 7u);
    const auto actual = model->forward(x);
    EXPECT_EQ(actual.scalar_type(), at::kFloat);
    // Rounding each of ~7 layers' operands to 8 (bf16) or 11 (fp16) significant bits.
    EXPECT_LT(testing::relative_error(actual, expected), dtype == "bf16" ? 5e-2 : 1e-2) << dtype;
    auto rebuilt = reload(*model, editor);
    EXPECT_TRUE(torch::equal(rebuilt->forward(x), actual)) << dtype;
  }
}

// --- accuracy_budget: mixed precision by per-layer sensitivity ---

data::DatasetInfo table() { return {"table", data::TaskKind::kClassification, {64}, 10, 0, {}}; }

/// Rows of 64 features whose feature 0 is always zero.
torch::Tensor table_inputs(std::int64_t rows) {
  auto x = torch::randn({rows, 64});
  x.narrow(1, 0, 1).zero_();
  return x;
}

/// mlp 64 -> 48 -> 40 -> 10 (Linears layers.0, layers.3, layers.6) in eval mode, whose hidden
/// neuron 5 is dead (zero weights, negative bias). Each Linear in `damaged` gets one weight of 1000x
/// its largest, on an input that is always zero (feature 0 for layers.0, neuron 5 for layers.3): the
/// float model computes the same, but with one scale per tensor int8 rounds all its other weights to
/// zero, so that layer alone costs a lot of accuracy.
models::ModelPtr mlp_with_outliers(std::int64_t seed, const std::vector<std::string>& damaged) {
  torch::manual_seed(seed);
  auto model = models::make_model("mlp", table(), {{"hidden", {48, 40}}, {"dropout", 0.0}});
  model->eval();
  torch::NoGradGuard no_grad;
  auto* first = nn::find_slot(*model, "layers.0").slot->as<torch::nn::LinearImpl>();
  first->weight[5].zero_();
  first->bias[5].fill_(-1.0);
  for (const auto& path : damaged) {
    auto* linear = nn::find_slot(*model, path).slot->as<torch::nn::LinearImpl>();
    const auto column = path == "layers.0" ? 0 : 5;
    linear->weight[0][column].fill_(1000 * linear->weight.abs().max().item<double>());
  }
  return model;
}

std::vector<torch::Tensor> table_batches(std::int64_t n) {
  std::vector<torch::Tensor> batches;
  for (std::int64_t i = 0; i < n; ++i) batches.push_back(table_inputs(16));
  return batches;
}

/// An accuracy-like score in (0, 1]: 1 / (1 + relative output error against `model`'s outputs now,
/// on fixed inputs), counting its calls in `calls`.
std::function<double(models::Model&)> output_fidelity(models::Model& model, const torch::Tensor& inputs, int& calls) {
  torch::NoGradGuard no_grad;
  const auto expected = model.forward(inputs).detach().clone();
  return [inputs, expected, &calls](models::Model& m) {
    ++calls;
    torch::NoGradGuard guard;
    return 1.0 / (1.0 + testing::relative_error(m.forward(inputs), expected));
  };
}

std::ptrdiff_t line_index(const std::vector<std::string>& lines, const std::string& text) {
  const auto it =
      std::find_if(lines.begin(), lines.end(), [&](const auto& line) { return line.find(text) != std::string::npos; });
  return it == lines.end() ? -1 : it - lines.begin();
}

TEST(QuantBudgetTest, TheMostSensitiveLayersStayInFloatUntilTheBudgetHolds) {
  for (const std::string pass : {"quant_int8_dynamic", "quant_int8_static"}) {
    SCOPED_TRACE(pass);
    auto model = mlp_with_outliers(21, {"layers.0", "layers.3"});
    const auto first = nn::find_slot(*model, "layers.0").slot->module();
    const auto second = nn::find_slot(*model, "layers.3").slot->module();
    const auto inputs = table_inputs(64);
    int calls = 0;
    const auto score = output_fidelity(*model, inputs, calls);
    ModelEditor editor(*model);
    const double budget = 10;
    const auto report =
        run_pass(*model, editor, pass, {{"per_channel", false}, {"accuracy_budget", budget}}, table_batches(4), score);

    // The damaged layers are back in float (the very modules the model had, with their ReLUs);
    // only the undamaged one is int8, and only its replacement was recorded.
    EXPECT_EQ(nn::find_slot(*model, "layers.0").slot->module(), first);
    EXPECT_EQ(nn::find_slot(*model, "layers.3").slot->module(), second);
    EXPECT_EQ(nn::find_slot(*model, "layers.6").slot->as<torch::nn::LinearImpl>(), nullptr);
    EXPECT_EQ(count_layers<torch::nn::ReLUImpl>(*model), 2);
    ASSERT_EQ(editor.edits().size(), 1u) << editor.edits().dump();
    EXPECT_EQ(editor.edits()[0]["path"], "layers.6");
    ASSERT_EQ(report.changed.size(), 1u);
    EXPECT_EQ(report.details["layers"].size(), 1u);

    // Each damaged layer alone costs more than the budget, the other one less.
    const auto& rows = report.details["sensitivity"];
    ASSERT_EQ(rows.size(), 3u) << report.details.dump(2);
    const char* paths[] = {"layers.0", "layers.3", "layers.6"};
    std::vector<double> drops;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      EXPECT_EQ(rows[i]["path"], paths[i]);
      EXPECT_EQ(rows[i]["int8"], i == 2) << rows[i].dump();
      drops.push_back(rows[i]["drop"].get<double>());
    }
    EXPECT_GT(drops[0], budget);
    EXPECT_GT(drops[1], budget);
    EXPECT_LT(drops[2], budget);
    // Put back most sensitive first, each with its reason.
    const auto line0 = line_index(report.skipped, "layers.0: kept in float: the most sensitive");
    const auto line3 = line_index(report.skipped, "layers.3: kept in float: the most sensitive");
    ASSERT_GE(line0, 0) << ::testing::PrintToString(report.skipped);
    ASSERT_GE(line3, 0) << ::testing::PrintToString(report.skipped);
    EXPECT_EQ(line0<line3, drops[0]> drops[1]);
    EXPECT_NE(report.skipped[line0].find(fmt::format("budget of {} points", budget)), std::string::npos);

    // Scored: before, each layer alone, all three, then after each of the two put back.
    EXPECT_EQ(calls, 1 + 3 + 1 + 2);
    EXPECT_EQ(report.details["evaluations"], calls);
    EXPECT_EQ(report.details["score_before"], 1.0);
    EXPECT_EQ(report.details["drop_unit"], "accuracy points");
    const double after = report.details["score_after"].get<double>();
    EXPECT_LE(report.details["drop"].get<double>(), budget);
    EXPECT_DOUBLE_EQ(report.details["drop"].get<double>(), 100 * (1.0 - after));
    // score_after is the score of the model as the pass left it, and the saved edits rebuild it.
    EXPECT_DOUBLE_EQ(score(*model), after);
    auto rebuilt = reload(*model, editor);
    EXPECT_TRUE(torch::equal(rebuilt->forward(inputs), model->forward(inputs)));
  }
}

TEST(QuantBudgetTest, WithoutABudgetEveryLayerIsQuantizedAndNothingIsScored) {
  for (const std::string pass : {"quant_int8_dynamic", "quant_int8_static"}) {
    SCOPED_TRACE(pass);
    auto model = mlp_with_outliers(22, {"layers.0"});
    int calls = 0;
    const auto score = output_fidelity(*model, table_inputs(16), calls);
    ModelEditor editor(*model);
    const auto report = run_pass(*model, editor, pass, {{"per_channel", false}}, table_batches(2), score);
    EXPECT_EQ(report.options["accuracy_budget"], -1.0);
    EXPECT_EQ(calls, 0);
    EXPECT_EQ(count_layers<torch::nn::LinearImpl>(*model), 0);
    EXPECT_EQ(report.changed.size(), 3u);
    EXPECT_FALSE(report.details.contains("sensitivity"));
    EXPECT_FALSE(mentions(report.skipped, "kept in float"));
  }
}

TEST(QuantBudgetTest, ABudgetThatHoldsGivesTheSameModelAndEditsAsNoBudget) {
  // The static pass on a fused cnn: Conv2d with fused ReLUs, residual adds and a Linear.
  const auto x = torch::randn({8, 1, 28, 28});
  const auto quantize = [&](double budget, int& calls, nlohmann::json& edits) {
    auto model = trained_looking_cnn(23);
    ModelEditor editor(*model);
    run_pass(*model, editor, "fuse_conv_bn", {});
    torch::manual_seed(24);  // the same calibration batches for both
    const auto score = output_fidelity(*model, x, calls);
    const auto report = run_pass(*model, editor, "quant_int8_static",
                                 {{"accuracy_budget", budget}, {"calibration_batches", 2}}, image_batches(2), score);
    edits = editor.edits();
    return std::make_pair(report, model->forward(x));
  };
  int calls_off = 0, calls_on = 0;
  nlohmann::json edits_off, edits_on;
  const auto [report_off, output_off] = quantize(-1, calls_off, edits_off);
  const auto [report_on, output_on] = quantize(1e6, calls_on, edits_on);
  EXPECT_EQ(calls_off, 0);
  const auto& rows = report_on.details["sensitivity"];
  ASSERT_EQ(rows.size(), report_off.changed.size());
  EXPECT_EQ(calls_on, 1 + static_cast<int>(rows.size()) + 1);
  for (const auto& row : rows) EXPECT_TRUE(row["int8"].get<bool>()) << row.dump();
  // Trials left no trace: the same edits, the same layers, the same outputs.
  EXPECT_EQ(edits_on, edits_off);
  EXPECT_EQ(report_on.changed, report_off.changed);
  EXPECT_TRUE(torch::equal(output_on, output_off));
  EXPECT_DOUBLE_EQ(report_on.details["drop"].get<double>(),
                   100 * (1.0 - report_on.details["score_after"].get<double>()));
}

TEST(QuantBudgetTest, AZeroBudgetPutsEveryLayerAndFusedReluBack) {
  // Every int8 layer changes the outputs a little, so none fits a budget of 0.
  auto model = trained_looking_cnn(25);
  ModelEditor editor(*model);
  run_pass(*model, editor, "fuse_conv_bn", {});
  const auto edits_before = editor.edits();
  const auto relus = count_layers<torch::nn::ReLUImpl>(*model);
  const auto x = torch::randn({8, 1, 28, 28});
  const auto expected = model->forward(x);
  int calls = 0;
  const auto report =
      run_pass(*model, editor, "quant_int8_static", {{"accuracy_budget", 0.0}, {"calibration_batches", 2}},
               image_batches(2), output_fidelity(*model, x, calls));
  const auto& rows = report.details["sensitivity"];
  ASSERT_GT(rows.size(), 1u);
  for (const auto& row : rows) {
    EXPECT_FALSE(row["int8"].get<bool>()) << row.dump();
    EXPECT_GT(row["drop"].get<double>(), 0) << row.dump();
  }
  EXPECT_TRUE(report.changed.empty());
  EXPECT_EQ(std::count_if(report.skipped.begin(), report.skipped.end(),
                          [](const auto& line) { return line.find(": kept in float:") != std::string::npos; }),
            static_cast<std::ptrdiff_t>(rows.size()));
  // Scored before, alone, all, then after each put-back but the last (which leaves the float model).
  EXPECT_EQ(calls, 1 + 2 * static_cast<int>(rows.size()));
  EXPECT_EQ(report.details["drop"], 0.0);
  EXPECT_EQ(editor.edits(), edits_before);
  EXPECT_EQ(count_layers<torch::nn::ReLUImpl>(*model), relus);
  EXPECT_EQ(count_layers<nn::Conv2dInt8Impl>(*model) + count_layers<nn::ResidualAddInt8Impl>(*model), 0);
  EXPECT_TRUE(torch::equal(model->forward(x), expected));
}

TEST(QuantBudgetTest, ForecasterDropsArePercentOfTheScore) {
  auto model = lstm_model(26);
  int calls = 0;
  const auto fidelity = output_fidelity(*model, torch::randn({8, 30, 2}), calls);
  ModelEditor editor(*model);
  // Like -RMSE: -1 for the float model, -(1 + e) with output error e.
  const auto report = run_pass(*model, editor, "quant_int8_dynamic", {{"accuracy_budget", 1e6}}, {},
                               [&](models::Model& m) { return -1.0 / fidelity(m); });
  EXPECT_EQ(report.details["drop_unit"], "percent of |score|");
  const double after = report.details["score_after"].get<double>();
  EXPECT_LT(after, -1.0);
  EXPECT_DOUBLE_EQ(report.details["drop"].get<double>(), 100 * (-1.0 - after) / 1.0);
  EXPECT_EQ(count_layers<nn::LstmInt8DynamicImpl>(*model), 1);
}

TEST(QuantBudgetTest, ABudgetWithoutADatasetIsAUsageError) {
  for (const std::string pass : {"quant_int8_dynamic", "quant_int8_static"}) {
    SCOPED_TRACE(pass);
    auto model = mlp_with_outliers(27, {});
    ModelEditor editor(*model);
    const auto message = testing::usage_error_message([&] {
      run_pass(*model, editor, pass, {{"accuracy_budget", 1.0}}, table_batches(2));
    });
    EXPECT_NE(message.find(pass), std::string::npos) << message;
    EXPECT_NE(message.find("'accuracy_budget'"), std::string::npos) << message;
    EXPECT_NE(message.find("dataset"), std::string::npos) << message;
    EXPECT_TRUE(editor.edits().empty());
    EXPECT_EQ(count_layers<torch::nn::LinearImpl>(*model), 3);

    const auto& entry = find_pass(pass);
    EXPECT_EQ(validate_options(entry, nlohmann::json::object())["accuracy_budget"], -1.0);
    EXPECT_NE(testing::usage_error_message([&] {
                validate_options(entry, {{"accuracy_budget", -2}});
              }).find("'accuracy_budget'"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace hone::compress
