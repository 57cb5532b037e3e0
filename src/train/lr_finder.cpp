#include "hone/train/lr_finder.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "hone/core/error.h"
#include "hone/core/progress.h"
#include "hone/train/input_pipeline.h"
#include "hone/train/train_step.h"

namespace hone::train {

std::int64_t steepest_descent(const std::vector<double>& lrs, const std::vector<double>& smoothed,
                              std::int64_t skip_begin, std::int64_t skip_end) {
  const auto n = static_cast<std::int64_t>(smoothed.size());
  const std::int64_t first = std::max<std::int64_t>(skip_begin, 1), last = n - 1 - std::max<std::int64_t>(skip_end, 1);
  if (last - first < 1) return -1;
  std::int64_t best = -1;
  double steepest = std::numeric_limits<double>::infinity();
  for (std::int64_t i = first; i <= last; ++i) {
    // Central difference against log10(lr), as numpy.gradient.
    const auto k = static_cast<std::size_t>(i);
    const double slope = (smoothed[k + 1] - smoothed[k - 1]) / (std::log10(lrs[k + 1]) - std::log10(lrs[k - 1]));
    if (std::isfinite(slope) && slope < steepest) {
      steepest = slope;
      best = i;
    }
  }
  return best;
}

LrFindResult find_lr(const TrainOptions& train_options, const LrFindOptions& options) {
  if (!(options.min_lr > 0) || !(options.max_lr > options.min_lr))
    fail_usage_option("lr_find", "the range test needs 0 < min lr < max lr, got {} and {}", options.min_lr,
                      options.max_lr);
  if (options.steps < 2) fail_usage_option("lr_find", "the range test needs >= 2 steps, got {}", options.steps);
  if (!(options.smoothing >= 0 && options.smoothing < 1))
    fail_usage_option("lr_find", "smoothing must be in [0, 1), got {}", options.smoothing);
  TrainingSetup setup = prepare_training(train_options);
  setup.model->train();
  PipelineOptions pipeline_options;
  pipeline_options.batch_size = train_options.batch_size;
  pipeline_options.workers = train_options.workers;
  pipeline_options.device = setup.device;
  InputPipeline pipeline(setup.data.train.dataset, pipeline_options);
  TrainStep step(setup.forward, setup.loss, *setup.optimizer, *setup.scaler, setup.precision, train_options.grad_clip,
                 setup.device);
  const at::Tensor lr = at::zeros({}, at::TensorOptions().device(setup.device).dtype(at::kFloat));

  LrFindResult result;
  result.options = options;
  const double ratio = options.max_lr / options.min_lr;
  double average = 0, best = std::numeric_limits<double>::infinity();
  ProgressBar bar(options.steps, "lr range test", train_options.progress);
  std::vector<Batch> micro;
  bool done = false;
  auto run_step = [&] {
    const auto i = static_cast<std::int64_t>(result.lrs.size());
    const double rate =
        options.min_lr * std::pow(ratio, static_cast<double>(i) / static_cast<double>(options.steps - 1));
    lr.fill_(rate);
    step.run(micro, lr);
    micro.clear();
    const double loss = step.take_loss_sum();  // one host read per step: the test needs every loss
    average = options.smoothing * average + (1 - options.smoothing) * loss;
    const double smoothed = average / (1 - std::pow(options.smoothing, static_cast<double>(i + 1)));
    result.lrs.push_back(rate);
    result.losses.push_back(loss);
    result.smoothed.push_back(smoothed);
    bar.advance(1, fmt::format("lr {:.2e} loss {:.4f}", rate, smoothed));
    if (!std::isfinite(smoothed) || smoothed > options.divergence * best) {
      result.diverged = true;
      done = true;
    }
    best = std::min(best, smoothed);
    if (static_cast<std::int64_t>(result.lrs.size()) >= options.steps) done = true;
  };
  // Epochs repeat until the steps are run (a small dataset has fewer batches than steps).
  for (int epoch = 1; !done; ++epoch) {
    torch::manual_seed(train_options.seed * 1000003ULL + static_cast<std::uint64_t>(epoch));
    pipeline.for_each_epoch_batch([&](Batch& batch) {
      if (done) return;
      micro.push_back(batch);
      if (static_cast<std::int64_t>(micro.size()) == train_options.accumulate) run_step();
    });
    micro.clear();
  }
  bar.finish(result.diverged ? "stopped: the loss diverged" : "done");
  // Points after the divergence are not part of the descent.
  result.suggested_step =
      steepest_descent(result.lrs, result.smoothed, options.skip_begin,
                       result.diverged ? std::max<std::int64_t>(options.skip_end, 1) + 1 : options.skip_end);
  if (result.suggested_step >= 0) result.suggested_lr = result.lrs[static_cast<std::size_t>(result.suggested_step)];
  return result;
}

nlohmann::json LrFindResult::to_json() const {
  return {{"schema", "hone-lr-find/1"},
          {"min_lr", options.min_lr},
          {"max_lr", options.max_lr},
          {"steps", options.steps},
          {"smoothing", options.smoothing},
          {"divergence", options.divergence},
          {"diverged", diverged},
          {"suggested_lr", suggested_lr},
          {"suggested_step", suggested_step},
          {"lr", lrs},
          {"loss", losses},
          {"smoothed_loss", smoothed}};
}

std::string LrFindResult::to_text() const {
  std::string out = fmt::format("{:>6} {:>11} {:>10} {:>10}\n", "step", "lr", "loss", "smoothed");
  const std::size_t every = std::max<std::size_t>(1, lrs.size() / 20);
  for (std::size_t i = 0; i < lrs.size(); ++i) {
    const bool marked = static_cast<std::int64_t>(i) == suggested_step;
    if (i % every != 0 && !marked && i + 1 != lrs.size()) continue;
    out += fmt::format("{:>6} {:>11.3e} {:>10.4f} {:>10.4f}{}\n", i, lrs[i], losses[i], smoothed[i],
                       marked ? "  <- steepest descent" : "");
  }
  if (diverged) out += fmt::format("stopped after {} steps: the smoothed loss diverged\n", lrs.size());
  if (suggested_lr > 0) {
    out += fmt::format("suggested learning rate: {:.3e} (train with --lr {:.3g})\n", suggested_lr, suggested_lr);
  } else {
    out += "no suggestion: the curve is too short (raise --lr-find-steps)\n";
  }
  return out;
}

}  // namespace hone::train
