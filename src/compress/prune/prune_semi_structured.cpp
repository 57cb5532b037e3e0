// prune_semi_structured: 2:4 semi-structured sparsity for Linear layers. In every group of 4
// consecutive input weights of each output row the 2 of smallest |w| are removed (one-shot
// magnitude pruning, no fine-tuning), and the layer becomes nn::LinearSemiStructured, which stores
// only the kept half plus 2-bit positions (the file shrinks) and runs on the GPU's sparse tensor
// cores through cuSPARSELt when the activations are fp16/bf16 on CUDA. Elsewhere it runs as a dense
// GEMM with the same numbers, and the verdict says so.
//
// Conv2d is left alone: LibTorch has no 2:4 convolution.
#include <ATen/ATen.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

#include <fmt/format.h>

#include "../passes.h"
#include "../weight_change.h"
#include "hone/nn/linear_float.h"
#include "hone/nn/linear_semi_structured.h"

namespace hone::compress {
namespace {

class PruneSemiStructured : public Pass {
 public:
  PassReport apply(models::Model& model, const nlohmann::json& options, PassContext& context) override {
    PassReport report{"prune_semi_structured", options, {}, {}};
    const auto dtype_name = options.at("dtype").get<std::string>();
    const auto compute =
        dtype_name == "input" ? at::kFloat : nn::low_precision_dtype(dtype_name, "prune_semi_structured");
    torch::NoGradGuard no_grad;
    auto layers = nlohmann::json::array();
    std::int64_t removed = 0;
    for (const auto& ref : nn::all_slots(model)) {
      const auto* linear = ref.slot->as<torch::nn::LinearImpl>();
      if (linear == nullptr) {
        if (ref.slot->as<torch::nn::Conv2dImpl>() != nullptr) {
          report.skipped.push_back(fmt::format("{}: Conv2d left dense: LibTorch has no 2:4 convolution", ref.path));
        }
        continue;
      }
      if (is_skipped(ref.path, options.at("skip"))) {
        report.skipped.push_back(fmt::format("{}: listed in 'skip'", ref.path));
        continue;
      }
      const std::int64_t in = linear->weight.size(1), out = linear->weight.size(0);
      if (const auto why = nn::semi_structured_unsupported(in, out); !why.empty()) {
        report.skipped.push_back(fmt::format("{}: Linear [{} -> {}] left dense: {}", ref.path, in, out, why));
        continue;
      }
      auto layer = nn::LinearSemiStructuredImpl::from_float(*linear, compute);
      const double error = relative_weight_change(linear->weight, layer->dense_weight());
      const std::int64_t n = linear->weight.numel();
      const auto spec = layer->spec();
      context.editor->replace(ref.path, spec, nn::make_layer(layer));
      removed += n / 2;
      layers.push_back({{"path", ref.path}, {"parameters", n}, {"sparsity", 0.5}, {"weight_error", error}});
      report.changed.push_back(fmt::format("{}: Linear [{} -> {}] -> 2:4 sparse{} (relative weight change {:.3f})",
                                           ref.path, in, out,
                                           compute == at::kFloat ? "" : fmt::format(", {} values", dtype_name), error));
    }
    if (report.changed.empty() && report.skipped.empty()) report.skipped.push_back("no Linear in this model");
    report.details["layers"] = std::move(layers);
    if (removed > 0) report.details["pruned_weights"] = removed;
    report.details["note"] =
        "2:4 layers run on sparse tensor cores (cuSPARSELt) for fp16/bf16 activations on CUDA; on the CPU and in fp32 "
        "they run as dense GEMMs (same numbers, no speed-up). One-shot pruning without fine-tuning costs accuracy: "
        "check the verdict's accuracy row";
    return report;
  }
};

}  // namespace

PassEntry prune_semi_structured_entry() {
  return {"prune_semi_structured",
          "2:4 sparse Linear weights (2 of every 4 inputs removed by magnitude), stored compressed; sparse tensor "
          "cores on CUDA in fp16/bf16",
          {{"dtype",
            OptionSpec::Type::String,
            "input",
            {"input", "fp16", "bf16"},
            -1e300,
            1e300,
            "'input': keep fp32 values and compute in the input's dtype; fp16/bf16: store and compute in it"},
           skip_option("layer paths (or path prefixes) to leave dense")},
          [] { return std::make_unique<PruneSemiStructured>(); }};
}

}  // namespace hone::compress
