#include "hone/train/optimizer.h"

#include <ATen/ATen.h>

#include <map>

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
    bool prefixed = false;
    for (const auto& prefix : options.prefixes) prefixed = prefixed || item.key().starts_with(prefix);
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
    // The fused kernels take one gradient per parameter: one that got none this step (an unused
    // branch) steps with a zero gradient.
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    out.push_back(p.grad());
  }
  return out;
}

Optimizer::Buffers Optimizer::zeros_like_params(bool scalar) const {
  Buffers buffers;
  for (const auto& group : groups_) {
    std::vector<at::Tensor> list;
    for (const auto& p : group.params)
      list.push_back(scalar ? at::zeros({}, p.options()) : at::zeros_like(p, at::MemoryFormat::Preserve));
    buffers.push_back(std::move(list));
  }
  return buffers;
}

void Optimizer::append_state(std::vector<std::pair<std::string, at::Tensor>>& out, const Buffers& buffers,
                             const std::string& suffix) const {
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    for (std::size_t i = 0; i < groups_[g].params.size(); ++i)
      out.emplace_back(groups_[g].names[i] + "." + suffix, buffers[g][i]);
  }
}

void Optimizer::restore_state(const std::vector<std::pair<std::string, at::Tensor>>& tensors, Buffers& buffers,
                              const std::string& suffix) const {
  std::map<std::string, const at::Tensor*> by_name;
  for (const auto& [key, value] : tensors) by_name[key] = &value;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    for (std::size_t i = 0; i < groups_[g].params.size(); ++i) {
      const std::string name = groups_[g].names[i] + "." + suffix;
      const auto it = by_name.find(name);
      if (it == by_name.end()) fail("optimizer state '{}' is missing", name);
      at::Tensor& target = buffers[g][i];
      HONE_CHECK(it->second->sizes() == target.sizes(),
                 "optimizer state '{}' has shape {} but the optimizer expects {}", name, it->second->sizes(),
                 target.sizes());
      target.copy_(*it->second);
    }
  }
}

std::unique_ptr<Optimizer> make_optimizer(const OptimizerOptions& options, std::vector<ParamGroup> groups) {
  if (options.kind == "adamw") return make_adamw(options, std::move(groups));
  if (options.kind == "sgd") return make_sgd(options, std::move(groups));
  if (options.kind == "lion") return make_lion(options, std::move(groups));
  fail_usage_option("optimizer", "unknown optimizer '{}'; valid: adamw, sgd, lion", options.kind);
}

}  // namespace hone::train
