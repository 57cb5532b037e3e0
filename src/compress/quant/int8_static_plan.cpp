#include "int8_static_plan.h"

#include <ATen/ATen.h>
#include <ATen/cpu/Utils.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>
#include <torch/utils.h>

#include <fmt/format.h>

#include <map>

#include "hone/core/error.h"
#include "hone/nn/conv2d_int8.h"
#include "hone/nn/layer_kinds.h"
#include "hone/nn/linear_int8.h"
#include "hone/nn/residual_add_int8.h"
#include "quant_common.h"

namespace hone::compress::quant {
namespace {

/// A residual add that records its inputs and output, then computes as the original.
class ObservedResidualAdd : public nn::ResidualAddImpl {
 public:
  ObservedResidualAdd(std::shared_ptr<nn::ResidualAddImpl> original, Observer* a, Observer* b, Observer* output)
      : nn::ResidualAddImpl(original->relu()), original_(std::move(original)), a_(a), b_(b), output_(output) {}
  torch::Tensor forward(const torch::Tensor& a, const torch::Tensor& b) override {
    a_->observe(a);
    b_->observe(b);
    auto y = original_->forward(a, b);
    output_->observe(y);
    return y;
  }

 private:
  std::shared_ptr<nn::ResidualAddImpl> original_;
  Observer *a_, *b_, *output_;
};

bool is_relu(const nn::SlotRef& ref) { return ref.slot->as<torch::nn::ReLUImpl>() != nullptr; }
bool is_identity(const nn::SlotRef& ref) { return ref.slot->as<torch::nn::IdentityImpl>() != nullptr; }

nlohmann::json qparams_json(const nn::ActivationQParams& q) {
  return {{"scale", q.scale}, {"zero_point", q.zero_point}};
}

}  // namespace

QuantRange static_activation_range() { return QuantRange{0, at::cpu::is_avx512_vnni_supported() ? 255 : 127}; }

std::vector<StaticTarget> plan_static_targets(models::Model& model, const nlohmann::json& skip, PassReport& report) {
  std::map<std::string, nn::SlotRef> consumer_of;
  for (const auto& [producer, consumer] : nn::all_flows(model)) consumer_of.emplace(producer.path, consumer);
  const auto next = [&](const std::string& path) -> std::optional<nn::SlotRef> {
    const auto it = consumer_of.find(path);
    return it == consumer_of.end() ? std::nullopt : std::optional<nn::SlotRef>(it->second);
  };
  const auto fusable_relu = [&](const std::string& path) -> std::optional<nn::SlotRef> {
    auto consumer = next(path);
    if (consumer && is_identity(*consumer)) consumer = next(consumer->path);
    return consumer && is_relu(*consumer) ? consumer : std::nullopt;
  };

  std::vector<StaticTarget> targets;
  for (const auto& ref : nn::all_slots(model)) {
    const auto& module = ref.slot->module();
    std::optional<StaticTargetType> type;
    std::string name;
    if (ref.slot->as<torch::nn::Conv2dImpl>() != nullptr) {
      type = StaticTargetType::kConv, name = "Conv2d";
    } else if (ref.slot->as<torch::nn::LinearImpl>() != nullptr) {
      type = StaticTargetType::kLinear, name = "Linear";
    } else if (ref.slot->as<nn::ResidualAddImpl>() != nullptr &&
               dynamic_cast<nn::TakesQuantizedInput*>(module.get()) == nullptr) {
      type = StaticTargetType::kAdd, name = "residual add";
    } else if (ref.slot->as<torch::nn::LSTMImpl>() != nullptr) {
      report.skipped.push_back(
          fmt::format("{}: LSTM is not supported by static quantization (use quant_int8_dynamic)", ref.path));
    }
    if (!type) continue;
    if (quant::is_skipped(ref.path, skip)) {
      report.skipped.push_back(fmt::format("{}: {} left in float by the 'skip' option", ref.path, name));
      continue;
    }
    StaticTarget target{ref, *type, {}, false, nullptr, nullptr, nullptr, {}};
    const auto consumer = next(ref.path);
    target.has_consumer = consumer.has_value();
    if (*type == StaticTargetType::kConv) {
      auto* conv = ref.slot->as<torch::nn::Conv2dImpl>();
      if (consumer && consumer->slot->as<torch::nn::BatchNorm2dImpl>() != nullptr) {
        report.skipped.push_back(
            fmt::format("{}: Conv2d is followed by BatchNorm2d {}; put fuse_conv_bn before quant_int8_static", ref.path,
                        consumer->path));
        continue;
      }
      if (!consumer) {
        report.skipped.push_back(fmt::format(
            "{}: its output goes to model code, not to a declared layer slot, so it must stay float", ref.path));
        continue;
      }
      if (!std::holds_alternative<torch::ExpandingArray<2>>(conv->options.padding()) ||
          !std::holds_alternative<torch::enumtype::kZeros>(conv->options.padding_mode())) {
        report.skipped.push_back(fmt::format("{}: only explicit zero padding is supported", ref.path));
        continue;
      }
    }
    if (*type != StaticTargetType::kAdd) target.relu = fusable_relu(ref.path);
    if (target.relu && quant::is_skipped(target.relu->path, skip)) target.relu.reset();
    if (*type == StaticTargetType::kConv) {
      target.original = nn::make_layer(std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(module));
    } else if (*type == StaticTargetType::kLinear) {
      target.original = nn::make_layer(std::dynamic_pointer_cast<torch::nn::LinearImpl>(module));
    } else {
      target.original = nn::make_layer(std::dynamic_pointer_cast<nn::ResidualAddImpl>(module));
    }
    targets.push_back(std::move(target));
  }
  return targets;
}

nn::Layer observing_tap(StaticTarget& target) {
  if (target.type == StaticTargetType::kAdd) {
    return nn::make_layer(
        std::make_shared<ObservedResidualAdd>(std::dynamic_pointer_cast<nn::ResidualAddImpl>(target.original.module),
                                              target.input.get(), target.input_b.get(), target.output.get()));
  }
  // The same module, called through a recording function: the module tree does not change.
  nn::Layer tap;
  tap.module = target.original.module;
  tap.call = [call = target.original.call, input = target.input.get(), output = target.output.get(),
              relu = target.relu.has_value()](const torch::Tensor& x) {
    input->observe(x);
    auto y = call(x);
    output->observe(relu ? y.relu() : y);
    return y;
  };
  return tap;
}

void replace_targets(std::vector<StaticTarget>& targets, const std::function<nn::Layer(StaticTarget&)>& make_tap) {
  for (auto& target : targets) target.ref.parent->replace_layer(target.ref.name, make_tap(target));
}

void restore_targets(std::vector<StaticTarget>& targets) {
  for (auto& target : targets) target.ref.parent->replace_layer(target.ref.name, target.original);
}

void calibrate_static_targets(models::Model& model, std::vector<StaticTarget>& targets,
                              const std::vector<torch::Tensor>& batches) {
  const bool was_training = model.is_training();
  model.eval();
  replace_targets(targets, observing_tap);
  const auto restore = [&] {
    restore_targets(targets);
    model.train(was_training);
  };
  try {
    torch::NoGradGuard no_grad;
    for (const auto& batch : batches) model.forward(batch.to(at::kCPU));
  } catch (...) {
    restore();
    throw;
  }
  restore();
}

std::vector<Int8Candidate> static_candidates(const std::vector<StaticTarget>& targets, bool per_channel,
                                             QuantRange range, PassReport& report) {
  // The last int8 layer hands float to the model's own code.
  const StaticTarget* last = nullptr;
  for (const auto& target : targets) {
    if (!target.output->empty()) last = &target;
  }
  // Every int8 layer is built first, with its report line and details; which go in comes after.
  std::vector<Int8Candidate> candidates;
  for (const auto& target : targets) {
    const auto& path = target.ref.path;
    if (target.input->empty()) {
      report.skipped.push_back(fmt::format("{}: not reached by the calibration batches; left in float", path));
      continue;
    }
    nlohmann::json detail = {{"path", path}};
    const auto input = target.input->qparams();
    auto output = target.output->qparams();
    nlohmann::json spec;
    nn::Layer layer;
    if (target.type == StaticTargetType::kConv) {
      const auto& conv = *std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(target.original.module);
      auto replacement = nn::Conv2dInt8Impl::from_float(conv, per_channel, target.relu.has_value(), input, output);
      detail["weight_error"] = nn::weight_error(conv.weight, replacement->weight(), per_channel);
      spec = replacement->spec();
      layer = nn::make_layer(replacement);
    } else if (target.type == StaticTargetType::kLinear) {
      const auto& linear = *std::dynamic_pointer_cast<torch::nn::LinearImpl>(target.original.module);
      nn::LinearInt8Options linear_options;
      linear_options.per_channel = per_channel;
      linear_options.relu = target.relu.has_value();
      // Model code may do arithmetic on a Linear's output; only a declared flow into another slot
      // is sure to take a quantized tensor.
      linear_options.dequantize_output = &target == last || !target.has_consumer;
      // A float output feeds no int8 layer and is often the model's answer: never clip it (a
      // few hundred logits also make too sparse a histogram for the percentile/entropy search).
      if (linear_options.dequantize_output) {
        output = affine_qparams(target.output->min(), target.output->max(), range);
        detail["output_range"] = "minmax";
      }
      auto replacement = nn::LinearInt8Impl::from_float(linear, linear_options, input, output);
      detail["weight_error"] = nn::weight_error(linear.weight, replacement->weight(), per_channel);
      spec = replacement->spec();
      layer = nn::make_layer(replacement);
    } else {
      const auto& add = *std::dynamic_pointer_cast<nn::ResidualAddImpl>(target.original.module);
      auto replacement = nn::ResidualAddInt8Impl::from_float(add.relu(), input, target.input_b->qparams(), output);
      detail["input_b"] = qparams_json(target.input_b->qparams());
      spec = replacement->spec();
      layer = nn::make_layer(replacement);
    }
    detail["kind"] = spec["kind"];
    detail["input"] = qparams_json(input);
    detail["output"] = qparams_json(output);
    std::string what = fmt::format("{}: -> {}", path, spec["kind"].get<std::string>());
    Int8Candidate candidate;
    candidate.changes.push_back({target.ref, target.original, std::move(layer), spec});
    if (target.relu) {
      const nlohmann::json identity = {{"kind", "identity"}};
      const auto relu = std::dynamic_pointer_cast<torch::nn::ReLUImpl>(target.relu->slot->module());
      candidate.changes.push_back({*target.relu, nn::make_layer(relu), nn::build_layer(identity), identity});
      detail["fused_relu"] = target.relu->path;
      what += fmt::format(" with {} fused", target.relu->path);
    }
    candidate.line = std::move(what);
    candidate.detail = std::move(detail);
    candidates.push_back(std::move(candidate));
  }
  return candidates;
}

}  // namespace hone::compress::quant
