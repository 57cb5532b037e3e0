#include "hone/train/activation_checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/autograd.h>
#include <torch/custom_class.h>

#include <optional>

#include "hone/core/error.h"

#ifdef HONE_WITH_CUDA
#include <ATen/cuda/CUDAGeneratorImpl.h>
#endif

namespace hone::train {
namespace {

/// What the recomputation needs: the block, and the RNG and autocast state of the forward.
struct CheckpointState : torch::CustomClassHolder {
  models::Model::Block block;
  at::Tensor cpu_rng;
  std::optional<at::Tensor> cuda_rng;
  c10::DeviceIndex cuda_index = 0;
  c10::DeviceType device_type = c10::kCPU;
  bool autocast = false;
  c10::ScalarType autocast_dtype = c10::kBFloat16;
};

at::Generator cpu_generator() { return at::detail::getDefaultCPUGenerator(); }

/// Sets the RNG to `state`'s forward-time values while alive, then back.
class RngFork {
 public:
  explicit RngFork(const CheckpointState& state) : state_(state) {
    saved_cpu_ = cpu_generator().get_state();
    cpu_generator().set_state(state.cpu_rng);
#ifdef HONE_WITH_CUDA
    if (state.cuda_rng) {
      at::Generator generator = at::cuda::detail::getDefaultCUDAGenerator(state.cuda_index);
      saved_cuda_ = generator.get_state();
      generator.set_state(*state.cuda_rng);
    }
#endif
  }
  ~RngFork() {
    cpu_generator().set_state(saved_cpu_);
#ifdef HONE_WITH_CUDA
    if (saved_cuda_) {
      at::Generator generator = at::cuda::detail::getDefaultCUDAGenerator(state_.cuda_index);
      generator.set_state(*saved_cuda_);
    }
#endif
  }

 private:
  const CheckpointState& state_;
  at::Tensor saved_cpu_;
  std::optional<at::Tensor> saved_cuda_;
};

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  /// `anchor` is an empty tensor that requires grad, so the output does even when x does not (the
  /// first block's input is data): otherwise backward would never reach the block's parameters.
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& anchor,
                            c10::intrusive_ptr<CheckpointState> state) {
    (void)anchor;
    state->device_type = x.device().type();
    state->cpu_rng = cpu_generator().get_state();
#ifdef HONE_WITH_CUDA
    if (x.is_cuda()) {
      state->cuda_index = x.device().index();
      state->cuda_rng = at::cuda::detail::getDefaultCUDAGenerator(state->cuda_index).get_state();
    }
#endif
    state->autocast = at::autocast::is_autocast_enabled(state->device_type);
    state->autocast_dtype = at::autocast::get_autocast_dtype(state->device_type);
    ctx->save_for_backward({x});
    ctx->saved_data["state"] = c10::IValue::make_capsule(state);
    // Function::apply runs forward with grad mode off: nothing of the block is kept.
    return state->block(x);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    auto holder = ctx->saved_data["state"].toCapsule();
    auto* state = static_cast<CheckpointState*>(holder.get());
    const at::Tensor saved = ctx->get_saved_variables().at(0);
    at::Tensor x = saved.detach();
    x.requires_grad_(saved.requires_grad());
    at::Tensor output;
    {
      RngFork fork(*state);
      const bool was_autocast = at::autocast::is_autocast_enabled(state->device_type);
      const c10::ScalarType was_dtype = at::autocast::get_autocast_dtype(state->device_type);
      at::autocast::set_autocast_enabled(state->device_type, state->autocast);
      at::autocast::set_autocast_dtype(state->device_type, state->autocast_dtype);
      {
        at::AutoGradMode grad(true);
        output = state->block(x);
      }
      at::autocast::set_autocast_enabled(state->device_type, was_autocast);
      at::autocast::set_autocast_dtype(state->device_type, was_dtype);
    }
    // Accumulates into the block's parameters' .grad (they are leaves) and into x.grad.
    torch::autograd::backward({output}, {grad_outputs.at(0)});
    return {x.requires_grad() ? x.grad() : at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor checkpointed(const models::Model::Block& block, const at::Tensor& x) {
  if (!at::GradMode::is_enabled()) return block(x);
  auto state = c10::make_intrusive<CheckpointState>();
  state->block = block;
  static thread_local at::Tensor anchor = at::empty({0}).requires_grad_(true);
  return CheckpointFunction::apply(x, anchor, state);
}

void enable_activation_checkpointing(models::Model& model) {
  if (model.block_count() <= 0) {
    fail_usage_option("checkpoint_activations",
                      "model '{}' has no repeated blocks to checkpoint (cnn, mobilenet, transformer and minilm do)",
                      model.architecture());
  }
  model.set_block_runner(checkpointed);
}

void disable_activation_checkpointing(models::Model& model) { model.set_block_runner({}); }

}  // namespace hone::train
