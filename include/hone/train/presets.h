#pragma once
/// @file Training presets: named bundles of TrainOptions for a goal (`hone train --preset
/// fast-gpu`). A preset sets only what the user did not set explicitly, and says what it set, so
/// `--preset low-memory --batch-size 64` keeps the 64. docs/train.md lists each with its reason.
///
///   std::vector<std::string> set = train::apply_preset(options, "fast-gpu", /*explicit=*/{"precision"});
#include <set>
#include <string>
#include <vector>

#include "hone/train/trainer.h"

namespace hone::train {

struct TrainPreset {
  std::string name;     ///< fast-gpu, low-memory, cpu, throughput
  std::string summary;  ///< one line: what it is for
};

const std::vector<TrainPreset>& train_presets();

/// Applies preset `name` to `options`, leaving the option names in `explicit_options` (TrainOptions'
/// field names, as flags' option names: "precision", "batch_size"...) alone. Returns the
/// "option=value" settings it made. Unknown names are a hone::UsageError naming the option preset.
std::vector<std::string> apply_preset(TrainOptions& options, const std::string& name,
                                      const std::set<std::string>& explicit_options);

}  // namespace hone::train
