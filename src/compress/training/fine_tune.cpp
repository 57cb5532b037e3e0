#include "fine_tune.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/core/grad_mode.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>

#include "hone/core/error.h"
#include "hone/core/log.h"
#include "hone/train/evaluate.h"
#include "hone/train/grad_scaler.h"
#include "hone/train/input_pipeline.h"
#include "hone/train/lr_schedule.h"
#include "hone/train/optimizer.h"
#include "hone/train/precision.h"

namespace hone::compress {
namespace {

/// The model's floating parameters and buffers (weights, batch-norm statistics), cloned.
std::vector<at::Tensor> snapshot(models::Model& model) {
  std::vector<at::Tensor> out;
  for (const auto& p : model.parameters()) out.push_back(p.detach().clone());
  for (const auto& b : model.buffers()) out.push_back(b.detach().clone());
  return out;
}

void restore(models::Model& model, const std::vector<at::Tensor>& saved) {
  at::NoGradGuard no_grad;
  std::size_t i = 0;
  for (auto& p : model.parameters()) p.copy_(saved[i++]);
  for (auto& b : model.buffers()) b.copy_(saved[i++]);
}

}  // namespace

nlohmann::json FineTuneResult::to_json() const {
  nlohmann::json history = nlohmann::json::array();
  for (const auto& e : epochs) {
    history.push_back({{"epoch", e.epoch},
                       {"steps", e.steps},
                       {"train_loss", e.train_loss},
                       {"val_score", e.val_score},
                       {"seconds", e.seconds}});
  }
  return {{"start_val_score", start_score},
          {"epochs", history},
          {"best_epoch", best_epoch},
          {"best_val_score", best_score}};
}

std::vector<OptionSpec> fine_tune_option_specs(std::int64_t epochs, double lr, double weight_decay) {
  using Type = OptionSpec::Type;
  return {{"epochs", Type::Integer, epochs, {}, 1, 1000, "training epochs"},
          {"lr", Type::Number, lr, {}, 1e-9, 10.0, "peak AdamW learning rate (cosine schedule)"},
          {"batch_size", Type::Integer, 128, {}, 1, 1 << 20, "samples per step"},
          {"weight_decay", Type::Number, weight_decay, {}, 0.0, 1.0, "AdamW decoupled weight decay"},
          {"max_steps_per_epoch", Type::Integer, 0, {}, 0, 1 << 30, "> 0: cut each epoch (quick runs)"},
          {"seed", Type::Integer, 0, {}, 0, 1e15, "batch order and dropout"}};
}

OptionSpec precision_option_spec() {
  return {"precision",
          OptionSpec::Type::String,
          "fp32",
          {"fp32", "tf32", "bf16", "fp16"},
          -1e300,
          1e300,
          "training precision (as hone train --precision)"};
}

FineTuneOptions read_fine_tune_options(const std::string& pass, const nlohmann::json& options,
                                       const c10::Device& device) {
  FineTuneOptions tune;
  tune.pass = pass;
  tune.epochs = options.at("epochs").get<std::int64_t>();
  tune.batch_size = options.at("batch_size").get<std::int64_t>();
  tune.learning_rate = options.at("lr").get<double>();
  tune.weight_decay = options.at("weight_decay").get<double>();
  tune.max_steps_per_epoch = options.at("max_steps_per_epoch").get<std::int64_t>();
  tune.seed = options.at("seed").get<std::uint64_t>();
  if (options.contains("precision")) tune.precision = options.at("precision").get<std::string>();
  if (options.contains("warmup_steps")) tune.warmup_steps = options.at("warmup_steps").get<std::int64_t>();
  tune.device = device;
  return tune;
}

std::function<double(models::Model&)> validation_scorer(const data::LoadedData& data, const c10::Device& device) {
  return
      [&data, device](models::Model& m) { return train::evaluate(m, data.val, data.info.task, "val", device).score(); };
}

std::int64_t fine_tune_steps_per_epoch(std::int64_t samples, const FineTuneOptions& options) {
  std::int64_t steps = (samples + options.batch_size - 1) / options.batch_size;
  if (options.max_steps_per_epoch > 0) steps = std::min(steps, options.max_steps_per_epoch);
  return steps;
}

FineTuneResult fine_tune(models::Model& model, const data::TensorDataset& train, const train::LossFn& loss,
                         const FineTuneOptions& options, const std::function<double(models::Model&)>& score,
                         const std::function<void(std::int64_t step)>& after_step,
                         const std::function<void(std::int64_t epoch)>& before_epoch) {
  if (options.epochs < 1) fail_usage_option("epochs", "{}: epochs must be >= 1, got {}", options.pass, options.epochs);
  if (options.batch_size < 1)
    fail_usage_option("batch_size", "{}: batch_size must be >= 1, got {}", options.pass, options.batch_size);
  if (!(options.learning_rate > 0) || !std::isfinite(options.learning_rate))
    fail_usage_option("lr", "{}: lr must be > 0, got {}", options.pass, options.learning_rate);
  HONE_CHECK(train.count() > 0, "{}: the training split is empty", options.pass);
  const train::Precision precision = train::parse_precision(options.precision);
  train::check_precision_supported(precision, options.device);

  at::AutoGradMode grad(true);
  model.to(options.device);
  std::vector<at::Tensor> trainable;
  for (auto& p : model.parameters()) {
    if (!c10::isFloatingType(p.scalar_type())) continue;
    p.requires_grad_(true);
    trainable.push_back(p);
  }
  HONE_CHECK(!trainable.empty(), "{}: the model has no floating-point parameters to train", options.pass);

  FineTuneResult result;
  result.start_score = score(model);
  result.best_score = result.start_score;
  std::vector<at::Tensor> best = snapshot(model);
  const bool start_is_candidate = options.best_from_epoch <= 0;
  bool have_best = start_is_candidate;

  train::ParamGroupOptions grouping;
  grouping.weight_decay = options.weight_decay;
  auto optimizer = train::make_optimizer({}, train::make_param_groups(model, grouping));
  train::GradScaler scaler(train::needs_loss_scaling(precision), options.device);
  const std::int64_t steps_per_epoch = fine_tune_steps_per_epoch(train.count(), options);
  train::LrScheduleOptions schedule_options;
  schedule_options.peak = options.learning_rate;
  schedule_options.warmup_steps = options.warmup_steps;
  const train::LrSchedule schedule(schedule_options, steps_per_epoch * options.epochs);
  const at::Tensor lr = at::zeros({}, at::TensorOptions().device(options.device).dtype(at::kFloat));

  train::PipelineOptions pipeline_options;
  pipeline_options.batch_size = options.batch_size;
  pipeline_options.workers = 0;
  pipeline_options.max_batches = steps_per_epoch;
  pipeline_options.device = options.device;
  train::InputPipeline pipeline(train, pipeline_options);
  const train::ForwardFn forward = [&model](const at::Tensor& x) { return model.forward(x); };

  std::int64_t global_step = 0;
  for (std::int64_t epoch = 1; epoch <= options.epochs; ++epoch) {
    torch::manual_seed(options.seed * 1000003ULL + static_cast<std::uint64_t>(epoch));
    if (before_epoch) before_epoch(epoch);
    model.train();
    const auto start = std::chrono::steady_clock::now();
    train::TrainStep step(forward, loss, *optimizer, scaler, precision, options.grad_clip, options.device);
    pipeline.for_each_epoch_batch([&](train::Batch& batch) {
      lr.fill_(schedule.at(global_step));
      step.run({batch}, lr);
      if (after_step) after_step(global_step);
      ++global_step;
    });
    FineTuneEpoch record;
    record.epoch = epoch;
    record.steps = step.steps();
    record.train_loss = step.take_loss_sum() / static_cast<double>(std::max<std::int64_t>(record.steps, 1));
    if (const std::int64_t bad = step.first_non_finite_step(); bad > 0)
      fail("{}: the loss is not finite at epoch {} step {}; lower lr (now {})", options.pass, epoch, bad,
           options.learning_rate);
    record.val_score = score(model);
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const bool candidate = epoch >= options.best_from_epoch;
    const bool is_best = candidate && (!have_best || record.val_score > result.best_score);
    if (is_best) {
      best = snapshot(model);
      result.best_score = record.val_score;
      result.best_epoch = epoch;
      have_best = true;
    }
    log_info("{} epoch {}/{}: loss {:.4f}, validation score {:.4f}{} ({:.1f} s)", options.pass, epoch, options.epochs,
             record.train_loss, record.val_score, is_best ? " (best)" : "", record.seconds);
    result.epochs.push_back(record);
  }
  restore(model, best);
  for (auto& p : trainable) {
    p.requires_grad_(false);
    p.mutable_grad() = at::Tensor();
  }
  model.to(c10::kCPU);
  model.eval();
  return result;
}

}  // namespace hone::compress
