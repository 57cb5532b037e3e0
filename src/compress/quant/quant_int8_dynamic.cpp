// quant_int8_dynamic: int8 weights for every Linear and LSTM; their input activations are
// quantized on the fly per call (no calibration data needed). Convolutions need static
// quantization (their activations are too large to re-quantize per call cheaply), so they stay.
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>

#include <fmt/format.h>

#include "../passes.h"
#include "hone/core/error.h"
#include "hone/nn/linear_int8_dynamic.h"
#include "hone/nn/lstm_int8_dynamic.h"
#include "quant_common.h"

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
    auto details = nlohmann::json::array();
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
        const auto& linear = *ref.slot->as<torch::nn::LinearImpl>();
        auto layer = nn::LinearInt8DynamicImpl::from_float(linear, per_channel);
        const double error = nn::weight_error(linear.weight, layer->weight(), per_channel);
        const auto spec = layer->spec();
        context.editor->replace(ref.path, spec, nn::make_layer(layer));
        details.push_back({{"path", ref.path}, {"kind", spec["kind"]}, {"weight_error", error}});
        report.changed.push_back(
            fmt::format("{}: Linear -> linear_int8_dynamic (weight error {:.2e})", ref.path, error));
      } else {
        const auto& lstm = *ref.slot->as<torch::nn::LSTMImpl>();
        std::shared_ptr<nn::LstmInt8DynamicImpl> layer;
        try {
          layer = nn::LstmInt8DynamicImpl::from_float(lstm, per_channel);
        } catch (const Error& error) {
          report.skipped.push_back(fmt::format("{}: {}", ref.path, error.what()));
          continue;
        }
        double error = 0;
        const auto parameters = lstm.named_parameters(/*recurse=*/false);
        for (std::size_t k = 0; k < layer->layers().size(); ++k) {
          const auto suffix = "_l" + std::to_string(k);
          error = std::max(
              {error, nn::weight_error(parameters["weight_ih" + suffix], layer->layers()[k].weight_ih, per_channel),
               nn::weight_error(parameters["weight_hh" + suffix], layer->layers()[k].weight_hh, per_channel)});
        }
        const auto spec = layer->spec();
        context.editor->replace(ref.path, spec, nn::make_layer(layer));
        details.push_back({{"path", ref.path}, {"kind", spec["kind"]}, {"weight_error", error}});
        report.changed.push_back(
            fmt::format("{}: LSTM -> lstm_int8_dynamic (largest weight error {:.2e})", ref.path, error));
      }
    }
    if (report.changed.empty() && report.skipped.empty()) report.skipped.push_back("no Linear or LSTM in this model");
    report.details = {{"layers", details}};
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
           skip_option("layer paths (or path prefixes) to leave in float")},
          [] { return std::make_unique<QuantInt8Dynamic>(); }};
}

}  // namespace hone::compress
