#include "hone/train/graphed_step.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>

#include "hone/core/error.h"

#ifdef HONE_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace hone::train {

#ifdef HONE_WITH_CUDA
struct GraphedStep::Graph {
  at::cuda::CUDAGraph graph;
};
#else
struct GraphedStep::Graph {};
#endif

void GraphedStep::step_body() {
  // No zero_grad inside: the captured backward writes fresh gradient buffers (the graph's own
  // memory) every replay, since the gradients were unset when capture began.
  at::Tensor loss;
  {
    PrecisionScope scope(precision_, input_.device());
    loss = loss_fn_(forward_(input_), target_).to(at::kFloat);
  }
  scaler_.scale(loss).backward();
  loss_.copy_(loss.detach());
  const auto grads = optimizer_.grads();
  const at::Tensor found_inf = scaler_.unscale(grads);
  if (grad_clip_ > 0 && !grads.empty()) clip_grad_norm(grads, grad_clip_);
  optimizer_.step(lr_, found_inf);
  scaler_.update(found_inf);
}

GraphedStep::GraphedStep(ForwardFn forward, LossFn loss, Optimizer& optimizer, GradScaler& scaler, Precision precision,
                         double grad_clip, const Batch& example, const at::Tensor& lr, int warmup,
                         const std::vector<at::Tensor>& restore)
    : forward_(std::move(forward)),
      loss_fn_(std::move(loss)),
      optimizer_(optimizer),
      scaler_(scaler),
      precision_(precision),
      grad_clip_(grad_clip),
      lr_(lr) {
  if (!example.input.is_cuda())
    fail_usage_option("cuda_graphs", "a whole-step CUDA graph needs a CUDA device, got {}",
                      example.input.device().str());
#ifdef HONE_WITH_CUDA
  input_ = example.input.clone();
  target_ = example.target.clone();
  loss_ = at::zeros({}, input_.options().dtype(at::kFloat));
  const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, input_.device().index());
  {
    // The side stream starts after the work already queued (the inputs' copies).
    at::cuda::CUDAEvent ready;
    ready.record(c10::cuda::getCurrentCUDAStream(input_.device().index()));
    ready.block(side);
  }
  // What the warm-up changes, to put back after the capture (in place: the graph holds these tensors).
  std::vector<std::pair<at::Tensor, at::Tensor>> saved;  // (tensor, its value before)
  {
    at::NoGradGuard no_grad;
    for (const auto& group : optimizer_.groups()) {
      for (const auto& p : group.params) saved.emplace_back(p, p.detach().clone());
    }
    for (const auto& t : restore) {
      if (t.defined()) saved.emplace_back(t, t.detach().clone());
    }
  }
  std::vector<std::pair<std::string, at::Tensor>> optimizer_state = optimizer_.state();
  for (auto& [name, tensor] : optimizer_state) tensor = tensor.clone();
  const nlohmann::json scaler_state = scaler_.state();
  // Autocast's weight cache would hold casts allocated during capture: off, as PyTorch advises.
  const bool cache = at::autocast::is_autocast_cache_enabled();
  at::autocast::set_autocast_cache_enabled(false);
  try {
    c10::cuda::CUDAStreamGuard guard(side);
    for (int i = 0; i < std::max(warmup, 1); ++i) {
      optimizer_.zero_grad();
      step_body();
    }
    side.synchronize();
    optimizer_.zero_grad();
    graph_ = std::make_unique<Graph>();
    graph_->graph.capture_begin();
    step_body();
    graph_->graph.capture_end();
  } catch (const c10::Error& e) {
    at::autocast::set_autocast_cache_enabled(cache);
    fail_option("cuda_graphs", "the training step cannot be captured as a CUDA graph ({}); train without CUDA graphs",
                e.what_without_backtrace());
  }
  at::autocast::set_autocast_cache_enabled(cache);
  side.synchronize();
  {
    at::NoGradGuard no_grad;
    for (auto& [tensor, before] : saved) tensor.detach().copy_(before);
  }
  optimizer_.load_state(optimizer_state);
  if (!scaler_state.is_null()) scaler_.load(scaler_state);
#else
  (void)restore;
  (void)warmup;
  fail_usage_option("cuda_graphs", "whole-step CUDA graphs need a CUDA build of hone (HONE_CUDA=ON)");
#endif
}

GraphedStep::~GraphedStep() = default;

bool GraphedStep::fits(const Batch& batch) const {
  return batch.input.sizes() == input_.sizes() && batch.target.sizes() == target_.sizes() &&
         batch.input.scalar_type() == input_.scalar_type() && batch.target.scalar_type() == target_.scalar_type();
}

void GraphedStep::replay() {
#ifdef HONE_WITH_CUDA
  graph_->graph.replay();
#endif
}

}  // namespace hone::train
