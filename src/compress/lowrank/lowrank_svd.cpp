// lowrank_svd: replaces a Linear's weight W [out, in] by a rank-r product. With the SVD
// W = U S V^T (in double), the best rank-r approximation in Frobenius norm is U_r S_r V_r^T; it
// becomes two Linears, first.weight = sqrt(S_r) V_r^T [r, in] and second.weight = U_r sqrt(S_r)
// [out, r] (splitting sqrt(S) evenly keeps both factors on the same scale), with the original
// bias on `second`. The rank is the smallest whose squared singular values keep `energy` of the
// total, or, with parameter_reduction > 0, the largest that still removes that fraction of the
// layer's parameters. A layer where r*(in+out) >= in*out would not get smaller and is left alone.
#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "../passes.h"
#include "hone/core/error.h"
#include "hone/nn/layer_kinds.h"
#include "hone/nn/linear_lowrank.h"

namespace hone::compress {
namespace {

class LowRankSvd : public Pass {
 public:
  PassReport apply(models::Model& model, const nlohmann::json& options, PassContext& context) override {
    PassReport report{"lowrank_svd", options, {}, {}};
    report.details["layers"] = nlohmann::json::array();
    torch::NoGradGuard no_grad;
    for (const auto& ref : nn::all_slots(model)) {
      auto* linear = ref.slot->as<torch::nn::LinearImpl>();
      if (linear == nullptr) continue;
      if (is_skipped(ref.path, options["skip"])) {
        report.skipped.push_back(fmt::format("{}: listed in 'skip'", ref.path));
        continue;
      }
      factorize(ref, *linear, options, context, report);
    }
    if (report.changed.empty() && report.skipped.empty()) {
      report.skipped.push_back("no Linear layer in this model");
    }
    return report;
  }

 private:
  static void factorize(const nn::SlotRef& ref, torch::nn::LinearImpl& linear, const nlohmann::json& options,
                        PassContext& context, PassReport& report) {
    const auto& w = linear.weight;
    const std::int64_t out = w.size(0), in = w.size(1);
    const std::int64_t bias = linear.bias.defined() ? out : 0;
    const auto [u, s, vh] = at::linalg_svd(w.to(at::kDouble), /*full_matrices=*/false);
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
                                             ref.path, 100 * reduction, in * out + bias, rank, min_rank));
        return;
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
      report.skipped.push_back(fmt::format("{}: rank {} of [{} x {}] would not reduce parameters ({} >= {})", ref.path,
                                           rank, out, in, rank * (in + out), in * out));
      return;
    }
    const double kept = total > 0 ? cumulative[rank - 1].item<double>() / total : 1.0;

    const auto root = s.narrow(0, 0, rank).sqrt();
    const auto first_weight = root.unsqueeze(1) * vh.narrow(0, 0, rank);  // [rank, in]
    const auto second_weight = u.narrow(1, 0, rank) * root.unsqueeze(0);  // [out, rank]
    const nlohmann::json spec = {
        {"kind", "linear_lowrank"}, {"in", in}, {"rank", rank}, {"out", out}, {"bias", linear.bias.defined()}};
    auto layer = nn::build_layer(spec);
    auto* lowrank = dynamic_cast<nn::LinearLowRankImpl*>(layer.module.get());
    HONE_CHECK(lowrank != nullptr, "lowrank_svd: layer kind 'linear_lowrank' did not build a LinearLowRank");
    auto* first = lowrank->first().as<torch::nn::LinearImpl>();
    auto* second = lowrank->second().as<torch::nn::LinearImpl>();
    first->weight.set_data(first_weight.to(w.options()));
    second->weight.set_data(second_weight.to(w.options()));
    if (linear.bias.defined()) second->bias.set_data(linear.bias.detach().clone());
    layer.module->to(w.device());
    const auto after = rank * (in + out) + bias;
    context.editor->replace(ref.path, spec, std::move(layer));
    report.changed.push_back(fmt::format("{}: [{} x {}] -> rank {} ({:.2f}% energy, {} -> {} parameters)", ref.path,
                                         out, in, rank, 100 * kept, in * out + bias, after));
    report.details["layers"].push_back({{"path", ref.path},
                                        {"in", in},
                                        {"out", out},
                                        {"rank", rank},
                                        {"energy_kept", kept},
                                        {"parameters_before", in * out + bias},
                                        {"parameters_after", after}});
  }
};

}  // namespace

PassEntry lowrank_svd_entry() {
  return {"lowrank_svd",
          "factorize each Linear into two thinner ones by truncated SVD (rank from 'energy' or "
          "'parameter_reduction'); skips layers it would not shrink",
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
           skip_option("slot paths (or path prefixes, e.g. 'layers.0') to leave alone")},
          [] { return std::make_unique<LowRankSvd>(); }};
}

}  // namespace hone::compress
