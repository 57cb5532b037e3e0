#pragma once
/// @file Layer kinds: every layer a compression pass can put into a slot, rebuildable from a JSON
/// spec {"kind": "<name>", ...shape fields}. Replaying a compressed model's edits builds layers
/// through this list (values are placeholders until the weights file is loaded).
///
/// How to add a layer kind: write src/nn/<kind>.{h,cpp} (header under include/hone/nn/) with the
/// module and a `LayerKind <kind>_kind()` and add one line to src/nn/layer_kinds.cpp.
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "hone/nn/layer.h"

namespace hone::nn {

/// A layer that keeps a packed form of its tensors (e.g. fbgemm's prepacked int8 weights):
/// repack() rebuilds it after the plain tensors were loaded from a file.
class Repackable {
 public:
  virtual ~Repackable() = default;
  virtual void repack() = 0;
};

struct LayerKind {
  std::string kind;
  /// Builds an equivalent layer from the spec, with placeholder values of the right shapes;
  /// throws hone::Error naming the kind and the bad field.
  std::function<Layer(const nlohmann::json& spec)> build;
};

const std::vector<LayerKind>& layer_kinds();
/// Throws hone::Error listing the known kinds when spec["kind"] is unknown.
Layer build_layer(const nlohmann::json& spec);

/// Spec fields, read strictly (missing or mistyped -> hone::Error naming the kind and field).
std::int64_t spec_int(const nlohmann::json& spec, const char* field);
std::vector<std::int64_t> spec_ints(const nlohmann::json& spec, const char* field);
double spec_number(const nlohmann::json& spec, const char* field);
bool spec_bool(const nlohmann::json& spec, const char* field);
std::string spec_string(const nlohmann::json& spec, const char* field);

}  // namespace hone::nn
