// hone models lowered to ONNX and run by onnxruntime (from the venv) beside hone: every zoo
// architecture (small configs, random weights: agreement is what is tested), every compressed
// layer kind, dynamic batch at 1, 3 and 64, the LSTM gate order against a loop written from the
// ONNX spec, and the errors (unsupported layer, corrupted file, verifier failure).
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/rnn.h>
#include <fstream>
#include <iterator>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "hone/compress/editor.h"
#include "hone/core/error.h"
#include "hone/data/datasets.h"
#include "hone/data/paths.h"
#include "hone/export/export.h"
#include "hone/export/onnx_proto.h"
#include "hone/models/bert_encoder.h"
#include "hone/models/registry.h"
#include "hone/nn/conv2d_int8.h"
#include "hone/nn/conv2d_lowrank.h"
#include "hone/nn/conv2d_relu.h"
#include "hone/nn/layer.h"
#include "hone/nn/linear_float.h"
#include "hone/nn/linear_int8_dynamic.h"
#include "hone/nn/linear_lowrank.h"
#include "hone/nn/linear_relu.h"
#include "hone/nn/linear_semi_structured.h"
#include "hone/nn/lstm_int8_dynamic.h"
#include "hone/nn/sketched_linear.h"
#include "hone/runtime/pretrained_target.h"
#include "support/pass_runner.h"
#include "support/temp_dir.h"
#include "support/tolerances.h"

namespace hone::onnx {
namespace {

static_assert(testing::kExportFp32.relative == kExportFp32Relative, "one tolerance table");
static_assert(testing::kExportFp16.relative == kExportFp16Relative, "one tolerance table");
static_assert(testing::kExportInt8.relative == kExportInt8Relative, "one tolerance table");

const std::vector<std::int64_t> kBatches{1, 3, 64};

data::DatasetInfo images(std::int64_t classes = 5) {
  return {"images", data::TaskKind::kClassification, {1, 12, 12}, classes, 0, {}};
}
data::DatasetInfo table(std::int64_t features, std::int64_t classes) {
  return {"table", data::TaskKind::kClassification, {features}, classes, 0, {}};
}
data::DatasetInfo windows(std::int64_t window, std::int64_t series) {
  return {"windows", data::TaskKind::kForecasting, {window, series}, 0, 1, {}};
}

double max_relative_error(const at::Tensor& actual, const at::Tensor& expected) {
  const auto a = actual.to(at::kDouble), e = expected.to(at::kDouble);
  EXPECT_EQ(a.sizes(), e.sizes());
  if (a.sizes() != e.sizes()) return 1e9;
  return (a - e).abs().max().item<double>() / std::max(e.abs().max().item<double>(), 1e-30);
}

/// Random weights everywhere, running statistics included, so that nothing is exported at an
/// initial value that would hide a mistake (zero heads, unit variances).
void randomize(torch::nn::Module& model, std::uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& p : model.parameters()) {
    if (p.is_floating_point()) p.copy_(at::randn(p.sizes(), generator, p.options()) * 0.3);
  }
  for (auto& m : model.modules()) {
    if (auto* bn = dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.get())) {
      bn->running_mean.copy_(at::randn(bn->running_mean.sizes(), generator) * 0.2);
      bn->running_var.copy_(at::rand(bn->running_var.sizes(), generator) + 0.5);
    }
  }
}

/// hone's output for a set of graph inputs (as the graph takes them).
using HoneForward = std::function<at::Tensor(const NamedInputs&)>;
using MakeInputs = std::function<NamedInputs(std::int64_t batch)>;

