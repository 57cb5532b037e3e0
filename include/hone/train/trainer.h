#pragma once
/// @file Training: a seeded loop with a progress bar, per-epoch validation, the best weights kept,
/// and a resumable checkpoint after every epoch.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "hone/data/datasets.h"
#include "hone/train/checkpoint.h"

namespace hone::train {

struct TrainOptions {
  std::string model = "cnn";
  std::string data = "fashion-mnist";
  nlohmann::json model_overrides = nlohmann::json::object();  ///< merged onto the default config
  data::DataOptions data_options;
  int epochs = 5;
  std::int64_t batch_size = 128;
  double learning_rate = 2e-3;  ///< AdamW, cosine-decayed per step to 5% of this
  double weight_decay = 1e-4;
  double grad_clip = 1.0;  ///< max global gradient norm (0: off)
  std::uint64_t seed = 0;
  std::string device = "cpu";
  std::int64_t workers = 2;  ///< torch::data loader threads
  std::filesystem::path out_dir = "run";
  bool resume = false;  ///< continue from out_dir's checkpoint
  bool progress = true;
  std::int64_t max_steps_per_epoch = 0;  ///< > 0: cut epochs short (smoke tests)
  int stop_after_epochs = 0;             ///< > 0: stop after this many epochs as if interrupted (tests)
};

nlohmann::json to_json(const TrainOptions& options);

struct TrainResult {
  std::filesystem::path run_dir;
  TrainState state;
  std::int64_t parameters = 0;
};

/// Called after each epoch (for printing). May be empty.
using EpochCallback = std::function<void(const EpochRecord&, bool is_best)>;

TrainResult train(const TrainOptions& options, const EpochCallback& on_epoch = {});

}  // namespace hone::train
