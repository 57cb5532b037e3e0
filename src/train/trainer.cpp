#include "hone/train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <torch/nn/functional/loss.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "hone/core/device.h"
#include "hone/core/error.h"
#include "hone/core/log.h"
#include "hone/core/progress.h"
#include "hone/models/registry.h"
#include "hone/run/checkpoint.h"
#include "hone/runtime/settings.h"
#include "hone/train/activation_checkpoint.h"
#include "hone/train/distributed/shard.h"
#include "hone/train/distributed/training_group.h"
#include "hone/train/evaluate.h"
#include "hone/train/grad_scaler.h"
#include "hone/train/graphed_step.h"
#include "hone/train/input_pipeline.h"
#include "hone/train/lr_schedule.h"
#include "hone/train/optimizer.h"
#include "hone/train/precision.h"
#include "hone/train/pretrained.h"
#include "hone/train/train_step.h"

namespace hone::train {
namespace fs = std::filesystem;

nlohmann::json to_json(const TrainOptions& o) {
  return {{"model", o.model},
          {"data", o.data},
          {"model_overrides", o.model_overrides},
          {"epochs", o.epochs},
          {"batch_size", o.batch_size},
          {"accumulate", o.accumulate},
          {"effective_batch_size", o.batch_size * o.accumulate},
          {"learning_rate", o.learning_rate},
          {"weight_decay", o.weight_decay},
          {"decay_norms_and_biases", o.decay_norms_and_biases},
          {"grad_clip", o.grad_clip},
          {"optimizer", o.optimizer},
          {"momentum", o.momentum},
          {"nesterov", o.nesterov},
          {"lr_schedule", o.lr_schedule},
          {"warmup_steps", o.warmup_steps},
          {"precision", o.precision},
          {"checkpoint_activations", o.checkpoint_activations},
          {"cuda_graphs", o.cuda_graphs},
          {"channels_last", o.channels_last},
          {"init", o.init},
          {"pretrained_lr_scale", o.pretrained_lr_scale},
          {"deterministic", o.deterministic},
          {"autotune", o.autotune && !o.deterministic},
          {"seed", o.seed},
          {"device", o.device},
          {"workers", o.workers},
          {"max_steps_per_epoch", o.max_steps_per_epoch}};
}

namespace {

void validate(const TrainOptions& o) {
  if (o.epochs < 1) fail_usage_option("epochs", "epochs must be >= 1, got {}", o.epochs);
  if (o.batch_size < 1) fail_usage_option("batch_size", "batch size must be >= 1, got {}", o.batch_size);
  if (o.accumulate < 1)
    fail_usage_option("accumulate", "accumulate must be >= 1 micro-batches per step, got {}", o.accumulate);
  if (!(o.learning_rate > 0) || !std::isfinite(o.learning_rate))
    fail_usage_option("learning_rate", "learning rate must be > 0, got {}", o.learning_rate);
  if (o.weight_decay < 0) fail_usage_option("weight_decay", "weight decay must be >= 0, got {}", o.weight_decay);
  if (o.grad_clip < 0) fail_usage_option("grad_clip", "gradient clipping norm must be >= 0, got {}", o.grad_clip);
  if (o.workers < 0) fail_usage_option("workers", "workers must be >= 0, got {}", o.workers);
  if (!(o.distributed_timeout_seconds > 0) || !std::isfinite(o.distributed_timeout_seconds))
    fail_usage_option("distributed_timeout_seconds", "the distributed timeout must be > 0 seconds, got {}",
                      o.distributed_timeout_seconds);
  if (o.out_dir.empty()) fail_usage_option("output", "an output directory is required");
  if (!(o.pretrained_lr_scale > 0) || !std::isfinite(o.pretrained_lr_scale))
    fail_usage_option("pretrained_lr_scale", "the pretrained parameters' lr scale must be > 0, got {}",
                      o.pretrained_lr_scale);
  if (o.cuda_graphs) {
    if (!parse_device(o.device).is_cuda())
      fail_usage_option("cuda_graphs", "CUDA graphs need a CUDA device, got --device {}; drop --cuda-graphs on the CPU",
                        o.device);
    if (o.accumulate != 1)
      fail_usage_option("cuda_graphs",
                        "a captured step holds one micro-batch; use --accumulate 1 with --cuda-graphs "
                        "(or a larger --batch-size)");
    if (o.checkpoint_activations)
      fail_usage_option("cuda_graphs",
                        "activation checkpointing recomputes blocks with restored RNG state, which a captured step "
                        "cannot; choose one of --cuda-graphs and --checkpoint-activations");
  }
}

/// cuDNN autotuning for static shapes by default (its search costs seconds at the start of a run
/// and pays in long ones); deterministic algorithms on request, which turn it off.
void set_determinism(bool deterministic, bool autotune) {
  auto& context = at::globalContext();
  context.setDeterministicAlgorithms(deterministic, /*warn_only=*/false);
  context.setDeterministicCuDNN(deterministic);
  context.setBenchmarkCuDNN(autotune && !deterministic);
}

/// Loss values reach the host only when the progress bar refreshes (every 0.5 s) and at the end
/// of the epoch: reading one waits for the device.
class LossReadout {
 public:
  explicit LossReadout(TrainStep& step) : step_(step) {}
  /// True when it is time to read (and then reads).
  bool maybe_refresh(bool force) {
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last_ < std::chrono::milliseconds(500)) return false;
    last_ = now;
    sum_ += step_.take_loss_sum();
    steps_ = step_.steps();
    return true;
  }
  double sum() const { return sum_; }
  /// The mean loss over the steps read so far.
  double mean() const { return steps_ > 0 ? sum_ / static_cast<double>(steps_) : 0.0; }

