// fuse_relu: replaces a Conv2d or Linear and the ReLU its output flows into by one conv2d_relu /
// linear_relu layer (oneDNN's fused kernel on CPU, include/hone/nn/conv2d_relu.h); the ReLU's
// slot then holds an identity. Pairs come from the flows models declare (conv -> bn -> relu),
// looking through identity slots, so after fuse_conv_bn a conv -> (folded bn) -> relu qualifies;
// a ReLU fed by anything else (a batch norm not yet folded, a residual add) stays as it is.
//
// Fusion only saves the ReLU's pass over the output, and oneDNN's kernels are not always faster
// than LibTorch's own, so each pair is kept only where it measurably helps:
//   1. one calibration batch (or, without one, a random example input) runs through the model to
//      record the producer's input shape and memory format, pair by pair in execution order after
//      the earlier pairs' decisions (a fused conv's output is channels-last); the first dimension
//      becomes 'batch';
//   2. the unfused pair (the producer's layer, then the ReLU module) and the fused layer run on a
//      random input of that shape (timing only), interleaved in rounds after a warm-up; medians;
//   3. the fused layer replaces the pair when unfused / fused >= 'min_speedup' (0: always) and its
//      output matches the pair's on that input.
// The pass runs last in the registry: later passes (quantization, pruning, sketching) look for
// plain Conv2d / Linear layers, which a fused layer no longer is.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../layer_timing.h"
#include "../passes.h"
#include "hone/core/error.h"
#include "hone/nn/conv2d_relu.h"
#include "hone/nn/conv_geometry.h"
#include "hone/nn/layer.h"
#include "hone/nn/layer_kinds.h"
#include "hone/nn/linear_relu.h"

namespace hone::compress {
namespace {

/// The fused layer must reproduce the pair this closely (relative, on the timing input) to stay:
/// same math in another kernel, fp32 (tests/support/tolerances.h's kFp32Reordered).
constexpr double kMaxRelativeDifference = 1e-4;
constexpr std::uint64_t kTimingSeed = 1234;

/// A ReLU and the Conv2d or Linear whose output reaches only it (exactly one of conv, linear set).
struct Pair {
  nn::SlotRef producer, relu;
  std::vector<std::string> through;  ///< identity slots between them (folded batch norms)
  std::shared_ptr<torch::nn::Conv2dImpl> conv;
  std::shared_ptr<torch::nn::LinearImpl> linear;

  std::string name() const { return producer.path + " + " + relu.path; }
  const torch::Tensor& weight() const { return conv ? conv->weight : linear->weight; }
  /// The producer's layer as the model registered it.
  nn::Layer producer_layer() const { return conv ? nn::make_layer(conv) : nn::make_layer(linear); }
  nn::Layer relu_layer() const {
    return nn::make_layer(std::dynamic_pointer_cast<torch::nn::ReLUImpl>(relu.slot->module()));
  }
  /// The fused layer (weights copied, on the producer's device) and its spec.
  std::pair<nn::Layer, nlohmann::json> fused() const {
    if (conv) {
      auto layer = nn::Conv2dReluImpl::from_conv(*conv);
      auto spec = layer->spec();
      return {nn::make_layer(layer), std::move(spec)};
    }
    auto layer = nn::LinearReluImpl::from_linear(*linear);
    auto spec = layer->spec();
    return {nn::make_layer(layer), std::move(spec)};
  }
  bool runs_fused(const nn::Layer& fused, const torch::Tensor& x) const {
    if (conv) return std::dynamic_pointer_cast<nn::Conv2dReluImpl>(fused.module)->runs_fused(x);
    return std::dynamic_pointer_cast<nn::LinearReluImpl>(fused.module)->runs_fused(x);
  }
};

/// What a producer's forward saw.
struct InputRecord {
  std::vector<std::int64_t> shape;
  c10::MemoryFormat format = c10::MemoryFormat::Contiguous;
};

/// Each pair's producer input in a forward pass of `batch` (empty shape when it was never called).
std::vector<InputRecord> record_inputs(models::Model& model, const std::vector<Pair>& pairs,
                                       const torch::Tensor& batch) {
  auto records = std::make_shared<std::vector<InputRecord>>(pairs.size());
  // Puts the producers back however the forward ends.
  struct Restore {
    const std::vector<Pair>& pairs;
    ~Restore() {
      for (const auto& pair : pairs) pair.producer.parent->replace_layer(pair.producer.name, pair.producer_layer());
    }
  } restore{pairs};
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    auto layer = pairs[i].producer_layer();
    auto call = layer.call;
    nn::Layer recording{layer.module,
                        [call, records, i](const torch::Tensor& x) {
                          auto& record = (*records)[i];
                          if (record.shape.empty()) record = {x.sizes().vec(), x.suggest_memory_format()};
                          return call(x);
                        },
                        false};
    pairs[i].producer.parent->replace_layer(pairs[i].producer.name, std::move(recording));
  }
  model.forward(batch);
  return *records;
}

std::string type_name(const nn::SlotRef& ref) {
  if (ref.slot->as<torch::nn::BatchNorm2dImpl>() || ref.slot->as<torch::nn::BatchNorm1dImpl>()) {
    return "a batch norm; run fuse_conv_bn first to fold it";
  }
  return ref.slot->module()->name();
}

class FuseRelu : public Pass {
 public:
  PassReport apply(models::Model& model, const nlohmann::json& options, PassContext& context) override {
    PassReport report{"fuse_relu", options, {}, {}};
    report.details["layers"] = nlohmann::json::array();
    report.details["fused_kernel"] = nn::fused_relu_kernels_available()
                                         ? "oneDNN (mkldnn::_convolution_pointwise, mkldnn::_linear_pointwise)"
                                         : "none in this LibTorch (fused layers run conv / addmm + relu_)";
    torch::NoGradGuard no_grad;
    const auto pairs = find_pairs(model, options, report);
    if (!pairs.empty()) {
      const auto batch = shape_batch(options, context, report);
      for (const auto& pair : pairs) {
        // Recorded after the earlier pairs' decisions: a fused conv hands the next layer a
        // channels-last tensor, and the next pair is timed on what it will really get.
        const auto input =
            batch.defined() ? record_inputs(model, {pair}, batch.to(pair.weight().device())).front() : InputRecord{};
        decide(pair, input, options, context, report);
      }
    }
    if (report.changed.empty() && report.skipped.empty()) report.skipped.push_back("no ReLU layer in this model");
    return report;
  }