/// Lowers `model`, runs onnxruntime at each batch size and compares its single output with hone's.
void expect_round_trip(models::Model& model, const data::DatasetInfo& info, const MakeInputs& make_inputs,
                       const HoneForward& hone, double tolerance, LowerOptions options = {}) {
  model.eval();
  const LoweredModel lowered = lower_model(model, info, options);
  ASSERT_EQ(lowered.outputs.size(), 1u);
  std::vector<NamedInputs> cases;
  std::vector<at::Tensor> expected;
  {
    torch::NoGradGuard no_grad;
    for (const auto b : kBatches) {
      cases.push_back(make_inputs(b));
      expected.push_back(hone(cases.back()));
    }
  }
  const auto results = run_onnxruntime(serialize(lowered.model), cases);
  ASSERT_EQ(results.size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& out = results[i].at(lowered.outputs[0].name);
    EXPECT_EQ(out.size(0), kBatches[i]) << "dynamic batch";
    EXPECT_LE(max_relative_error(out, expected[i]), tolerance)
        << model.architecture() << " at batch " << kBatches[i] << " (" << lowered.model.graph.node.size() << " nodes)";
  }
}

MakeInputs uniform(std::vector<std::int64_t> sample_shape, std::string name = "pixels") {
  return [sample_shape, name](std::int64_t batch) {
    auto generator = at::make_generator<at::CPUGeneratorImpl>(100 + batch);
    std::vector<std::int64_t> shape{batch};
    shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
    return NamedInputs{{name, at::rand(shape, generator)}};
  };
}

HoneForward direct(models::Model& model) {
  return [&model](const NamedInputs& in) { return model.forward(in.at(0).second); };
}

void expect_image_round_trip(models::Model& model, double tolerance = testing::kExportFp32.relative,
                             LowerOptions options = {}) {
  expect_round_trip(model, images(), uniform({1, 12, 12}), direct(model), tolerance, options);
}

models::ModelPtr small_cnn() {
  auto model = models::make_model("cnn", images(), {{"widths", {4, 8}}, {"blocks_per_stage", 1}});
  randomize(*model, 1);
  return model;
}

models::ModelPtr small_mlp(const std::string& activation = "relu") {
  auto model = models::make_model("mlp", table(32, 4), {{"hidden", {16}}, {"activation", activation}});
  randomize(*model, 2);
  return model;
}

void expect_table_round_trip(models::Model& model, double tolerance = testing::kExportFp32.relative,
                             LowerOptions options = {}) {
  expect_round_trip(model, table(32, 4), uniform({32}, "features"), direct(model), tolerance, options);
}

void replace(models::Model& model, const std::string& path, nn::Layer layer) {
  const auto ref = nn::find_slot(model, path);
  ref.parent->replace_layer(ref.name, std::move(layer));
}

TEST(ModelExportTest, MlpRoundTripsWithEachActivation) {
  for (const std::string activation : {"relu", "gelu", "tanh"}) {
    auto model = small_mlp(activation);
    expect_table_round_trip(*model);
  }
}

TEST(ModelExportTest, CnnRoundTripsWithBatchNormsAndResidualBlocks) {
  auto model = small_cnn();
  expect_image_round_trip(*model);
}

TEST(ModelExportTest, MobilenetRoundTrips) {
  auto model = models::make_model("mobilenet", images(), {{"stem_width", 4}, {"widths", {8, 8}}, {"strides", {1, 2}}});
  randomize(*model, 3);
  expect_image_round_trip(*model);
}

TEST(ModelExportTest, TransformerRoundTrips) {
  auto model = models::make_model("transformer", images(),
                                  {{"d_model", 16}, {"num_heads", 2}, {"ffn_dim", 32}, {"num_layers", 2}});
  randomize(*model, 4);
  expect_image_round_trip(*model);
}

TEST(ModelExportTest, TheLoadersNormalizationIsInsideTheGraph) {
  auto model = small_cnn();
  LowerOptions options;
  options.normalization = {{"mean", 0.29}, {"std", 0.35}};
  const HoneForward normalized = [&](const NamedInputs& in) { return model->forward((in[0].second - 0.29) / 0.35); };
  expect_round_trip(*model, images(), uniform({1, 12, 12}), normalized, testing::kExportFp32.relative, options);
  // And the graph really applies it: without the normalization hone's outputs differ.
  const LoweredModel lowered = lower_model(*model, images(), options);
  const auto x = uniform({1, 12, 12})(3);
  const auto ort = run_onnxruntime(serialize(lowered.model), {x})[0].at("logits");
  torch::NoGradGuard no_grad;
  EXPECT_GT(max_relative_error(ort, model->forward(x[0].second)), 1e-2);
}

