#include "hone/train/input_pipeline.h"

#include <ATen/ATen.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "hone/core/error.h"
#include "hone/train/distributed/shard.h"

#ifdef HONE_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace hone::train {
namespace {

std::int64_t bytes_of(const at::Tensor& t) {
  return t.defined() ? t.numel() * static_cast<std::int64_t>(t.element_size()) : 0;
}

/// A bounded queue between the producer thread and the training loop.
class BatchQueue {
 public:
  explicit BatchQueue(std::size_t capacity) : capacity_(capacity) {}
  /// Blocks while full; false when the consumer has stopped.
  bool push(Batch batch) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return queue_.size() < capacity_ || stopped_; });
    if (stopped_) return false;
    queue_.push_back(std::move(batch));
    not_empty_.notify_one();
    return true;
  }
  /// Blocks while empty; nullopt at the end of the epoch.
  std::optional<Batch> pop() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return !queue_.empty() || done_; });
    if (queue_.empty()) return std::nullopt;
    Batch batch = std::move(queue_.front());
    queue_.pop_front();
    not_full_.notify_one();
    return batch;
  }
  void finish(std::exception_ptr error = nullptr) {
    std::lock_guard lock(mutex_);
    done_ = true;
    error_ = error;
    not_empty_.notify_all();
  }
  void stop() {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    not_full_.notify_all();
  }
  std::exception_ptr error() {
    std::lock_guard lock(mutex_);
    return error_;
  }

 private:
  std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable not_full_, not_empty_;
  std::deque<Batch> queue_;
  bool done_ = false, stopped_ = false;
  std::exception_ptr error_;
};

}  // namespace

InputPipeline::InputPipeline(const data::TensorDataset& dataset, PipelineOptions options)
    : dataset_(dataset), options_(std::move(options)) {
  if (options_.batch_size < 1) fail_usage_option("batch_size", "batch size must be >= 1, got {}", options_.batch_size);
  if (options_.prefetch_depth < 2) options_.prefetch_depth = 2;
  if (options_.world_size < 1 || options_.rank < 0 || options_.rank >= options_.world_size)
    fail("input pipeline: rank {} of a world of {}", options_.rank, options_.world_size);
  const std::int64_t bytes = bytes_of(dataset.inputs()) + bytes_of(dataset.targets());
  cached_ = options_.device.is_cuda() && bytes <= options_.device_cache_bytes && dataset.count() > 0;
  if (cached_) {
    device_inputs_ = dataset.inputs().to(options_.device);
    device_targets_ = dataset.targets().to(options_.device);
  }
}

std::int64_t InputPipeline::batches_per_epoch() const {
  std::int64_t batches = distributed::steps_per_epoch(dataset_.count(), options_.batch_size, options_.world_size);
  if (options_.max_batches > 0) batches = std::min(batches, options_.max_batches);
  return batches;
}

void InputPipeline::for_each_epoch_batch(const std::function<void(Batch&)>& fn) {
  if (cached_) return run_cached(fn);
  if (options_.device.is_cuda() || options_.force_prefetch_thread || options_.world_size > 1) return run_prefetched(fn);
  data::LoaderOptions loader{options_.batch_size, options_.shuffle, options_.workers, false, options_.max_batches};
  data::for_each_batch(dataset_, loader, [&](torch::data::Example<>& example) {
    Batch batch{example.data, example.target};
    fn(batch);
  });
}

void InputPipeline::run_cached(const std::function<void(Batch&)>& fn) {
  // The loader's order: torch::data's RandomSampler draws randperm(n) from the global generator.
  const std::int64_t n = dataset_.count();
  at::Tensor order = options_.shuffle ? at::randperm(n, at::TensorOptions().dtype(at::kLong))
                                      : at::arange(n, at::TensorOptions().dtype(at::kLong));
  order = order.to(options_.device, /*non_blocking=*/false);
  const std::int64_t batches = batches_per_epoch();
  for (std::int64_t b = 0; b < batches; ++b) {
    const auto shard = distributed::batch_shard(n, options_.batch_size, options_.rank, options_.world_size, b);
    const at::Tensor index = order.narrow(0, shard.start, shard.count);
    Batch batch{device_inputs_.index_select(0, index), device_targets_.index_select(0, index),
                shard.loss_weight(options_.world_size)};
    fn(batch);
  }
}

