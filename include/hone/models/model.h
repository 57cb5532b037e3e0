#pragma once
/// @file The zoo's common base: every architecture is a torch::nn::Module with one tensor in and one
/// tensor out, built from a JSON config it can give back, so a saved run can rebuild it exactly.
///
/// How to add a model: write src/models/<name>.cpp + include/hone/models/<name>.h with a config
/// struct (to_json / from_json that rejects unknown keys) and a class deriving from Model, then add
/// one line to src/models/registry.cpp. See docs/adding-a-model-or-dataset.md.
#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace hone::models {

class Model : public torch::nn::Module {
 public:
  using torch::nn::Module::Module;
  /// Classification: [B, ...input] -> logits [B, classes]. Forecasting: [B, T, F] -> [B, outputs].
  virtual torch::Tensor forward(torch::Tensor input) = 0;
  /// The registry name ("cnn", "lstm"...).
  virtual std::string architecture() const = 0;
  /// The full config, enough for make_model(architecture(), config()) to rebuild this model.
  virtual nlohmann::json config() const = 0;
};

using ModelPtr = std::shared_ptr<Model>;

/// Number of parameters (trainable or not); buffers are counted by count_buffer_elements.
std::int64_t count_parameters(const torch::nn::Module& module);
std::int64_t count_buffer_elements(const torch::nn::Module& module);

/// Throws hone::Error when `config` is not an object or has a key outside `allowed`;
/// the message names `what` (e.g. "cnn config") and lists the allowed keys.
void check_config_keys(const nlohmann::json& config, const std::string& what,
                       std::initializer_list<const char*> allowed);

}  // namespace hone::models
