#pragma once
/// @file Replaceable layers: the hook that lets compression passes change a model's module tree.
///
/// LibTorch calls a child through the parent's typed member (`torch::nn::Conv2d conv1_`), so
/// replacing a registered child does not change what forward runs. hone's modules instead call
/// their layers through a LayerSlot: a registered child plus a type-erased call. A pass swaps the
/// slot's content (a folded conv, an int8 linear, two low-rank linears) and forward runs the new
/// layer; parameter names stay the same as with plain LibTorch modules.
///
/// Conventions every hone module keeps:
///   - layers are registered in execution order (a pass may rely on "the last layer");
///   - declare_flow(a, b) says that a's output goes into b and nowhere else, so a and b may be
///     fused (conv -> batch norm -> relu);
///   - a slot whose layer cannot take quantized tensors dequantizes them on the way in.
#include <torch/nn/module.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace hone::nn {

/// Layers that take quantized (quint8) tensors as input derive from this marker; every other
/// layer is given float tensors.
class TakesQuantizedInput {
 public:
  virtual ~TakesQuantizedInput() = default;
};

/// relu(a + b), or a + b: the join of a residual block, as a layer so that int8 can replace it.
/// Its forward takes two tensors, so a slot holding it is called through as<ResidualAddImpl>().
class ResidualAddImpl : public torch::nn::Module {
 public:
  explicit ResidualAddImpl(bool relu = true) : relu_(relu) {}
  /// Quantized inputs are dequantized first (an int8 add replaces this layer to keep them int8).
  virtual torch::Tensor forward(const torch::Tensor& a, const torch::Tensor& b);
  bool relu() const { return relu_; }

 private:
  bool relu_;
};
TORCH_MODULE(ResidualAdd);

/// A module and how to call it with one tensor.
struct Layer {
  std::shared_ptr<torch::nn::Module> module;
  std::function<torch::Tensor(const torch::Tensor&)> call;
  bool takes_quantized = false;
};

/// x [..., in] -> [..., out] as one addmm on the flattened rows (bias in the GEMM's epilogue;
/// torch::nn::Linear on 3-D inputs launched a separate bias add on CUDA).
torch::Tensor linear_rows(const torch::nn::LinearImpl& linear, const torch::Tensor& x);

/// Wraps any module with `forward(Tensor) -> Tensor`; Linear runs as linear_rows and LSTM returns
/// its output sequence (not the state).
template <typename Impl>
Layer make_layer(std::shared_ptr<Impl> module) {
  Layer layer;
  Impl* raw = module.get();
  if constexpr (std::is_same_v<Impl, torch::nn::LinearImpl>) {
    layer.call = [raw](const torch::Tensor& x) { return linear_rows(*raw, x); };
  } else if constexpr (std::is_base_of_v<ResidualAddImpl, Impl>) {
    layer.call = [](const torch::Tensor&) -> torch::Tensor {
      throw std::logic_error("a residual add takes two tensors; call it through as<ResidualAddImpl>()");
    };
  } else if constexpr (std::is_same_v<Impl, torch::nn::LSTMImpl>) {
    layer.call = [raw](const torch::Tensor& x) { return std::get<0>(raw->forward(x)); };
  } else {
    layer.call = [raw](const torch::Tensor& x) { return raw->forward(x); };
  }
  // Identity, ReLU and Dropout (a no-op in eval) work on quantized tensors as they are: letting
  // them through keeps an int8 model int8 across the identities folding leaves behind.
  layer.takes_quantized = std::is_base_of_v<TakesQuantizedInput, Impl> ||
                          std::is_same_v<Impl, torch::nn::IdentityImpl> || std::is_same_v<Impl, torch::nn::ReLUImpl> ||
                          std::is_same_v<Impl, torch::nn::DropoutImpl>;
  layer.module = std::move(module);
  return layer;
}

template <typename Impl>
Layer make_layer(const torch::nn::ModuleHolder<Impl>& holder) {
  return make_layer(holder.ptr());
}

class Module;

/// What a hone module's forward calls a layer through.
class LayerSlot {
 public:
  explicit LayerSlot(Layer layer) : layer_(std::move(layer)) {}
  torch::Tensor operator()(const torch::Tensor& x) const {
    if (!layer_.takes_quantized && x.is_quantized()) return layer_.call(x.dequantize());
    return layer_.call(x);
  }
  const std::shared_ptr<torch::nn::Module>& module() const { return layer_.module; }
  /// The layer as `Impl`, or nullptr when it is another type.
  template <typename Impl>
  Impl* as() const {
    return dynamic_cast<Impl*>(layer_.module.get());
  }
  bool takes_quantized() const { return layer_.takes_quantized; }

 private:
  friend class Module;
  Layer layer_;
};

/// A torch::nn::Module whose layers live in slots that compression passes may replace.
class Module : public torch::nn::Module {
 public:
  using torch::nn::Module::Module;

  /// Registers the layer's module under `name` and returns the slot forward calls it through
  /// (the pointer stays valid for the module's lifetime).
  LayerSlot* register_layer(const std::string& name, Layer layer);
  template <typename Holder>
  LayerSlot* register_layer(const std::string& name, Holder module) {
    return register_layer(name, make_layer(std::move(module)));
  }
  /// Puts `layer` in slot `name` (the registered child too). Throws hone::Error naming the slot
  /// when there is none.
  void replace_layer(const std::string& name, Layer layer);

  /// Slots in registration (= execution) order.
  const std::vector<std::pair<std::string, std::unique_ptr<LayerSlot>>>& layers() const { return slots_; }
  /// nullptr when there is no slot of that name.
  LayerSlot* find_layer(const std::string& name) const;

  /// `producer`'s output goes into `consumer` and nowhere else (both slot names of this module).
  void declare_flow(const std::string& producer, const std::string& consumer);
  const std::vector<std::pair<std::string, std::string>>& flows() const { return flows_; }

 private:
  std::vector<std::pair<std::string, std::unique_ptr<LayerSlot>>> slots_;
  std::vector<std::pair<std::string, std::string>> flows_;
};

/// One slot of a module tree, with its dotted path ("features.3.conv1") and its parent.
struct SlotRef {
  std::string path;
  Module* parent = nullptr;
  std::string name;  ///< the slot's name in its parent
  LayerSlot* slot = nullptr;
};

/// Every slot under `root` in execution order (depth first, children in registration order).
std::vector<SlotRef> all_slots(torch::nn::Module& root);
/// The slot at `path`; throws hone::Error naming the path when there is none.
SlotRef find_slot(torch::nn::Module& root, const std::string& path);

/// Pairs (producer, consumer) of declared flows in the whole tree, as full slot paths.
std::vector<std::pair<SlotRef, SlotRef>> all_flows(torch::nn::Module& root);

/// Runs its layers one after another; children are named "0", "1", ... as in torch::nn::Sequential
/// (so parameter names are the same), and each layer flows into the next.
class ChainImpl : public Module {
 public:
  ChainImpl() = default;
  void push_back(Layer layer) {
    const auto name = std::to_string(layers().size());
    register_layer(name, std::move(layer));
    if (layers().size() > 1) declare_flow(std::to_string(layers().size() - 2), name);
  }
  template <typename Holder>
  void push_back(Holder module) {
    push_back(make_layer(std::move(module)));
  }
  torch::Tensor forward(torch::Tensor x);
  std::size_t size() const { return layers().size(); }
};
TORCH_MODULE(Chain);

}  // namespace hone::nn
