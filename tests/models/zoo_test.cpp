// The model zoo: every registry entry builds from a dataset, gives the right output shapes, rebuilds
// exactly from its saved config, rejects bad configs and datasets, and trains (gradients flow).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "hone/core/error.h"
#include "hone/models/mlp.h"
#include "hone/models/registry.h"
#include "hone/models/resnet_cnn.h"

namespace hone::models {
namespace {

using data::DatasetInfo;
using data::TaskKind;

DatasetInfo image_dataset() { return {"images", TaskKind::kClassification, {1, 28, 28}, 10, 0, {}}; }
DatasetInfo table_dataset() { return {"digits-like", TaskKind::kClassification, {64}, 10, 0, {}}; }
DatasetInfo window_dataset() { return {"window", TaskKind::kForecasting, {30, 2}, 0, 3, {}}; }

std::vector<DatasetInfo> all_datasets() { return {image_dataset(), table_dataset(), window_dataset()}; }

/// Which datasets each architecture takes. A model added to the registry without a row here fails
/// RegistryHasExpectedModels, so every model gets these tests.
const std::map<std::string, std::set<std::string>>& compatible_datasets() {
  static const std::map<std::string, std::set<std::string>> table{
      {"mlp", {"images", "digits-like", "window"}},
      {"cnn", {"images"}},
      {"mobilenet", {"images"}},
      {"transformer", {"images", "window"}},
      {"lstm", {"window"}},
      {"attention", {"window"}},
      {"minilm", {}},  // token ids only: tests/models/bert_encoder_test.cpp
  };
  return table;
}

struct Case {
  std::string model;
  DatasetInfo data;
};

std::vector<Case> compatible_cases() {
  std::vector<Case> cases;
  for (const auto& entry : model_registry()) {
    for (const auto& data : all_datasets()) {
      if (compatible_datasets().at(entry.name).count(data.name)) cases.push_back({entry.name, data});
    }
  }
  return cases;
}

std::int64_t expected_outputs(const DatasetInfo& data) {
  return data.task == TaskKind::kClassification ? data.num_classes : data.num_outputs;
}

torch::Tensor sample_input(const DatasetInfo& data, std::int64_t batch) {
  std::vector<std::int64_t> shape{batch};
  shape.insert(shape.end(), data.input_shape.begin(), data.input_shape.end());
  return torch::randn(shape);
}

std::string label(const Case& c) { return c.model + " on " + c.data.name; }

/// Copies every parameter and buffer of `from` into `to` (same names and shapes).
void copy_state(torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  auto to_parameters = to.named_parameters();
  for (const auto& item : from.named_parameters()) to_parameters[item.key()].copy_(item.value());
  auto to_buffers = to.named_buffers();
  for (const auto& item : from.named_buffers()) to_buffers[item.key()].copy_(item.value());
}

/// Runs `body` and returns the hone::Error message it throws ("" when it throws nothing).
template <typename Body>
std::string error_message(Body body) {
  try {
    body();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(ZooTest, RegistryHasExpectedModels) {
  std::vector<std::string> names;
  for (const auto& entry : model_registry()) {
    names.push_back(entry.name);
    EXPECT_FALSE(entry.summary.empty()) << entry.name;
    EXPECT_TRUE(compatible_datasets().count(entry.name)) << entry.name << " has no row in compatible_datasets";
    EXPECT_EQ(&find_model(entry.name), &entry);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"mlp", "cnn", "mobilenet", "transformer", "lstm", "attention", "minilm"}));
}

TEST(ZooTest, OutputShapesForBatchOneAndOddBatch) {
  torch::manual_seed(11);
  for (const auto& c : compatible_cases()) {
    auto model = make_model(c.model, c.data);
    EXPECT_EQ(model->architecture(), c.model);
    model->eval();
    for (const std::int64_t batch : {1, 7}) {
      const auto output = model->forward(sample_input(c.data, batch));
      EXPECT_EQ(output.sizes(), (std::vector<std::int64_t>{batch, expected_outputs(c.data)})) << label(c);
      EXPECT_TRUE(torch::isfinite(output).all().item<bool>()) << label(c);
    }
    model->train();  // training mode (BatchNorm batch statistics, dropout) keeps the shape
    EXPECT_EQ(model->forward(sample_input(c.data, 7)).size(0), 7) << label(c);
  }
}

TEST(ZooTest, EvalForwardIsDeterministic) {
  torch::manual_seed(12);
  for (const auto& c : compatible_cases()) {
    auto model = make_model(c.model, c.data);
    model->eval();
    const auto input = sample_input(c.data, 5);
    EXPECT_TRUE(torch::equal(model->forward(input), model->forward(input))) << label(c);
  }
}

TEST(ZooTest, SavedConfigRebuildsTheSameModel) {
  torch::manual_seed(13);
  for (const auto& c : compatible_cases()) {
    auto original = make_model(c.model, c.data);
    const auto config = original->config();
    auto rebuilt = make_model(c.model, config);
    EXPECT_EQ(rebuilt->config(), config) << label(c);

    std::vector<std::pair<std::string, std::vector<std::int64_t>>> original_shapes, rebuilt_shapes;
    for (const auto& item : original->named_parameters())
      original_shapes.emplace_back(item.key(), item.value().sizes().vec());
    for (const auto& item : rebuilt->named_parameters())
      rebuilt_shapes.emplace_back(item.key(), item.value().sizes().vec());
    EXPECT_EQ(rebuilt_shapes, original_shapes) << label(c);
    EXPECT_EQ(rebuilt->named_buffers().keys(), original->named_buffers().keys()) << label(c);

    // The two models start from different random weights; only the copied state makes them agree.
    const auto input = sample_input(c.data, 3);
    original->train();  // one training-mode pass moves BatchNorm running statistics off their defaults
    {
      torch::NoGradGuard no_grad;
      original->forward(sample_input(c.data, 4));
    }
    copy_state(*original, *rebuilt);
    original->eval();
    rebuilt->eval();
    EXPECT_TRUE(torch::equal(rebuilt->forward(input), original->forward(input))) << label(c);
  }
}

TEST(ZooTest, UnknownConfigKeyIsRejected) {
  for (const auto& c : compatible_cases()) {
    const auto message = error_message([&] { make_model(c.model, c.data, {{"bogus_width", 3}}); });
    EXPECT_NE(message.find("bogus_width"), std::string::npos) << label(c) << ": " << message;
    EXPECT_NE(message.find(c.model + " config"), std::string::npos) << message;

    auto config = find_model(c.model).default_config(c.data);
    config["bogus_width"] = 3;
    EXPECT_THROW(make_model(c.model, config), Error) << label(c);
  }
}

TEST(ZooTest, InvalidValuesAreRejected) {
  struct Bad {
    std::string model;
    DatasetInfo data;
    nlohmann::json overrides;
    std::string field;  // the message must name it
  };
  const std::vector<Bad> cases{
      {"mlp", table_dataset(), {{"dropout", 1.0}}, "dropout"},
      {"mlp", table_dataset(), {{"dropout", -0.25}}, "dropout"},
      {"mlp", table_dataset(), {{"hidden", {32, 0}}}, "hidden"},
      {"mlp", table_dataset(), {{"activation", "swish"}}, "activation"},
      {"mlp", table_dataset(), {{"in_features", "64"}}, "in_features"},
      {"mlp", table_dataset(), {{"in_features", 64.5}}, "in_features"},
      {"mlp", table_dataset(), {{"out_features", true}}, "out_features"},
      {"cnn", image_dataset(), {{"widths", nlohmann::json::array()}}, "widths"},
      {"cnn", image_dataset(), {{"blocks_per_stage", 0}}, "blocks_per_stage"},
      {"cnn", image_dataset(), {{"in_channels", -1}}, "in_channels"},
      {"mobilenet", image_dataset(), {{"strides", {1, 2}}}, "strides"},
      {"mobilenet", image_dataset(), {{"stem_width", 0}}, "stem_width"},
      {"transformer", image_dataset(), {{"num_heads", 5}}, "num_heads"},
      {"transformer", window_dataset(), {{"input_shape", {30}}}, "input_shape"},
      {"transformer", window_dataset(), {{"num_layers", 0}}, "num_layers"},
      {"lstm", window_dataset(), {{"hidden_size", 0}}, "hidden_size"},
      {"lstm", window_dataset(), {{"dropout", 1.5}}, "dropout"},
      {"attention", window_dataset(), {{"num_heads", 7}}, "num_heads"},
      {"attention", window_dataset(), {{"output_size", 0}}, "output_size"},
  };
  for (const auto& bad : cases) {
    const auto message = error_message([&] { make_model(bad.model, bad.data, bad.overrides); });
    EXPECT_NE(message.find(bad.field), std::string::npos)
        << bad.model << " with " << bad.overrides.dump() << " gave: '" << message << "'";
  }
  EXPECT_THROW(make_model("mlp", nlohmann::json::array({1, 2})), Error);
  EXPECT_THROW(make_model("mlp", table_dataset(), nlohmann::json::array()), Error);
  // Built in code, the same checks apply.
  MlpConfig config;
  config.in_features = 0;
  config.out_features = 3;
  EXPECT_THROW(Mlp{config}, Error);
}

TEST(ZooTest, OverridesMergeOntoDatasetDefaults) {
  auto model = make_model("mlp", table_dataset(), {{"hidden", {16}}, {"activation", "gelu"}});
  const auto config = model->config();
  EXPECT_EQ(config.at("hidden"), nlohmann::json::array({16}));
  EXPECT_EQ(config.at("activation"), "gelu");
  EXPECT_EQ(config.at("in_features"), 64);
  EXPECT_EQ(config.at("out_features"), 10);
  EXPECT_EQ(make_model("mlp", image_dataset())->config().at("in_features"), 28 * 28);
}

TEST(ZooTest, IncompatibleDatasetIsRejected) {
  for (const auto& entry : model_registry()) {
    for (const auto& data : all_datasets()) {
      if (compatible_datasets().at(entry.name).count(data.name)) continue;
      const auto message = error_message([&] { make_model(entry.name, data); });
      EXPECT_NE(message.find("'" + entry.name + "'"), std::string::npos) << entry.name << " on " << data.name;
      EXPECT_NE(message.find("'" + data.name + "'"), std::string::npos) << message;
    }
  }
  const auto message = error_message([&] { make_model("cnn", window_dataset()); });
  EXPECT_NE(message.find("[C,H,W]"), std::string::npos) << message;
  EXPECT_NE(message.find("forecasting windows [30,2]"), std::string::npos) << message;
}

TEST(ZooTest, WrongInputShapeIsRejected) {
  torch::manual_seed(14);
  EXPECT_THROW(make_model("cnn", image_dataset())->forward(torch::randn({2, 3, 28, 28})), Error);
  EXPECT_THROW(make_model("mlp", table_dataset())->forward(torch::randn({2, 63})), Error);
  EXPECT_THROW(make_model("transformer", image_dataset())->forward(torch::randn({2, 1, 27, 28})), Error);
  EXPECT_THROW(make_model("lstm", window_dataset())->forward(torch::randn({2, 30, 3})), Error);
}

TEST(ZooTest, UnknownModelNameListsValidNames) {
  try {
    find_model("resnet9000");
    ADD_FAILURE() << "find_model accepted an unknown name";
  } catch (const UsageError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("resnet9000"), std::string::npos) << message;
    for (const auto& entry : model_registry()) EXPECT_NE(message.find(entry.name), std::string::npos) << message;
  }
  EXPECT_THROW(make_model("resnet9000", image_dataset()), UsageError);
  EXPECT_THROW(make_model("resnet9000", nlohmann::json::object()), UsageError);
}

TEST(ZooTest, ParameterCountsMatchHandComputed) {
  MlpConfig mlp;
  mlp.in_features = 64;
  mlp.hidden = {32};
  mlp.out_features = 10;
  const Mlp model(mlp);
  EXPECT_EQ(count_parameters(model), 64 * 32 + 32 + 32 * 10 + 10);
  EXPECT_EQ(count_buffer_elements(model), 0);

  // Stem conv + BN, one block (two convs + two BNs, no shortcut: same width), classifier.
  ResNetCnnConfig cnn;
  cnn.in_channels = 3;
  cnn.num_classes = 5;
  cnn.widths = {8};
  const ResNetCnn resnet(cnn);
  const std::int64_t conv_stem = 3 * 8 * 9, conv_block = 8 * 8 * 9, batch_norm = 2 * 8;
  EXPECT_EQ(count_parameters(resnet), conv_stem + batch_norm + 2 * (conv_block + batch_norm) + 8 * 5 + 5);
  // Each BatchNorm: running mean and variance (8 each) and num_batches_tracked (1).
  EXPECT_EQ(count_buffer_elements(resnet), 3 * (2 * 8 + 1));
}

TEST(ZooTest, BackwardReachesEveryParameter) {
  torch::manual_seed(15);
  for (const auto& c : compatible_cases()) {
    auto model = make_model(c.model, c.data);
    {
      // The forecasters' heads start at zero, which blocks every gradient below them; give them
      // values so the test sees the whole graph.
      torch::NoGradGuard no_grad;
      for (auto& parameter : model->parameters()) {
        if (parameter.abs().max().item<double>() == 0.0) parameter.normal_(0.0, 0.1);
      }
    }
    model->train();
    const auto output = model->forward(sample_input(c.data, 7));
    const auto loss = c.data.task == TaskKind::kClassification
                          ? torch::nn::functional::cross_entropy(output, torch::randint(c.data.num_classes, {7}))
                          : torch::mse_loss(output, torch::randn_like(output));
    loss.backward();
    for (const auto& item : model->named_parameters()) {
      const auto& grad = item.value().grad();
      ASSERT_TRUE(grad.defined()) << label(c) << ": no gradient for " << item.key();
      EXPECT_EQ(grad.sizes(), item.value().sizes()) << label(c) << ": " << item.key();
      EXPECT_TRUE(torch::isfinite(grad).all().item<bool>()) << label(c) << ": " << item.key();
      EXPECT_GT(grad.abs().max().item<double>(), 0.0) << label(c) << ": zero gradient for " << item.key();
    }
  }
}

TEST(ZooTest, ForecastersPredictZeroBeforeTraining) {
  torch::manual_seed(16);
  for (const std::string name : {"lstm", "attention"}) {
    auto model = make_model(name, window_dataset());
    const auto input = sample_input(window_dataset(), 7);
    model->eval();
    EXPECT_TRUE(torch::equal(model->forward(input), torch::zeros({7, 3}))) << name;
    model->train();
    EXPECT_TRUE(torch::equal(model->forward(input), torch::zeros({7, 3}))) << name;
  }
}

}  // namespace
}  // namespace hone::models
