#pragma once
/// @file The whole training step — forward, loss, backward, unscale/clip and the optimizer update —
/// captured once as a CUDA graph and replayed: one launch per step instead of hundreds, which is
/// where a small model's step time goes in eager mode. Capturable because every piece keeps its
/// state on the device: hone's fused optimizers (step counters and the learning rate are device
/// tensors; the trainer writes the rate with a fill kernel before each replay), the loss scaler
/// (ATen's _amp_* ops), clipping (train_step.h's clip_grad_norm). The inputs are static: copy each
/// batch into input()/target() before replay(). A batch of another shape cannot replay: run it
/// through an eager TrainStep sharing the optimizer (the trainer does), or drop it.
///
///   train::GraphedStep step(forward, loss, *optimizer, scaler, Precision::kBf16, 1.0, first_batch, lr, 3);
///   step.input().copy_(x); step.target().copy_(y); lr.fill_(schedule.at(i));
///   step.replay();                         // the static step_loss() holds this step's loss
#include <ATen/core/Tensor.h>

#include <memory>
#include <vector>

#include "hone/train/grad_scaler.h"
#include "hone/train/optimizer.h"
#include "hone/train/precision.h"
#include "hone/train/train_step.h"

namespace hone::train {

class GraphedStep {
 public:
  /// Warms up with `warmup` eager steps on a side stream, then captures. The warm-up leaves no
  /// trace: the parameters, the optimizer's and the scaler's state and the `restore` tensors (a
  /// model's buffers: BatchNorm statistics) get their values from before it back, so the first
  /// replay is the run's first step. Non-CUDA devices or builds are a hone::UsageError naming the option
  /// cuda_graphs; a model that cannot be captured (dynamic shapes, host syncs) is a hone::Error
  /// naming the reason.
  GraphedStep(ForwardFn forward, LossFn loss, Optimizer& optimizer, GradScaler& scaler, Precision precision,
              double grad_clip, const Batch& example, const at::Tensor& lr, int warmup,
              const std::vector<at::Tensor>& restore = {});
  ~GraphedStep();
  GraphedStep(const GraphedStep&) = delete;
  GraphedStep& operator=(const GraphedStep&) = delete;

  at::Tensor& input() { return input_; }
  at::Tensor& target() { return target_; }
  /// This step's loss (a static device tensor, overwritten by each replay).
  const at::Tensor& step_loss() const { return loss_; }
  /// Whether `batch` has the captured shapes (and so can be copied in and replayed).
  bool fits(const Batch& batch) const;
  void replay();

 private:
  void step_body();
  ForwardFn forward_;
  LossFn loss_fn_;
  Optimizer& optimizer_;
  GradScaler& scaler_;
  Precision precision_;
  double grad_clip_;
  at::Tensor input_, target_, loss_, lr_;
  struct Graph;
  std::unique_ptr<Graph> graph_;
};

}  // namespace hone::train
