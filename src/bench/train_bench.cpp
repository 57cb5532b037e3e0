#include "hone/bench/train_bench.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/nn/functional/loss.h>

#include <chrono>

#include "hone/core/device.h"
#include "hone/core/error.h"
#include "hone/runtime/device_probe.h"
#include "hone/runtime/settings.h"
#include "hone/runtime/target.h"
#include "hone/runtime/units.h"
#include "hone/train/activation_checkpoint.h"
#include "hone/train/batch_finder.h"
#include "hone/train/grad_scaler.h"
#include "hone/train/graphed_step.h"
#include "hone/train/optimizer.h"
#include "hone/train/precision.h"
#include "hone/train/train_step.h"

namespace hone::bench {
namespace {

/// Random targets for the model's task, and the loss the step times.
struct TimedLoss {
  train::LossFn fn;
  std::string description;
  std::function<at::Tensor(std::int64_t batch)> targets;
};

TimedLoss timed_loss(const runtime::ModelTarget& t, const c10::Device& device) {
  const auto on = at::TensorOptions().device(device);
  if (t.info.vocab_size > 0) {
    // A sentence encoder has no labels here: the anchors' stand-in, the mean square of the output.
    return {[](const at::Tensor& out, const at::Tensor&) { return out.to(at::kFloat).pow(2).mean(); },
            "mean square of the output (stand-in, as the PyTorch anchor)",
            [on](std::int64_t batch) { return at::zeros({batch}, on.dtype(at::kFloat)); }};
  }
  if (t.info.task == data::TaskKind::kClassification) {
    const std::int64_t classes = std::max<std::int64_t>(t.info.num_classes, 2);
    return {[](const at::Tensor& out, const at::Tensor& y) {
              return torch::nn::functional::cross_entropy(out.to(at::kFloat), y);
            },
            "cross-entropy on random labels",
            [on, classes](std::int64_t batch) { return at::randint(0, classes, {batch}, on.dtype(at::kLong)); }};
  }
  const std::int64_t outputs = std::max<std::int64_t>(t.info.num_outputs, 1);
  return {
      [](const at::Tensor& out, const at::Tensor& y) { return torch::nn::functional::mse_loss(out.to(at::kFloat), y); },
      "MSE on random targets",
      [on, outputs](std::int64_t batch) {
        return at::randn({batch, outputs}, on.dtype(at::kFloat));
      }};
}

/// A target ready for timed training steps: on `device`, in train mode, every parameter
/// trainable, checkpointing on request; with its loss and the settings its random inputs use.
struct TimedTarget {
  runtime::ModelTarget target;
  TimedLoss loss;
  runtime::RunSettings settings;
};

TimedTarget load_timed_target(const std::string& name, const TrainBenchOptions& options, const c10::Device& device) {
  TimedTarget timed;
  timed.target = runtime::load_target(name, options.seq_len);
  auto& model = *timed.target.model;
  model.to(device);
  model.train();
  for (auto& p : model.parameters()) p.requires_grad_(true);
  if (options.checkpoint_activations) train::enable_activation_checkpointing(model);
  if (options.channels_last) runtime::to_channels_last(model);
  timed.loss = timed_loss(timed.target, device);
  timed.settings.device = device;
  timed.settings.channels_last = options.channels_last;
  return timed;
}

}  // namespace

TrainBenchReport bench_train_step(const std::string& target, const TrainBenchOptions& options) {
  if (options.warmup < 0 || options.iterations < 1)
    fail_usage_option("iterations", "need warmup >= 0 and iterations >= 1, got {} and {}", options.warmup,
                      options.iterations);
  HONE_CHECK(!options.batches.empty(), "no batch sizes to run");
  const c10::Device device = parse_device(options.device);
  const train::Precision precision = train::parse_precision(options.precision);
  train::check_precision_supported(precision, device);
  if (options.cuda_graphs && !device.is_cuda())
    fail_usage_option("cuda_graphs", "CUDA graphs need a CUDA device, got {}", options.device);

  TimedTarget timed = load_timed_target(target, options, device);
  const runtime::ModelTarget& t = timed.target;
  auto& model = *t.model;
  const TimedLoss& loss = timed.loss;
  const runtime::RunSettings& settings = timed.settings;

  TrainBenchReport report;
  report.target = target;
  report.architecture = model.architecture();
  report.device = device.str();
  report.precision = train::precision_name(precision);
  report.optimizer = options.optimizer;
  report.checkpoint_activations = options.checkpoint_activations;
  report.cuda_graphs = options.cuda_graphs;
  report.channels_last = options.channels_last;
  report.parameters = models::count_parameters(model);
  report.input_kind = t.info.vocab_size > 0 ? "random token ids (timing only)" : "random normal (timing only)";
  report.loss = loss.description;
  report.threads = at::get_num_threads();

  for (const std::int64_t batch : options.batches) {
    HONE_CHECK(batch >= 1, "batch sizes must be >= 1, got {}", batch);
    train::OptimizerOptions optimizer_options;
    optimizer_options.kind = options.optimizer;
    auto optimizer = train::make_optimizer(optimizer_options, train::make_param_groups(model, {}));
    train::GradScaler scaler(train::needs_loss_scaling(precision), device);
    const train::Batch data{runtime::make_random_input(t.info, batch, settings), loss.targets(batch)};
    const at::Tensor lr = at::full({}, 1e-4, at::TensorOptions().device(device).dtype(at::kFloat));
    const train::ForwardFn forward = [&model](const at::Tensor& x) { return model.forward(x); };
    std::function<void()> run_step;
    std::unique_ptr<train::TrainStep> eager;
    std::unique_ptr<train::GraphedStep> graphed;
    if (options.cuda_graphs) {
      graphed = std::make_unique<train::GraphedStep>(forward, loss.fn, *optimizer, scaler, precision,
                                                     /*grad_clip=*/1.0, data, lr, std::max(options.warmup, 3));
      run_step = [&] { graphed->replay(); };
    } else {
      eager = std::make_unique<train::TrainStep>(forward, loss.fn, *optimizer, scaler, precision, /*grad_clip=*/1.0,
                                                 device);
      run_step = [&] { eager->run({data}, lr); };
    }
    for (int i = 0; i < options.warmup; ++i) run_step();
    runtime::synchronize(device);
    runtime::reset_peak_memory(device);
    std::vector<double> times_ms;
    for (int i = 0; i < options.iterations; ++i) {
      const auto start = std::chrono::steady_clock::now();
      run_step();
      runtime::synchronize(device);
      times_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    TrainBatchResult result;
    result.batch = batch;
    result.step_ms = runtime::summarize(times_ms);
    result.samples_per_second = static_cast<double>(batch) / (result.step_ms.p50 / 1000.0);
    result.peak_memory_bytes = runtime::peak_memory(device);
    report.results.push_back(result);
  }
  if (options.checkpoint_activations) train::disable_activation_checkpointing(model);
  return report;
}

TrainFindBatchReport find_train_batch(const std::string& target, const TrainBenchOptions& options,
                                      std::int64_t budget_bytes, std::int64_t max_batch) {
  const c10::Device device = parse_device(options.device);
  if (!device.is_cuda()) {
    fail_usage_option("find_batch",
                      "the batch finder needs a CUDA device: on the CPU, memory is not tracked per allocation and "
                      "running out of it kills the process instead of raising an error");
  }
  const train::Precision precision = train::parse_precision(options.precision);
  train::check_precision_supported(precision, device);
  TrainFindBatchReport report;
  {
    TimedTarget timed = load_timed_target(target, options, device);
    const runtime::ModelTarget& t = timed.target;
    auto& model = *t.model;
    const TimedLoss& loss = timed.loss;
    const runtime::RunSettings& settings = timed.settings;
    train::OptimizerOptions optimizer_options;
    optimizer_options.kind = options.optimizer;
    auto optimizer = train::make_optimizer(optimizer_options, train::make_param_groups(model, {}));
    train::GradScaler scaler(train::needs_loss_scaling(precision), device);
    const train::ForwardFn forward = [&model](const at::Tensor& x) { return model.forward(x); };
    train::TrainStep step(forward, loss.fn, *optimizer, scaler, precision, /*grad_clip=*/1.0, device);
    const at::Tensor lr = at::full({}, 1e-6, at::TensorOptions().device(device).dtype(at::kFloat));
    report.search = runtime::search_largest_batch(
        [&](std::int64_t batch) {
          const train::Batch data{runtime::make_random_input(t.info, batch, settings), loss.targets(batch)};
          return train::train_step_peak_bytes(step, data, lr, device);
        },
        {.budget_bytes = budget_bytes, .max_batch = max_batch, .device = device});
  }
  runtime::release_cached_memory(device);
  TrainBenchOptions at_best = options;
  at_best.batches = {report.search.largest_batch};
  if (report.search.largest_batch > 0) report.bench = bench_train_step(target, at_best);
  return report;
}

nlohmann::json TrainFindBatchReport::to_json() const {
  nlohmann::json j = search.to_json();
  j["schema"] = "hone-bench-train-find-batch/1";
  j["bench"] = bench.to_json();
  return j;
}

std::string TrainFindBatchReport::to_text() const {
  const std::string out = search.to_text();
  return search.largest_batch == 0 ? out : out + bench.to_text();
}

nlohmann::json TrainBenchReport::to_json() const {
  nlohmann::json results_json = nlohmann::json::array();
  for (const auto& r : results) {
    results_json.push_back({{"batch", r.batch},
                            {"step_ms", runtime::to_json(r.step_ms)},
                            {"samples_per_second", r.samples_per_second},
                            {"peak_memory_bytes", r.peak_memory_bytes}});
  }
  return {{"schema", "hone-bench-train/1"},
          {"target", target},
          {"architecture", architecture},
          {"device", device},
          {"precision", precision},
          {"optimizer", optimizer},
          {"checkpoint_activations", checkpoint_activations},
          {"cuda_graphs", cuda_graphs},
          {"channels_last", channels_last},
          {"parameters", parameters},
          {"input_kind", input_kind},
          {"loss", loss},
          {"threads", threads},
          {"results", results_json}};
}

std::string TrainBenchReport::to_text() const {
  std::string text =
      fmt::format("{} ({}) training step on {}, {}, {}{}{}{}, {} threads\n", target, architecture, device, precision,
                  optimizer, checkpoint_activations ? ", activation checkpointing" : "",
                  cuda_graphs ? ", CUDA graph" : "", channels_last ? ", channels-last" : "", threads);
  text += fmt::format("inputs: {}; loss: {}\n", input_kind, loss);
  text += fmt::format("{:>7} {:>10} {:>10} {:>10} {:>12} {:>12}\n", "batch", "p50 ms", "p90 ms", "p99 ms", "samples/s",
                      "peak mem");
  for (const auto& r : results) {
    text += fmt::format("{:>7} {:>10.3f} {:>10.3f} {:>10.3f} {:>12.1f} {:>12}\n", r.batch, r.step_ms.p50, r.step_ms.p90,
                        r.step_ms.p99, r.samples_per_second, runtime::bytes_text(r.peak_memory_bytes));
  }
  return text;
}

}  // namespace hone::bench
