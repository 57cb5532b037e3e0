#pragma once
// The training loop of the passes that train (distill, prune_gradual): epochs of train::TrainStep
// over a TensorDataset whose targets the pass's loss understands, on the pass's device, AdamW with
// warmup + cosine, a hook after every optimizer step (pruning masks), validation after every epoch,
// and the best epoch's weights kept by validation score. Internal to compress.
#include <c10/core/Device.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "../passes.h"
#include "hone/data/datasets.h"
#include "hone/data/tensor_dataset.h"
#include "hone/models/model.h"
#include "hone/train/train_step.h"

namespace hone::compress {

struct FineTuneOptions {
  std::string pass;  ///< for log lines and errors ("distill")
  std::int64_t epochs = 2;
  std::int64_t batch_size = 128;
  double learning_rate = 1e-3;
  double weight_decay = 1e-4;
  std::int64_t warmup_steps = 0;
  std::int64_t max_steps_per_epoch = 0;  ///< > 0: cut each epoch (quick tests)
  std::string precision = "fp32";
  double grad_clip = 1.0;
  std::uint64_t seed = 0;
  c10::Device device = c10::kCPU;
  /// Epochs before this one (0 = the model as given) are not candidates for "best": a pruning
  /// schedule that has not reached its final sparsity yet must not win.
  std::int64_t best_from_epoch = 0;
};

struct FineTuneEpoch {
  std::int64_t epoch = 0;
  std::int64_t steps = 0;
  double train_loss = 0;
  double val_score = 0;
  double seconds = 0;
};

struct FineTuneResult {
  double start_score = 0;  ///< the model as given
  std::vector<FineTuneEpoch> epochs;
  std::int64_t best_epoch = 0;  ///< 0: the model as given was kept
  double best_score = 0;
  nlohmann::json to_json() const;
};

/// `score(model)` runs on options.device; higher is better (accuracy, −RMSE). `after_step(step)`
/// runs after every optimizer step (0-based global step), `before_epoch(epoch)` before each.
/// The model comes back on the CPU in eval mode with the best weights and no parameter wanting a
/// gradient. Throws hone::UsageError (option "epochs", "batch_size", "lr") for bad values.
FineTuneResult fine_tune(models::Model& model, const data::TensorDataset& train, const train::LossFn& loss,
                         const FineTuneOptions& options, const std::function<double(models::Model&)>& score,
                         const std::function<void(std::int64_t step)>& after_step = {},
                         const std::function<void(std::int64_t epoch)>& before_epoch = {});

/// The option specs every training pass declares — epochs, lr, batch_size, weight_decay,
/// max_steps_per_epoch, seed — with the pass's own defaults.
std::vector<OptionSpec> fine_tune_option_specs(std::int64_t epochs, double lr, double weight_decay);
/// The `precision` spec (as hone train --precision), for passes that train in any precision.
OptionSpec precision_option_spec();

/// FineTuneOptions from a pass's validated options (the specs above; `precision` and
/// `warmup_steps` where the pass declares them), training on `device`.
FineTuneOptions read_fine_tune_options(const std::string& pass, const nlohmann::json& options,
                                       const c10::Device& device);

/// The validation score (accuracy, or −RMSE) of a model on `data`'s validation split, on `device`.
std::function<double(models::Model&)> validation_scorer(const data::LoadedData& data, const c10::Device& device);

/// Steps per epoch fine_tune will run for `samples` (the schedule of prune_gradual needs it).
std::int64_t fine_tune_steps_per_epoch(std::int64_t samples, const FineTuneOptions& options);

}  // namespace hone::compress
