// quant_int8_static: Conv2d, Linear and residual adds in int8 with activation qparams calibrated on
// real inputs, so activations stay quint8 from layer to layer (a slot whose layer cannot take them
// dequantizes on the way in, so any mix of int8 and float layers computes the same function).
//
// Calibration wraps each target slot so that its call records its input and output, runs the model
// on the calibration batches (eval mode, no grad), then puts the float layers back. With an
// 'accuracy_budget', the most sensitive int8 layers then stay in float (sensitivity.h); only the
// final replacements go through the editor. A ReLU that a Conv2d/Linear feeds alone (directly, or
// through the identity that fuse_conv_bn leaves) is fused into the int8 layer and its slot becomes
// an identity. A Conv2d still followed by a BatchNorm is left alone: fold it first (fuse_conv_bn).
#include <fmt/format.h>

#include "../passes.h"
#include "hone/core/error.h"
#include "int8_static_plan.h"
#include "observers.h"
#include "quant_common.h"
#include "sensitivity.h"

namespace hone::compress {
namespace {

class QuantInt8Static : public Pass {
 public:
  PassReport apply(models::Model& model, const nlohmann::json& options, PassContext& context) override {
    PassReport report{"quant_int8_static", options, {}, {}};
    HONE_CHECK(quant::on_cpu(model), "quant_int8_static: int8 layers run on the CPU; move the model to cpu first");
    const auto batches_wanted = options.at("calibration_batches").get<std::int64_t>();
    std::vector<torch::Tensor> batches;
    if (context.calibration_batches) batches = context.calibration_batches(batches_wanted);
    HONE_CHECK(!batches.empty(),
               "quant_int8_static needs calibration data: compress a run directory (its dataset's training split "
               "gives real inputs to calibrate activation ranges on), or use quant_int8_dynamic");
    const double budget = quant::read_accuracy_budget(report.pass, options, context);
    const bool per_channel = options.at("per_channel").get<bool>();
    const auto observer = options.at("observer").get<std::string>();
    const double percentile = options.at("percentile").get<double>();
    const QuantRange range = quant::static_activation_range();

    auto targets = quant::plan_static_targets(model, options.at("skip"), report);
    for (auto& target : targets) {
      target.input = make_observer(observer, percentile, range);
      target.output = make_observer(observer, percentile, range);
      if (target.type == quant::StaticTargetType::kAdd) target.input_b = make_observer(observer, percentile, range);
    }
    quant::calibrate_static_targets(model, targets, batches);
    auto candidates = quant::static_candidates(targets, per_channel, range, report);
    auto details = quant::quantize_within_budget(model, candidates, budget, context, report);
    if (report.changed.empty() && report.skipped.empty()) {
      report.skipped.push_back("no Conv2d, Linear or residual add in this model");
    }
    report.details["layers"] = std::move(details);
    report.details["observer"] = observer;
    report.details["activation_max"] = range.max;
    return report;
  }
};

}  // namespace

PassEntry quant_int8_static_entry() {
  return {
      "quant_int8_static",
      "int8 Conv2d/Linear/residual adds with activation ranges calibrated on real data (needs a run directory)",
      {{"observer",
        OptionSpec::Type::String,
        "minmax",
        {"minmax", "percentile", "entropy"},
        -1e300,
        1e300,
        "how activation ranges are chosen: observed min/max, a percentile of |x|, or least KL divergence"},
       {"percentile", OptionSpec::Type::Number, 99.99, {}, 50.0, 100.0, "the percentile observer's percentile"},
       {"per_channel",
        OptionSpec::Type::Boolean,
        true,
        {},
        -1e300,
        1e300,
        "one weight scale per output channel (else one per tensor)"},
       {"calibration_batches", OptionSpec::Type::Integer, 32, {}, 1, 1e9, "how many training batches to calibrate on"},
       quant::accuracy_budget_option(),
       skip_option("layer paths (or path prefixes) to leave in float")},
      [] { return std::make_unique<QuantInt8Static>(); }};
}

}  // namespace hone::compress