/// Positive prices [B, window + 1, series]; hone: log-returns -> model -> last price of series 0 x exp.
MakeInputs prices(std::int64_t window, std::int64_t series) {
  return [=](std::int64_t batch) {
    auto generator = at::make_generator<at::CPUGeneratorImpl>(200 + batch);
    const auto steps = at::randn({batch, window + 1, series}, generator, at::kDouble) * 0.02;
    return NamedInputs{{"prices", 100.0 * steps.cumsum(1).exp()}};
  };
}

HoneForward forecast(models::Model& model) {
  return [&model](const NamedInputs& in) {
    const auto& p = in[0].second;
    const auto w = p.size(1) - 1;
    const auto returns = at::log(p.narrow(1, 1, w) / p.narrow(1, 0, w)).to(at::kFloat);
    const auto prediction = model.forward(returns).to(at::kDouble);
    return p.select(1, w).select(1, 0).unsqueeze(1) * prediction.exp();
  };
}

TEST(ModelExportTest, LstmForecasterRoundTripsOnRawPrices) {
  auto model = models::make_model("lstm", windows(6, 2), {{"hidden_size", 8}, {"num_layers", 2}, {"dropout", 0.0}});
  randomize(*model, 5);
  expect_round_trip(*model, windows(6, 2), prices(6, 2), forecast(*model), testing::kExportFp32.relative);
}

TEST(ModelExportTest, AttentionForecasterRoundTrips) {
  auto model = models::make_model("attention", windows(6, 2),
                                  {{"hidden_size", 8}, {"num_layers", 1}, {"num_heads", 2}, {"dropout", 0.0}});
  randomize(*model, 6);
  expect_round_trip(*model, windows(6, 2), prices(6, 2), forecast(*model), testing::kExportFp32.relative);
}

std::shared_ptr<models::BertEncoder> small_minilm() {
  models::BertEncoderConfig config;
  config.vocab_size = 60;
  config.hidden_size = 16;
  config.num_layers = 2;
  config.num_heads = 2;
  config.intermediate_size = 32;
  config.max_positions = 32;
  auto model = std::make_shared<models::BertEncoder>(config);
  randomize(*model, 7);
  return model;
}

data::DatasetInfo token_info(const models::BertEncoder& model) {
  return {"tokens", data::TaskKind::kClassification, {16}, 0, 0, {}, model.bert_config().vocab_size};
}

/// Token ids with padding: every row a random length, so the attention mask changes the result.
NamedInputs padded_tokens(std::int64_t batch) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(300 + batch);
  const std::int64_t length = 5 + batch % 11;  // 6, 8, 14 tokens: the sequence axis moves too
  auto ids = at::randint(1, 60, {batch, length}, generator, at::kLong);
  const auto lengths = at::randint(1, length + 1, {batch, 1}, generator, at::kLong);
  const auto padding = at::arange(length, at::kLong).unsqueeze(0).ge(lengths);
  ids.masked_fill_(padding, 0);
  return NamedInputs{{"input_ids", ids}, {"attention_mask", padding.logical_not().to(at::kLong)}};
}

HoneForward bert_forward(models::BertEncoder& model) {
  return [&model](const NamedInputs& in) { return model.forward(in[0].second, in[1].second.eq(0)); };
}

TEST(ModelExportTest, MiniLmRoundTripsWithDynamicBatchAndSequence) {
  auto model = small_minilm();
  expect_round_trip(*model, token_info(*model), padded_tokens, bert_forward(*model), testing::kExportFp32.relative);
}

std::map<std::string, std::int64_t> op_counts(const LoweredModel& lowered) {
  std::map<std::string, std::int64_t> ops;
  for (const auto& node : lowered.model.graph.node) ++ops[node.op_type];
  return ops;
}

