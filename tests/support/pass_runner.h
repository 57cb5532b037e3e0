#pragma once
/// @file What the compression-pass tests share: run one pass with a context, count layer kinds,
/// search report lines, and save → rebuild (config + edits) → load → repack, as `hone` does.
#include <torch/nn/module.h>

#include <algorithm>
#include <string>
#include <vector>

#include "hone/compress/editor.h"
#include "hone/compress/pass.h"
#include "hone/models/registry.h"
#include "hone/nn/edits.h"
#include "hone/nn/layer.h"
#include "hone/run/run_dir.h"
#include "support/temp_dir.h"

namespace hone::testing {

/// A table-shaped classification dataset description (no data): what the zoo's mlp takes.
inline data::DatasetInfo table(std::int64_t features, std::int64_t classes = 10) {
  return {"table", data::TaskKind::kClassification, {features}, classes, 0, {}};
}

/// Runs pass `name` with `options` (validated, defaults filled in); `batches` feed calibration.
inline compress::PassReport run_pass(models::Model& model, compress::ModelEditor& editor, const std::string& name,
                                     const nlohmann::json& options, std::vector<torch::Tensor> batches = {}) {
  const auto& entry = compress::find_pass(name);
  compress::PassContext context;
  context.editor = &editor;
  if (!batches.empty()) {
    context.calibration_batches = [batches](std::int64_t n) {
      return std::vector<torch::Tensor>(batches.begin(), batches.begin() + std::min<std::int64_t>(n, batches.size()));
    };
  }
  return entry.make()->apply(model, compress::validate_options(entry, options), context);
}

/// How many layer slots of `model` hold an `Impl`.
template <typename Impl>
std::int64_t count_layers(torch::nn::Module& model) {
  std::int64_t n = 0;
  for (const auto& ref : nn::all_slots(model)) n += ref.slot->as<Impl>() != nullptr ? 1 : 0;
  return n;
}

/// Whether any of `lines` contains `text`.
inline bool mentions(const std::vector<std::string>& lines, const std::string& text) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const auto& line) { return line.find(text) != std::string::npos; });
}

/// Saves `model`'s weights, rebuilds it from its config + the edits, loads, repacks: as `hone` does.
inline models::ModelPtr reload(models::Model& model, const compress::ModelEditor& editor) {
  TempDir dir("hone-pass");
  run::save_weights(dir / "model.safetensors", model);
  auto rebuilt = models::make_model(model.architecture(), model.config());
  nn::replay_edits(*rebuilt, editor.edits());
  run::load_weights(dir / "model.safetensors", *rebuilt);
  nn::repack_layers(*rebuilt);
  rebuilt->eval();
  return rebuilt;
}

}  // namespace hone::testing
