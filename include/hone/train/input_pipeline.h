#pragma once
/// @file Batches for the training loop, arranged so the device never waits for the host:
///
///   device cache  on CUDA, a training split that fits the budget (default 2 GiB) is copied to the
///                 GPU once; each epoch's order is drawn on the host (the same generator as the
///                 loader's, so runs repeat) and batches are gathered on the device
///   prefetch      otherwise a producer thread gathers batches into pinned host memory, keeping
///                 `prefetch_depth` (>= 2) batches ahead; each is copied on a side stream with an
///                 event the compute stream waits on (record_stream keeps the allocator from
///                 reusing its memory early). The order is drawn on the caller's thread, so the
///                 producer never touches the generator the training loop's dropout draws from
///   CPU           batches are assembled by the torch::data workers on the caller's side
///
/// The device paths draw one randperm(n) per epoch on the caller's thread and yield batches in
/// that order (tests/train/input_pipeline_test.cpp); the CPU path is torch::data's sampler, which
/// draws the same order. With world_size > 1 every path takes the rank's shards of that order.
///
///   train::InputPipeline pipeline(data.train.dataset, {.batch_size = 128, .shuffle = true, .device = device});
///   pipeline.for_each_epoch_batch([&](train::Batch& batch) { step.run({batch}, lr); });
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>

#include "hone/data/tensor_dataset.h"
#include "hone/train/train_step.h"

namespace hone::train {

struct PipelineOptions {
  std::int64_t batch_size = 128;
  bool shuffle = true;  ///< order from torch's global generator: seed it per epoch for repeatable runs
  std::int64_t workers = 2;
  std::int64_t max_batches = 0;  ///< > 0: stop after this many batches
  std::int64_t prefetch_depth = 2;
  c10::Device device = c10::kCPU;
  std::int64_t device_cache_bytes = std::int64_t{2} << 30;  ///< 0: never cache on the device
  bool force_prefetch_thread = false;                       ///< use the producer thread on the CPU too (tests)
  /// Data-parallel: this rank's shard of every step's global batch (distributed/shard.h); every
  /// rank must draw the same order (the same seed). batch_size is per rank.
  int rank = 0;
  int world_size = 1;
};

class InputPipeline {
 public:
  InputPipeline(const data::TensorDataset& dataset, PipelineOptions options);
  /// One epoch: `fn` gets each batch on the device, in order.
  void for_each_epoch_batch(const std::function<void(Batch&)>& fn);
  /// Batches (steps) one epoch yields on this rank: the same on every rank.
  std::int64_t batches_per_epoch() const;
  /// Whether the whole split lives on the device.
  bool cached_on_device() const { return cached_; }

 private:
  void run_cached(const std::function<void(Batch&)>& fn);
  void run_prefetched(const std::function<void(Batch&)>& fn);
  const data::TensorDataset& dataset_;
  PipelineOptions options_;
  bool cached_ = false;
  at::Tensor device_inputs_, device_targets_;
};

}  // namespace hone::train
