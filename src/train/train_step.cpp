#include "hone/train/train_step.h"

#include <ATen/ATen.h>

#include "hone/core/error.h"

namespace hone::train {

at::Tensor clip_grad_norm(const std::vector<at::Tensor>& grads, double max_norm) {
  HONE_CHECK(!grads.empty(), "no gradients to clip");
  at::NoGradGuard no_grad;
  const auto norms = at::_foreach_norm(grads, 2);
  const at::Tensor total = at::linalg_vector_norm(at::stack(norms), 2);
  // As torch.nn.utils.clip_grad_norm_: scale by max_norm / (norm + 1e-6), never up.
  const at::Tensor coefficient = at::clamp_max(max_norm / (total + 1e-6), 1.0);
  // The Tensor overload by name: a lone Tensor would also convert to a one-element TensorList.
  at::_ops::_foreach_mul__Tensor::call(grads, coefficient);
  return total;
}

TrainStep::TrainStep(ForwardFn forward, LossFn loss, Optimizer& optimizer, GradScaler& scaler, Precision precision,
                     double grad_clip, const c10::Device& device)
    : forward_(std::move(forward)),
      loss_(std::move(loss)),
      optimizer_(optimizer),
      scaler_(scaler),
      precision_(precision),
      grad_clip_(grad_clip) {
  HONE_CHECK(!(needs_loss_scaling(precision) && !scaler.enabled()), "fp16 training needs an enabled grad scaler");
  const auto on = at::TensorOptions().device(device).dtype(at::kFloat);
  loss_sum_ = at::zeros({}, on);
  first_loss_ = at::zeros({}, on);
  first_bad_ = at::zeros({}, on);
}

void TrainStep::run(const std::vector<Batch>& micro_batches, const at::Tensor& lr) {
  HONE_CHECK(!micro_batches.empty(), "a step needs at least one micro-batch");
  optimizer_.zero_grad();
  if (sync_ != nullptr) sync_->begin_step();
  const double n = static_cast<double>(micro_batches.size());
  at::Tensor step_loss = at::zeros_like(loss_sum_);
  for (std::size_t i = 0; i < micro_batches.size(); ++i) {
    const Batch& batch = micro_batches[i];
    if (batch.input.size(0) == 0) continue;  // a rank's empty shard: zeros to the all-reduce
    at::Tensor loss;
    {
      PrecisionScope scope(precision_, batch.input.device());
      loss = loss_(forward_(batch.input), batch.target);
    }
    // The mean of the micro-batches' mean losses: the large batch's loss when they are equal-sized.
    loss = loss.to(at::kFloat) * (batch.loss_weight / n);
    if (sync_ != nullptr) sync_->before_backward(i + 1 == micro_batches.size());
    scaler_.scale(loss).backward();
    step_loss.add_(loss.detach());
  }
  if (sync_ != nullptr) sync_->finish_gradients();
  const auto grads = optimizer_.grads();
  at::Tensor found_inf = scaler_.unscale(grads);
  if (sync_ != nullptr && found_inf.defined()) sync_->agree(found_inf);
  if (grad_clip_ > 0 && !grads.empty()) clip_grad_norm(grads, grad_clip_);
  optimizer_.step(lr, found_inf);
  scaler_.update(found_inf);
  account(step_loss);
}

void TrainStep::account(const at::Tensor& step_loss) {
  ++steps_;
  // Device-side book-keeping: the sum, the first loss, the first non-finite step.
  if (steps_ == 1) first_loss_.copy_(step_loss);
  loss_sum_.add_(step_loss);
  const at::Tensor bad = at::logical_and(at::logical_not(at::isfinite(step_loss)), first_bad_ == 0);
  first_bad_.copy_(at::where(bad, at::full({}, static_cast<double>(steps_), first_bad_.options()), first_bad_));
}

double TrainStep::take_loss_sum() {
  const double sum = loss_sum_.item<double>();
  loss_sum_.zero_();
  return sum;
}

double TrainStep::first_loss() const { return first_loss_.item<double>(); }

std::int64_t TrainStep::first_non_finite_step() const { return static_cast<std::int64_t>(first_bad_.item<double>()); }

}  // namespace hone::train
