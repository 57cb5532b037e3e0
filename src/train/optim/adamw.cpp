// AdamW on ATen's fused kernel (_fused_adamw_, CPU and CUDA): one launch per parameter group, the
// learning rate and step counters on the device, found_inf honoured by the kernel (as PyTorch's
// `torch.optim.AdamW(fused=True)`).
#include <ATen/ATen.h>

#include "hone/core/error.h"
#include "hone/train/optimizer.h"

namespace hone::train {
namespace {

class AdamW final : public Optimizer {
 public:
  AdamW(const OptimizerOptions& o, std::vector<ParamGroup> groups)
      : Optimizer(std::move(groups)),
        options_(o),
        exp_avg_(zeros_like_params()),
        exp_avg_sq_(zeros_like_params()),
        steps_(zeros_like_params(/*scalar=*/true)) {}

  void step(const at::Tensor& lr, const at::Tensor& found_inf) override {
    at::NoGradGuard no_grad;
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      const auto grads = group_grads(g);
      at::_foreach_add_(steps_[g], 1);
      const at::Tensor group_lr = groups_[g].lr_scale == 1.0 ? lr : lr * groups_[g].lr_scale;
      at::_fused_adamw_(groups_[g].params, grads, exp_avg_[g], exp_avg_sq_[g], /*max_exp_avg_sqs=*/{}, steps_[g],
                        group_lr, options_.beta1, options_.beta2, groups_[g].weight_decay, options_.eps,
                        /*amsgrad=*/false, /*maximize=*/false, /*grad_scale=*/std::nullopt,
                        found_inf.defined() ? std::optional<at::Tensor>(found_inf) : std::nullopt);
      // A skipped step does not count (PyTorch's fused AdamW does the same).
      if (found_inf.defined()) {
        const at::Tensor skipped = found_inf.squeeze();
        for (auto& step : steps_[g]) step.sub_(skipped);
      }
    }
  }

  std::vector<std::pair<std::string, at::Tensor>> state() const override {
    std::vector<std::pair<std::string, at::Tensor>> out;
    append_state(out, exp_avg_, "exp_avg");
    append_state(out, exp_avg_sq_, "exp_avg_sq");
    append_state(out, steps_, "step");
    return out;
  }

  void load_state(const std::vector<std::pair<std::string, at::Tensor>>& tensors) override {
    restore_state(tensors, exp_avg_, "exp_avg");
    restore_state(tensors, exp_avg_sq_, "exp_avg_sq");
    restore_state(tensors, steps_, "step");
  }

  std::string name() const override { return "adamw"; }

 private:
  OptimizerOptions options_;
  Buffers exp_avg_, exp_avg_sq_, steps_;
};

}  // namespace

std::unique_ptr<Optimizer> make_adamw(const OptimizerOptions& o, std::vector<ParamGroup> groups) {
  if (!(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1))
    fail_usage_option("betas", "AdamW needs 0 <= beta1, beta2 < 1, got {} and {}", o.beta1, o.beta2);
  if (!(o.eps > 0)) fail_usage_option("eps", "AdamW needs eps > 0, got {}", o.eps);
  return std::make_unique<AdamW>(o, std::move(groups));
}

}  // namespace hone::train
