// conv2d_relu / linear_relu against conv + relu and linear + relu computed in double on odd shapes
// (stride, padding, dilation, groups, bias or not, non-contiguous inputs); the fuse_relu pass
// fuses every eligible pair with min_speedup 0 without changing the outputs, leaves ReLUs that no
// Conv2d / Linear feeds alone, keeps nothing when asked for an impossible speedup, and its edits
// replay. No test asserts a timing.
#include <gtest/gtest.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/torch.h>

#include <algorithm>
#include <string>
#include <vector>

#include "hone/compress/editor.h"
#include "hone/compress/pass.h"
#include "hone/core/error.h"
#include "hone/models/registry.h"
#include "hone/nn/conv2d_relu.h"
#include "hone/nn/edits.h"
#include "hone/nn/layer.h"
#include "hone/nn/layer_kinds.h"
#include "hone/nn/linear_relu.h"
#include "support/batch_norm_statistics.h"
#include "support/error_message.h"
#include "support/pass_runner.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone::compress {
namespace {

using testing::count_layers;

// --- the fused layers ---------------------------------------------------------------------------

struct ConvCase {
  std::int64_t in, out, kernel, stride, padding, dilation, groups;
  bool bias;
};

nn::Conv2dGeometry geometry_of(const ConvCase& c) {
  return {
      c.in,     c.out, {c.kernel, c.kernel}, {c.stride, c.stride}, {c.padding, c.padding + 1}, {c.dilation, c.dilation},
      c.groups, c.bias};
}

/// relu(conv2d(x)) in double: the reference.
torch::Tensor conv_relu_reference(const nn::Conv2dReluImpl& layer, const torch::Tensor& x) {
  const auto& g = layer.geometry();
  const auto bias = layer.bias.defined() ? layer.bias.to(torch::kDouble) : torch::Tensor();
  return torch::relu(torch::conv2d(x.to(torch::kDouble), layer.weight.to(torch::kDouble), bias, g.stride, g.padding,
                                   g.dilation, g.groups));
}

TEST(Conv2dReluTest, EqualsConvThenReluOnOddShapes) {
  torch::NoGradGuard no_grad;
  const std::vector<ConvCase> cases = {
      {3, 5, 3, 2, 1, 1, 1, true}, {6, 9, 3, 1, 1, 2, 3, false},  {8, 8, 3, 2, 1, 1, 8, true},
      {7, 4, 1, 2, 0, 1, 1, true}, {5, 11, 5, 3, 2, 1, 1, false},
  };
  torch::manual_seed(11);
  for (const auto& c : cases) {
    nn::Conv2dRelu layer(geometry_of(c));
    layer->weight.normal_();
    if (c.bias) layer->bias.normal_();
    const auto x = torch::randn({3, c.in, 13, 11});
    const auto channels_last = x.contiguous(torch::MemoryFormat::ChannelsLast);
    const auto strided = torch::randn({3, c.in, 26, 11}).slice(2, 0, 26, 2);  // non-contiguous
    for (const auto& input : {x, channels_last, strided}) {
      EXPECT_EQ(layer->runs_fused(input), nn::fused_relu_kernels_available());
      const auto expected = conv_relu_reference(*layer, input);
      const auto actual = layer->forward(input);
      ASSERT_EQ(actual.sizes(), expected.sizes());
      EXPECT_LT(testing::relative_error(actual, expected), testing::kFp32Reordered.relative)
          << "in " << c.in << " out " << c.out << " kernel " << c.kernel << " groups " << c.groups;
      EXPECT_TRUE(torch::equal(actual.clamp_max(0), torch::zeros_like(actual)));
      EXPECT_LT(testing::relative_error(layer->forward_unfused(input), expected), testing::kFp32Reordered.relative);
    }
  }
}

TEST(Conv2dReluTest, WeightChangesReachThePackedCopy) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(12);
  nn::Conv2dRelu layer(geometry_of({4, 6, 3, 1, 1, 1, 1, true}));
  layer->weight.normal_();
  layer->bias.normal_();
  const auto x = torch::randn({2, 4, 9, 9});
  layer->forward(x);  // packs the weight for this shape
  layer->weight.mul_(-2);
  EXPECT_LT(testing::relative_error(layer->forward(x), conv_relu_reference(*layer, x)),
            testing::kFp32Reordered.relative);
  layer->weight.set_data(torch::randn_like(layer->weight));
  EXPECT_LT(testing::relative_error(layer->forward(x), conv_relu_reference(*layer, x)),
            testing::kFp32Reordered.relative);
  // A channels-last weight (hone bench --channels-last) packs from its strides correctly.
  layer->weight.set_data(torch::randn_like(layer->weight).contiguous(torch::MemoryFormat::ChannelsLast));
  EXPECT_LT(testing::relative_error(layer->forward(x), conv_relu_reference(*layer, x)),
            testing::kFp32Reordered.relative);
}

