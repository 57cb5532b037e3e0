#pragma once
/// @file Replaying a compressed model's recorded structural edits (compress.json's "edits").
///
/// Two kinds of edit, recorded by compress::ModelEditor when a pass changes a model:
///   {"op": "replace", "path": SLOT, "layer": SPEC}   a layer slot gets the layer nn::build_layer(SPEC)
///   {"op": "resize", "tensor": NAME, "shape": [...]}  a parameter or buffer takes a new shape
/// Replay needs only layers, so it lives here: loading a run (hone/run) does not depend on the
/// compression module that wrote it.
#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include <string>

#include "hone/nn/layer.h"

namespace hone::nn {

/// Replays `edits` on a freshly built base model. Values are placeholders until the weights are
/// loaded. Throws hone::Error naming the edit that does not apply.
void replay_edits(Module& model, const nlohmann::json& edits);

/// Calls nn::Repackable::repack() on every layer that has one (after weights were loaded).
void repack_layers(torch::nn::Module& model);

/// The parameter or buffer `name` (as in named_parameters / named_buffers); throws hone::Error
/// naming it when there is none.
torch::Tensor find_tensor(torch::nn::Module& model, const std::string& name);

}  // namespace hone::nn