 private:
  TrainStep& step_;
  double sum_ = 0;
  std::int64_t steps_ = 0;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace

TrainingSetup prepare_training(const TrainOptions& options) {
  validate(options);
  TrainingSetup setup;
  setup.device = parse_device(options.device);
  setup.precision = parse_precision(options.precision);
  check_precision_supported(setup.precision, setup.device);
  seed_everything(options.seed);
  set_determinism(options.deterministic, options.autotune);
  setup.data = data::load_dataset(options.data, options.data_options);
  seed_everything(options.seed);  // again: the initial weights depend on the seed alone (initial_model)
  setup.model = models::make_model(options.model, setup.data.info, options.model_overrides);
  const auto pretrained = initialize_weights(*setup.model, options.init);
  setup.init = pretrained ? pretrained->source : "random";
  setup.model->to(setup.device);
  if (options.checkpoint_activations) enable_activation_checkpointing(*setup.model);
  if (options.channels_last) {
    const auto params = setup.model->parameters();
    if (std::none_of(params.begin(), params.end(), [](const at::Tensor& p) { return p.dim() == 4; }))
      log_info("--channels-last: {} has no 4-D (convolution) weights; the memory format changes nothing",
               options.model);
    runtime::to_channels_last(*setup.model);
  }

  ParamGroupOptions grouping;
  grouping.weight_decay = options.weight_decay;
  grouping.decay_norms_and_biases = options.decay_norms_and_biases;
  if (pretrained) {
    grouping.prefixes = pretrained->prefixes;
    grouping.prefix_lr_scale = options.pretrained_lr_scale;
  }
  OptimizerOptions optimizer_options;
  optimizer_options.kind = options.optimizer;
  optimizer_options.momentum = options.momentum;
  optimizer_options.nesterov = options.nesterov;
  if (options.optimizer == "lion") optimizer_options.beta2 = 0.99;
  setup.optimizer = make_optimizer(optimizer_options, make_param_groups(*setup.model, grouping));
  setup.scaler = std::make_unique<GradScaler>(needs_loss_scaling(setup.precision), setup.device);
  const bool classification = setup.data.info.task == data::TaskKind::kClassification;
  setup.loss = [classification](const at::Tensor& out, const at::Tensor& y) {
    return classification ? torch::nn::functional::cross_entropy(out, y) : torch::nn::functional::mse_loss(out, y);
  };
  if (options.channels_last)
    setup.forward = [model = setup.model](const at::Tensor& x) {
      return model->forward(runtime::channels_last_input(x));
    };
  else
    setup.forward = [model = setup.model](const at::Tensor& x) { return model->forward(x); };
  return setup;
}

models::ModelPtr initial_model(const run::RunConfig& config, std::uint64_t seed_offset) {
  const auto& o = config.train_options;
  HONE_CHECK(o.is_object() && o.contains("seed"),
             "the run's config records no training seed: it was not made by hone train");
  seed_everything(o.at("seed").get<std::uint64_t>() + seed_offset);
  models::ModelPtr model = models::make_model(config.architecture, config.model_config);
  const std::string init = o.value("init", std::string("auto"));
  if (seed_offset == 0 && o.value("initial_weights", std::string("random")) != "random")
    initialize_weights(*model, init);
  return model;
}

namespace {

/// The training config every rank must share (the device differs: cuda:LOCAL_RANK).
nlohmann::json shared_config(const TrainOptions& options) {
  nlohmann::json j = to_json(options);
  j.erase("device");
  j.erase("workers");
  j["data_options"] = {{"window", options.data_options.window}, {"limit", options.data_options.limit}};
  return j;
}

TrainResult train_process(TrainOptions options, const EpochCallback& on_epoch, distributed::TrainingGroup* group);

}  // namespace

TrainResult train(const TrainOptions& options, const EpochCallback& on_epoch) {
  validate(options);
  const auto timeout = std::chrono::milliseconds(static_cast<std::int64_t>(options.distributed_timeout_seconds * 1e3));
  std::unique_ptr<distributed::TrainingGroup> group =
      distributed::TrainingGroup::from_environment(options.device, timeout);
  if (!group) return train_process(options, on_epoch, nullptr);
  try {
    return train_process(options, on_epoch, group.get());
  } catch (const std::exception& e) {
    group->report_failure(e.what());  // what the other ranks will say about this one
    // Rank 0 serves the store that message is in: it stays a moment for the others to read it.
    if (group->rank() == 0) std::this_thread::sleep_for(std::chrono::seconds(3));
    throw;
  }
}

namespace {

TrainResult train_process(TrainOptions options, const EpochCallback& on_epoch, distributed::TrainingGroup* group) {
  const int world = group != nullptr ? group->world_size() : 1;
  const bool writes = group == nullptr || group->writes();
  if (group != nullptr) {
    if (options.cuda_graphs)
      fail_usage_option("cuda_graphs",
                        "a captured step holds no all-reduce; drop --cuda-graphs in a data-parallel run");
    options.device = group->device_string();
    options.progress = options.progress && writes;
    group->check_same_config(shared_config(options));
  }
  const fs::path run_dir = options.out_dir;
  if (!options.resume && run::has_checkpoint(run_dir)) {
    fail_option("resume", "'{}' already holds a training run; resume it or choose another output directory",
                run_dir.string());
  }
  TrainingSetup setup = prepare_training(options);
  const c10::Device device = setup.device;
  const Precision precision = setup.precision;
  const data::LoadedData& data = setup.data;
  models::ModelPtr model = setup.model;
  auto& optimizer = setup.optimizer;
  GradScaler& scaler = *setup.scaler;

  run::RunConfig config;
  config.architecture = options.model;
  config.model_config = model->config();
  config.dataset = options.data;
  config.data_options = options.data_options;
  config.train_options = to_json(options);
  config.train_options["initial_weights"] = setup.init;
  config.train_options["world_size"] = world;
  config.train_options["global_batch_size"] = options.batch_size * options.accumulate * world;

  TrainState state;
  int saved_world = world;
  if (options.resume) {
    const run::RunConfig saved = run::load_run_config(run_dir);
    HONE_CHECK(saved.architecture == config.architecture && saved.dataset == config.dataset &&
                   saved.model_config == config.model_config,
               "cannot resume '{}': it trained {} on {} with another config; this run asks for {} on {}",
               run_dir.string(), saved.architecture, saved.dataset, config.architecture, config.dataset);
    state = load_checkpoint(run_dir, *model, *optimizer);
    if (!state.scaler.is_null()) scaler.load(state.scaler);
    log_info("resuming {} after epoch {} (step {})", run_dir.string(), state.epochs_done, state.global_step);
    saved_world = saved.train_options.is_object() ? saved.train_options.value("world_size", 1) : 1;
  }
  if (writes) run::save_run_config(run_dir, config);
  distributed::DataParallel* parallel = group != nullptr ? &group->attach(*model) : nullptr;

  const std::int64_t n_train = data.train.dataset.count();
  HONE_CHECK(n_train > 0, "dataset '{}' has no training samples", options.data);
  const std::int64_t batches = distributed::steps_per_epoch(n_train, options.batch_size, world);
  std::int64_t steps_per_epoch = (batches + options.accumulate - 1) / options.accumulate;
  if (options.max_steps_per_epoch > 0) steps_per_epoch = std::min(steps_per_epoch, options.max_steps_per_epoch);
  if (saved_world != world) {
    // Resumed on another number of ranks: an epoch has another number of steps, so the schedule
    // continues from the fraction of training done (epochs are the unit that carries over).
    log_info(
        "resuming with {} rank(s) where the run trained on {}: the global batch is now {}; the schedule "
        "continues from epoch {} of {}",
        world, saved_world, options.batch_size * options.accumulate * world, state.epochs_done, options.epochs);
    state.global_step = static_cast<std::int64_t>(state.epochs_done) * steps_per_epoch;
  }
  LrScheduleOptions schedule_options;
  schedule_options.kind = options.lr_schedule;
  schedule_options.peak = options.learning_rate;
  schedule_options.warmup_steps = options.warmup_steps;
  const LrSchedule schedule(schedule_options, steps_per_epoch * options.epochs);
  const LossFn& loss_fn = setup.loss;
  const ForwardFn& forward = setup.forward;

  PipelineOptions pipeline_options;
  pipeline_options.batch_size = options.batch_size;
  pipeline_options.shuffle = true;
  pipeline_options.workers = options.workers;
  pipeline_options.max_batches = steps_per_epoch * options.accumulate;
  pipeline_options.device = device;
  pipeline_options.rank = group != nullptr ? group->rank() : 0;
  pipeline_options.world_size = world;
  InputPipeline pipeline(data.train.dataset, pipeline_options);
  const at::Tensor lr = at::zeros({}, at::TensorOptions().device(device).dtype(at::kFloat));

  // --cuda-graphs: captured on the first full batch, replayed for every batch of that shape (an
  // epoch's shorter last batch runs eagerly, on the same optimizer and scaler).
  std::unique_ptr<GraphedStep> graphed;
  TrainResult result;
  result.run_dir = run_dir;
  result.parameters = models::count_parameters(*model);
  result.rank = group != nullptr ? group->rank() : 0;
  result.world_size = world;
  for (int epoch = state.epochs_done + 1; epoch <= options.epochs; ++epoch) {
    // Batch order and dropout depend only on (seed, epoch): a resumed run repeats them exactly.
    torch::manual_seed(options.seed * 1000003ULL + static_cast<std::uint64_t>(epoch));
    model->train();
    const auto start = std::chrono::steady_clock::now();
    const std::int64_t skipped_before = scaler.skipped_steps();
    ProgressBar bar(steps_per_epoch, fmt::format("epoch {}/{}", epoch, options.epochs), options.progress);
    EpochRecord record;
    record.epoch = epoch;
    TrainStep step(forward, loss_fn, *optimizer, scaler, precision, options.grad_clip, device);
    step.set_gradient_sync(parallel);
    LossReadout readout(step);
    std::vector<Batch> micro;
    auto run_step = [&] {
      lr.fill_(schedule.at(state.global_step));
      if (options.cuda_graphs && !graphed && micro.front().input.size(0) == options.batch_size) {
        graphed = std::make_unique<GraphedStep>(forward, loss_fn, *optimizer, scaler, precision, options.grad_clip,
                                                micro.front(), lr, /*warmup=*/3, model->buffers());
      }
      if (graphed && graphed->fits(micro.front())) {
        graphed->input().copy_(micro.front().input, /*non_blocking=*/true);
        graphed->target().copy_(micro.front().target, /*non_blocking=*/true);
        graphed->replay();
        step.account(graphed->step_loss());
      } else {
        step.run(micro, lr);
      }
      micro.clear();
      ++state.global_step;
      if (group != nullptr) distributed::maybe_inject_fault(group->rank(), state.global_step);
      const bool refreshed = readout.maybe_refresh(false);
      // Ranks refresh at different moments: a data-parallel run stops only at the epoch's end,
      // where the ranks agree, or they would leave each other waiting in an all-reduce.
      if (refreshed && group == nullptr && step.first_non_finite_step() > 0) return false;
      bar.advance(1, fmt::format("loss {:.4f}", readout.mean()));
      return true;
    };
    bool finite = true;
    pipeline.for_each_epoch_batch([&](Batch& batch) {
      if (!finite) return;
      micro.push_back(batch);
      if (static_cast<std::int64_t>(micro.size()) == options.accumulate) finite = run_step();
    });
    if (finite && !micro.empty()) finite = run_step();  // the epoch's last, shorter step
    readout.maybe_refresh(true);
    std::int64_t bad = step.first_non_finite_step();
    if (group != nullptr) bad = static_cast<std::int64_t>(group->max(static_cast<double>(bad), "the loss check"));
    if (bad > 0) {
      fail(
          "training diverged: the loss is not finite at epoch {} step {}; the last good checkpoint (epoch {}) in "
          "'{}' is intact",
          epoch, bad, state.epochs_done, run_dir.string());
    }
    record.steps = step.steps();
    record.first_step_loss = step.first_loss();
    record.train_loss = readout.sum() / static_cast<double>(std::max<std::int64_t>(record.steps, 1));
    if (group != nullptr) {
      // Each rank's loss carries its shard's weight: the ranks' mean is the global batch's loss.
      record.first_step_loss = group->mean(record.first_step_loss, "the training loss");
      record.train_loss = group->mean(record.train_loss, "the training loss");
    }
    record.learning_rate = schedule.at(state.global_step - 1);
    record.skipped_steps = scaler.skipped_steps() - skipped_before;
    record.loss_scale = scaler.current_scale();
    record.val = group != nullptr ? group->evaluate(*model, data.val, data.info.task, "val")
                                  : evaluate(*model, data.val, data.info.task, "val", device);
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    bar.finish(fmt::format("loss {:.4f}", record.train_loss));

    const bool is_best = state.best_epoch == 0 || record.val.score() > state.best_score;
    if (is_best) {
      state.best_epoch = epoch;
      state.best_score = record.val.score();
      if (writes) run::save_weights(run_dir / "model.safetensors", *model, {{"epoch", std::to_string(epoch)}});
    }
    state.epochs_done = epoch;
    state.history.push_back(record);
    state.scaler = scaler.state();
    if (writes) save_checkpoint(run_dir, *model, *optimizer, state);
    if (on_epoch && writes) on_epoch(record, is_best);
    if (options.stop_after_epochs > 0 && epoch >= options.stop_after_epochs) break;
  }
  result.state = state;
  if (group != nullptr) {
    if (writes && parallel->steps() > 0)
      log_info(
          "data parallel on {} ranks ({}): {} gradient bucket(s); rank 0 waited {:.2f} ms a step for the "
          "all-reduce after backward",
          world, group->communicator().backend(), parallel->buckets().size(),
          parallel->exposed_wait_ms() / static_cast<double>(parallel->steps()));
    group->barrier("the end of training");  // no rank leaves (taking the store with it) early
    group->report_done();
  }
  return result;
}

}  // namespace

}  // namespace hone::train
