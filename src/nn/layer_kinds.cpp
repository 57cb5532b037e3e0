#include "hone/nn/layer_kinds.h"

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "hone/core/error.h"
// fused layer headers
#include "hone/nn/conv2d_relu.h"
#include "hone/nn/linear_relu.h"
// quantized layer headers
#include "hone/nn/conv2d_float.h"
#include "hone/nn/conv2d_int8.h"
#include "hone/nn/linear_float.h"
#include "hone/nn/linear_int8.h"
#include "hone/nn/linear_int8_dynamic.h"
#include "hone/nn/linear_weight_only.h"
#include "hone/nn/lstm_int8_dynamic.h"
#include "hone/nn/residual_add_int8.h"
// low-rank layer headers
#include "hone/nn/conv2d_lowrank.h"
#include "hone/nn/linear_lowrank.h"
#include "hone/nn/linear_semi_structured.h"
#include "hone/nn/sketched_conv2d.h"
#include "hone/nn/sketched_linear.h"

namespace hone::nn {
namespace {

std::string kind_of(const nlohmann::json& spec) {
  HONE_CHECK(spec.is_object() && spec.contains("kind") && spec["kind"].is_string(),
             "layer spec must be an object with a string 'kind', got {}", spec.dump());
  return spec["kind"].get<std::string>();
}

const nlohmann::json& field(const nlohmann::json& spec, const char* name) {
  HONE_CHECK(spec.contains(name), "layer spec '{}': missing field '{}' in {}", kind_of(spec), name, spec.dump());
  return spec[name];
}

// --- float layers that passes put back in place of others ------------------------------------

LayerKind identity_kind() {
  return {"identity", [](const nlohmann::json&) { return make_layer(torch::nn::Identity()); }};
}

/// A Conv2d with a bias (folding a batch norm into a bias-free conv gives it one).
LayerKind conv2d_kind() {
  return {"conv2d", [](const nlohmann::json& spec) {
            const auto options =
                torch::nn::Conv2dOptions(spec_int(spec, "in"), spec_int(spec, "out"), spec_ints(spec, "kernel"))
                    .stride(spec_ints(spec, "stride"))
                    .padding(spec_ints(spec, "padding"))
                    .dilation(spec_ints(spec, "dilation"))
                    .groups(spec_int(spec, "groups"))
                    .bias(spec_bool(spec, "bias"));
            return make_layer(torch::nn::Conv2d(options));
          }};
}

LayerKind linear_kind() {
  return {"linear", [](const nlohmann::json& spec) {
            return make_layer(torch::nn::Linear(
                torch::nn::LinearOptions(spec_int(spec, "in"), spec_int(spec, "out")).bias(spec_bool(spec, "bias"))));
          }};
}

}  // namespace

std::int64_t spec_int(const nlohmann::json& spec, const char* name) {
  const auto& value = field(spec, name);
  HONE_CHECK(value.is_number_integer(), "layer spec '{}': field '{}' must be an integer, got {}", kind_of(spec), name,
             value.dump());
  return value.get<std::int64_t>();
}

std::vector<std::int64_t> spec_ints(const nlohmann::json& spec, const char* name) {
  const auto& value = field(spec, name);
  const bool ok =
      value.is_array() && std::all_of(value.begin(), value.end(), [](const auto& v) { return v.is_number_integer(); });
  HONE_CHECK(ok, "layer spec '{}': field '{}' must be a list of integers, got {}", kind_of(spec), name, value.dump());
  return value.get<std::vector<std::int64_t>>();
}

double spec_number(const nlohmann::json& spec, const char* name) {
  const auto& value = field(spec, name);
  HONE_CHECK(value.is_number(), "layer spec '{}': field '{}' must be a number, got {}", kind_of(spec), name,
             value.dump());
  return value.get<double>();
}

bool spec_bool(const nlohmann::json& spec, const char* name) {
  const auto& value = field(spec, name);
  HONE_CHECK(value.is_boolean(), "layer spec '{}': field '{}' must be true or false, got {}", kind_of(spec), name,
             value.dump());
  return value.get<bool>();
}

std::string spec_string(const nlohmann::json& spec, const char* name) {
  const auto& value = field(spec, name);
  HONE_CHECK(value.is_string(), "layer spec '{}': field '{}' must be a string, got {}", kind_of(spec), name,
             value.dump());
  return value.get<std::string>();
}

const std::vector<LayerKind>& layer_kinds() {
  static const std::vector<LayerKind> kinds = {
      identity_kind(),
      conv2d_kind(),
      linear_kind(),
      // fused layer kinds
      conv2d_relu_kind(),
      linear_relu_kind(),
      // quantized layer kinds
      linear_int8_dynamic_kind(),
      lstm_int8_dynamic_kind(),
      conv2d_int8_kind(),
      linear_int8_kind(),
      residual_add_int8_kind(),
      linear_float_kind(),
      linear_weight_only_kind(),
      conv2d_float_kind(),
      // pruning and low-rank layer kinds
      linear_lowrank_kind(),
      conv2d_lowrank_kind(),
      linear_semi_structured_kind(),
      // sketched layer kinds
      sketched_linear_kind(),
      sketched_conv2d_kind(),
  };
  return kinds;
}

Layer build_layer(const nlohmann::json& spec) {
  const auto kind = kind_of(spec);
  for (const auto& entry : layer_kinds()) {
    if (entry.kind == kind) return entry.build(spec);
  }
  std::vector<std::string> names;
  for (const auto& entry : layer_kinds()) names.push_back(entry.kind);
  fail("unknown layer kind '{}'; known kinds: {}", kind, fmt::join(names, ", "));
}

}  // namespace hone::nn
