// SGD with momentum (optionally Nesterov) on ATen's fused kernel (_fused_sgd_, CPU and CUDA).
#include <ATen/ATen.h>

#include "hone/core/error.h"
#include "hone/train/optimizer.h"

namespace hone::train {
namespace {

class Sgd final : public Optimizer {
 public:
  Sgd(const OptimizerOptions& o, std::vector<ParamGroup> groups)
      : Optimizer(std::move(groups)), options_(o), momentum_(zeros_like_params()) {}

  void step(const at::Tensor& lr, const at::Tensor& found_inf) override {
    at::NoGradGuard no_grad;
    // The fused kernel starts the momentum buffer from the first gradient when is_first_step; the
    // buffers start at zero here instead (the same thing: buf = momentum * 0 + grad), which keeps
    // the step free of host state and makes a resumed run identical.
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      const auto grads = group_grads(g);
      const at::Tensor group_lr = groups_[g].lr_scale == 1.0 ? lr : lr * groups_[g].lr_scale;
      at::_fused_sgd_(groups_[g].params, grads, options_.momentum > 0 ? at::TensorList(momentum_[g]) : at::TensorList(),
                      groups_[g].weight_decay, options_.momentum, group_lr, /*dampening=*/0, options_.nesterov,
                      /*maximize=*/false, /*is_first_step=*/false, /*grad_scale=*/std::nullopt,
                      found_inf.defined() ? std::optional<at::Tensor>(found_inf) : std::nullopt);
    }
  }

  std::vector<std::pair<std::string, at::Tensor>> state() const override {
    std::vector<std::pair<std::string, at::Tensor>> out;
    append_state(out, momentum_, "momentum");
    return out;
  }

  void load_state(const std::vector<std::pair<std::string, at::Tensor>>& tensors) override {
    restore_state(tensors, momentum_, "momentum");
  }

  std::string name() const override { return "sgd"; }

 private:
  OptimizerOptions options_;
  Buffers momentum_;
};

}  // namespace

std::unique_ptr<Optimizer> make_sgd(const OptimizerOptions& o, std::vector<ParamGroup> groups) {
  if (!(o.momentum >= 0 && o.momentum < 1))
    fail_usage_option("momentum", "SGD needs 0 <= momentum < 1, got {}", o.momentum);
  if (o.nesterov && o.momentum == 0) fail_usage_option("nesterov", "Nesterov momentum needs momentum > 0");
  return std::make_unique<Sgd>(o, std::move(groups));
}

}  // namespace hone::train