/// At opset 23 each self-attention is one Attention node: no Softmax left, and two MatMuls fewer
/// per layer than the MatMul / Softmax form of opset 20 (the Linears' MatMuls stay).
void expect_attention_op(models::Model& model, const data::DatasetInfo& info, std::int64_t layers) {
  LowerOptions at20, at23;
  at23.opset = 23;
  auto before = op_counts(lower_model(model, info, at20));
  const LoweredModel lowered = lower_model(model, info, at23);
  auto after = op_counts(lowered);
  EXPECT_EQ(before["Attention"], 0);
  EXPECT_EQ(before["Softmax"], layers);
  EXPECT_EQ(after["Attention"], layers) << model.architecture();
  EXPECT_EQ(after["Softmax"], 0) << model.architecture();
  EXPECT_EQ(after["MatMul"], before["MatMul"] - 2 * layers) << model.architecture();
  EXPECT_EQ(lowered.model.opset_import.at(0).version, 23);
  EXPECT_EQ(lowered.model.ir_version, 11) << "onnx 1.18 released opset 23 with IR 11";
}

TEST(ModelExportTest, AttentionIsTheAttentionOpFromOpset23) {
  LowerOptions options;
  options.opset = 23;
  auto transformer = models::make_model("transformer", images(),
                                        {{"d_model", 16}, {"num_heads", 2}, {"ffn_dim", 32}, {"num_layers", 2}});
  randomize(*transformer, 4);
  expect_attention_op(*transformer, images(), 2);
  expect_image_round_trip(*transformer, testing::kExportFp32.relative, options);

  // The padding mask reaches the Attention op (rows of random lengths: a lost mask changes them).
  auto minilm = small_minilm();
  expect_attention_op(*minilm, token_info(*minilm), 2);
  expect_round_trip(*minilm, token_info(*minilm), padded_tokens, bert_forward(*minilm), testing::kExportFp32.relative,
                    options);

  // Cross attention of the last step over the LSTM's sequence (query length 1).
  auto forecaster = models::make_model("attention", windows(6, 2),
                                       {{"hidden_size", 8}, {"num_layers", 1}, {"num_heads", 2}, {"dropout", 0.0}});
  randomize(*forecaster, 6);
  expect_attention_op(*forecaster, windows(6, 2), 1);
  expect_round_trip(*forecaster, windows(6, 2), prices(6, 2), forecast(*forecaster), testing::kExportFp32.relative,
                    options);
}

TEST(ModelExportTest, OpsetsOutsideTheCheckedRangeAreRefused) {
  auto model = small_mlp();
  for (const std::int64_t opset : {kMinOpset - 1, kMaxOpset + 1}) {
    LowerOptions options;
    options.opset = opset;
    EXPECT_THROW(lower_model(*model, table(32, 4), options), Error) << "opset " << opset;
  }
}

