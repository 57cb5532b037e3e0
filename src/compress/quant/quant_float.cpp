// quant_float: Linear and Conv2d weights stored in fp16 or bf16 (half the bytes of fp32); each such
// layer computes in that dtype and hands its output back in the input's dtype, so the layers
// around it are unaffected.
#include <ATen/ATen.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <fmt/format.h>

#include "../passes.h"
#include "../weight_change.h"
#include "hone/core/error.h"
#include "hone/nn/conv2d_float.h"
#include "hone/nn/linear_float.h"
#include "quant_common.h"

namespace hone::compress {
namespace {

class QuantFloat : public Pass {
 public:
  PassReport apply(models::Model& model, const nlohmann::json& options, PassContext& context) override {
    PassReport report{"quant_float", options, {}, {}};
    const auto dtype_name = options.at("dtype").get<std::string>();
    const auto dtype = nn::low_precision_dtype(dtype_name, "quant_float");
    const auto& layers = options.at("layers");
    const auto& skip = options.at("skip");
    auto details = nlohmann::json::array();
    for (const auto& ref : nn::all_slots(model)) {
      const auto* linear = ref.slot->as<torch::nn::LinearImpl>();
      const auto* conv = ref.slot->as<torch::nn::Conv2dImpl>();
      if (linear == nullptr && conv == nullptr) continue;
      const char* type = linear != nullptr ? "Linear" : "Conv2d";
      if (quant::is_skipped(ref.path, skip)) {
        report.skipped.push_back(fmt::format("{}: {} left in float32 by the 'skip' option", ref.path, type));
        continue;
      }
      if (!quant::contains(layers, linear != nullptr ? "linear" : "conv2d")) {
        report.skipped.push_back(fmt::format("{}: {} is not in 'layers'", ref.path, type));
        continue;
      }
      nlohmann::json spec;
      nn::Layer layer;
      double error = 0;
      if (linear != nullptr) {
        auto replacement = nn::LinearFloatImpl::from_float(*linear, dtype);
        error = relative_weight_change(linear->weight, replacement->weight);
        spec = replacement->spec();
        layer = nn::make_layer(replacement);
      } else {
        std::shared_ptr<nn::Conv2dFloatImpl> replacement;
        try {
          replacement = nn::Conv2dFloatImpl::from_float(*conv, dtype);
        } catch (const Error& e) {
          report.skipped.push_back(fmt::format("{}: {}", ref.path, e.what()));
          continue;
        }
        error = relative_weight_change(conv->weight, replacement->weight);
        spec = replacement->spec();
        layer = nn::make_layer(replacement);
      }
      context.editor->replace(ref.path, spec, std::move(layer));
      details.push_back({{"path", ref.path}, {"kind", spec["kind"]}, {"weight_error", error}});
      report.changed.push_back(
          fmt::format("{}: {} weights -> {} (weight error {:.2e})", ref.path, type, dtype_name, error));
    }
    if (report.changed.empty() && report.skipped.empty()) report.skipped.push_back("no Linear or Conv2d in this model");
    report.details = {{"layers", details}};
    return report;
  }
};

}  // namespace

PassEntry quant_float_entry() {
  return {"quant_float",
          "store Linear/Conv2d weights in fp16 or bf16 and compute in that dtype",
          {{"dtype",
            OptionSpec::Type::String,
            "bf16",
            {"fp16", "bf16"},
            -1e300,
            1e300,
            "the weights' dtype (bf16 keeps fp32's range; fp16 has 3 more mantissa bits)"},
           {"layers",
            OptionSpec::Type::StringList,
            {"linear", "conv2d"},
            {"linear", "conv2d"},
            -1e300,
            1e300,
            "which layer types to convert"},
           skip_option("layer paths (or path prefixes) to leave in float32")},
          [] { return std::make_unique<QuantFloat>(); }};
}

}  // namespace hone::compress
