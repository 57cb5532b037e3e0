// lowrank_svd: replaces a weight matrix W [out, in] by a rank-r product. With the SVD
// W = U S V^T (in double), the best rank-r approximation in Frobenius norm is U_r S_r V_r^T; it
// becomes two layers, first.weight = sqrt(S_r) V_r^T [r, in] and second.weight = U_r sqrt(S_r)
// [out, r] (splitting sqrt(S) evenly keeps both factors on the same scale), with the original
// bias on `second`. The rank is the smallest whose squared singular values keep `energy` of the
// total, or, with parameter_reduction > 0, the largest that still removes that fraction of the
// layer's parameters. A layer where r*(in+out) >= in*out would not get smaller and is left alone.
//
// Layers: a Linear (W is its weight) becomes a linear_lowrank; a 1×1, groups = 1 Conv2d (W is its
// weight [out, in, 1, 1] viewed as [out, in]: a matmul over the channels of each pixel) becomes a
// conv2d_lowrank whose first 1×1 conv keeps the original stride, padding and dilation. Larger
// kernels and grouped convolutions are reported and left alone.
#include <ATen/ATen.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "../layer_patterns.h"
#include "../passes.h"
#include "hone/core/error.h"
#include "hone/nn/conv2d_lowrank.h"
#include "hone/nn/conv_geometry.h"
#include "hone/nn/layer_kinds.h"
#include "hone/nn/linear_lowrank.h"