/// The real all-MiniLM-L6-v2 through runtime::load_target("minilm-pretrained"), exported in both
/// attention forms and run by onnxruntime on real fine-food reviews of different lengths.
TEST(ModelExportTest, PretrainedMiniLmAgreesOnRealReviewsInBothAttentionForms) {
  if (!std::filesystem::exists(data::minilm_dir() / "model.safetensors") ||
      !std::filesystem::exists(data::exported_data_dir() / "fine-foods" / "test.tsv")) {
    GTEST_SKIP() << "all-MiniLM-L6-v2 or the fine-food reviews are not installed (make setup installs both)";
  }
  const runtime::ModelTarget target = runtime::load_target(std::string(runtime::kPretrainedMiniLm));
  auto* bert = dynamic_cast<models::BertEncoder*>(target.model.get());
  ASSERT_NE(bert, nullptr);
  EXPECT_EQ(target.info.name, "fine-foods-text");
  EXPECT_EQ(target.info.num_classes, 0) << "an encoder: embeddings, not the reviews' labels";
  ASSERT_TRUE(data::is_dataset(target.info.name)) << "registered, so export verifies on it";
  {  // The weights `hone embed` uses (the zoo's minilm, seeded the same way, has other ones).
    const auto embed = text::SentenceEncoder::load(data::minilm_dir());
    const auto ours = bert->named_parameters(), theirs = embed.model().named_parameters();
    ASSERT_EQ(ours.size(), theirs.size());
    for (const auto& item : theirs) EXPECT_TRUE(at::equal(ours[item.key()], item.value())) << item.key();
  }
  const data::LoadedData reviews = data::load_dataset(target.info.name);
  at::Tensor ids = reviews.test.dataset.inputs().narrow(0, 0, 24).to(at::kLong);
  const auto longest = ids.ne(bert->bert_config().pad_id).sum(1).max().item<std::int64_t>();
  ids = ids.narrow(1, 0, longest).contiguous();
  const auto padding = ids.eq(bert->bert_config().pad_id);
  ASSERT_TRUE(padding.any().item<bool>()) << "reviews of different lengths: the mask matters";
  at::Tensor expected;
  {
    torch::NoGradGuard no_grad;
    bert->eval();
    expected = bert->forward(ids, padding).to(at::kDouble);
  }
  const NamedInputs inputs{{"input_ids", ids}, {"attention_mask", padding.logical_not().to(at::kLong)}};
  for (const std::int64_t opset : {20, 23}) {
    LowerOptions options;
    options.opset = opset;
    const LoweredModel lowered = lower_model(*bert, target.info, options);
    EXPECT_EQ(op_counts(lowered)["Attention"], opset >= 23 ? 6 : 0);
    const auto ort = run_onnxruntime(serialize(lowered.model), {inputs})[0].at("embedding").to(at::kDouble);
    EXPECT_LE(max_relative_error(ort, expected), testing::kExportFp32.relative) << "opset " << opset;
    EXPECT_GE(at::cosine_similarity(ort, expected, 1).min().item<double>(), 0.99999) << "opset " << opset;
  }
}

TEST(ModelExportTest, LstmGatesFollowTheOnnxSpecOrder) {
  // torch's LSTM against the ONNX LSTM equations (i, o, f, c blocks) on the reordered weights.
  torch::manual_seed(11);
  torch::nn::LSTM lstm(torch::nn::LSTMOptions(3, 4).batch_first(true));
  const auto x = torch::randn({2, 5, 3});
  const auto expected = std::get<0>(lstm->forward(x));
  const auto params = lstm->named_parameters();
  const auto w = lstm_gates_to_onnx(params["weight_ih_l0"]), r = lstm_gates_to_onnx(params["weight_hh_l0"]);
  const auto b = lstm_gates_to_onnx(params["bias_ih_l0"]) + lstm_gates_to_onnx(params["bias_hh_l0"]);
  auto h = torch::zeros({2, 4}), c = torch::zeros({2, 4});
  std::vector<torch::Tensor> steps;
  for (std::int64_t t = 0; t < 5; ++t) {
    const auto gates = (torch::mm(x.select(1, t), w.t()) + torch::mm(h, r.t()) + b).chunk(4, 1);
    const auto i = torch::sigmoid(gates[0]), o = torch::sigmoid(gates[1]), f = torch::sigmoid(gates[2]);
    const auto candidate = torch::tanh(gates[3]);
    c = f * c + i * candidate;
    h = o * torch::tanh(c);
    steps.push_back(h);
  }
  EXPECT_LE(max_relative_error(torch::stack(steps, 1), expected.detach()), testing::kFp32.relative);
  // A wrong order (PyTorch's own) is caught by the same loop.
  const auto wrong = params["weight_ih_l0"];
  EXPECT_FALSE(torch::allclose(wrong, w));
}

// --- compressed layer kinds -------------------------------------------------------------------

