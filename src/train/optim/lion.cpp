// Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"): the update is the sign
// of an interpolation between momentum and gradient, with decoupled weight decay:
//   c = beta1 * m + (1 - beta1) * g;   w -= lr * (sign(c) + wd * w);   m = beta2 * m + (1 - beta2) * g
// ATen has no fused Lion; foreach ops keep it to a few launches per group.
#include <ATen/ATen.h>

#include "hone/core/error.h"
#include "hone/train/optimizer.h"

namespace hone::train {
namespace {

class Lion final : public Optimizer {
 public:
  Lion(const OptimizerOptions& o, std::vector<ParamGroup> groups)
      : Optimizer(std::move(groups)), options_(o), momentum_(zeros_like_params()) {}

  void step(const at::Tensor& lr, const at::Tensor& found_inf) override {
    at::NoGradGuard no_grad;
    // A skipped step (found_inf = 1) keeps weights and momentum: every change is scaled by keep.
    const at::Tensor keep = found_inf.defined() ? (1 - found_inf).squeeze() : at::ones_like(lr);
    for (std::size_t g = 0; g < groups_.size(); ++g) {
      auto& params = groups_[g].params;
      auto& m = momentum_[g];
      const auto grads = group_grads(g);
      const at::Tensor group_lr = (groups_[g].lr_scale == 1.0 ? lr : lr * groups_[g].lr_scale) * keep;
      auto update = at::_foreach_lerp(m, grads, 1 - options_.beta1);
      at::_foreach_sign_(update);
      if (groups_[g].weight_decay > 0) {
        // w *= 1 - lr * wd
        const at::Tensor shrink = 1 - group_lr * groups_[g].weight_decay;
        at::_ops::_foreach_mul__Tensor::call(params, shrink);
      }
      at::_ops::_foreach_mul__Tensor::call(update, group_lr);
      at::_foreach_sub_(params, update);
      // m += (1 - beta2) * keep * (g - m)
      auto delta = at::_foreach_sub(grads, m);
      at::_ops::_foreach_mul__Tensor::call(delta, keep * (1 - options_.beta2));
      at::_foreach_add_(m, delta);
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

  std::string name() const override { return "lion"; }

 private:
  OptimizerOptions options_;
  Buffers momentum_;
};

}  // namespace

std::unique_ptr<Optimizer> make_lion(const OptimizerOptions& o, std::vector<ParamGroup> groups) {
  if (!(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1))
    fail_usage_option("betas", "Lion needs 0 <= beta1, beta2 < 1, got {} and {}", o.beta1, o.beta2);
  return std::make_unique<Lion>(o, std::move(groups));
}

}  // namespace hone::train