void InputPipeline::run_prefetched(const std::function<void(Batch&)>& fn) {
  const bool cuda = options_.device.is_cuda();
  BatchQueue queue(static_cast<std::size_t>(options_.prefetch_depth));
  // The order is drawn here, on the caller's thread, exactly as torch::data's RandomSampler draws
  // it (randperm from the global generator): the producer thread must not touch the generator
  // while the training loop draws dropout masks from it.
  const std::int64_t n = dataset_.count();
  // A data-parallel CPU rank shards the order the single-process CPU path (the loader) uses.
  const bool loader_order = !cuda && options_.world_size > 1;
  const at::Tensor order = !options_.shuffle ? at::arange(n, at::TensorOptions().dtype(at::kLong))
                           : loader_order    ? data::shuffled_loader_order(n)
                                             : at::randperm(n, at::TensorOptions().dtype(at::kLong));
  const std::int64_t batches = batches_per_epoch();
  // The producer gathers host batches (pinned, for an asynchronous copy) in that order.
  std::thread producer([&] {
    try {
      for (std::int64_t b = 0; b < batches; ++b) {
        const auto shard = distributed::batch_shard(n, options_.batch_size, options_.rank, options_.world_size, b);
        const at::Tensor index = order.narrow(0, shard.start, shard.count);
        Batch host{dataset_.inputs().index_select(0, index), dataset_.targets().index_select(0, index),
                   shard.loss_weight(options_.world_size)};
        if (cuda) {
          host.input = host.input.pin_memory();
          host.target = host.target.pin_memory();
        }
        if (!queue.push(std::move(host))) return;
      }
      queue.finish();
    } catch (...) {
      queue.finish(std::current_exception());
    }
  });
  try {
#ifdef HONE_WITH_CUDA
    if (cuda) {
      c10::cuda::CUDAGuard guard(options_.device);
      const c10::cuda::CUDAStream compute = c10::cuda::getCurrentCUDAStream();
      const c10::cuda::CUDAStream copy = c10::cuda::getStreamFromPool(false, options_.device.index());
      // One batch in flight on the copy stream while the previous one computes.
      auto start_copy = [&](Batch host) {
        c10::cuda::CUDAStreamGuard on_copy(copy);
        Batch device{host.input.to(options_.device, /*non_blocking=*/true),
                     host.target.to(options_.device, /*non_blocking=*/true)};
        auto event = std::make_shared<at::cuda::CUDAEvent>();
        event->record(copy);
        return std::make_pair(std::move(device), event);
      };
      std::optional<std::pair<Batch, std::shared_ptr<at::cuda::CUDAEvent>>> next;
      if (auto first = queue.pop()) next = start_copy(std::move(*first));
      while (next) {
        auto current = std::move(*next);
        next.reset();
        if (auto host = queue.pop()) next = start_copy(std::move(*host));
        current.second->block(compute);
        // The tensors were allocated on the copy stream; tell the allocator the compute stream uses them.
        c10::cuda::CUDACachingAllocator::recordStream(current.first.input.storage().data_ptr(), compute);
        c10::cuda::CUDACachingAllocator::recordStream(current.first.target.storage().data_ptr(), compute);
        fn(current.first);
      }
    } else
#endif
    {
      while (auto batch = queue.pop()) fn(*batch);
    }
  } catch (...) {
    queue.stop();
    producer.join();
    throw;
  }
  producer.join();
  if (auto error = queue.error()) std::rethrow_exception(error);
}

}  // namespace hone::train
