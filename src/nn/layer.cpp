#include "hone/nn/layer.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "hone/core/error.h"

namespace hone::nn {

torch::Tensor linear_rows(const torch::nn::LinearImpl& linear, const torch::Tensor& x) {
  const auto& weight = linear.weight;
  auto out_shape = x.sizes().vec();
  out_shape.back() = weight.size(0);
  const auto rows = x.reshape({-1, x.size(-1)});
  const auto y = linear.bias.defined() ? at::addmm(linear.bias, rows, weight.t()) : at::mm(rows, weight.t());
  return y.view(out_shape);
}

torch::Tensor ResidualAddImpl::forward(const torch::Tensor& a, const torch::Tensor& b) {
  const auto sum = (a.is_quantized() ? a.dequantize() : a) + (b.is_quantized() ? b.dequantize() : b);
  return relu_ ? sum.relu_() : sum;
}

LayerSlot* Module::register_layer(const std::string& name, Layer layer) {
  HONE_CHECK(layer.module && layer.call, "register_layer('{}'): empty layer", name);
  HONE_CHECK(find_layer(name) == nullptr, "register_layer: slot '{}' already exists", name);
  register_module(name, layer.module);
  slots_.emplace_back(name, std::make_unique<LayerSlot>(std::move(layer)));
  return slots_.back().second.get();
}

void Module::replace_layer(const std::string& name, Layer layer) {
  auto* slot = find_layer(name);
  HONE_CHECK(slot != nullptr, "replace_layer: module {} has no layer slot '{}'", this->name(), name);
  HONE_CHECK(layer.module && layer.call, "replace_layer('{}'): empty layer", name);
  replace_module(name, layer.module);
  slot->layer_ = std::move(layer);
}

LayerSlot* Module::find_layer(const std::string& name) const {
  const auto it = std::find_if(slots_.begin(), slots_.end(), [&](const auto& entry) { return entry.first == name; });
  return it == slots_.end() ? nullptr : it->second.get();
}

void Module::declare_flow(const std::string& producer, const std::string& consumer) {
  HONE_CHECK(find_layer(producer) != nullptr && find_layer(consumer) != nullptr,
             "declare_flow({} -> {}): both must be layer slots", producer, consumer);
  flows_.emplace_back(producer, consumer);
}

namespace {

void collect_slots(torch::nn::Module& module, const std::string& prefix, std::vector<SlotRef>& out) {
  auto* hone_module = dynamic_cast<Module*>(&module);
  for (const auto& child : module.named_children()) {
    const auto path = prefix.empty() ? child.key() : prefix + "." + child.key();
    if (hone_module != nullptr) {
      if (auto* slot = hone_module->find_layer(child.key())) out.push_back({path, hone_module, child.key(), slot});
    }
    collect_slots(*child.value(), path, out);
  }
}

}  // namespace

std::vector<SlotRef> all_slots(torch::nn::Module& root) {
  std::vector<SlotRef> out;
  collect_slots(root, "", out);
  return out;
}

SlotRef find_slot(torch::nn::Module& root, const std::string& path) {
  const auto dot = path.rfind('.');
  const auto parent_path = dot == std::string::npos ? std::string() : path.substr(0, dot);
  const auto name = dot == std::string::npos ? path : path.substr(dot + 1);
  torch::nn::Module* parent = &root;
  if (!parent_path.empty()) {
    const auto modules = root.named_modules("", /*include_self=*/false);
    const auto* found = modules.find(parent_path);
    HONE_CHECK(found != nullptr, "no module '{}' in the model (looking for layer '{}')", parent_path, path);
    parent = found->get();
  }
  auto* hone_parent = dynamic_cast<Module*>(parent);
  LayerSlot* slot = hone_parent != nullptr ? hone_parent->find_layer(name) : nullptr;
  HONE_CHECK(slot != nullptr, "no replaceable layer '{}' in the model", path);
  return {path, hone_parent, name, slot};
}

std::vector<std::pair<SlotRef, SlotRef>> all_flows(torch::nn::Module& root) {
  std::vector<std::pair<SlotRef, SlotRef>> out;
  const auto visit = [&](const std::string& prefix, torch::nn::Module& module) {
    auto* hone_module = dynamic_cast<Module*>(&module);
    if (hone_module == nullptr) return;
    const auto full = [&](const std::string& name) { return prefix.empty() ? name : prefix + "." + name; };
    for (const auto& [producer, consumer] : hone_module->flows()) {
      out.emplace_back(SlotRef{full(producer), hone_module, producer, hone_module->find_layer(producer)},
                       SlotRef{full(consumer), hone_module, consumer, hone_module->find_layer(consumer)});
    }
  };
  visit("", root);
  for (const auto& item : root.named_modules("", /*include_self=*/false)) visit(item.key(), *item.value());
  return out;
}

torch::Tensor ChainImpl::forward(torch::Tensor x) {
  for (const auto& entry : layers()) x = (*entry.second)(x);
  return x;
}

}  // namespace hone::nn
