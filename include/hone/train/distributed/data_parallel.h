#pragma once
/// @file Data parallelism on a Communicator, as PyTorch's DDP does it: rank 0's weights and
/// buffers broadcast at the start; gradients all-reduced in buckets of ~25 MB that start while
/// backward is still running (a post-accumulate-grad hook per parameter; a bucket goes out when its
/// last gradient lands, last layers first, as backward produces them); on the last micro-batch of
/// a step only (accumulation: no all-reduce in between); the fp16 scaler's overflow flag agreed
/// (max); the buffers (BatchNorm statistics) broadcast from rank 0 before every step.
///
/// hone's own hooks rather than c10d's Reducer: the Reducer's C++ constructor and its
/// prepare_for_backward protocol are internal to torch's Python DDP wrapper (it expects the
/// wrapper's bucket assignment, its hooks on the graph and its rebuild of buckets after the first
/// iteration); about 150 lines here give the same overlap with the behaviour written down.
///
///   distributed::DataParallel parallel(group, *model);   // broadcasts rank 0's weights
///   step.set_gradient_sync(&parallel);                   // train_step.h calls the hooks
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "hone/models/model.h"
#include "hone/train/distributed/communicator.h"
#include "hone/train/train_step.h"

namespace hone::train::distributed {

struct DataParallelOptions {
  std::int64_t bucket_bytes = std::int64_t{25} << 20;
  bool broadcast_buffers = true;  ///< rank 0's buffers before every step (DDP's default)
};

class DataParallel final : public GradientSync {
 public:
  DataParallel(Communicator& group, models::Model& model, DataParallelOptions options = {});
  ~DataParallel() override;
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  void begin_step() override;
  void before_backward(bool last_micro_batch) override;
  void finish_gradients() override;
  void agree(at::Tensor& found_inf) override;

  /// The buckets as parameter indices (model.parameters() order), in launch order.
  const std::vector<std::vector<std::size_t>>& buckets() const;
  /// Buckets that went out from a hook, during backward, in the last step (the overlap).
  std::int64_t buckets_launched_in_backward() const;
  /// Host time spent waiting for the all-reduces after backward (the exposed communication; on
  /// CUDA the wait only orders streams, so this is ~0), summed over steps, and the step count.
  double exposed_wait_ms() const;
  std::int64_t steps() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hone::train::distributed
