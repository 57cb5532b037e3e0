#include "hone/train/batch_finder.h"

#include <ATen/ATen.h>

#include "hone/core/device.h"
#include "hone/core/error.h"
#include "hone/runtime/device_probe.h"
#include "hone/runtime/units.h"

namespace hone::train {

std::int64_t train_step_peak_bytes(TrainStep& step, const Batch& batch, const at::Tensor& lr,
                                   const c10::Device& device) {
  runtime::synchronize(device);
  runtime::reset_peak_memory(device);
  step.run({batch}, lr);
  runtime::synchronize(device);
  return runtime::peak_memory(device);
}

runtime::BatchSearch find_train_batch(const TrainOptions& options, std::int64_t budget_bytes, std::int64_t max_batch) {
  const c10::Device device = parse_device(options.device);
  if (!device.is_cuda()) {
    fail_usage_option("find_batch",
                      "the batch finder needs a CUDA device (--device cuda): on the CPU, memory is not tracked per "
                      "allocation and running out of it kills the process instead of raising an error");
  }
  const std::int64_t capacity = runtime::device_memory_bytes(device);
  if (budget_bytes <= 0) budget_bytes = capacity;
  if (budget_bytes > capacity) {
    fail_usage_option("memory_budget", "the budget {} is more than {} has ({}); give at most {}",
                      runtime::bytes_text(budget_bytes), device.str(), runtime::bytes_text(capacity),
                      runtime::bytes_text(capacity));
  }
  TrainOptions probe = options;
  probe.cuda_graphs = false;  // the eager step is measured (a graph's pool adds its own copy of the activations)
  TrainingSetup setup = prepare_training(probe);
  setup.model->train();
  TrainStep step(setup.forward, setup.loss, *setup.optimizer, *setup.scaler, setup.precision, options.grad_clip,
                 device);
  const at::Tensor lr = at::full({}, 1e-6, at::TensorOptions().device(device).dtype(at::kFloat));
  const auto& train_split = setup.data.train.dataset;
  const std::int64_t n = train_split.count();
  HONE_CHECK(n > 0, "dataset '{}' has no training samples", options.data);
  runtime::BatchSearchOptions search;
  search.budget_bytes = budget_bytes;
  search.max_batch = max_batch;
  search.device = device;
  return runtime::search_largest_batch(
      [&](std::int64_t batch) {
        const at::Tensor rows = at::arange(batch, at::TensorOptions().dtype(at::kLong)).remainder(n);
        const Batch b{train_split.inputs().index_select(0, rows).to(device),
                      train_split.targets().index_select(0, rows).to(device)};
        return train_step_peak_bytes(step, b, lr, device);
      },
      search);
}

}  // namespace hone::train
