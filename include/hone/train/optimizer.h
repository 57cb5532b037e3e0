#pragma once
/// @file hone's optimizers: AdamW and SGD on ATen's fused kernels (one launch for all parameters,
/// CPU and CUDA), Lion on foreach ops. Unlike torch::optim they keep every step counter and the
/// learning rate on the device and take the loss scaler's found_inf, so a step never waits for
/// the host (and can be captured in a CUDA graph). Their state saves as named tensors.
///
///   auto groups = train::make_param_groups(*model, {.weight_decay = 0.01, .decay_norms_and_biases = false});
///   auto optimizer = train::make_optimizer({.kind = "adamw"}, groups, device);
///   optimizer->step(lr, found_inf);   // lr: a 0-dim float tensor on the device
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch/nn/module.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace hone::train {

/// Parameters that share a weight decay and a learning-rate multiplier.
struct ParamGroup {
  std::string name;  ///< "decay", "no_decay", "encoder"...
  std::vector<std::string> names;
  std::vector<at::Tensor> params;
  double weight_decay = 0;
  double lr_scale = 1.0;  ///< this group's lr = the schedule's lr × lr_scale
};

struct ParamGroupOptions {
  double weight_decay = 1e-4;
  /// false: norms' weights and all biases (1-D parameters) take no weight decay.
  bool decay_norms_and_biases = true;
  /// Parameters whose name starts with one of these prefixes get `prefix_lr_scale` (e.g. a
  /// pretrained encoder under a new head).
  std::vector<std::string> prefixes;
  double prefix_lr_scale = 1.0;
};

/// The trainable parameters of `model`, grouped by these rules (empty groups are dropped).
std::vector<ParamGroup> make_param_groups(const torch::nn::Module& model, const ParamGroupOptions& options);

struct OptimizerOptions {
  std::string kind = "adamw";  ///< adamw, sgd, lion
  double beta1 = 0.9;          ///< adamw, lion (lion's interpolation for the update)
  double beta2 = 0.999;        ///< adamw, lion (lion's momentum decay; 0.99 is usual)
  double eps = 1e-8;           ///< adamw
  double momentum = 0.9;       ///< sgd
  bool nesterov = false;       ///< sgd
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  /// One update from the gradients as they are (already unscaled and clipped). `lr` is a 0-dim
  /// float tensor on the parameters' device; `found_inf` (1-element float, or undefined) makes the
  /// step a no-op for parameters and state when it is nonzero.
  virtual void step(const at::Tensor& lr, const at::Tensor& found_inf) = 0;
  /// The state tensors by name (for checkpoints); load_state restores them strictly.
  virtual std::vector<std::pair<std::string, at::Tensor>> state() const = 0;
  virtual void load_state(const std::vector<std::pair<std::string, at::Tensor>>& tensors) = 0;
  virtual std::string name() const = 0;

  /// Drops every gradient (set to undefined, as set_to_none).
  void zero_grad();
  const std::vector<ParamGroup>& groups() const { return groups_; }
  std::vector<at::Tensor> grads() const;

 protected:
  explicit Optimizer(std::vector<ParamGroup> groups);
  /// The gradients of group g (undefined ones replaced by zeros, so fused kernels see every tensor).
  std::vector<at::Tensor> group_grads(std::size_t g) const;
  /// One buffer per parameter, per group (buffers[g][i] belongs to groups_[g].params[i]).
  using Buffers = std::vector<std::vector<at::Tensor>>;
  /// Zeros shaped like every parameter (`dtype` none: the parameter's), or 0-dim when `scalar`.
  Buffers zeros_like_params(bool scalar = false) const;
  /// Appends each buffer as "<parameter name>.<suffix>" (the state() of an optimizer).
  void append_state(std::vector<std::pair<std::string, at::Tensor>>& out, const Buffers& buffers,
                    const std::string& suffix) const;
  /// Restores each buffer from "<parameter name>.<suffix>" in `tensors` (shape checked); throws
  /// naming the tensor that is missing or of another shape.
  void restore_state(const std::vector<std::pair<std::string, at::Tensor>>& tensors, Buffers& buffers,
                     const std::string& suffix) const;
  std::vector<ParamGroup> groups_;
};

/// Unknown kinds and bad hyper-parameters throw hone::UsageError naming the option.
std::unique_ptr<Optimizer> make_optimizer(const OptimizerOptions& options, std::vector<ParamGroup> groups);

}  // namespace hone::train
