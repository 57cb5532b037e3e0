// prune_magnitude: unstructured L1-magnitude pruning of Linear and Conv2d weights. In each layer
// (scope "layer") or over all of them together (scope "global") the floor(amount * n) weights of
// smallest |w| are set to zero, and that is permanent: no mask is kept, the weights stay dense.
//
// Exactly floor(amount * n) weights are chosen, so ties at the threshold never prune more than
// asked: weights are ordered by |w| with a stable sort, so among equal magnitudes the one that
// comes first (layer order, then row-major position) is pruned first. Weights that are already
// zero sort first and count towards the amount. Biases are not pruned.
//
// Zeros do not speed up dense kernels. The saved file shrinks where a tensor is at least half zeros:
// hone compress stores those as values + bitmask (run::WeightStorage::kSparse), loaded back dense.
#include <ATen/ATen.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "../passes.h"
#include "hone/core/error.h"

namespace hone::compress {
namespace {

bool contains(const nlohmann::json& list, const char* value) {
  for (const auto& item : list) {
    if (item.get<std::string>() == value) return true;
  }
  return false;
}

struct Target {
  std::string path;
  torch::Tensor weight;
};

std::int64_t count_to_prune(double amount, std::int64_t n) {
  // The small slack keeps e.g. 0.3 * 10 from flooring to 2 because 0.3 is not exact in binary.
  return std::min<std::int64_t>(n, static_cast<std::int64_t>(std::floor(amount * static_cast<double>(n) + 1e-9)));
}

/// Flat indices of the `count` smallest entries of `magnitudes`, ties broken by position.
torch::Tensor smallest(const torch::Tensor& magnitudes, std::int64_t count) {
  const auto order = std::get<1>(at::sort(magnitudes, /*stable=*/true, /*dim=*/0, /*descending=*/false));
  return order.narrow(0, 0, count);
}

void zero_entries(torch::Tensor& weight, const torch::Tensor& flat_indices) {
  auto flat = weight.detach().view({-1});
  flat.index_fill_(0, flat_indices.to(weight.device()), 0);
}

class PruneMagnitude : public Pass {
 public:
  PassReport apply(models::Model& model, const nlohmann::json& options, PassContext& /*context*/) override {
    PassReport report{"prune_magnitude", options, {}, {}};
    torch::NoGradGuard no_grad;
    std::vector<Target> targets;
    for (const auto& ref : nn::all_slots(model)) {
      torch::Tensor weight;
      if (auto* linear = ref.slot->as<torch::nn::LinearImpl>()) {
        if (contains(options["layers"], "linear")) weight = linear->weight;
      } else if (auto* conv = ref.slot->as<torch::nn::Conv2dImpl>()) {
        if (contains(options["layers"], "conv2d")) weight = conv->weight;
      }
      if (!weight.defined()) continue;
      if (is_skipped(ref.path, options["skip"])) {
        report.skipped.push_back(fmt::format("{}: listed in 'skip'", ref.path));
        continue;
      }
      HONE_CHECK(weight.is_contiguous() && weight.is_floating_point(),
                 "prune_magnitude: {}.weight must be a contiguous float tensor", ref.path);
      targets.push_back({ref.path, weight});
    }
    if (targets.empty()) {
      report.skipped.push_back("no Linear or Conv2d weight of the kinds in 'layers' to prune");
      return report;
    }
    const auto amount = options["amount"].get<double>();
    if (options["scope"].get<std::string>() == "global") {
      std::vector<torch::Tensor> magnitudes;
      for (const auto& target : targets) magnitudes.push_back(target.weight.detach().abs().flatten());
      const auto all = at::cat(magnitudes);
      const auto chosen = smallest(all, count_to_prune(amount, all.numel()));
      std::int64_t offset = 0;
      for (auto& target : targets) {
        const auto n = target.weight.numel();
        const auto mine = chosen.masked_select((chosen >= offset).logical_and(chosen < offset + n)) - offset;
        zero_entries(target.weight, mine);
        offset += n;
      }
    } else {
      for (auto& target : targets) {
        const auto magnitudes = target.weight.detach().abs().flatten();
        zero_entries(target.weight, smallest(magnitudes, count_to_prune(amount, magnitudes.numel())));
      }
    }
    auto layers = nlohmann::json::array();
    std::int64_t total = 0, zeros = 0;
    for (const auto& target : targets) {
      const auto n = target.weight.numel();
      const auto z = n - target.weight.count_nonzero().item<std::int64_t>();
      total += n;
      zeros += z;
      const auto sparsity = static_cast<double>(z) / static_cast<double>(n);
      layers.push_back({{"path", target.path}, {"parameters", n}, {"zeros", z}, {"sparsity", sparsity}});
      report.changed.push_back(fmt::format("{}: {:.1f}% of {} weights are zero", target.path, 100 * sparsity, n));
    }
    report.details["layers"] = std::move(layers);
    report.details["total_sparsity"] = static_cast<double>(zeros) / static_cast<double>(total);
    report.details["note"] =
        "stored sparse in model.safetensors (non-zero values + a bitmask) where a tensor is at least half zeros; "
        "loaded back dense and run by the dense kernels (no sparse kernel is used)";
    return report;
  }
};

}  // namespace

PassEntry prune_magnitude_entry() {
  return {"prune_magnitude",
          "zero the smallest-magnitude Linear/Conv2d weights (unstructured: the file stores them sparse, dense "
          "kernels run at the same speed)",
          {{"amount",
            OptionSpec::Type::Number,
            nullptr,
            {},
            0.0,
            0.999999999,
            "fraction of the weights to set to zero, in [0, 1)"},
           {"scope",
            OptionSpec::Type::String,
            "layer",
            {"layer", "global"},
            -1e300,
            1e300,
            "'layer': prune that fraction of every layer; 'global': one threshold over all of them"},
           {"layers",
            OptionSpec::Type::StringList,
            nlohmann::json::array({"linear", "conv2d"}),
            {"linear", "conv2d"},
            -1e300,
            1e300,
            "which layer kinds to prune"},
           skip_option("slot paths (or path prefixes, e.g. 'features.0') to leave alone")},
          [] { return std::make_unique<PruneMagnitude>(); }};
}

}  // namespace hone::compress