TEST(Conv2dReluTest, FallsBackWhereTheFusedKernelDoesNotApply) {
  torch::manual_seed(13);
  nn::Conv2dRelu layer(geometry_of({3, 4, 3, 1, 1, 1, 1, true}));
  {
    torch::NoGradGuard no_grad;
    layer->weight.normal_();
    layer->bias.normal_();
  }
  // Autograd: the unfused path, with gradients.
  const auto x = torch::randn({2, 3, 7, 7}, torch::requires_grad());
  EXPECT_FALSE(layer->runs_fused(x));
  const auto y = layer->forward(x);
  EXPECT_LT(testing::relative_error(y, conv_relu_reference(*layer, x)), testing::kFp32Reordered.relative);
  y.sum().backward();
  EXPECT_TRUE(layer->weight.grad().defined());
  // Double precision: the unfused path too.
  torch::NoGradGuard no_grad;
  layer->to(torch::kDouble);
  const auto xd = torch::randn({2, 3, 7, 7}, torch::kDouble);
  EXPECT_FALSE(layer->runs_fused(xd));
  EXPECT_LT(testing::relative_error(layer->forward(xd), conv_relu_reference(*layer, xd)), testing::kFp64.relative);
}

torch::Tensor linear_relu_reference(const nn::LinearReluImpl& layer, const torch::Tensor& x) {
  auto y = torch::matmul(x.to(torch::kDouble), layer.weight.to(torch::kDouble).t());
  if (layer.bias.defined()) y = y + layer.bias.to(torch::kDouble);
  return torch::relu(y);
}

TEST(LinearReluTest, EqualsLinearThenReluOnOddShapes) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(14);
  for (const bool bias : {true, false}) {
    nn::LinearRelu layer(33, 17, bias);
    layer->weight.normal_();
    if (bias) layer->bias.normal_();
    const std::vector<torch::Tensor> inputs = {torch::randn({7, 33}), torch::randn({1, 33}), torch::randn({2, 5, 33}),
                                               torch::randn({33, 7}).t()};
    for (const auto& x : inputs) {
      EXPECT_EQ(layer->runs_fused(x), nn::fused_relu_kernels_available());
      const auto expected = linear_relu_reference(*layer, x);
      const auto actual = layer->forward(x);
      ASSERT_EQ(actual.sizes(), expected.sizes());
      EXPECT_LT(testing::relative_error(actual, expected), testing::kFp32Reordered.relative) << x.sizes();
      EXPECT_LT(testing::relative_error(layer->forward_unfused(x), expected), testing::kFp32Reordered.relative);
    }
    layer->weight.mul_(-1);  // the packed copy follows the weight
    const auto x = torch::randn({7, 33});
    EXPECT_LT(testing::relative_error(layer->forward(x), linear_relu_reference(*layer, x)),
              testing::kFp32Reordered.relative);
  }
}

