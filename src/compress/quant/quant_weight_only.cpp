// quant_weight_only: Linear weights stored in int8 (per output channel) or grouped int4, with
// activations left in floating point; the matmul runs in LibTorch's weight-only kernels (CUDA's
// int8 and int4 "tinygemm" kernels, or their CPU versions). Meant for the GPU, where int8 static
// and dynamic quantization have no LibTorch kernels: it saves 2x (int8) or ~3.6x (int4 with its
// group scales) of weight memory and pays off where the weight read dominates (few rows per call).
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <fmt/format.h>

#include "../passes.h"
#include "../weight_change.h"
#include "hone/core/error.h"
#include "hone/nn/linear_weight_only.h"
#include "quant_common.h"

namespace hone::compress {
namespace {

class QuantWeightOnly : public Pass {
 public:
  PassReport apply(models::Model& model, const nlohmann::json& options, PassContext& context) override {
    PassReport report{"quant_weight_only", options, {}, {}};
    const int bits = options.at("bits").get<int>();
    if (bits != 4 && bits != 8) fail_usage("quant_weight_only: option 'bits' must be 4 or 8, got {}", bits);
    const auto group_size = options.at("group_size").get<std::int64_t>();
    if (group_size != 32 && group_size != 64 && group_size != 128 && group_size != 256) {
      fail_usage("quant_weight_only: option 'group_size' must be 32, 64, 128 or 256, got {}", group_size);
    }
    const auto& skip = options.at("skip");
    auto details = nlohmann::json::array();
    for (const auto& ref : nn::all_slots(model)) {
      const auto* linear = ref.slot->as<torch::nn::LinearImpl>();
      if (linear == nullptr) {
        if (ref.slot->as<torch::nn::Conv2dImpl>() != nullptr) {
          report.skipped.push_back(fmt::format("{}: Conv2d has no weight-only kernel in LibTorch", ref.path));
        }
        continue;
      }
      if (quant::is_skipped(ref.path, skip)) {
        report.skipped.push_back(fmt::format("{}: Linear left in float by the 'skip' option", ref.path));
        continue;
      }
      const nn::WeightOnlyShape shape{linear->weight.size(1), linear->weight.size(0), bits, bits == 4 ? group_size : 0};
      if (const auto why = nn::weight_only_unsupported(shape); !why.empty()) {
        report.skipped.push_back(
            fmt::format("{}: Linear [{} -> {}] left in float: {}", ref.path, shape.in, shape.out, why));
        continue;
      }
      auto layer = nn::LinearWeightOnlyImpl::from_float(*linear, bits, group_size);
      const double error = relative_weight_change(linear->weight, layer->dequantized_weight());
      const auto spec = layer->spec();
      context.editor->replace(ref.path, spec, nn::make_layer(layer));
      details.push_back({{"path", ref.path}, {"kind", spec["kind"]}, {"bits", bits}, {"weight_error", error}});
      report.changed.push_back(fmt::format("{}: Linear -> int{} weight-only{} (weight error {:.2e})", ref.path, bits,
                                           bits == 4 ? fmt::format(", groups of {}", group_size) : "", error));
    }
    if (report.changed.empty() && report.skipped.empty()) report.skipped.push_back("no Linear in this model");
    report.details = {{"layers", details}};
    return report;
  }
};

}  // namespace

PassEntry quant_weight_only_entry() {
  return {"quant_weight_only",
          "int8 or grouped int4 Linear weights with float activations (LibTorch's weight-only kernels; for CUDA)",
          {{"bits", OptionSpec::Type::Integer, 8, {}, 4, 8, "4 (grouped, asymmetric) or 8 (per channel, symmetric)"},
           {"group_size",
            OptionSpec::Type::Integer,
            128,
            {},
            32,
            256,
            "int4: input features sharing one scale and zero (32, 64, 128 or 256)"},
           skip_option("layer paths (or path prefixes) to leave in float")},
          [] { return std::make_unique<QuantWeightOnly>(); }};
}

}  // namespace hone::compress
