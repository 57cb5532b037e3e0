#include "hone/models/registry.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <functional>

#include "hone/core/error.h"
#include "hone/models/attention_forecaster.h"
#include "hone/models/bert_encoder.h"
#include "hone/models/lstm_forecaster.h"
#include "hone/models/mlp.h"
#include "hone/models/mobilenet_cnn.h"
#include "hone/models/resnet_cnn.h"
#include "hone/models/transformer_classifier.h"

namespace hone::models {
namespace {

using data::DatasetInfo;
using data::TaskKind;

/// "forecasting windows [30,2]", "classification images [1,28,28]".
std::string describe(const DatasetInfo& data) {
  const auto rank = data.input_shape.size();
  const char* kind = rank == 3 ? "images" : rank == 1 ? "feature vectors" : rank == 2 ? "windows" : "inputs";
  if (rank == 2 && data.task == TaskKind::kClassification) kind = "sequences";
  if (data.vocab_size > 0) kind = "token ids";
  return fmt::format("{} {} [{}]", data::to_string(data.task), kind, fmt::join(data.input_shape, ","));
}

[[noreturn]] void fail_dataset(const char* model, const char* needs, const DatasetInfo& data) {
  fail("model '{}' needs {}; dataset '{}' gives {}", model, needs, data.name, describe(data));
}

/// Classes for classification, values per sample for forecasting.
std::int64_t output_count(const char* model, const DatasetInfo& data) {
  const bool classify = data.task == TaskKind::kClassification;
  const auto count = classify ? data.num_classes : data.num_outputs;
  HONE_CHECK(count > 0, "model '{}': dataset '{}' declares no {} ({})", model, data.name,
             classify ? "classes" : "outputs", count);
  return count;
}

bool is_image_classification(const DatasetInfo& data) {
  return data.task == TaskKind::kClassification && data.input_shape.size() == 3;
}

bool is_forecasting_window(const DatasetInfo& data) {
  return data.task == TaskKind::kForecasting && data.input_shape.size() == 2;
}

template <typename ModelType, typename ConfigType>
std::function<ModelPtr(const nlohmann::json&)> builder() {
  return [](const nlohmann::json& config) -> ModelPtr { return std::make_shared<ModelType>(config.get<ConfigType>()); };
}

nlohmann::json mlp_defaults(const DatasetInfo& data) {
  if (data.input_shape.empty()) fail_dataset("mlp", "inputs with a known shape", data);
  MlpConfig c;
  c.in_features = 1;
  for (const auto size : data.input_shape) c.in_features *= size;
  c.out_features = output_count("mlp", data);
  return c;
}

nlohmann::json cnn_defaults(const DatasetInfo& data) {
  if (!is_image_classification(data)) fail_dataset("cnn", "images [C,H,W] for classification", data);
  ResNetCnnConfig c;
  c.in_channels = data.input_shape[0];
  c.num_classes = output_count("cnn", data);
  return c;
}

nlohmann::json mobilenet_defaults(const DatasetInfo& data) {
  if (!is_image_classification(data)) fail_dataset("mobilenet", "images [C,H,W] for classification", data);
  MobileNetCnnConfig c;
  c.in_channels = data.input_shape[0];
  c.num_classes = output_count("mobilenet", data);
  return c;
}

nlohmann::json transformer_defaults(const DatasetInfo& data) {
  const auto rank = data.input_shape.size();
  if (rank != 2 && rank != 3) fail_dataset("transformer", "images [C,H,W] or windows [T,F]", data);
  TransformerClassifierConfig c;
  c.input_shape = data.input_shape;
  c.out_features = output_count("transformer", data);
  return c;
}

nlohmann::json lstm_defaults(const DatasetInfo& data) {
  if (!is_forecasting_window(data)) fail_dataset("lstm", "windows [T,F] for forecasting", data);
  LstmForecasterConfig c;
  c.input_size = data.input_shape[1];
  c.output_size = output_count("lstm", data);
  return c;
}

nlohmann::json attention_defaults(const DatasetInfo& data) {
  if (!is_forecasting_window(data)) fail_dataset("attention", "windows [T,F] for forecasting", data);
  AttentionForecasterConfig c;
  c.input_size = data.input_shape[1];
  c.output_size = output_count("attention", data);
  return c;
}

nlohmann::json minilm_defaults(const DatasetInfo& data) {
  if (data.vocab_size <= 0 || data.input_shape.size() != 1) fail_dataset("minilm", "token ids [T]", data);
  BertEncoderConfig c;  // all-MiniLM-L6-v2's sizes
  c.vocab_size = data.vocab_size;
  if (data.task == TaskKind::kClassification && data.num_classes > 0) {
    c.num_classes = data.num_classes;  // labelled texts: a classifier on the pooled embedding
    c.normalize = false;
  }
  return c;
}

}  // namespace

const std::vector<ModelEntry>& model_registry() {
  // Order is the order of --help and `hone info`: general models first, then image, sequence,
  // and forecasting-only ones.
  static const std::vector<ModelEntry> registry{
      {"mlp", "multi-layer perceptron on flattened inputs (any dataset)", builder<Mlp, MlpConfig>(), mlp_defaults},
      {"cnn", "small ResNet-style CNN (image classification)", builder<ResNetCnn, ResNetCnnConfig>(), cnn_defaults},
      {"mobilenet", "MobileNet-style depthwise-separable CNN (image classification)",
       builder<MobileNetCnn, MobileNetCnnConfig>(), mobilenet_defaults},
      {"transformer", "pre-LN Transformer encoder over image rows or time steps",
       builder<TransformerClassifier, TransformerClassifierConfig>(), transformer_defaults},
      {"lstm", "LSTM forecaster on windows [T,F]", builder<LstmForecaster, LstmForecasterConfig>(), lstm_defaults},
      {"attention", "LSTM + multi-head attention forecaster on windows [T,F]",
       builder<AttentionForecaster, AttentionForecasterConfig>(), attention_defaults},
      {"minilm", "BERT sentence encoder, all-MiniLM-L6-v2 shape (token ids [T] -> embedding)",
       builder<BertEncoder, BertEncoderConfig>(), minilm_defaults},
  };
  return registry;
}

const ModelEntry& find_model(const std::string& name) {
  const auto& registry = model_registry();
  for (const auto& entry : registry) {
    if (entry.name == name) return entry;
  }
  std::vector<std::string> names;
  for (const auto& entry : registry) names.push_back(entry.name);
  fail_usage("unknown model '{}'; valid models: {}", name, fmt::join(names, ", "));
}

ModelPtr make_model(const std::string& name, const data::DatasetInfo& data, const nlohmann::json& overrides) {
  const auto& entry = find_model(name);
  HONE_CHECK(overrides.is_object(), "model '{}': overrides must be a JSON object, got {}", name, overrides.dump());
  auto config = entry.default_config(data);
  config.merge_patch(overrides);
  return entry.make(config);
}

ModelPtr make_model(const std::string& name, const nlohmann::json& config) { return find_model(name).make(config); }

}  // namespace hone::models