TEST(FusedReluKindsTest, SpecsRebuildLayersWithTheOriginalParameterNames) {
  const nn::Conv2dReluImpl conv(geometry_of({6, 9, 3, 2, 1, 1, 3, true}));
  const auto rebuilt = nn::build_layer(conv.spec());
  auto* rebuilt_conv = dynamic_cast<nn::Conv2dReluImpl*>(rebuilt.module.get());
  ASSERT_NE(rebuilt_conv, nullptr);
  EXPECT_EQ(rebuilt_conv->spec(), conv.spec());
  const torch::nn::Conv2d plain(torch::nn::Conv2dOptions(6, 9, 3).groups(3));
  const auto parameters = rebuilt.module->named_parameters();
  for (const auto& item : plain->named_parameters()) {
    const auto* found = parameters.find(item.key());
    ASSERT_NE(found, nullptr) << item.key();
    EXPECT_EQ(found->sizes(), item.value().sizes()) << item.key();
  }
  const auto linear = nn::build_layer({{"kind", "linear_relu"}, {"in", 5}, {"out", 3}, {"bias", false}});
  EXPECT_EQ(linear.module->named_parameters().keys(), (std::vector<std::string>{"weight"}));
  EXPECT_THROW(nn::build_layer({{"kind", "linear_relu"}, {"in", 0}, {"out", 3}, {"bias", true}}), Error);
  EXPECT_THROW(nn::build_layer({{"kind", "conv2d_relu"}, {"in", 4}, {"out", 3}}), Error);
}

// --- the pass -------------------------------------------------------------------------------------

data::DatasetInfo images() { return {"images", data::TaskKind::kClassification, {1, 28, 28}, 10, 0, {}}; }
data::DatasetInfo table() { return {"table", data::TaskKind::kClassification, {20}, 4, 0, {}}; }

models::ModelPtr small_cnn(std::int64_t seed) {
  torch::manual_seed(seed);
  auto model = models::make_model("cnn", images(), {{"widths", {8, 16}}});
  testing::give_batch_norms_trained_statistics(*model);
  model->eval();
  return model;
}

/// A context whose example input has the model's input shape (timing only), as `hone compress` gives.
PassContext context_for(ModelEditor& editor, std::vector<std::int64_t> sample_shape) {
  PassContext context;
  context.editor = &editor;
  context.example_input = [sample_shape](std::int64_t batch) {
    auto shape = sample_shape;
    shape.insert(shape.begin(), batch);
    return torch::randn(shape);
  };
  return context;
}

PassReport run_pass(models::Model& model, PassContext& context, const std::string& name,
                    const nlohmann::json& options = nlohmann::json::object()) {
  const auto& entry = find_pass(name);
  return entry.make()->apply(model, validate_options(entry, options), context);
}

/// Fast timing settings: the pass's decisions, not its timings, are under test.
const nlohmann::json kFuseAll = {{"min_speedup", 0.0}, {"rounds", 1}, {"batch", 2}};

TEST(FuseReluTest, MinSpeedupZeroFusesEveryConvReluPairAfterFoldingAndKeepsTheOutput) {
  torch::NoGradGuard no_grad;  // inference, as hone eval / bench run it: the fused kernels apply
  auto model = small_cnn(21);
  const auto x = torch::randn({3, 1, 28, 28});
  const auto expected = model->forward(x);
  ModelEditor editor(*model);
  auto context = context_for(editor, {1, 28, 28});
  run_pass(*model, context, "fuse_conv_bn");
  const auto relus = count_layers<torch::nn::ReLUImpl>(*model);
  ASSERT_GT(relus, 0);
  const auto report = run_pass(*model, context, "fuse_relu", kFuseAll);
  EXPECT_EQ(report.changed.size(), static_cast<std::size_t>(relus)) << report.details.dump(2);
  EXPECT_EQ(count_layers<nn::Conv2dReluImpl>(*model), relus);
  EXPECT_EQ(count_layers<torch::nn::ReLUImpl>(*model), 0);
  EXPECT_LT(testing::relative_error(model->forward(x), expected), testing::kFp32Reordered.relative);
  // Both timings are reported per layer (their values are not under test).
  ASSERT_EQ(report.details["layers"].size(), static_cast<std::size_t>(relus));
  for (const auto& row : report.details["layers"]) {
    EXPECT_TRUE(row["fused"].get<bool>());
    EXPECT_GT(row["unfused_ms"].get<double>(), 0.0);
    EXPECT_GT(row["fused_ms"].get<double>(), 0.0);
    EXPECT_EQ(row["through"].size(), 1u) << row.dump();  // the folded batch norm's identity
  }
  // Each pair is timed on the input it gets after the earlier fusions: the stem's fused output is
  // channels-last, and so the first block's input.
  EXPECT_EQ(report.details["layers"][0]["input_format"], "contiguous");
  if (nn::fused_relu_kernels_available()) {
    EXPECT_EQ(report.details["layers"][1]["input_format"], "channels_last");
  }
}