namespace hone::compress {
namespace {

/// The factors of one layer's weight matrix, in double.
struct Factors {
  std::int64_t rank = 0;
  double energy_kept = 0;
  at::Tensor first;   ///< [rank, in]
  at::Tensor second;  ///< [out, rank]
};

/// The rank the options ask for and its factors, or nullopt (with the reason in `report.skipped`)
/// when no rank >= min_rank meets the reduction target or the factors would not be smaller.
std::optional<Factors> factorize(const std::string& path, const std::string& shape, const at::Tensor& matrix,
                                 bool has_bias, const nlohmann::json& options, PassReport& report) {
  const std::int64_t out = matrix.size(0), in = matrix.size(1);
  const std::int64_t bias = has_bias ? out : 0;
  const auto [u, s, vh] = at::linalg_svd(matrix.to(at::kDouble), /*full_matrices=*/false);
  const auto squared = s.square();
  const auto total = squared.sum().item<double>();
  const auto cumulative = squared.cumsum(0);
  const std::int64_t full_rank = s.size(0);
  const auto min_rank = std::min<std::int64_t>(options["min_rank"].get<std::int64_t>(), full_rank);

  std::int64_t rank = full_rank;
  const auto reduction = options["parameter_reduction"].get<double>();
  if (reduction > 0) {
    // Largest r with r*(in+out) + bias <= (1 - reduction) * (in*out + bias).
    const double budget = (1.0 - reduction) * static_cast<double>(in * out + bias) - static_cast<double>(bias);
    rank = std::min<std::int64_t>(full_rank, static_cast<std::int64_t>(std::floor(budget / double(in + out))));
    if (rank < min_rank) {
      report.skipped.push_back(fmt::format("{}: removing {:.0f}% of its {} parameters needs rank {} < min_rank {}",
                                           path, 100 * reduction, in * out + bias, rank, min_rank));
      return std::nullopt;
    }
  } else {
    // Smallest r whose energy reaches the threshold (a relative 1e-12 absorbs rounding so
    // energy = 1 gives the full rank rather than failing on the last ulp).
    const auto energy = options["energy"].get<double>();
    const auto target = energy * total * (1.0 - 1e-12);
    const auto reached = (cumulative >= target).nonzero();
    rank = reached.numel() > 0 ? reached[0][0].item<std::int64_t>() + 1 : full_rank;
    rank = std::max(rank, min_rank);
  }
  if (rank * (in + out) >= in * out) {
    report.skipped.push_back(fmt::format("{}: rank {} of {} would not reduce parameters ({} >= {})", path, rank, shape,
                                         rank * (in + out), in * out));
    return std::nullopt;
  }
  const auto root = s.narrow(0, 0, rank).sqrt();
  return Factors{rank, total > 0 ? cumulative[rank - 1].item<double>() / total : 1.0,
                 root.unsqueeze(1) * vh.narrow(0, 0, rank), u.narrow(1, 0, rank) * root.unsqueeze(0)};
}

void record(const std::string& path, const std::string& shape, std::int64_t in, std::int64_t out, bool has_bias,
            const Factors& factors, PassReport& report) {
  const std::int64_t bias = has_bias ? out : 0;
  const auto before = in * out + bias, after = factors.rank * (in + out) + bias;
  report.changed.push_back(fmt::format("{}: {} -> rank {} ({:.2f}% energy, {} -> {} parameters)", path, shape,
                                       factors.rank, 100 * factors.energy_kept, before, after));
  report.details["layers"].push_back({{"path", path},
                                      {"in", in},
                                      {"out", out},
                                      {"rank", factors.rank},
                                      {"energy_kept", factors.energy_kept},
                                      {"parameters_before", before},
                                      {"parameters_after", after}});
}

void factorize_linear(const nn::SlotRef& ref, torch::nn::LinearImpl& linear, const nlohmann::json& options,
                      PassContext& context, PassReport& report) {
  const auto& w = linear.weight;
  const std::int64_t out = w.size(0), in = w.size(1);
  const auto shape = fmt::format("[{} x {}]", out, in);
  const auto factors = factorize(ref.path, shape, w, linear.bias.defined(), options, report);
  if (!factors) return;
  const nlohmann::json spec = {
      {"kind", "linear_lowrank"}, {"in", in}, {"rank", factors->rank}, {"out", out}, {"bias", linear.bias.defined()}};
  auto layer = nn::build_layer(spec);
  auto* lowrank = dynamic_cast<nn::LinearLowRankImpl*>(layer.module.get());
  HONE_CHECK(lowrank != nullptr, "lowrank_svd: layer kind 'linear_lowrank' did not build a LinearLowRank");
  auto* first = lowrank->first().as<torch::nn::LinearImpl>();
  auto* second = lowrank->second().as<torch::nn::LinearImpl>();
  first->weight.set_data(factors->first.to(w.options()));
  second->weight.set_data(factors->second.to(w.options()));
  if (linear.bias.defined()) second->bias.set_data(linear.bias.detach().clone());
  layer.module->to(w.device());
  context.editor->replace(ref.path, spec, std::move(layer));
  record(ref.path, shape, in, out, linear.bias.defined(), *factors, report);
}

/// Why `conv` cannot be factorized as a matmul over channels, or empty when it can.
std::string why_not_factorizable(const torch::nn::Conv2dImpl& conv) {
  nn::Conv2dGeometry geometry;
  try {
    geometry = nn::Conv2dGeometry::of(conv, "lowrank_svd");
  } catch (const Error& error) {
    return error.what();
  }
  if (geometry.kernel != std::vector<std::int64_t>{1, 1}) {
    return fmt::format("kernel {}x{}: only 1x1 convolutions are factorized", geometry.kernel[0], geometry.kernel[1]);
  }
  if (geometry.groups != 1) {
    return fmt::format("groups = {}: only groups = 1 convolutions are factorized", geometry.groups);
  }
  return {};
}

void factorize_conv(const nn::SlotRef& ref, torch::nn::Conv2dImpl& conv, const nlohmann::json& options,
                    PassContext& context, PassReport& report) {
  if (const auto reason = why_not_factorizable(conv); !reason.empty()) {
    report.skipped.push_back(fmt::format("{}: left as it is: {}", ref.path, reason));
    return;
  }
  const auto geometry = nn::Conv2dGeometry::of(conv, "lowrank_svd");
  const auto& w = conv.weight;
  const std::int64_t out = w.size(0), in = w.size(1);
  const auto shape = fmt::format("Conv2d 1x1 [{} x {}]", out, in);
  const auto factors = factorize(ref.path, shape, w.reshape({out, in}), geometry.bias, options, report);
  if (!factors) return;
  nn::Conv2dLowRank layer(nn::Conv2dLowRankOptions{in, factors->rank, out, geometry.stride, geometry.padding,
                                                   geometry.dilation, geometry.bias});
  auto* first = layer->first().as<torch::nn::Conv2dImpl>();
  auto* second = layer->second().as<torch::nn::Conv2dImpl>();
  first->weight.set_data(factors->first.view({factors->rank, in, 1, 1}).to(w.options()));
  second->weight.set_data(factors->second.view({out, factors->rank, 1, 1}).to(w.options()));
  if (geometry.bias) second->bias.set_data(conv.bias.detach().clone());
  layer->to(w.device());
  const auto spec = layer->spec();
  context.editor->replace(ref.path, spec, nn::make_layer(layer));
  record(ref.path, shape, in, out, geometry.bias, *factors, report);
}

bool wants(const nlohmann::json& options, const char* kind) {
  const auto& kinds = options["kinds"];
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

class LowRankSvd : public Pass {
 public:
  PassReport apply(models::Model& model, const nlohmann::json& options, PassContext& context) override {
    PassReport report{"lowrank_svd", options, {}, {}};
    report.details["layers"] = nlohmann::json::array();
    torch::NoGradGuard no_grad;
    const bool linears = wants(options, "linear"), convs = wants(options, "conv2d");
    LayerPatterns patterns(options["layers"].get<std::vector<std::string>>());
    for (const auto& ref : nn::all_slots(model)) {
      auto* linear = linears ? ref.slot->as<torch::nn::LinearImpl>() : nullptr;
      auto* conv = convs ? ref.slot->as<torch::nn::Conv2dImpl>() : nullptr;
      if ((linear == nullptr && conv == nullptr) || !patterns.select(ref.path)) continue;
      if (is_skipped(ref.path, options["skip"])) {
        report.skipped.push_back(fmt::format("{}: listed in 'skip'", ref.path));
        continue;
      }
      if (linear != nullptr) {
        factorize_linear(ref, *linear, options, context, report);
      } else {
        factorize_conv(ref, *conv, options, context, report);
      }
    }
    for (const auto& pattern : patterns.unused()) {
      report.skipped.push_back(
          fmt::format("'layers' entry '{}' matches no layer of the kinds {}", pattern, options["kinds"].dump()));
    }
    if (report.changed.empty() && report.skipped.empty()) {
      report.skipped.push_back(fmt::format("no layer of the kinds {} in this model", options["kinds"].dump()));
    }
    return report;
  }
};

}  // namespace

PassEntry lowrank_svd_entry() {
  return {"lowrank_svd",
          "factorize each Linear (and, with kinds [\"conv2d\"], each 1x1 Conv2d) into two thinner layers by "
          "truncated SVD (rank from 'energy' or 'parameter_reduction'); skips layers it would not shrink",
          {{"energy",
            OptionSpec::Type::Number,
            0.95,
            {},
            1e-12,
            1.0,
            "fraction of the squared singular values to keep, in (0, 1]"},
           {"parameter_reduction",
            OptionSpec::Type::Number,
            0.0,
            {},
            0.0,
            0.999999,
            "when > 0: pick the largest rank that removes at least this fraction of each layer's parameters "
            "(overrides 'energy')"},
           {"min_rank", OptionSpec::Type::Integer, 1, {}, 1, 1e300, "never factorize below this rank"},
           {"kinds",
            OptionSpec::Type::StringList,
            nlohmann::json::array({"linear"}),
            {"linear", "conv2d"},
            -1e300,
            1e300,
            "layer types to factorize: linear, conv2d (1x1 kernels with groups = 1; others are reported and left "
            "alone)"},
           {"layers",
            OptionSpec::Type::StringList,
            nlohmann::json::array(),
            {},
            -1e300,
            1e300,
            "slot paths or patterns ('*' matches any characters, e.g. 'features.*.pointwise') to consider; "
            "empty: every layer of the chosen kinds"},
           skip_option("slot paths (or path prefixes, e.g. 'layers.0') to leave alone")},
          [] { return std::make_unique<LowRankSvd>(); }};
}

}  // namespace hone::compress
