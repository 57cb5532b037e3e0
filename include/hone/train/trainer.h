#pragma once
/// @file Training: a seeded loop that composes the training units — precision (precision.h),
/// loss scaling (grad_scaler.h), gradient accumulation and clipping (train_step.h), the optimizer
/// (optimizer.h), the schedule (lr_schedule.h) and the input pipeline (input_pipeline.h) — with a
/// progress bar, per-epoch validation, the best weights kept, and a resumable checkpoint after
/// every epoch. No step waits for the host: losses are read when the progress bar refreshes.
///
///   train::TrainOptions o;
///   o.model = "cnn"; o.data = "fashion-mnist"; o.epochs = 4; o.out_dir = "runs/cnn";
///   o.precision = "bf16"; o.accumulate = 2;
///   train::TrainResult r = train::train(o);
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "hone/data/datasets.h"
#include "hone/models/model.h"
#include "hone/run/run_dir.h"
#include "hone/train/grad_scaler.h"
#include "hone/train/optimizer.h"
#include "hone/train/precision.h"
#include "hone/train/train_state.h"
#include "hone/train/train_step.h"

namespace hone::train {

struct TrainOptions {
  std::string model = "cnn";
  std::string data = "fashion-mnist";
  nlohmann::json model_overrides = nlohmann::json::object();  ///< merged onto the default config
  data::DataOptions data_options;
  int epochs = 5;
  std::int64_t batch_size = 128;  ///< samples per micro-batch
  std::int64_t accumulate = 1;    ///< micro-batches per optimizer step (effective batch = batch_size × this)
  double learning_rate = 2e-3;    ///< the schedule's peak
  double weight_decay = 1e-4;
  bool decay_norms_and_biases = true;  ///< false: no weight decay on 1-D parameters
  double grad_clip = 1.0;              ///< max global gradient norm (0: off)
  std::string optimizer = "adamw";     ///< adamw, sgd, lion
  double momentum = 0.9;               ///< sgd
  bool nesterov = false;               ///< sgd
  std::string lr_schedule = "cosine";  ///< constant, linear, cosine, one-cycle
  std::int64_t warmup_steps = 0;
  std::string precision = "fp32";       ///< fp32, tf32, bf16, fp16 (fp16: dynamic loss scaling)
  bool checkpoint_activations = false;  ///< recompute each block's activations in backward
  bool cuda_graphs = false;             ///< CUDA: capture the whole step once and replay it (accumulate 1)
  bool channels_last = false;           ///< conv weights and 4-D inputs in NHWC (cuDNN/oneDNN's native layout)
  /// Initial weights: "auto" (pretrained where hone has published weights for the architecture —
  /// minilm: all-MiniLM-L6-v2 — else random), "pretrained" (an error where there are none), "random".
  std::string init = "auto";
  double pretrained_lr_scale = 0.05;  ///< pretrained parameters train at lr × this (a new head at lr)
  bool deterministic = false;         ///< deterministic algorithms (cuDNN benchmark off)
  bool autotune = true;               ///< cuDNN benchmark mode: time every conv algorithm per shape once
  std::uint64_t seed = 0;
  std::string device = "cpu";
  std::int64_t workers = 2;  ///< torch::data loader threads (CPU)
  std::filesystem::path out_dir = "run";
  bool resume = false;  ///< continue from out_dir's checkpoint
  bool progress = true;
  std::int64_t max_steps_per_epoch = 0;  ///< > 0: cut epochs short after this many optimizer steps
  int stop_after_epochs = 0;             ///< > 0: stop after this many epochs as if interrupted (tests)
  /// Data-parallel runs (the torchrun variables set, train/distributed/): how long a collective or
  /// the rendezvous waits for the other ranks before it fails naming the one that stopped.
  double distributed_timeout_seconds = 300;
};

nlohmann::json to_json(const TrainOptions& options);

struct TrainResult {
  std::filesystem::path run_dir;
  TrainState state;
  std::int64_t parameters = 0;
  int rank = 0;  ///< data-parallel: this process's rank (only rank 0 wrote the run directory)
  int world_size = 1;
};

/// Called after each epoch (for printing; on rank 0 only in a data-parallel run). May be empty.
using EpochCallback = std::function<void(const EpochRecord&, bool is_best)>;

/// One process, or one rank of a data-parallel job when the torchrun variables say so (RANK,
/// WORLD_SIZE, MASTER_ADDR, MASTER_PORT; train/distributed/environment.h): then batch_size is per
/// rank, gradients are averaged over the ranks, and rank 0 alone writes out_dir.
TrainResult train(const TrainOptions& options, const EpochCallback& on_epoch = {});

/// What train() builds from the options before its first step — the data, the model on its device
/// (initialized, checkpointing enabled), the parameter groups' optimizer, the loss scaler and the
/// task's loss — so the LR finder and the batch finder try exactly the step that will train.
struct TrainingSetup {
  c10::Device device = c10::kCPU;
  Precision precision = Precision::kFp32;
  data::LoadedData data;
  models::ModelPtr model;
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<GradScaler> scaler;
  LossFn loss;
  ForwardFn forward;
  std::string init;  ///< where the weights came from ("random", or the pretrained directory)
};

/// Validates the options (hone::UsageError naming the option), seeds, loads the data and builds.
TrainingSetup prepare_training(const TrainOptions& options);

/// The model a run started from, rebuilt: its architecture and full config, seeded with the run's
/// seed right before construction and given the pretrained weights where the run started from
/// them — exactly prepare_training's initial weights (what lottery-ticket rewinding goes back to).
/// `seed_offset` != 0 draws another random initialization of the same model (the control).
models::ModelPtr initial_model(const run::RunConfig& config, std::uint64_t seed_offset = 0);

}  // namespace hone::train