TEST(FuseReluTest, LinearReluPairsOfAnMlpAreFused) {
  torch::NoGradGuard no_grad;  // inference, as hone eval / bench run it: the fused kernels apply
  torch::manual_seed(22);
  auto model = models::make_model("mlp", table(), {{"hidden", {24, 12}}, {"dropout", 0.0}});
  model->eval();
  const auto x = torch::randn({5, 20});
  const auto expected = model->forward(x);
  ModelEditor editor(*model);
  auto context = context_for(editor, {20});
  const auto report = run_pass(*model, context, "fuse_relu", kFuseAll);
  EXPECT_EQ(report.changed.size(), 2u);
  EXPECT_EQ(count_layers<nn::LinearReluImpl>(*model), 2);
  EXPECT_EQ(count_layers<torch::nn::LinearImpl>(*model), 1);  // the output layer has no ReLU
  EXPECT_LT(testing::relative_error(model->forward(x), expected), testing::kFp32Reordered.relative);
}

TEST(FuseReluTest, ReluAfterAnUnfoldedBatchNormIsLeftAloneAndSaysWhy) {
  auto model = small_cnn(23);
  const auto parameters = models::count_parameters(*model);
  ModelEditor editor(*model);
  auto context = context_for(editor, {1, 28, 28});
  const auto report = run_pass(*model, context, "fuse_relu", kFuseAll);
  EXPECT_TRUE(report.changed.empty());
  EXPECT_TRUE(editor.edits().empty());
  EXPECT_EQ(models::count_parameters(*model), parameters);
  ASSERT_FALSE(report.skipped.empty());
  for (const auto& line : report.skipped) EXPECT_NE(line.find("run fuse_conv_bn first"), std::string::npos) << line;
}

/// linear -> dropout -> relu: the ReLU is fed by a dropout, not by the linear.
class DropoutThenRelu : public models::Model {
 public:
  DropoutThenRelu() {
    layers_ = register_module("layers", nn::Chain());
    layers_->push_back(torch::nn::Linear(6, 5));
    layers_->push_back(torch::nn::Dropout(0.0));
    layers_->push_back(torch::nn::ReLU());
  }
  torch::Tensor forward(torch::Tensor x) override { return layers_->forward(x); }
  std::string architecture() const override { return "dropout_then_relu"; }
  nlohmann::json config() const override { return nlohmann::json::object(); }

 private:
  nn::Chain layers_{nullptr};
};

TEST(FuseReluTest, ReluNotFedByAConvOrLinearIsUntouched) {
  torch::manual_seed(24);
  DropoutThenRelu model;
  model.eval();
  ModelEditor editor(model);
  auto context = context_for(editor, {6});
  const auto report = run_pass(model, context, "fuse_relu", kFuseAll);
  EXPECT_TRUE(report.changed.empty());
  EXPECT_TRUE(editor.edits().empty());
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_NE(report.skipped[0].find("layers.2"), std::string::npos) << report.skipped[0];
  EXPECT_NE(report.skipped[0].find("not a Conv2d or Linear"), std::string::npos) << report.skipped[0];
  EXPECT_NE(nn::find_slot(model, "layers.2").slot->as<torch::nn::ReLUImpl>(), nullptr);

  torch::manual_seed(0);
  auto mobilenet = models::make_model("mobilenet", images());  // ReLU6 only, in its forward
  ModelEditor other(*mobilenet);
  auto other_context = context_for(other, {1, 28, 28});
  const auto none = run_pass(*mobilenet, other_context, "fuse_relu", kFuseAll);
  ASSERT_EQ(none.skipped.size(), 1u);
  EXPECT_NE(none.skipped[0].find("no ReLU layer"), std::string::npos) << none.skipped[0];
}

