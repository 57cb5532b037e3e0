#pragma once
/// @file One optimizer step: N micro-batches (gradient accumulation, the loss divided by N), each
/// forward in the training precision, the loss scaled for fp16, then unscale + inf/NaN check,
/// gradient clipping, the optimizer update (skipped on overflow) and the scaler update. Nothing in
/// it reads a value back to the host: the losses are summed on the device, and the first step
/// whose loss was not finite is recorded there too, for the trainer to read when it refreshes its
/// progress (flashlight's backwardWithScaling, with optional pieces: null = off).
///
///   train::TrainStep step(model, loss_fn, *optimizer, scaler, Precision::kBf16, /*clip=*/1.0, device);
///   step.run({batch}, lr_tensor);          // one step, one micro-batch
///   double mean = step.take_loss_sum() / steps;
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "hone/train/grad_scaler.h"
#include "hone/train/optimizer.h"
#include "hone/train/precision.h"

namespace hone::train {

/// A micro-batch already on the device.
struct Batch {
  at::Tensor input;
  at::Tensor target;
  /// The loss is multiplied by this: in data-parallel training, rows here × world size ÷ rows in
  /// the global batch, so that the ranks' average gradient is the global batch's mean when their
  /// shards differ in size (an epoch's last batch). A batch of 0 rows contributes zeros.
  double loss_weight = 1.0;
};

/// What a step tells a data-parallel gradient synchronizer (train/distributed/data_parallel.h).
class GradientSync {
 public:
  virtual ~GradientSync() = default;
  /// Before the step's first forward.
  virtual void begin_step() = 0;
  /// Before each micro-batch's backward; only the last one's gradients are all-reduced.
  virtual void before_backward(bool last_micro_batch) = 0;
  /// After the last backward: every gradient is the average over the ranks.
  virtual void finish_gradients() = 0;
  /// Makes the overflow flag (0-dim float, > 0: skip the step) the same on every rank.
  virtual void agree(at::Tensor& found_inf) = 0;
};

/// (model output, target) -> scalar loss (mean over the micro-batch).
using LossFn = std::function<at::Tensor(const at::Tensor& output, const at::Tensor& target)>;
/// input -> output (the model's forward; a functor so activation checkpointing can wrap it).
using ForwardFn = std::function<at::Tensor(const at::Tensor& input)>;

class TrainStep {
 public:
  TrainStep(ForwardFn forward, LossFn loss, Optimizer& optimizer, GradScaler& scaler, Precision precision,
            double grad_clip, const c10::Device& device);

  /// One optimizer step over `micro_batches` (>= 1); `lr` is a 0-dim float tensor on the device.
  void run(const std::vector<Batch>& micro_batches, const at::Tensor& lr);

  /// Sum of the per-step losses since the last take (a host read: it waits for the device).
  double take_loss_sum();
  /// The loss of the first step run (host read), for the epoch record.
  double first_loss() const;
  /// The 1-based number of the first step whose loss was inf/NaN, or 0 (host read). In fp16 a
  /// non-finite *gradient* is the scaler's business (the step is skipped); this is the loss.
  std::int64_t first_non_finite_step() const;
  std::int64_t steps() const { return steps_; }
  /// Books a step run elsewhere (a graph replay) whose loss is `step_loss` (0-dim, on the device).
  void account(const at::Tensor& step_loss);
  /// Data-parallel training: the synchronizer every step calls (null: one process).
  void set_gradient_sync(GradientSync* sync) { sync_ = sync; }

 private:
  ForwardFn forward_;
  LossFn loss_;
  Optimizer& optimizer_;
  GradScaler& scaler_;
  Precision precision_;
  double grad_clip_;
  GradientSync* sync_ = nullptr;
  std::int64_t steps_ = 0;
  at::Tensor loss_sum_;    ///< float32 [] on the device
  at::Tensor first_loss_;  ///< float32 []
  at::Tensor first_bad_;   ///< float32 []: first non-finite step (1-based), 0 if none
};

/// Clips the global L2 norm of `grads` to `max_norm` in place, all on the device (no host read);
/// returns the norm before clipping as a 0-dim tensor.
at::Tensor clip_grad_norm(const std::vector<at::Tensor>& grads, double max_norm);

}  // namespace hone::train
