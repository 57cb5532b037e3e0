#pragma once
/// @file The largest training batch that fits: a full training step (forward, loss, backward,
/// clipping, optimizer update) under the run's precision, optimizer and activation checkpointing,
/// with the device's peak memory measured per trial, searched by runtime::search_largest_batch
/// (doubling, then bisection; out-of-memory caught and recovered from). CUDA only: on the CPU,
/// running out of memory kills the process instead of raising an error.
///
///   runtime::BatchSearch s = train::find_train_batch(options, 8LL << 30);
///   options.batch_size = s.largest_batch;
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>

#include "hone/runtime/batch_search.h"
#include "hone/train/train_step.h"
#include "hone/train/trainer.h"

namespace hone::train {

/// The peak device memory (bytes) of one eager training step on `batch`, the counter reset first.
std::int64_t train_step_peak_bytes(TrainStep& step, const Batch& batch, const at::Tensor& lr,
                                   const c10::Device& device);

/// The search for `options` (its model, data, precision, optimizer, checkpointing) on real
/// training samples (repeated when a batch is larger than the split). `budget_bytes` <= 0 means the
/// device's memory; a budget above it, or a non-CUDA device, is a hone::UsageError naming
/// memory_budget / find_batch.
runtime::BatchSearch find_train_batch(const TrainOptions& options, std::int64_t budget_bytes,
                                      std::int64_t max_batch = 1 << 16);

}  // namespace hone::train