TEST(ModelExportTest, FoldedAndFusedLayersRoundTrip) {
  auto model = small_cnn();
  compress::ModelEditor editor(*model);
  testing::run_pass(*model, editor, "fuse_conv_bn", nlohmann::json::object());
  EXPECT_EQ(testing::count_layers<torch::nn::BatchNorm2dImpl>(*model), 0);
  // conv + ReLU and linear + ReLU as the fuse_relu pass puts them in (whatever it measures here).
  auto* stem = nn::find_slot(*model, "features.0").slot->as<torch::nn::Conv2dImpl>();
  ASSERT_NE(stem, nullptr);
  replace(*model, "features.0", nn::make_layer(nn::Conv2dRelu(nn::Conv2dReluImpl::from_conv(*stem))));
  auto* classifier = nn::find_slot(*model, "classifier").slot->as<torch::nn::LinearImpl>();
  ASSERT_NE(classifier, nullptr);
  replace(*model, "classifier", nn::make_layer(nn::LinearRelu(nn::LinearReluImpl::from_linear(*classifier))));
  expect_image_round_trip(*model);
}

TEST(ModelExportTest, LowRankLayersRoundTripAsTwoProducts) {
  auto mlp = small_mlp();
  replace(*mlp, "layers.0", nn::make_layer(nn::LinearLowRank(32, 3, 16, true)));
  randomize(*mlp, 8);
  expect_table_round_trip(*mlp);

  auto cnn = small_cnn();
  nn::Conv2dLowRankOptions options;
  options.in = 4;
  options.rank = 2;
  options.out = 8;
  options.stride = {2, 2};
  options.bias = false;
  replace(*cnn, "features.4.shortcut.0", nn::make_layer(nn::Conv2dLowRank(options)));
  randomize(*cnn, 9);
  expect_image_round_trip(*cnn);
}

TEST(ModelExportTest, SketchedLinearRoundTripsAsMatMulsOfItsFactors) {
  auto model = small_mlp();
  nn::SketchedLinearOptions options;
  options.in = 16;
  options.out = 4;
  options.terms = 2;
  options.rank = 3;
  options.seed = 5;
  replace(*model, "layers.3", nn::make_layer(nn::SketchedLinear(options)));
  const LoweredModel lowered = lower_model(*model, table(32, 4));
  std::int64_t matmuls = 0;
  for (const auto& node : lowered.model.graph.node) matmuls += node.op_type == "MatMul" ? 1 : 0;
  EXPECT_EQ(matmuls, 2) << "the sketched layer is two products of its factors";
  expect_table_round_trip(*model);
}

TEST(ModelExportTest, PrunedLayersRoundTripWithTheirZeros) {
  auto cnn = small_cnn();
  compress::ModelEditor cnn_editor(*cnn);
  testing::run_pass(*cnn, cnn_editor, "prune_structured", {{"amount", 0.5}});  // shapes shrink, config does not
  expect_image_round_trip(*cnn);

  auto mlp = small_mlp();
  compress::ModelEditor mlp_editor(*mlp);
  testing::run_pass(*mlp, mlp_editor, "prune_magnitude", {{"amount", 0.5}});
  ASSERT_TRUE(nn::semi_structured_unsupported(32, 16).empty());
  auto* first = nn::find_slot(*mlp, "layers.0").slot->as<torch::nn::LinearImpl>();
  ASSERT_NE(first, nullptr) << "prune_magnitude keeps a plain Linear";
  replace(*mlp, "layers.0",
          nn::make_layer(nn::LinearSemiStructured(nn::LinearSemiStructuredImpl::from_float(*first, at::kFloat))));
  expect_table_round_trip(*mlp);
}

TEST(ModelExportTest, Bf16WeightRunsExportAsFp32AndFp16) {
  auto model = small_mlp();
  compress::ModelEditor editor(*model);
  testing::run_pass(*model, editor, "quant_float", {{"dtype", "bf16"}});
  ASSERT_GT(testing::count_layers<nn::LinearFloatImpl>(*model), 0);
  expect_table_round_trip(*model, testing::kExportFp16.relative);  // hone computes those layers in bf16
}

