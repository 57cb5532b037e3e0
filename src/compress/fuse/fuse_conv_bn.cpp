// fuse_conv_bn: folds a BatchNorm (in eval mode, with running statistics) into the Conv2d or
// Linear that feeds only it. y = gamma * (W x + b - mean) / sqrt(var + eps) + beta becomes one
// layer with W' = W * s (per output channel), b' = (b - mean) * s + beta, s = gamma / sqrt(var + eps).
// The batch norm's slot then holds an identity: its parameters and its pass over memory are gone.
// After lowrank_svd, the producer is a low-rank pair; the norm folds into its second factor.
#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

#include <fmt/format.h>

#include <variant>

#include "../passes.h"
#include "hone/core/error.h"
#include "hone/nn/conv2d_lowrank.h"
#include "hone/nn/conv_geometry.h"
#include "hone/nn/layer_kinds.h"
#include "hone/nn/linear_lowrank.h"

namespace hone::compress {
namespace {

/// gamma / sqrt(var + eps) and beta - mean * that, from a batch norm's running statistics.
template <typename Norm>
std::pair<torch::Tensor, torch::Tensor> norm_scale_shift(const Norm& norm) {
  const auto& options = norm.options;
  const auto scale = at::rsqrt(norm.running_var.to(at::kDouble) + options.eps());
  auto gamma = norm.weight.defined() ? norm.weight.to(at::kDouble) : at::ones_like(scale);
  auto beta = norm.bias.defined() ? norm.bias.to(at::kDouble) : at::zeros_like(scale);
  const auto s = gamma * scale;
  return {s, beta - norm.running_mean.to(at::kDouble) * s};
}

template <typename Norm>
std::string why_not_foldable(const Norm& norm) {
  if (!norm.options.track_running_stats() || !norm.running_mean.defined()) return "has no running statistics";
  return {};
}

/// The slot whose layer computes `producer`'s output: the producer itself, or the second factor of
/// a low-rank pair (second(first(x)): a per-channel scale and shift after it fold into `second`).
nn::SlotRef output_slot(const nn::SlotRef& producer) {
  if (auto* lowrank = producer.slot->as<nn::Conv2dLowRankImpl>()) {
    return {producer.path + ".second", lowrank, "second", &lowrank->second()};
  }
  if (auto* lowrank = producer.slot->as<nn::LinearLowRankImpl>()) {
    return {producer.path + ".second", lowrank, "second", &lowrank->second()};
  }
  return producer;
}

class FuseConvBn : public Pass {
 public:
  PassReport apply(models::Model& model, const nlohmann::json& options, PassContext& context) override {
    PassReport report{"fuse_conv_bn", options, {}, {}};
    torch::NoGradGuard no_grad;
    for (const auto& [flow_producer, consumer] : nn::all_flows(model)) {
      const auto producer = output_slot(flow_producer);
      if (auto* norm = consumer.slot->as<torch::nn::BatchNorm2dImpl>()) {
        auto* conv = producer.slot->as<torch::nn::Conv2dImpl>();
        if (conv == nullptr) {
          report.skipped.push_back(
              fmt::format("{}: its input comes from {}, not a Conv2d", consumer.path, producer.path));
          continue;
        }
        fold_conv(*conv, *norm, producer, consumer, context, report);
      } else if (auto* norm1d = consumer.slot->as<torch::nn::BatchNorm1dImpl>()) {
        auto* linear = producer.slot->as<torch::nn::LinearImpl>();
        if (linear == nullptr) {
          report.skipped.push_back(
              fmt::format("{}: its input comes from {}, not a Linear", consumer.path, producer.path));
          continue;
        }
        fold_linear(*linear, *norm1d, producer, consumer, context, report);
      }
    }
    if (report.changed.empty() && report.skipped.empty()) {
      report.skipped.push_back("no Conv2d -> BatchNorm2d or Linear -> BatchNorm1d pair in this model");
    }
    return report;
  }

 private:
  static void fold_conv(torch::nn::Conv2dImpl& conv, torch::nn::BatchNorm2dImpl& norm, const nn::SlotRef& producer,
                        const nn::SlotRef& consumer, PassContext& context, PassReport& report) {
    const auto reason = why_not_foldable(norm);
    const auto* padding = std::get_if<torch::ExpandingArray<2>>(&conv.options.padding());
    if (!reason.empty() || padding == nullptr ||
        !std::holds_alternative<torch::enumtype::kZeros>(conv.options.padding_mode())) {
      report.skipped.push_back(fmt::format("{} -> {}: {}", producer.path, consumer.path,
                                           reason.empty() ? "padding is not explicit zeros" : reason));
      return;
    }
    const auto [scale, shift] = norm_scale_shift(norm);
    const auto weight = conv.weight.to(at::kDouble) * scale.view({-1, 1, 1, 1});
    const auto bias = conv.bias.defined() ? conv.bias.to(at::kDouble) * scale + shift : shift;
    const auto& w = conv.weight;
    auto geometry = nn::Conv2dGeometry::of(conv, "fuse_conv_bn");
    geometry.bias = true;
    const auto spec = geometry.with_spec({{"kind", "conv2d"}});
    auto layer = nn::build_layer(spec);
    auto* fused = dynamic_cast<torch::nn::Conv2dImpl*>(layer.module.get());
    fused->weight.set_data(weight.to(w.options()));
    fused->bias.set_data(bias.to(w.options()));
    layer.module->to(w.device());
    context.editor->replace(producer.path, spec, std::move(layer));
    context.editor->replace(consumer.path, {{"kind", "identity"}}, nn::build_layer({{"kind", "identity"}}));
    report.changed.push_back(fmt::format("{}: folded {} into it", producer.path, consumer.path));
  }

  static void fold_linear(torch::nn::LinearImpl& linear, torch::nn::BatchNorm1dImpl& norm, const nn::SlotRef& producer,
                          const nn::SlotRef& consumer, PassContext& context, PassReport& report) {
    const auto reason = why_not_foldable(norm);
    if (!reason.empty()) {
      report.skipped.push_back(fmt::format("{} -> {}: {}", producer.path, consumer.path, reason));
      return;
    }
    const auto [scale, shift] = norm_scale_shift(norm);
    const auto& w = linear.weight;
    const nlohmann::json spec = {{"kind", "linear"}, {"in", w.size(1)}, {"out", w.size(0)}, {"bias", true}};
    auto layer = nn::build_layer(spec);
    auto* fused = dynamic_cast<torch::nn::LinearImpl*>(layer.module.get());
    fused->weight.set_data((w.to(at::kDouble) * scale.view({-1, 1})).to(w.options()));
    const auto bias = linear.bias.defined() ? linear.bias.to(at::kDouble) * scale + shift : shift;
    fused->bias.set_data(bias.to(w.options()));
    context.editor->replace(producer.path, spec, std::move(layer));
    context.editor->replace(consumer.path, {{"kind", "identity"}}, nn::build_layer({{"kind", "identity"}}));
    report.changed.push_back(fmt::format("{}: folded {} into it", producer.path, consumer.path));
  }
};

}  // namespace

PassEntry fuse_conv_bn_entry() {
  return {"fuse_conv_bn",
          "fold each BatchNorm into the Conv2d/Linear that feeds it (exact up to rounding; removes the norm)",
          {},
          [] { return std::make_unique<FuseConvBn>(); }};
}

}  // namespace hone::compress
