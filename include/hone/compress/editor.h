#pragma once
/// @file ModelEditor: how passes change a model's structure, recorded so it can be replayed.
///
/// A compressed model is saved as its base model's config plus the list of structural edits
/// (compress.json) plus the final weights (model.safetensors). Loading builds the base model,
/// replays the edits (which create layers of the right kinds and shapes, with placeholder values),
/// then loads the weights strictly and lets packed layers re-pack them (nn::Repackable). Replay
/// lives with the layers (hone/nn/edits.h), so loading a run never needs this module.
///
/// Two kinds of edit:
///   replace  a layer slot gets a new layer, described by a spec {"kind": ..., ...} that the
///            layer-kind registry (hone/nn/layer_kinds.h) can build again;
///   resize   a parameter or buffer takes a new shape (structured pruning).
#include <nlohmann/json.hpp>

#include <string>

#include "hone/models/model.h"
#include "hone/nn/layer.h"

namespace hone::compress {

class ModelEditor {
 public:
  explicit ModelEditor(models::Model& model) : model_(model) {}

  /// Puts `layer` into the slot at `path`; `spec` must rebuild an equivalent empty layer through
  /// nn::build_layer(spec). Throws hone::Error when there is no slot at `path`.
  void replace(const std::string& path, const nlohmann::json& spec, nn::Layer layer);
  /// Gives parameter or buffer `name` (as in named_parameters / named_buffers) the value `value`,
  /// whose shape may differ; the tensor object stays the same (in place), so every holder of it
  /// sees the change. Throws hone::Error naming the tensor when there is none.
  void resize(const std::string& name, const torch::Tensor& value);

  /// The edits so far, in order: [{"op": "replace", "path", "layer": spec}, {"op": "resize",
  /// "tensor", "shape"}].
  const nlohmann::json& edits() const { return edits_; }
  models::Model& model() { return model_; }

 private:
  models::Model& model_;
  nlohmann::json edits_ = nlohmann::json::array();
};

}  // namespace hone::compress
