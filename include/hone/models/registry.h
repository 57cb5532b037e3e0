#pragma once
/// @file The zoo: architecture name -> builder. The only central list of models.
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "hone/data/dataset_info.h"
#include "hone/models/model.h"

namespace hone::models {

struct ModelEntry {
  std::string name;     ///< "cnn"
  std::string summary;  ///< one line for --help and `hone info`
  /// Builds from a full config (unknown keys are errors).
  std::function<ModelPtr(const nlohmann::json& config)> make;
  /// The default config for a dataset (input shape, classes...). Throws hone::Error when the
  /// architecture cannot take that dataset, saying what it needs.
  std::function<nlohmann::json(const data::DatasetInfo& data)> default_config;
};

const std::vector<ModelEntry>& model_registry();

/// Throws hone::UsageError listing the valid names when `name` is unknown.
const ModelEntry& find_model(const std::string& name);

/// default_config(data), with `overrides` merged on top (JSON merge patch), then built.
ModelPtr make_model(const std::string& name, const data::DatasetInfo& data,
                    const nlohmann::json& overrides = nlohmann::json::object());

/// Builds from a saved config.
ModelPtr make_model(const std::string& name, const nlohmann::json& config);

}  // namespace hone::models
