#include "hone/train/optimizer.h"

#include <ATen/ATen.h>

#include "hone/core/error.h"

namespace hone::train {

std::unique_ptr<Optimizer> make_adamw(const OptimizerOptions& options, std::vector<ParamGroup> groups);
std::unique_ptr<Optimizer> make_sgd(const OptimizerOptions& options, std::vector<ParamGroup> groups);
std::unique_ptr<Optimizer> make_lion(const OptimizerOptions& options, std::vector<ParamGroup> groups);

std::vector<ParamGroup> make_param_groups(const torch::nn::Module& model, const ParamGroupOptions& options) {
  if (options.weight_decay < 0)
    fail_usage_option("weight_decay", "weight decay must be >= 0, got {}", options.weight_decay);
  if (!(options.prefix_lr_scale > 0)) fail_usage_option("prefix_lr_scale", "lr scale must be > 0");
  ParamGroup decay{"decay", {}, {}, options.weight_decay, 1.0};
  ParamGroup no_decay{"no_decay", {}, {}, 0.0, 1.0};
  ParamGroup prefixed_decay{"prefix_decay", {}, {}, options.weight_decay, options.prefix_lr_scale};
  ParamGroup prefixed_no_decay{"prefix_no_decay", {}, {}, 0.0, options.prefix_lr_scale};
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    const at::Tensor& p = item.value();
    if (!p.requires_grad()) continue;
    const bool skip_decay = !options.decay_norms_and_biases && p.dim() <= 1;
    const bool prefixed = !options.prefix.empty() && item.key().rfind(options.prefix, 0) == 0;
    ParamGroup& group = prefixed ? (skip_decay ? prefixed_no_decay : prefixed_decay) : (skip_decay ? no_decay : decay);
    group.names.push_back(item.key());
    group.params.push_back(p);
  }
  std::vector<ParamGroup> groups;
  for (auto* g : {&decay, &no_decay, &prefixed_decay, &prefixed_no_decay}) {
    if (!g->params.empty()) groups.push_back(std::move(*g));
  }
  HONE_CHECK(!groups.empty(), "the model has no trainable parameters");
  return groups;
}

Optimizer::Optimizer(std::vector<ParamGroup> groups) : groups_(std::move(groups)) {
  for (const auto& group : groups_) {
    for (std::size_t i = 0; i < group.params.size(); ++i) {
      const auto& p = group.params[i];
      HONE_CHECK(p.scalar_type() == at::kFloat, "optimizer: parameter '{}' is {}; hone keeps fp32 master weights",
                 group.names[i], p.scalar_type());
      HONE_CHECK(p.device() == groups_.front().params.front().device(),
                 "optimizer: parameter '{}' is on {}, others on {}", group.names[i], p.device().str(),
                 groups_.front().params.front().device().str());
    }
  }
}

void Optimizer::zero_grad() {
  for (auto& group : groups_) {
    for (auto& p : group.params) p.mutable_grad() = at::Tensor();
  }
}

std::vector<at::Tensor> Optimizer::grads() const {
  std::vector<at::Tensor> out;
  for (const auto& group : groups_) {
    for (const auto& p : group.params) {
      if (p.grad().defined()) out.push_back(p.grad());
    }
  }
  return out;
}

std::vector<at::Tensor> Optimizer::group_grads(std::size_t g) const {
  std::vector<at::Tensor> out;
  for (const auto& p : groups_[g].params) {
    // A parameter that got no gradient this step (an unused branch) steps with zeros, as its
    // decoupled weight decay still applies in PyTorch's fused AdamW only when it has a grad:
    // keep it simple and give it one.
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    out.push_back(p.grad());
  }
  return out;
}

void Optimizer::restore(const std::vector<std::pair<std::string, at::Tensor>>& tensors, const std::string& name,
                        at::Tensor& target) {
  for (const auto& [key, value] : tensors) {
    if (key != name) continue;
    HONE_CHECK(value.sizes() == target.sizes(), "optimizer state '{}' has shape {} but the optimizer expects {}", name,
               value.sizes(), target.sizes());
    target.copy_(value);
    return;
  }
  fail("optimizer state '{}' is missing", name);
}

std::unique_ptr<Optimizer> make_optimizer(const OptimizerOptions& options, std::vector<ParamGroup> groups) {
  if (options.kind == "adamw") return make_adamw(options, std::move(groups));
  if (options.kind == "sgd") return make_sgd(options, std::move(groups));
  if (options.kind == "lion") return make_lion(options, std::move(groups));
  fail_usage_option("optimizer", "unknown optimizer '{}'; valid: adamw, sgd, lion", options.kind);
}

}  // namespace hone::train