TEST(ModelExportTest, Fp16ExportsComputeInFp16WithCastsAtTheEdges) {
  auto model = small_cnn();
  LowerOptions options;
  options.dtype = "fp16";
  const LoweredModel lowered = lower_model(*model, images(), options);
  EXPECT_EQ(lowered.model.graph.input.at(0).type->elem_type, DataType::kFloat);
  EXPECT_EQ(lowered.model.graph.output.at(0).type->elem_type, DataType::kFloat);
  std::int64_t half_weights = 0;
  for (const auto& t : lowered.model.graph.initializer) half_weights += t.data_type == DataType::kFloat16 ? 1 : 0;
  EXPECT_GT(half_weights, 5);
  expect_image_round_trip(*model, testing::kExportFp16.relative, options);
}

TEST(ModelExportTest, Int8StaticCnnExportsAsQdqThatOnnxruntimeFuses) {
  auto model = small_cnn();
  compress::ModelEditor editor(*model);
  testing::run_pass(*model, editor, "fuse_conv_bn", nlohmann::json::object());
  std::vector<torch::Tensor> calibration;
  for (std::int64_t i = 0; i < 4; ++i) calibration.push_back(uniform({1, 12, 12})(16 + i)[0].second);
  testing::run_pass(*model, editor, "quant_int8_static", nlohmann::json::object(), calibration);
  ASSERT_GT(testing::count_layers<nn::Conv2dInt8Impl>(*model), 3);
  const LoweredModel lowered = lower_model(*model, images());
  std::map<std::string, std::int64_t> ops;
  for (const auto& node : lowered.model.graph.node) ++ops[node.op_type];
  EXPECT_GT(ops["QuantizeLinear"], 4);
  EXPECT_GT(ops["DequantizeLinear"], ops["QuantizeLinear"]);  // + one per int8 weight and int32 bias
  for (const auto& t : lowered.model.graph.initializer) {
    if (t.name.find("weight_int8") != std::string::npos) EXPECT_EQ(t.data_type, DataType::kInt8) << t.name;
    if (t.name.find("bias_int32") != std::string::npos) EXPECT_EQ(t.data_type, DataType::kInt32) << t.name;
  }
  const HoneForward hone = [&](const NamedInputs& in) {
    const auto y = model->forward(in[0].second);
    return y.is_quantized() ? y.dequantize() : y;
  };
  expect_round_trip(*model, images(), uniform({1, 12, 12}), hone, testing::kExportInt8.relative);
}

/// onnxruntime's u8s8 MatMulInteger saturates in int16 on x86 CPUs without VNNI (AVX2's vpmaddubsw):
/// 0.15 relative error measured on a Zen 3 EPYC, against 1e-2 on Zen 4 and Xeons with VNNI.
bool cpu_has_vnni() {
  std::ifstream in("/proc/cpuinfo");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto has = [&](const std::string& flag) {
    return text.find(" " + flag + " ") != std::string::npos || text.find(" " + flag + "\n") != std::string::npos;
  };
  return text.empty() || has("avx512_vnni") || has("avx_vnni") || has("amx_int8") || !has("avx2");
}

TEST(ModelExportTest, Int8DynamicLinearExportsAsIntegerOps) {
  if (!cpu_has_vnni())
    GTEST_SKIP() << "this CPU has no VNNI: onnxruntime's u8s8 MatMulInteger saturates here (the export CLI test "
                    "checks that hone export refuses such a model)";
  auto mlp = small_mlp();
  compress::ModelEditor mlp_editor(*mlp);
  testing::run_pass(*mlp, mlp_editor, "quant_int8_dynamic", nlohmann::json::object());
  ASSERT_GT(testing::count_layers<nn::LinearInt8DynamicImpl>(*mlp), 0);
  std::int64_t integer_products = 0;
  for (const auto& node : lower_model(*mlp, table(32, 4)).model.graph.node) {
    integer_products += node.op_type == "MatMulInteger" ? 1 : 0;
  }
  EXPECT_EQ(integer_products, 2);
  expect_table_round_trip(*mlp, testing::kExportInt8.relative);
}

