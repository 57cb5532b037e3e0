#pragma once
/// @file A run directory: everything needed to rebuild, evaluate and resume a trained model.
///
///   run/config.json              architecture, model config, dataset + options, train options
///   run/model.safetensors        the best weights (by validation score)
///   run/checkpoint/weights.safetensors, run/checkpoint/optimizer.pt, run/checkpoint/state.json
///                                the last finished epoch, for --resume (state.json written last)
/// Every file is written atomically (temp + rename); a half-written checkpoint cannot be loaded.
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "hone/data/datasets.h"
#include "hone/models/model.h"
#include "hone/train/metrics.h"

namespace hone::train {

inline constexpr int kRunFormatVersion = 1;

struct RunConfig {
  std::string architecture;
  nlohmann::json model_config;
  std::string dataset;
  data::DataOptions data_options;
  nlohmann::json train_options;  ///< as given, for the record
};

nlohmann::json to_json(const RunConfig& config);
/// Strict: wrong format/version or missing fields throw hone::Error naming the file.
RunConfig run_config_from_json(const nlohmann::json& j, const std::string& source);

void save_run_config(const std::filesystem::path& run_dir, const RunConfig& config);
RunConfig load_run_config(const std::filesystem::path& run_dir);

/// Parameters and buffers of `module` (as named by named_parameters/named_buffers) -> safetensors.
void save_weights(const std::filesystem::path& path, const torch::nn::Module& module,
                  const std::map<std::string, std::string>& metadata = {});
/// Strict load: every parameter and buffer must be present with the same shape; extra or missing
/// names, and shape mismatches, throw hone::Error naming them. Dtypes are converted to the module's.
/// Returns the file's metadata.
std::map<std::string, std::string> load_weights(const std::filesystem::path& path, torch::nn::Module& module);

/// Rebuilds the model saved in a run directory (config.json + model.safetensors), in eval mode.
models::ModelPtr load_run_model(const std::filesystem::path& run_dir);

struct EpochRecord {
  int epoch = 0;  ///< 1-based
  std::int64_t steps = 0;
  double train_loss = 0;  ///< mean over the epoch
  double first_step_loss = 0;
  double learning_rate = 0;  ///< at the end of the epoch
  double seconds = 0;
  EvalMetrics val;
};

struct TrainState {
  int epochs_done = 0;
  std::int64_t global_step = 0;
  int best_epoch = 0;
  double best_score = 0;
  std::vector<EpochRecord> history;
};

nlohmann::json to_json(const EpochRecord& record);
nlohmann::json to_json(const TrainState& state);

/// Writes the resume checkpoint for the epoch in `state.epochs_done`.
void save_checkpoint(const std::filesystem::path& run_dir, const torch::nn::Module& model,
                     torch::optim::Optimizer& optimizer, const TrainState& state);
/// Restores model and optimizer; throws hone::Error if the files are missing, corrupt, or from
/// different epochs.
TrainState load_checkpoint(const std::filesystem::path& run_dir, torch::nn::Module& model,
                           torch::optim::Optimizer& optimizer);
bool has_checkpoint(const std::filesystem::path& run_dir);

}  // namespace hone::train
