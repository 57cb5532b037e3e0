#include "hone/train/trainer.h"

#include <torch/nn/functional/loss.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <numbers>

#include "hone/core/device.h"
#include "hone/core/error.h"
#include "hone/core/log.h"
#include "hone/core/progress.h"
#include "hone/models/registry.h"
#include "hone/train/evaluate.h"

namespace hone::train {
namespace fs = std::filesystem;

nlohmann::json to_json(const TrainOptions& o) {
  return {{"model", o.model},
          {"data", o.data},
          {"model_overrides", o.model_overrides},
          {"epochs", o.epochs},
          {"batch_size", o.batch_size},
          {"learning_rate", o.learning_rate},
          {"weight_decay", o.weight_decay},
          {"grad_clip", o.grad_clip},
          {"seed", o.seed},
          {"device", o.device},
          {"workers", o.workers},
          {"max_steps_per_epoch", o.max_steps_per_epoch}};
}

namespace {

void validate(const TrainOptions& o) {
  if (o.epochs < 1) fail_usage("--epochs must be >= 1, got {}", o.epochs);
  if (o.batch_size < 1) fail_usage("--batch-size must be >= 1, got {}", o.batch_size);
  if (!(o.learning_rate > 0) || !std::isfinite(o.learning_rate))
    fail_usage("--lr must be > 0, got {}", o.learning_rate);
  if (o.weight_decay < 0) fail_usage("--weight-decay must be >= 0, got {}", o.weight_decay);
  if (o.workers < 0) fail_usage("--workers must be >= 0, got {}", o.workers);
  if (o.out_dir.empty()) fail_usage("an output directory (-o) is required");
}

/// Cosine decay from lr to 5% of lr over the whole run.
double learning_rate_at(const TrainOptions& o, std::int64_t step, std::int64_t total_steps) {
  const double progress = total_steps > 1 ? static_cast<double>(step) / static_cast<double>(total_steps - 1) : 1.0;
  const double floor = 0.05 * o.learning_rate;
  return floor + (o.learning_rate - floor) * 0.5 * (1 + std::cos(std::numbers::pi * std::min(progress, 1.0)));
}

}  // namespace

TrainResult train(const TrainOptions& options, const EpochCallback& on_epoch) {
  validate(options);
  const c10::Device device = parse_device(options.device);
  const fs::path run_dir = options.out_dir;
  if (!options.resume && has_checkpoint(run_dir)) {
    fail("'{}' already holds a training run; pass --resume to continue it or choose another -o", run_dir.string());
  }

  seed_everything(options.seed);
  const data::LoadedData data = data::load_dataset(options.data, options.data_options);
  models::ModelPtr model = models::make_model(options.model, data.info, options.model_overrides);
  model->to(device);

  RunConfig config;
  config.architecture = options.model;
  config.model_config = model->config();
  config.dataset = options.data;
  config.data_options = options.data_options;
  config.train_options = to_json(options);

  torch::optim::AdamW optimizer(model->parameters(),
                                torch::optim::AdamWOptions(options.learning_rate).weight_decay(options.weight_decay));
  TrainState state;
  if (options.resume) {
    const RunConfig saved = load_run_config(run_dir);
    HONE_CHECK(saved.architecture == config.architecture && saved.dataset == config.dataset &&
                   saved.model_config == config.model_config,
               "cannot resume '{}': it trained {} on {} with another config; this run asks for {} on {}",
               run_dir.string(), saved.architecture, saved.dataset, config.architecture, config.dataset);
    state = load_checkpoint(run_dir, *model, optimizer);
    log_info("resuming {} after epoch {} (step {})", run_dir.string(), state.epochs_done, state.global_step);
  }
  save_run_config(run_dir, config);

  const std::int64_t n_train = data.train.dataset.count();
  HONE_CHECK(n_train > 0, "dataset '{}' has no training samples", options.data);
  std::int64_t steps_per_epoch = (n_train + options.batch_size - 1) / options.batch_size;
  if (options.max_steps_per_epoch > 0) steps_per_epoch = std::min(steps_per_epoch, options.max_steps_per_epoch);
  const std::int64_t total_steps = steps_per_epoch * options.epochs;
  const bool classification = data.info.task == data::TaskKind::kClassification;

  TrainResult result;
  result.run_dir = run_dir;
  result.parameters = models::count_parameters(*model);
  for (int epoch = state.epochs_done + 1; epoch <= options.epochs; ++epoch) {
    // Batch order and dropout depend only on (seed, epoch): a resumed run repeats them exactly.
    torch::manual_seed(options.seed * 1000003ULL + static_cast<std::uint64_t>(epoch));
    model->train();
    const auto start = std::chrono::steady_clock::now();
    ProgressBar bar(steps_per_epoch, fmt::format("epoch {}/{}", epoch, options.epochs), options.progress);
    EpochRecord record;
    record.epoch = epoch;
    double loss_sum = 0;
    data::LoaderOptions loader;
    loader.batch_size = options.batch_size;
    loader.shuffle = true;
    loader.workers = options.workers;
    loader.max_batches = steps_per_epoch;
    data::for_each_batch(data.train.dataset, loader, [&](torch::data::Example<>& batch) {
      const double lr = learning_rate_at(options, state.global_step, total_steps);
      for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
      at::Tensor x = batch.data.to(device, /*non_blocking=*/true);
      at::Tensor y = batch.target.to(device, /*non_blocking=*/true);
      optimizer.zero_grad();
      at::Tensor out = model->forward(x);
      at::Tensor loss =
          classification ? torch::nn::functional::cross_entropy(out, y) : torch::nn::functional::mse_loss(out, y);
      loss.backward();
      if (options.grad_clip > 0) torch::nn::utils::clip_grad_norm_(model->parameters(), options.grad_clip);
      optimizer.step();
      const double value = loss.item<double>();
      HONE_CHECK(std::isfinite(value), "training diverged: loss is {} at epoch {} step {}", value, epoch,
                 record.steps + 1);
      if (record.steps == 0) record.first_step_loss = value;
      loss_sum += value;
      ++record.steps;
      ++state.global_step;
      record.learning_rate = lr;
      bar.advance(1, fmt::format("loss {:.4f}", loss_sum / static_cast<double>(record.steps)));
    });
    record.train_loss = loss_sum / static_cast<double>(std::max<std::int64_t>(record.steps, 1));
    record.val = evaluate(*model, data.val, data.info.task, "val", device);
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    bar.finish(fmt::format("loss {:.4f}", record.train_loss));

    const bool is_best = state.best_epoch == 0 || record.val.score() > state.best_score;
    if (is_best) {
      state.best_epoch = epoch;
      state.best_score = record.val.score();
      save_weights(run_dir / "model.safetensors", *model, {{"epoch", std::to_string(epoch)}});
    }
    state.epochs_done = epoch;
    state.history.push_back(record);
    save_checkpoint(run_dir, *model, optimizer, state);
    if (on_epoch) on_epoch(record, is_best);
    if (options.stop_after_epochs > 0 && epoch >= options.stop_after_epochs) break;
  }
  result.state = state;
  return result;
}

}  // namespace hone::train
