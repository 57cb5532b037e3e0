#pragma once
/// @file The plans `hone optimize` tries: recipes of hone's compression passes, chosen for what the
/// model holds (conv, linear, LSTM layers, batch norms, channel groups) and the device it must run
/// on. Post-training plans are cheap and all measured; training plans (structured pruning, then
/// distillation from the source, then QAT or a float precision) are measured first on a short
/// rung and trained fully only when promising (see optimize.h).
///
/// How to add a plan: append it in propose_candidates() with the condition under which it can pay;
/// its passes must exist in the compress registry (a test checks every plan's recipe parses).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "hone/models/model.h"
#include "hone/optimize/targets.h"

namespace hone::optimize {

/// What the model holds, for choosing plans that can change something.
struct ModelTraits {
  bool conv = false, linear = false, lstm = false, batch_norm = false;
  bool channel_groups = false;  ///< Model::channel_groups() is not empty (structured pruning)
};
ModelTraits describe_model(models::Model& model);

struct CandidatePlan {
  std::string id;         ///< p01... post-training, t01... training
  std::string label;      ///< what a person reads
  std::string stage;      ///< post-training | training
  nlohmann::json recipe;  ///< {"passes": [...]}: replayable with hone compress --recipe
};

/// Where the plans will run.
struct DeviceTraits {
  bool cuda = false;
  bool native_bf16 = false;  ///< CUDA, or a CPU with AVX512-BF16/AMX
};

/// The plans for a model of `traits` on `device` under `targets` (the accuracy budget feeds the
/// passes that take one).
std::vector<CandidatePlan> propose_candidates(const ModelTraits& traits, const DeviceTraits& device,
                                              const Targets& targets);

/// True for the passes that train (their `epochs` and `max_steps_per_epoch` options set the cost).
bool is_training_pass(const std::string& pass);

/// The recipe with every training pass cut to one epoch of at most `steps` steps: the short rung.
nlohmann::json shorten_recipe(const nlohmann::json& recipe, std::int64_t steps);
/// The recipe with every training pass cut to at most `steps` steps per epoch (epochs kept).
nlohmann::json cap_recipe_steps(const nlohmann::json& recipe, std::int64_t steps);
/// Optimizer steps the recipe's training passes take on `train_samples` samples (for the budget).
std::int64_t training_steps(const nlohmann::json& recipe, std::int64_t train_samples);

}  // namespace hone::optimize
