// prune_structured: removes whole channels (conv output channels, hidden neurons) from the
// channel groups a model declares (models::ChannelGroup), so the tensors really get smaller.
//
// Each channel c of a group is scored by sum over producers of ||W_p[c]|| (L1 or L2 over the
// output channel's weights), each multiplied by |gamma_c| / sqrt(var_c + eps) of the batch norm
// that producer feeds, when it feeds one: a channel the norm scales down is judged by its
// effective size. The top channels are kept in their original order (ties: the lower index
// wins), and the others are removed from every producer (weight rows, bias), norm (weight, bias,
// running statistics) and consumer (weight columns). Every tensor changes through the editor, so
// a saved model replays the new shapes. A group the pass cannot shrink safely (a grouped conv, a
// layer another pass already replaced, mismatched sizes) is left whole, with the reason.
//
// Removing a channel changes nothing else exactly when its producers' outputs for it are
// constant zero; otherwise the model's function changes and fine-tuning (or at least
// re-estimating batch-norm statistics: recalibrate_batch_norm) is expected.
#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "../passes.h"
#include "hone/core/error.h"

namespace hone::compress {
namespace {

constexpr std::int64_t kRecalibrationBatches = 32;

std::string type_of(const nn::LayerSlot& slot) { return slot.module()->name(); }

/// A producer or consumer: a Conv2d (groups = 1) or a Linear.
struct Weighted {
  std::string path;
  torch::nn::Conv2dImpl* conv = nullptr;
  torch::nn::LinearImpl* linear = nullptr;
  const torch::Tensor& weight() const { return conv != nullptr ? conv->weight : linear->weight; }
  const torch::Tensor& bias() const { return conv != nullptr ? conv->bias : linear->bias; }
};

struct Norm {
  std::string path;
  torch::nn::BatchNorm1dImpl* norm1d = nullptr;
  torch::nn::BatchNorm2dImpl* norm2d = nullptr;
  bool identity = false;  ///< folded away by fuse_conv_bn: nothing to shrink
};

template <typename BatchNorm>
torch::Tensor effective_scale(const BatchNorm& norm, std::int64_t channels) {
  auto scale = at::ones({channels}, at::kDouble);
  if (norm.weight.defined()) scale = norm.weight.detach().to(at::kCPU, at::kDouble).abs();
  if (norm.running_var.defined()) {
    scale = scale * at::rsqrt(norm.running_var.detach().to(at::kCPU, at::kDouble) + norm.options.eps());
  }
  return scale;
}

template <typename BatchNorm>
void shrink_norm(BatchNorm& norm, const std::string& path, const torch::Tensor& keep, ModelEditor& editor) {
  const auto resize = [&](const torch::Tensor& tensor, const char* name) {
    if (tensor.defined()) editor.resize(path + "." + name, tensor.index_select(0, keep.to(tensor.device())));
  };
  resize(norm.weight, "weight");
  resize(norm.bias, "bias");
  resize(norm.running_mean, "running_mean");
  resize(norm.running_var, "running_var");
  norm.options.num_features(keep.numel());
}

template <typename BatchNorm>
std::int64_t norm_size(const BatchNorm& norm) {
  return norm.running_mean.defined() ? norm.running_mean.size(0) : norm.weight.size(0);
}

struct ResolvedGroup {
  std::vector<Weighted> producers;
  std::vector<Norm> norms;
  std::vector<Weighted> consumers;
  std::int64_t channels = 0;
  std::string problem;  ///< non-empty: the group cannot be pruned, and why
};

std::optional<Weighted> weighted(models::Model& model, const std::string& path, std::string& problem) {
  const auto ref = nn::find_slot(model, path);
  Weighted w{path, ref.slot->as<torch::nn::Conv2dImpl>(), ref.slot->as<torch::nn::LinearImpl>()};
  if (w.conv == nullptr && w.linear == nullptr) {
    problem = fmt::format("{} is a {}, not a Conv2d or Linear", path, type_of(*ref.slot));
    return std::nullopt;
  }
  if (w.conv != nullptr && w.conv->options.groups() != 1) {
    problem = fmt::format("{} is a grouped convolution (groups = {}); its channels cannot be removed on one side", path,
                          w.conv->options.groups());
    return std::nullopt;
  }
  return w;
}

ResolvedGroup resolve(models::Model& model, const models::ChannelGroup& group) {
  ResolvedGroup out;
  auto& problem = out.problem;
  try {
    for (const auto& path : group.producers) {
      const auto w = weighted(model, path, problem);
      if (!w) return out;
      out.producers.push_back(*w);
    }
    for (const auto& path : group.consumers) {
      const auto w = weighted(model, path, problem);
      if (!w) return out;
      out.consumers.push_back(*w);
    }
    for (const auto& path : group.norms) {
      const auto ref = nn::find_slot(model, path);
      Norm norm{path, ref.slot->as<torch::nn::BatchNorm1dImpl>(), ref.slot->as<torch::nn::BatchNorm2dImpl>(),
                ref.slot->as<torch::nn::IdentityImpl>() != nullptr};
      if (norm.norm1d == nullptr && norm.norm2d == nullptr && !norm.identity) {
        problem = fmt::format("{} is a {}, not a BatchNorm", path, type_of(*ref.slot));
        return out;
      }
      out.norms.push_back(norm);
    }
  } catch (const Error& error) {
    problem = error.what();
    return out;
  }
  if (out.producers.empty()) {
    problem = "it has no producers";
    return out;
  }
  out.channels = out.producers.front().weight().size(0);
  for (const auto& p : out.producers) {
    if (p.weight().size(0) != out.channels) {
      problem = fmt::format("{} has {} output channels, {} has {}", p.path, p.weight().size(0),
                            out.producers.front().path, out.channels);
    }
  }
  for (const auto& c : out.consumers) {
    if (c.weight().size(1) != out.channels) {
      problem = fmt::format("{} takes {} input channels, the group has {}", c.path, c.weight().size(1), out.channels);
    }
  }
  for (const auto& n : out.norms) {
    const auto size = n.norm1d ? norm_size(*n.norm1d) : n.norm2d ? norm_size(*n.norm2d) : out.channels;
    if (size != out.channels) {
      problem = fmt::format("{} has {} features, the group has {}", n.path, size, out.channels);
    }
  }
  return out;
}

/// The norm `producer` feeds: by declared flow, else the norm at the same position in the group.
const Norm* norm_after(const ResolvedGroup& group, std::size_t producer_index,
                       const std::vector<std::pair<std::string, std::string>>& flows) {
  const auto& producer = group.producers[producer_index].path;
  for (const auto& norm : group.norms) {
    for (const auto& [from, to] : flows) {
      if (from == producer && to == norm.path) return &norm;
    }
  }
  if (group.norms.size() == group.producers.size()) return &group.norms[producer_index];
  return nullptr;
}

torch::Tensor channel_scores(const ResolvedGroup& group, const std::string& criterion,
                             const std::vector<std::pair<std::string, std::string>>& flows) {
  auto scores = at::zeros({group.channels}, at::kDouble);
  const bool l1 = criterion == "l1";
  for (std::size_t i = 0; i < group.producers.size(); ++i) {
    const auto rows = group.producers[i].weight().detach().to(at::kCPU, at::kDouble).reshape({group.channels, -1});
    auto score = l1 ? rows.abs().sum(1) : rows.square().sum(1).sqrt();
    if (const auto* norm = norm_after(group, i, flows)) {
      if (norm->norm1d) score = score * effective_scale(*norm->norm1d, group.channels);
      if (norm->norm2d) score = score * effective_scale(*norm->norm2d, group.channels);
    }
    scores += score;
  }
  return scores;
}

/// How many channels of `channels` to keep: at least (1 - amount) of them, at least min_channels,
/// rounded up to a multiple of round_to when that multiple fits in the group.
std::int64_t channels_to_keep(std::int64_t channels, const nlohmann::json& options) {
  const auto amount = options["amount"].get<double>();
  const auto removed = static_cast<std::int64_t>(std::floor(amount * static_cast<double>(channels) + 1e-9));
  auto keep =
      std::max<std::int64_t>(channels - removed, std::min(options["min_channels"].get<std::int64_t>(), channels));
  const auto round_to = options["round_to"].get<std::int64_t>();
  const auto rounded = (keep + round_to - 1) / round_to * round_to;
  if (rounded <= channels) keep = rounded;
  return keep;
}

bool selected(const std::string& name, const nlohmann::json& prefixes) {
  if (prefixes.empty()) return true;
  for (const auto& prefix : prefixes) {
    if (name.rfind(prefix.get<std::string>(), 0) == 0) return true;
  }
  return false;
}

void shrink(ResolvedGroup& group, const torch::Tensor& keep, ModelEditor& editor) {
  const auto select = [&](const std::string& name, const torch::Tensor& tensor, std::int64_t dim) {
    if (tensor.defined()) editor.resize(name, tensor.detach().index_select(dim, keep.to(tensor.device())));
  };
  const auto kept = keep.numel();
  for (auto& p : group.producers) {
    select(p.path + ".weight", p.weight(), 0);
    select(p.path + ".bias", p.bias(), 0);
    if (p.conv) p.conv->options.out_channels(kept);
    if (p.linear) p.linear->options.out_features(kept);
  }
  for (auto& n : group.norms) {
    if (n.norm1d) shrink_norm(*n.norm1d, n.path, keep, editor);
    if (n.norm2d) shrink_norm(*n.norm2d, n.path, keep, editor);
  }
  for (auto& c : group.consumers) {
    select(c.path + ".weight", c.weight(), 1);
    if (c.conv) c.conv->options.in_channels(kept);
    if (c.linear) c.linear->options.in_features(kept);
  }
}

/// Re-estimates every batch norm's running statistics on real batches: train-mode forward with
/// momentum = cumulative average (each batch weighs the same), no gradients, then eval mode.
std::int64_t recalibrate_batch_norms(models::Model& model, PassContext& context) {
  std::vector<std::pair<torch::nn::BatchNorm1dImpl*, std::optional<double>>> norms1d;
  std::vector<std::pair<torch::nn::BatchNorm2dImpl*, std::optional<double>>> norms2d;
  for (const auto& module : model.modules(/*include_self=*/false)) {
    if (auto* n = dynamic_cast<torch::nn::BatchNorm1dImpl*>(module.get()); n && n->options.track_running_stats()) {
      norms1d.emplace_back(n, n->options.momentum());
    } else if (auto* n2 = dynamic_cast<torch::nn::BatchNorm2dImpl*>(module.get());
               n2 && n2->options.track_running_stats()) {
      norms2d.emplace_back(n2, n2->options.momentum());
    }
  }
  if (norms1d.empty() && norms2d.empty()) return 0;
  const auto batches = context.calibration_batches(kRecalibrationBatches);
  if (batches.empty()) return 0;
  for (auto& [n, momentum] : norms1d) {
    n->reset_running_stats();
    n->options.momentum(std::nullopt);
  }
  for (auto& [n, momentum] : norms2d) {
    n->reset_running_stats();
    n->options.momentum(std::nullopt);
  }
  torch::NoGradGuard no_grad;
  model.train();
  const auto device = model.parameters().empty() ? context.device : model.parameters().front().device();
  for (const auto& batch : batches) model.forward(batch.to(device));
  model.eval();
  for (auto& [n, momentum] : norms1d) n->options.momentum(momentum);
  for (auto& [n, momentum] : norms2d) n->options.momentum(momentum);
  return static_cast<std::int64_t>(batches.size());
}

class PruneStructured : public Pass {
 public:
  PassReport apply(models::Model& model, const nlohmann::json& options, PassContext& context) override {
    PassReport report{"prune_structured", options, {}, {}};
    const auto groups = model.channel_groups();
    if (groups.empty()) {
      report.skipped.push_back(
          fmt::format("{}: the model declares no channel groups, so it cannot be pruned "
                      "structurally; left unchanged",
                      model.architecture()));
      return report;
    }
    torch::NoGradGuard no_grad;
    std::vector<std::pair<std::string, std::string>> flows;
    for (const auto& [producer, consumer] : nn::all_flows(model)) flows.emplace_back(producer.path, consumer.path);
    const auto before = models::count_parameters(model);
    auto details = nlohmann::json::array();
    for (const auto& group : groups) {
      if (!selected(group.name, options["groups"])) continue;
      auto resolved = resolve(model, group);
      if (!resolved.problem.empty()) {
        report.skipped.push_back(fmt::format("{}: {}", group.name, resolved.problem));
        continue;
      }
      const auto channels = resolved.channels;
      const auto keep_count = channels_to_keep(channels, options);
      details.push_back({{"name", group.name}, {"before", channels}, {"after", keep_count}});
      if (keep_count == channels) {
        report.skipped.push_back(
            fmt::format("{}: keeps all {} channels (amount, min_channels, round_to)", group.name, channels));
        continue;
      }
      const auto scores = channel_scores(resolved, options["criterion"].get<std::string>(), flows);
      // Stable descending sort: among equal scores the lower channel index is kept.
      const auto order = std::get<1>(at::sort(scores, /*stable=*/true, /*dim=*/0, /*descending=*/true));
      const auto keep = std::get<0>(at::sort(order.narrow(0, 0, keep_count)));
      shrink(resolved, keep, *context.editor);
      report.changed.push_back(fmt::format("{}: {} -> {} channels", group.name, channels, keep_count));
    }
    report.details["groups"] = std::move(details);
    report.details["parameters_before"] = before;
    report.details["parameters_after"] = models::count_parameters(model);
    if (options["recalibrate_batch_norm"].get<bool>() && !report.changed.empty()) {
      if (!context.calibration_batches) {
        report.skipped.push_back("batch-norm recalibration: no calibration data (the model has no dataset)");
      } else {
        const auto used = recalibrate_batch_norms(model, context);
        report.details["recalibration_batches"] = used;
        if (used > 0) report.changed.push_back(fmt::format("batch norms: statistics re-estimated on {} batches", used));
      }
    }
    return report;
  }
};

}  // namespace

PassEntry prune_structured_entry() {
  return {"prune_structured",
          "remove the lowest-norm channels of each channel group the model declares (smaller tensors; "
          "usually needs fine-tuning)",
          {{"amount",
            OptionSpec::Type::Number,
            nullptr,
            {},
            0.0,
            0.999999999,
            "fraction of each group's channels to remove, in [0, 1)"},
           {"criterion",
            OptionSpec::Type::String,
            "l2",
            {"l1", "l2"},
            -1e300,
            1e300,
            "norm of a channel's weights used to rank it"},
           {"groups",
            OptionSpec::Type::StringList,
            nlohmann::json::array(),
            {},
            -1e300,
            1e300,
            "group names or name prefixes to prune (empty: every group)"},
           {"min_channels", OptionSpec::Type::Integer, 1, {}, 1, 1e300, "never keep fewer channels than this"},
           {"round_to",
            OptionSpec::Type::Integer,
            1,
            {},
            1,
            1e300,
            "keep a multiple of this many channels when possible (rounds the kept count up)"},
           {"recalibrate_batch_norm",
            OptionSpec::Type::Boolean,
            false,
            {},
            -1e300,
            1e300,
            "re-estimate batch-norm statistics on up to 32 calibration batches after pruning"}},
          [] { return std::make_unique<PruneStructured>(); }};
}

}  // namespace hone::compress