/// ONNX's LSTM is float: an int8 dynamic LSTM's weights go in as int8 values + per-row scales
/// through DequantizeLinear (no MatMulInteger, so no VNNI needed), a quarter of the float bytes.
TEST(ModelExportTest, Int8DynamicLstmKeepsItsInt8WeightsInTheFile) {
  auto lstm = models::make_model("lstm", windows(6, 2), {{"hidden_size", 32}, {"num_layers", 2}, {"dropout", 0.0}});
  randomize(*lstm, 12);
  const auto float_bytes = serialize(lower_model(*lstm, windows(6, 2)).model).size();
  compress::ModelEditor lstm_editor(*lstm);
  testing::run_pass(*lstm, lstm_editor, "quant_int8_dynamic", {{"layers", {"lstm"}}});
  ASSERT_EQ(testing::count_layers<nn::LstmInt8DynamicImpl>(*lstm), 1);
  const LoweredModel lowered = lower_model(*lstm, windows(6, 2));
  std::set<std::string> int8_initializers;
  for (const auto& t : lowered.model.graph.initializer) {
    if (t.data_type == DataType::kInt8) int8_initializers.insert(t.name);
  }
  std::int64_t int8_lstm_weights = 0;
  for (const auto& node : lowered.model.graph.node) {
    if (node.op_type != "LSTM") continue;
    for (const auto index : {1, 2}) {  // W and R
      for (const auto& producer : lowered.model.graph.node) {
        if (producer.output.at(0) == node.input.at(index) && producer.op_type == "DequantizeLinear" &&
            int8_initializers.contains(producer.input.at(0))) {
          ++int8_lstm_weights;
        }
      }
    }
  }
  EXPECT_EQ(int8_lstm_weights, 4) << "W and R of both layers";
  EXPECT_LT(serialize(lowered.model).size(), float_bytes / 2);
  expect_round_trip(*lstm, windows(6, 2), prices(6, 2), forecast(*lstm), testing::kExportInt8.relative);
}

// --- errors -----------------------------------------------------------------------------------

struct OpaqueImpl : torch::nn::Module {
  torch::Tensor forward(const torch::Tensor& x) { return x * 2; }
};
TORCH_MODULE(Opaque);

TEST(ModelExportTest, AnUnsupportedLayerIsNamedWithItsKind) {
  auto model = small_mlp();
  replace(*model, "layers.1", nn::make_layer(Opaque()));
  try {
    lower_model(*model, table(32, 4));
    FAIL() << "lowering an unknown layer kind did not throw";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("'layers.1'"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("Opaque"));
  }
}

TEST(ModelExportTest, ACorruptedFileIsANamedError) {
  auto model = small_mlp();
  const std::string bytes = serialize(lower_model(*model, table(32, 4)).model);
  try {
    parse<ModelProto>(std::string_view(bytes).substr(0, bytes.size() / 2), "mlp.onnx");
    FAIL() << "a truncated model parsed";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("mlp.onnx"));
  }
  // onnxruntime's rejection of a damaged file arrives as a hone::Error with its message.
  std::string damaged = bytes;
  for (std::size_t i = 0; i < 64; ++i) damaged[i] = static_cast<char>(0xff);
  EXPECT_THROW(run_onnxruntime(damaged, {uniform({32}, "features")(1)}), Error);
}

TEST(ModelExportTest, AFailedVerifierLeavesNoFile) {
  testing::TempDir dir("hone-export");
  ExportOptions options;
  options.target = "mlp";
  options.output = dir / "mlp.onnx";
  options.python = "/bin/false";  // the verifier cannot run
  options.largest_batch = 16;
  EXPECT_THROW(export_model(options), Error);
  EXPECT_FALSE(std::filesystem::exists(options.output));
}

}  // namespace
}  // namespace hone::onnx
