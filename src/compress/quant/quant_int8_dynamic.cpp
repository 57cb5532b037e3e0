// quant_int8_dynamic: int8 weights for every Linear and LSTM; their input activations are
// quantized on the fly per call (no calibration data needed). Convolutions need static
// quantization (their activations are too large to re-quantize per call cheaply), so they stay.
// With an 'accuracy_budget', the most sensitive int8 layers stay in float (sensitivity.h).
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>

#include <fmt/format.h>

#include "../passes.h"
#include "hone/core/error.h"
#include "hone/nn/linear_int8_dynamic.h"
#include "hone/nn/lstm_int8_dynamic.h"
#include "quant_common.h"
#include "sensitivity.h"

namespace hone::compress {
namespace {

class QuantInt8Dynamic : public Pass {
 public:
  PassReport apply(models::Model& model, const nlohmann::json& options, PassContext& context) override {
    PassReport report{"quant_int8_dynamic", options, {}, {}};
    HONE_CHECK(quant::on_cpu(model), "quant_int8_dynamic: int8 layers run on the CPU; move the model to cpu first");
    const bool per_channel = options.at("per_channel").get<bool>();
    const auto& layers = options.at("layers");
    const auto& skip = options.at("skip");
    const double budget = quant::read_accuracy_budget(report.pass, options, context);
    // Every int8 layer is built first, with its report line and details; which go in comes after.
    std::vector<quant::Int8Candidate> candidates;
    for (const auto& ref : nn::all_slots(model)) {
      const bool is_linear = ref.slot->as<torch::nn::LinearImpl>() != nullptr;
      const bool is_lstm = ref.slot->as<torch::nn::LSTMImpl>() != nullptr;
      if (!is_linear && !is_lstm) {
        if (ref.slot->as<torch::nn::Conv2dImpl>() != nullptr) {
          report.skipped.push_back(
              fmt::format("{}: Conv2d is not supported by dynamic quantization (use quant_int8_static)", ref.path));
        }
        continue;
      }
      const char* type = is_linear ? "Linear" : "LSTM";
      if (quant::is_skipped(ref.path, skip)) {
        report.skipped.push_back(fmt::format("{}: {} left in float by the 'skip' option", ref.path, type));
        continue;
      }
      if (!quant::contains(layers, is_linear ? "linear" : "lstm")) {
        report.skipped.push_back(fmt::format("{}: {} is not in 'layers'", ref.path, type));
        continue;
      }
      if (is_linear) {
        const auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(ref.slot->module());
        auto layer = nn::LinearInt8DynamicImpl::from_float(*linear, per_channel);
        const double error = nn::weight_error(linear->weight, layer->weight(), per_channel);
        const auto spec = layer->spec();
        candidates.push_back({{{ref, nn::make_layer(linear), nn::make_layer(layer), spec}},
                              fmt::format("{}: Linear -> linear_int8_dynamic (weight error {:.2e})", ref.path, error),
                              {{"path", ref.path}, {"kind", spec["kind"]}, {"weight_error", error}}});
      } else {
        const auto lstm = std::dynamic_pointer_cast<torch::nn::LSTMImpl>(ref.slot->module());
        std::shared_ptr<nn::LstmInt8DynamicImpl> layer;
        try {
          layer = nn::LstmInt8DynamicImpl::from_float(*lstm, per_channel);
        } catch (const Error& error) {
          report.skipped.push_back(fmt::format("{}: {}", ref.path, error.what()));
          continue;
        }
        double error = 0;
        const auto parameters = lstm->named_parameters(/*recurse=*/false);
        for (std::size_t k = 0; k < layer->layers().size(); ++k) {
          const auto suffix = "_l" + std::to_string(k);
          error = std::max(
              {error, nn::weight_error(parameters["weight_ih" + suffix], layer->layers()[k].weight_ih, per_channel),
               nn::weight_error(parameters["weight_hh" + suffix], layer->layers()[k].weight_hh, per_channel)});
        }
        const auto spec = layer->spec();
        candidates.push_back(
            {{{ref, nn::make_layer(lstm), nn::make_layer(layer), spec}},
             fmt::format("{}: LSTM -> lstm_int8_dynamic (largest weight error {:.2e})", ref.path, error),
             {{"path", ref.path}, {"kind", spec["kind"]}, {"weight_error", error}}});
      }
    }
    auto details = quant::quantize_within_budget(model, candidates, budget, context, report);
    if (report.changed.empty() && report.skipped.empty()) report.skipped.push_back("no Linear or LSTM in this model");
    report.details["layers"] = std::move(details);
    return report;
  }
};

}  // namespace

PassEntry quant_int8_dynamic_entry() {
  return {"quant_int8_dynamic",
          "int8 weights for Linear/LSTM layers, activations quantized per call (no calibration data needed)",
          {{"layers",
            OptionSpec::Type::StringList,
            {"linear", "lstm"},
            {"linear", "lstm"},
            -1e300,
            1e300,
            "which layer types to quantize"},
           {"per_channel",
            OptionSpec::Type::Boolean,
            true,
            {},
            -1e300,
            1e300,
            "one weight scale per output channel (else one per tensor)"},
           quant::accuracy_budget_option(),
           skip_option("layer paths (or path prefixes) to leave in float")},
          [] { return std::make_unique<QuantInt8Dynamic>(); }};
}

}  // namespace hone::compress
