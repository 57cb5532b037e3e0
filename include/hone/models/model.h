#pragma once
/// @file The zoo's common base: every architecture is a torch::nn::Module with one tensor in and one
/// tensor out, built from a JSON config it can give back, so a saved run can rebuild it exactly.
///
/// How to add a model: write src/models/<name>.cpp + include/hone/models/<name>.h with a config
/// struct (to_json / from_json that rejects unknown keys) and a class deriving from Model, then add
/// one line to src/models/registry.cpp. See docs/adding-a-model-or-dataset.md.
#include "hone/nn/layer.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace hone::models {

/// Channels that structured pruning must remove together. Paths name layer slots (see
/// hone/nn/layer.h). Removing channel c of the group removes output channel c of every producer
/// (weight row, bias), entry c of every norm, and input channel c of every consumer.
struct ChannelGroup {
  std::string name;                    ///< for reports, e.g. "features.3 inner"
  std::vector<std::string> producers;  ///< Conv2d / Linear whose outputs are the group
  std::vector<std::string> norms;      ///< BatchNorm over the group
  std::vector<std::string> consumers;  ///< Conv2d / Linear whose inputs are the group
};

class Model : public nn::Module {
 public:
  using nn::Module::Module;
  /// Classification: [B, ...input] -> logits [B, classes]. Forecasting: [B, T, F] -> [B, outputs].
  virtual torch::Tensor forward(torch::Tensor input) = 0;
  /// The registry name ("cnn", "lstm"...).
  virtual std::string architecture() const = 0;
  /// The full config, enough for make_model(architecture(), config()) to rebuild this model.
  virtual nlohmann::json config() const = 0;
  /// Channel groups structured pruning may shrink; a model that declares none cannot be
  /// structurally pruned (the pass says so and leaves it unchanged).
  virtual std::vector<ChannelGroup> channel_groups() const { return {}; }

  /// One repeated block of the model (a residual block, an encoder layer) applied to x.
  using Block = std::function<torch::Tensor(const torch::Tensor&)>;
  /// How the blocks are run: directly (empty), or through a wrapper such as activation
  /// checkpointing (hone/train/activation_checkpoint.h), which recomputes each in backward.
  using BlockRunner = std::function<torch::Tensor(const Block& block, const torch::Tensor& x)>;
  /// How many blocks forward runs through run_block (0: the model has none to checkpoint).
  virtual std::int64_t block_count() const { return 0; }
  void set_block_runner(BlockRunner runner) { block_runner_ = std::move(runner); }

 protected:
  torch::Tensor run_block(const Block& block, const torch::Tensor& x) const {
    return block_runner_ ? block_runner_(block, x) : block(x);
  }
  /// A Chain's layers in order, those from `first_block` on as blocks.
  torch::Tensor run_chain(const nn::ChainImpl& chain, torch::Tensor x, std::size_t first_block) const;

 private:
  BlockRunner block_runner_;
};

using ModelPtr = std::shared_ptr<Model>;

/// Number of parameters (trainable or not); buffers are counted by count_buffer_elements.
std::int64_t count_parameters(const torch::nn::Module& module);
std::int64_t count_buffer_elements(const torch::nn::Module& module);

/// Throws hone::Error when `config` is not an object or has a key outside `allowed`;
/// the message names `what` (e.g. "cnn config") and lists the allowed keys.
void check_config_keys(const nlohmann::json& config, const std::string& what,
                       std::initializer_list<const char*> allowed);

}  // namespace hone::models
