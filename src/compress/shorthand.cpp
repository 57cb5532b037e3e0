#include "hone/compress/shorthand.h"

#include <stdexcept>

#include "hone/core/error.h"

namespace hone::compress {
namespace {

/// "KIND:FRACTION" -> FRACTION; anything else is a UsageError naming the prune option.
double prune_amount(const std::string& prune) {
  const auto colon = prune.find(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument("no amount");
    std::size_t used = 0;
    const double amount = std::stod(prune.substr(colon + 1), &used);
    if (used != prune.size() - colon - 1) throw std::invalid_argument("trailing text");
    return amount;
  } catch (const std::exception&) {
    fail_usage_option("prune", "prune '{}': expected KIND:FRACTION, e.g. structured:0.25", prune);
  }
}

}  // namespace

Recipe recipe_from_shorthand(const Shorthand& s) {
  nlohmann::json passes = nlohmann::json::array();
  if (s.prune == "2:4") {
    // With quant fp16/bf16 the sparse layers store and compute in that dtype too (cuSPARSELt's).
    const bool low = s.quant == "fp16" || s.quant == "bf16";
    passes.push_back({{"pass", "prune_semi_structured"}, {"dtype", low ? s.quant : "input"}});
  } else if (!s.prune.empty()) {
    const double amount = prune_amount(s.prune);
    const auto kind = s.prune.substr(0, s.prune.find(':'));
    if (kind == "structured") {
      passes.push_back({{"pass", "prune_structured"}, {"amount", amount}});
    } else if (kind == "magnitude" || kind == "magnitude-global") {
      passes.push_back(
          {{"pass", "prune_magnitude"}, {"amount", amount}, {"scope", kind == "magnitude" ? "layer" : "global"}});
    } else {
      fail_usage_option("prune", "prune '{}': unknown kind '{}'; valid: structured, magnitude, magnitude-global, 2:4",
                        s.prune, kind);
    }
  }
  if (s.lowrank > 0) passes.push_back({{"pass", "lowrank_svd"}, {"energy", s.lowrank}});
  if (s.fuse) passes.push_back({{"pass", "fuse_conv_bn"}});
  if (!s.quant.empty()) {
    if (s.quant == "int8-dynamic") {
      passes.push_back({{"pass", "quant_int8_dynamic"}});
    } else if (s.quant == "int8-weight-only" || s.quant == "int4-weight-only") {
      passes.push_back({{"pass", "quant_weight_only"}, {"bits", s.quant == "int8-weight-only" ? 8 : 4}});
    } else if (s.quant == "int8-static") {
      nlohmann::json pass = {{"pass", "quant_int8_static"}};
      if (!s.observer.empty()) pass["observer"] = s.observer;
      passes.push_back(pass);
    } else {
      passes.push_back({{"pass", "quant_float"}, {"dtype", s.quant}});
    }
  }
  if (!s.observer.empty() && s.quant != "int8-static")
    fail_usage_option("observer", "an observer is for int8-static quantization only (quant is '{}')", s.quant);
  if (passes.empty()) return {};
  return sort_by_registry(parse_recipe({{"passes", passes}}, "flags"));
}

}  // namespace hone::compress