 private:
  static std::vector<Pair> find_pairs(models::Model& model, const nlohmann::json& options, PassReport& report) {
    std::map<std::string, nn::SlotRef> producer_of;  // consumer path -> producer
    for (const auto& [producer, consumer] : nn::all_flows(model)) producer_of.emplace(consumer.path, producer);
    std::vector<Pair> pairs;
    for (const auto& relu : nn::all_slots(model)) {
      if (relu.slot->as<torch::nn::ReLUImpl>() == nullptr) continue;
      if (is_skipped(relu.path, options["skip"])) {
        report.skipped.push_back(fmt::format("{}: listed in 'skip'", relu.path));
        continue;
      }
      std::vector<std::string> through;
      auto it = producer_of.find(relu.path);
      while (it != producer_of.end() && it->second.slot->as<torch::nn::IdentityImpl>() != nullptr) {
        through.push_back(it->second.path);
        it = producer_of.find(it->second.path);
      }
      if (it == producer_of.end()) {
        report.skipped.push_back(
            fmt::format("{}: left as it is: no declared flow into it from a Conv2d or Linear", relu.path));
        continue;
      }
      const auto& producer = it->second;
      if (is_skipped(producer.path, options["skip"])) {
        report.skipped.push_back(
            fmt::format("{} -> {}: {} is listed in 'skip'", producer.path, relu.path, producer.path));
        continue;
      }
      Pair pair{producer, relu, through, std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(producer.slot->module()),
                std::dynamic_pointer_cast<torch::nn::LinearImpl>(producer.slot->module())};
      if (!pair.conv && !pair.linear) {
        report.skipped.push_back(fmt::format("{}: left as it is: its input comes from {} ({}), not a Conv2d or Linear",
                                             relu.path, producer.path, type_name(producer)));
        continue;
      }
      if (pair.conv) {
        try {
          nn::Conv2dGeometry::of(*pair.conv, "fuse_relu");
        } catch (const Error& error) {
          report.skipped.push_back(fmt::format("{}: left unfused: {}", pair.name(), error.what()));
          continue;
        }
      }
      pairs.push_back(std::move(pair));
    }
    return pairs;
  }

  /// The batch a forward records the producers' inputs with: a calibration batch, or else the
  /// example input; undefined when there is neither.
  static torch::Tensor shape_batch(const nlohmann::json& options, PassContext& context, PassReport& report) {
    report.details["input"] = nullptr;
    if (context.calibration_batches) {
      const auto batches = context.calibration_batches(1);
      if (!batches.empty()) {
        report.details["input"] = "one calibration batch (real data) to record shapes";
        return batches.front();
      }
    }
    if (context.example_input) {
      report.details["input"] = "a random example input (timing only) to record shapes";
      return context.example_input(options["batch"].get<std::int64_t>());
    }
    return {};
  }