TEST(FuseReluTest, NothingIsFusedBelowMinSpeedupOrWithoutAnInputToTimeOn) {
  auto model = small_cnn(25);
  ModelEditor editor(*model);
  auto context = context_for(editor, {1, 28, 28});
  run_pass(*model, context, "fuse_conv_bn");
  const auto edits = editor.edits().size();
  const auto slow = run_pass(*model, context, "fuse_relu", {{"min_speedup", 1e9}, {"rounds", 1}, {"batch", 2}});
  EXPECT_TRUE(slow.changed.empty());
  EXPECT_EQ(editor.edits().size(), edits);
  ASSERT_FALSE(slow.skipped.empty());
  for (const auto& line : slow.skipped) EXPECT_NE(line.find("min_speedup 1000000000"), std::string::npos) << line;

  PassContext blind;  // no calibration batch, no example input
  blind.editor = &editor;
  const auto untimed = run_pass(*model, blind, "fuse_relu", {{"min_speedup", 1.5}});
  EXPECT_TRUE(untimed.changed.empty());
  for (const auto& line : untimed.skipped) EXPECT_NE(line.find("to time on"), std::string::npos) << line;
  const auto forced = run_pass(*model, blind, "fuse_relu", {{"min_speedup", 0.0}});
  EXPECT_EQ(forced.changed.size(), slow.skipped.size());
}

TEST(FuseReluTest, SavedEditsReplayOntoAFreshModel) {
  torch::NoGradGuard no_grad;  // inference, as hone eval / bench run it: the fused kernels apply
  auto model = small_cnn(26);
  ModelEditor editor(*model);
  auto context = context_for(editor, {1, 28, 28});
  run_pass(*model, context, "fuse_conv_bn");
  run_pass(*model, context, "fuse_relu", kFuseAll);
  ASSERT_GT(count_layers<nn::Conv2dReluImpl>(*model), 0);
  const auto x = torch::randn({2, 1, 28, 28});
  const auto expected = model->forward(x);
  auto fresh = testing::reload(*model, editor);
  EXPECT_EQ(count_layers<nn::Conv2dReluImpl>(*fresh), count_layers<nn::Conv2dReluImpl>(*model));
  const auto loaded = fresh->named_parameters();
  for (const auto& item : model->named_parameters()) {
    ASSERT_NE(loaded.find(item.key()), nullptr) << item.key();
    EXPECT_TRUE(torch::equal(loaded[item.key()], item.value())) << item.key();
  }
  EXPECT_LT(testing::relative_error(fresh->forward(x), expected), testing::kFp32.relative);
}

TEST(FuseReluOptionsTest, BadOptionsAreUsageErrorsNamingTheOption) {
  const auto& entry = find_pass("fuse_relu");
  const auto message = [&](const nlohmann::json& options) {
    return testing::usage_error_message([&] { validate_options(entry, options); });
  };
  EXPECT_NE(message({{"min_speedup", -1.0}}).find("'min_speedup'"), std::string::npos);
  EXPECT_NE(message({{"batch", 0}}).find("'batch'"), std::string::npos);
  EXPECT_NE(message({{"rounds", 0}}).find("'rounds'"), std::string::npos);
  EXPECT_GT(validate_options(entry, nlohmann::json::object())["min_speedup"].get<double>(), 1.0);
}

}  // namespace
}  // namespace hone::compress
