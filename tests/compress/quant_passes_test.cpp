// The quantization passes on zoo models: which layers change (counted before/after), outputs stay
// close to float, what is skipped says why, and a saved compressed model reloads to the same outputs.
#include <gtest/gtest.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/torch.h>

#include "hone/compress/editor.h"
#include "hone/compress/pass.h"
#include "hone/core/error.h"
#include "hone/models/registry.h"
#include "hone/nn/conv2d_float.h"
#include "hone/nn/conv2d_int8.h"
#include "hone/nn/layer.h"
#include "hone/nn/linear_float.h"
#include "hone/nn/linear_int8.h"
#include "hone/nn/linear_int8_dynamic.h"
#include "hone/nn/lstm_int8_dynamic.h"
#include "hone/nn/residual_add_int8.h"
#include "hone/train/checkpoint.h"
#include "support/batch_norm_statistics.h"
#include "support/relative_error.h"
#include "support/temp_dir.h"
#include "support/tolerances.h"

namespace hone::compress {
namespace {

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

template <typename Impl>
std::int64_t count(torch::nn::Module& model) {
  std::int64_t n = 0;
  for (const auto& ref : nn::all_slots(model)) n += ref.slot->as<Impl>() != nullptr ? 1 : 0;
  return n;
}

PassReport run_pass(models::Model& model, ModelEditor& editor, const std::string& name, const nlohmann::json& options,
                    std::vector<torch::Tensor> batches = {}) {
  const auto& entry = find_pass(name);
  PassContext context;
  context.editor = &editor;
  if (!batches.empty()) {
    context.calibration_batches = [batches](std::int64_t n) {
      return std::vector<torch::Tensor>(batches.begin(), batches.begin() + std::min<std::int64_t>(n, batches.size()));
    };
  }
  return entry.make()->apply(model, validate_options(entry, options), context);
}

bool mentions(const std::vector<std::string>& lines, const std::string& text) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const auto& line) { return line.find(text) != std::string::npos; });
}

/// Saves `model`'s weights, rebuilds it from its config + the edits, loads, repacks: as `hone` does.
models::ModelPtr reload(models::Model& model, const ModelEditor& editor) {
  testing::TempDir dir("hone-quant");
  train::save_weights(dir / "model.safetensors", model);
  auto rebuilt = models::make_model(model.architecture(), model.config());
  replay_edits(*rebuilt, editor.edits());
  train::load_weights(dir / "model.safetensors", *rebuilt);
  repack_layers(*rebuilt);
  rebuilt->eval();
  return rebuilt;
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
  ASSERT_EQ(count<torch::nn::LSTMImpl>(*model), 1);
  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, "quant_int8_dynamic", {});
  EXPECT_EQ(count<torch::nn::LSTMImpl>(*model), 0);
  EXPECT_EQ(count<torch::nn::LinearImpl>(*model), 0);
  EXPECT_EQ(count<nn::LstmInt8DynamicImpl>(*model), 1);
  EXPECT_EQ(count<nn::LinearInt8DynamicImpl>(*model), 1);
  ASSERT_EQ(report.details["layers"].size(), 2u);
  EXPECT_LT(report.details["layers"][0]["weight_error"].get<double>(), 0.02);
  const auto actual = model->forward(x);
  EXPECT_LT(testing::relative_error(actual, expected), testing::kInt8Layer.relative);
  auto rebuilt = reload(*model, editor);
  EXPECT_TRUE(torch::equal(rebuilt->forward(x), actual));
}

TEST(QuantPassesTest, DynamicLeavesConvolutionsAndSkippedPathsAlone) {
  auto model = trained_looking_cnn(2);
  const auto convs = count<torch::nn::Conv2dImpl>(*model);
  ModelEditor editor(*model);
  const auto report = run_pass(*model, editor, "quant_int8_dynamic", {{"per_channel", false}});
  EXPECT_EQ(count<torch::nn::Conv2dImpl>(*model), convs);
  EXPECT_EQ(count<nn::LinearInt8DynamicImpl>(*model), 1);
  EXPECT_TRUE(
      mentions(report.skipped, "features.0: Conv2d is not supported by dynamic quantization (use quant_int8_static)"));

  auto lstm = lstm_model(3);
  ModelEditor lstm_editor(*lstm);
  const auto skipped = run_pass(*lstm, lstm_editor, "quant_int8_dynamic", {{"skip", {"head"}}, {"layers", {"lstm"}}});
  EXPECT_EQ(count<torch::nn::LinearImpl>(*lstm), 1);
  EXPECT_EQ(count<nn::LstmInt8DynamicImpl>(*lstm), 1);
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
  const auto convs = count<torch::nn::Conv2dImpl>(*model);
  ASSERT_EQ(convs, 6);  // stem, 2 per block x 2 blocks, 1 shortcut
  const auto report = run_pass(*model, editor, "quant_int8_static", {{"calibration_batches", 4}}, image_batches(6));
  EXPECT_EQ(count<torch::nn::Conv2dImpl>(*model), 0);
  EXPECT_EQ(count<nn::Conv2dInt8Impl>(*model), convs);
  EXPECT_EQ(count<nn::ResidualAddInt8Impl>(*model), 2);
  EXPECT_EQ(count<nn::LinearInt8Impl>(*model), 1);
  EXPECT_EQ(count<torch::nn::ReLUImpl>(*model), 0);  // stem and relu1 x 2 fused into their convs
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
    EXPECT_EQ(count<nn::Conv2dInt8Impl>(*model), 6) << observer;
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
  EXPECT_EQ(count<nn::Conv2dInt8Impl>(*model), 0);
  EXPECT_EQ(count<torch::nn::BatchNorm2dImpl>(*model), 6);
  EXPECT_EQ(count<nn::ResidualAddInt8Impl>(*model), 2);
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
    EXPECT_EQ(count<torch::nn::Conv2dImpl>(*model), 0);
    EXPECT_EQ(count<nn::Conv2dFloatImpl>(*model), 6);
    EXPECT_EQ(count<nn::LinearFloatImpl>(*model), 1);
    EXPECT_EQ(report.details["layers"].size(), 7u);
    const auto actual = model->forward(x);
    EXPECT_EQ(actual.scalar_type(), at::kFloat);
    // Rounding each of ~7 layers' operands to 8 (bf16) or 11 (fp16) significant bits.
    EXPECT_LT(testing::relative_error(actual, expected), dtype == "bf16" ? 5e-2 : 1e-2) << dtype;
    auto rebuilt = reload(*model, editor);
    EXPECT_TRUE(torch::equal(rebuilt->forward(x), actual)) << dtype;
  }
}

}  // namespace
}  // namespace hone::compress