  static void decide(const Pair& pair, const InputRecord& input, const nlohmann::json& options, PassContext& context,
                     PassReport& report) {
    const auto min_speedup = options["min_speedup"].get<double>();
    auto [fused, spec] = pair.fused();
    nlohmann::json row = {
        {"producer", pair.producer.path},
        {"relu", pair.relu.path},
        {"through", pair.through},
        {"kind", spec["kind"]},
        {"shape", pair.weight().sizes().vec()},
        {"input_shape", input.shape},
        {"input_format", input.format == c10::MemoryFormat::ChannelsLast ? "channels_last" : "contiguous"},
        {"unfused_ms", nullptr},
        {"fused_ms", nullptr},
        {"speedup", nullptr},
        {"fused", false}};
    const auto finish = [&](bool keep, const std::string& reason) {
      row["fused"] = keep;
      row["reason"] = reason;
      report.details["layers"].push_back(row);
      if (!keep) {
        report.skipped.push_back(fmt::format("{}: left unfused: {}", pair.name(), reason));
        return;
      }
      context.editor->replace(pair.producer.path, spec, std::move(fused));
      context.editor->replace(pair.relu.path, {{"kind", "identity"}}, nn::build_layer({{"kind", "identity"}}));
      report.changed.push_back(
          fmt::format("{}: fused into {}: {}", pair.name(), spec["kind"].get<std::string>(), reason));
    };

    if (input.shape.empty()) {
      if (min_speedup <= 0) {
        finish(true, "not timed (no input reached it), min_speedup 0");
      } else {
        finish(false,
               "no calibration batch or example input reached it to time on; min_speedup 0 fuses without "
               "timing");
      }
      return;
    }
    auto timing_shape = input.shape;
    timing_shape.front() = options["batch"].get<std::int64_t>();
    row["timing_shape"] = timing_shape;
    // Timed where the model lives, on the layers themselves (the fused one is not in the model yet).
    const auto device = pair.weight().device();
    auto generator = at::make_generator<at::CPUGeneratorImpl>(kTimingSeed);
    auto x = at::randn(timing_shape, generator, at::TensorOptions().dtype(at::kFloat))
                 .to(device, pair.weight().scalar_type());
    if (x.dim() == 4) x = x.contiguous(input.format);
    const auto producer = pair.producer_layer();
    const auto relu = pair.relu_layer();
    const auto reference = relu.call(producer.call(x)).to(at::kDouble);
    const auto difference =
        ((fused.call(x).to(at::kDouble) - reference).norm() / reference.norm().clamp_min(1e-30)).item<double>();
    row["runs_fused_kernel"] = pair.runs_fused(fused, x);
    row["relative_difference"] = difference;
    TimingPlan plan;
    plan.rounds = static_cast<int>(options["rounds"].get<std::int64_t>());
    const auto ms = median_ms({[&] { relu.call(producer.call(x)); }, [&] { fused.call(x); }}, device, plan);
    const double speedup = ms[0] / std::max(ms[1], 1e-9);
    row["unfused_ms"] = ms[0];
    row["fused_ms"] = ms[1];
    row["speedup"] = speedup;
    const auto timing = fmt::format("{:.4f} ms fused vs {:.4f} ms unfused ({:.2f}x, min_speedup {})", ms[1], ms[0],
                                    speedup, min_speedup);
    if (!(difference <= kMaxRelativeDifference)) {
      finish(false, fmt::format("its output differs from the pair's by {:.3g} (relative; more than {})", difference,
                                kMaxRelativeDifference));
    } else if (speedup >= min_speedup) {
      finish(true, timing);
    } else {
      finish(false, timing);
    }
    report.details["timing"] = fmt::format("random inputs (timing only), {}", plan.describe(device));
  }
};

}  // namespace

PassEntry fuse_relu_entry() {
  return {"fuse_relu",
          "fuse each Conv2d/Linear with the ReLU it feeds into one oneDNN kernel (CPU, fp32), where timing shows it "
          "is faster; the ReLU becomes an identity",
          {{"min_speedup",
            OptionSpec::Type::Number,
            1.02,
            {},
            0.0,
            1e300,
            "keep a fusion only when the unfused pair takes at least this many times as long as the fused layer "
            "(measured); 0: fuse every eligible pair"},
           {"batch", OptionSpec::Type::Integer, 64, {}, 1, 1 << 20, "rows (images) of the random timing input"},
           {"rounds", OptionSpec::Type::Integer, 15, {}, 1, 1000, "interleaved timing rounds (the median is kept)"},
           skip_option("slot paths (or path prefixes) of convolutions, linears or ReLUs to leave alone")},
          [] { return std::make_unique<FuseRelu>(); }};
}

}  // namespace hone::compress
