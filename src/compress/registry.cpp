#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "hone/core/error.h"
#include "passes.h"

namespace hone::compress {

const std::vector<PassEntry>& pass_registry() {
  // The order is the order passes run in when they are given as flags (a recipe runs its own
  // order): shrink first (structured pruning, low-rank) while layers are still float and batch
  // norms still separate, then fold batch norms, then sparsify and quantize the final weights,
  // and last fuse the float conv/linear + ReLU pairs that are left where that is measurably faster.
  static const std::vector<PassEntry> entries = {
      // pruning and low-rank passes
      prune_structured_entry(),  // shrinks tensors while batch norms still scale channels
      lowrank_svd_entry(),
      distill_entry(),                // trains the shrunk float model against the source while batch norms still train
      prune_gradual_entry(),          // trains too: before folding and quantization
      lottery_ticket_entry(),         // rewinds to the run's initial weights: on the source's own shapes
      fuse_conv_bn_entry(),           // folds BN before quantization sees the conv
      sketch_entry(),                 // after folding (a BatchNorm is folded into the conv before it is
                                      // sketched), before quantization
      prune_magnitude_entry(),        // after folding: zeros in the final (folded) weights stay zero
      prune_semi_structured_entry(),  // before quantization: its layers are no longer plain Linear
      // quantization passes
      quant_float_entry(),
      quant_int8_static_entry(),
      qat_entry(),  // the int8 static layers, trained for: after folding, like quant_int8_static
      quant_int8_dynamic_entry(),
      quant_weight_only_entry(),
      // last: fused conv/linear + ReLU layers are no longer the plain Conv2d / Linear that the
      // passes above look for (quantized ones are left alone); after fuse_conv_bn, which leaves
      // conv -> identity -> relu
      fuse_relu_entry(),
  };
  return entries;
}

const PassEntry& find_pass(const std::string& name) {
  const auto& entries = pass_registry();
  const auto it = std::find_if(entries.begin(), entries.end(), [&](const auto& e) { return e.name == name; });
  if (it != entries.end()) return *it;
  std::vector<std::string> names;
  for (const auto& entry : entries) names.push_back(entry.name);
  fail_usage("unknown compression pass '{}'; valid passes: {}", name, fmt::join(names, ", "));
}

namespace {

std::string describe(const OptionSpec& spec) {
  switch (spec.type) {
    case OptionSpec::Type::Number:
      return "a number";
    case OptionSpec::Type::Integer:
      return "an integer";
    case OptionSpec::Type::Boolean:
      return "true or false";
    case OptionSpec::Type::String:
      return spec.choices.empty() ? "a string" : fmt::format("one of {}", fmt::join(spec.choices, ", "));
    case OptionSpec::Type::StringList:
      return spec.choices.empty() ? "a list of strings" : fmt::format("a list of {}", fmt::join(spec.choices, ", "));
    case OptionSpec::Type::IntegerList:
      return fmt::format("a non-empty list of integers in [{}, {}]", spec.minimum, spec.maximum);
  }
  return "?";
}

bool is_choice(const OptionSpec& spec, const std::string& value) {
  return spec.choices.empty() || std::find(spec.choices.begin(), spec.choices.end(), value) != spec.choices.end();
}

void check_value(const PassEntry& entry, const OptionSpec& spec, const nlohmann::json& value) {
  bool ok = false;
  switch (spec.type) {
    case OptionSpec::Type::Number:
      ok = value.is_number() && std::isfinite(value.get<double>());
      break;
    case OptionSpec::Type::Integer:
      ok = value.is_number_integer();
      break;
    case OptionSpec::Type::Boolean:
      ok = value.is_boolean();
      break;
    case OptionSpec::Type::String:
      ok = value.is_string() && is_choice(spec, value.get<std::string>());
      break;
    case OptionSpec::Type::StringList:
      ok = value.is_array() && std::all_of(value.begin(), value.end(), [&](const auto& item) {
             return item.is_string() && is_choice(spec, item.template get<std::string>());
           });
      break;
    case OptionSpec::Type::IntegerList:
      ok = value.is_array() && !value.empty() && std::all_of(value.begin(), value.end(), [&](const auto& item) {
             return item.is_number_integer() && item.template get<double>() >= spec.minimum &&
                    item.template get<double>() <= spec.maximum;
           });
      break;
  }
  if (ok && (spec.type == OptionSpec::Type::Number || spec.type == OptionSpec::Type::Integer)) {
    const auto number = value.get<double>();
    ok = number >= spec.minimum && number <= spec.maximum;
    if (!ok) {
      fail_usage("pass {}: option '{}' must be in [{}, {}], got {}", entry.name, spec.name, spec.minimum, spec.maximum,
                 value.dump());
    }
  }
  if (!ok) fail_usage("pass {}: option '{}' must be {}, got {}", entry.name, spec.name, describe(spec), value.dump());
}

}  // namespace

nlohmann::json validate_options(const PassEntry& entry, const nlohmann::json& options) {
  if (!options.is_null() && !options.is_object()) {
    fail_usage("pass {}: options must be a JSON object, got {}", entry.name, options.dump());
  }
  std::vector<std::string> names;
  for (const auto& spec : entry.options) names.push_back(spec.name);
  nlohmann::json out = nlohmann::json::object();
  if (options.is_object()) {
    for (const auto& item : options.items()) {
      const auto it = std::find_if(entry.options.begin(), entry.options.end(),
                                   [&](const auto& spec) { return spec.name == item.key(); });
      if (it == entry.options.end()) {
        fail_usage("pass {}: unknown option '{}'; valid options: {}", entry.name, item.key(),
                   names.empty() ? std::string("(none)") : fmt::format("{}", fmt::join(names, ", ")));
      }
      check_value(entry, *it, item.value());
      out[item.key()] = item.value();
    }
  }
  for (const auto& spec : entry.options) {
    if (out.contains(spec.name)) continue;
    if (spec.default_value.is_null())
      fail_usage("pass {}: option '{}' is required ({})", entry.name, spec.name, spec.help);
    out[spec.name] = spec.default_value;
  }
  return out;
}

}  // namespace hone::compress
