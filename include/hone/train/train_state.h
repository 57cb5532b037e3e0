#pragma once
/// @file The trainer's state between epochs (history, best epoch, step count) and its resume
/// checkpoint. The checkpoint's files and their consistency checks are the run module's
/// (hone/run/checkpoint.h); this file says what the trainer keeps in them.
#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <vector>

#include "hone/train/metrics.h"
#include "hone/train/optimizer.h"

namespace hone::train {

struct EpochRecord {
  int epoch = 0;  ///< 1-based
  std::int64_t steps = 0;
  double train_loss = 0;  ///< mean over the epoch
  double first_step_loss = 0;
  double learning_rate = 0;  ///< at the end of the epoch
  double seconds = 0;
  std::int64_t skipped_steps = 0;  ///< fp16: steps skipped for inf/NaN gradients (this epoch)
  double loss_scale = 1;           ///< fp16: the scale at the end of the epoch
  EvalMetrics val;
};

struct TrainState {
  int epochs_done = 0;
  std::int64_t global_step = 0;  ///< optimizer steps so far (the schedule's position)
  int best_epoch = 0;
  double best_score = 0;
  std::vector<EpochRecord> history;
  nlohmann::json scaler;  ///< GradScaler::state() (fp16), else null
};

nlohmann::json to_json(const EpochRecord& record);
nlohmann::json to_json(const TrainState& state);
/// Strict: a missing or mistyped field throws hone::Error naming `source`.
TrainState train_state_from_json(const nlohmann::json& j, const std::string& source);

/// Writes the resume checkpoint for the epoch in `state.epochs_done` (hone/run/checkpoint.h).
void save_checkpoint(const std::filesystem::path& run_dir, const torch::nn::Module& model, const Optimizer& optimizer,
                     const TrainState& state);
/// Restores model and optimizer; throws hone::Error if the files are missing, corrupt, or from
/// different epochs.
TrainState load_checkpoint(const std::filesystem::path& run_dir, torch::nn::Module& model, Optimizer& optimizer);

}  // namespace hone::train
