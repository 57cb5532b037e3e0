// prune_gradual: gradual magnitude pruning while training (Zhu & Gupta 2017, "To prune, or not to
// prune"). The sparsity of every chosen Linear/Conv2d weight rises along the cubic schedule
//   s(t) = s_f + (s_i − s_f) · (1 − (t − t_0) / (t_1 − t_0))³   for t_0 <= t <= t_1
// (t in optimizer steps; t_0 and t_1 the options' fractions of the run), the masks recomputed from
// the current magnitudes every `frequency` steps and at t_1, and enforced after every optimizer
// step (the AdamW update and weight decay included), so a pruned weight stays exactly zero. The
// remaining steps fine-tune at the final masks. It trains on the task's labels, or, with alpha > 0,
// distills from teachers as the distill pass does. The best epoch by validation score among those
// at the final sparsity is kept. The saved file stores tensors that are mostly zeros sparse
// (run::WeightStorage::kSparse); in memory they stay dense and run on dense kernels.
#include <ATen/ATen.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "../distill/teacher_targets.h"
#include "../passes.h"
#include "../training/fine_tune.h"
#include "hone/compress/prune_schedule.h"
#include "hone/core/error.h"
#include "hone/data/datasets.h"
#include "hone/nn/layer.h"

namespace hone::compress {
namespace {

struct Target {
  std::string path;
  at::Tensor weight;
  at::Tensor mask;  ///< same dtype and device as the weight; 1 = kept
};

/// Keeps the ceil((1 − s)·n) largest |w| (ties broken by position); the rest become 0.
void update_mask(Target& t, double sparsity) {
  at::NoGradGuard no_grad;
  const std::int64_t n = t.weight.numel();
  const auto prune = std::min<std::int64_t>(n, static_cast<std::int64_t>(std::floor(sparsity * n + 1e-9)));
  auto flat = at::ones({n}, t.weight.options());
  if (prune > 0) {
    const auto order = std::get<1>(at::sort(t.weight.detach().abs().flatten().to(at::kFloat), /*stable=*/true, 0,
                                            /*descending=*/false));
    flat.index_fill_(0, order.narrow(0, 0, prune), 0);
  }
  t.mask = flat.view_as(t.weight);
  t.weight.mul_(t.mask);
}

class PruneGradual : public Pass {
 public:
  PassReport apply(models::Model& model, const nlohmann::json& options, PassContext& context) override {
    PassReport report{"prune_gradual", options, {}, {}};
    if (context.data == nullptr || !context.load_model)
      fail_usage_option("pass", "prune_gradual trains on the run's dataset: compress a run directory, not a zoo name");
    check_trainable(model, "prune_gradual");
    PruneSchedule schedule;
    schedule.initial_sparsity = options["initial_sparsity"].get<double>();
    schedule.final_sparsity = options["target_sparsity"].get<double>();
    if (!(schedule.final_sparsity > 0 && schedule.final_sparsity < 1))
      fail_usage_option("target_sparsity", "prune_gradual: target_sparsity must be in (0, 1), got {}",
                        schedule.final_sparsity);
    if (schedule.initial_sparsity > schedule.final_sparsity)
      fail_usage_option("initial_sparsity", "prune_gradual: initial_sparsity {} is above target_sparsity {}",
                        schedule.initial_sparsity, schedule.final_sparsity);

    std::vector<Target> targets;
    for (const auto& ref : nn::all_slots(model)) {
      at::Tensor weight;
      if (auto* linear = ref.slot->as<torch::nn::LinearImpl>()) weight = linear->weight;
      if (auto* conv = ref.slot->as<torch::nn::Conv2dImpl>()) weight = conv->weight;
      if (!weight.defined()) continue;
      if (is_skipped(ref.path, options["skip"])) {
        report.skipped.push_back(fmt::format("{}: listed in 'skip'", ref.path));
        continue;
      }
      targets.push_back({ref.path, weight, {}});
    }
    if (targets.empty()) fail_usage_option("pass", "prune_gradual: the model has no Linear or Conv2d weight to prune");

    const auto& data = *context.data;
    const TeacherOptions teacher = read_teacher_options("prune_gradual", options, context.train_device);
    TrainingTargets training = make_training_targets(model, data, teacher, context.load_model);

    FineTuneOptions tune = read_fine_tune_options("prune_gradual", options, context.train_device);
    const std::int64_t steps_per_epoch = fine_tune_steps_per_epoch(training.train.count(), tune);
    const std::int64_t total = steps_per_epoch * tune.epochs;
    schedule.begin_step = static_cast<std::int64_t>(std::floor(options["begin_fraction"].get<double>() * total));
    schedule.end_step = std::max<std::int64_t>(
        schedule.begin_step, static_cast<std::int64_t>(std::floor(options["end_fraction"].get<double>() * total)) - 1);
    schedule.frequency = options["frequency"].get<std::int64_t>();
    if (options["end_fraction"].get<double>() < options["begin_fraction"].get<double>())
      fail_usage_option("end_fraction", "prune_gradual: end_fraction is below begin_fraction");
    // The epoch in which the final sparsity is reached, and every later one, may be kept as best.
    tune.best_from_epoch = schedule.end_step / steps_per_epoch + 1;

    for (auto& t : targets) update_mask(t, schedule.initial_sparsity);
    nlohmann::json updates = nlohmann::json::array();
    const FineTuneResult result = fine_tune(model, training.train, training.loss, tune,
                                            validation_scorer(data, context.train_device), [&](std::int64_t step) {
                                              if (schedule.updates_at(step)) {
                                                const double s = schedule.sparsity_at(step);
                                                for (auto& t : targets) update_mask(t, s);
                                                if (updates.size() < 64)
                                                  updates.push_back({{"step", step}, {"sparsity", s}});
                                              } else {
                                                at::NoGradGuard no_grad;
                                                for (auto& t : targets) {
                                                  if (t.mask.device() != t.weight.device())
                                                    t.mask = t.mask.to(t.weight.device());
                                                  t.weight.mul_(t.mask);
                                                }
                                              }
                                            });

    auto layers = nlohmann::json::array();
    std::int64_t all = 0, zeros = 0;
    for (const auto& t : targets) {
      const auto n = t.weight.numel();
      const auto z = n - t.weight.count_nonzero().item<std::int64_t>();
      all += n;
      zeros += z;
      const double sparsity = static_cast<double>(z) / static_cast<double>(n);
      layers.push_back({{"path", t.path}, {"parameters", n}, {"zeros", z}, {"sparsity", sparsity}});
      report.changed.push_back(fmt::format("{}: {:.1f}% of {} weights are zero", t.path, 100 * sparsity, n));
    }
    report.details = training.details;
    report.details["training"] = result.to_json();
    report.details["schedule"] = {{"initial_sparsity", schedule.initial_sparsity},
                                  {"final_sparsity", schedule.final_sparsity},
                                  {"begin_step", schedule.begin_step},
                                  {"end_step", schedule.end_step},
                                  {"frequency", schedule.frequency},
                                  {"updates", updates}};
    report.details["layers"] = std::move(layers);
    report.details["total_sparsity"] = static_cast<double>(zeros) / static_cast<double>(all);
    report.details["note"] =
        "stored sparse in model.safetensors (non-zero values + a bitmask) where a tensor is at least half zeros; "
        "loaded back dense and run by the dense kernels (no sparse kernel is used)";
    return report;
  }
};

}  // namespace

PassEntry prune_gradual_entry() {
  using Type = OptionSpec::Type;
  std::vector<OptionSpec> specs = {
      {"target_sparsity", Type::Number, nullptr, {}, 0.0, 1.0, "final fraction of zeros per layer, in (0, 1)"},
      {"initial_sparsity", Type::Number, 0.0, {}, 0.0, 1.0, "sparsity at the first step"},
      {"begin_fraction", Type::Number, 0.0, {}, 0.0, 1.0, "where the ramp starts, as a fraction of all steps"},
      {"end_fraction",
       Type::Number,
       0.7,
       {},
       0.0,
       1.0,
       "where the final sparsity is reached; the rest fine-tunes at the final masks"},
      {"frequency", Type::Integer, 50, {}, 1, 1 << 30, "steps between mask updates"}};
  for (auto& spec : fine_tune_option_specs(/*epochs=*/4, /*lr=*/1e-3, /*weight_decay=*/1e-4)) specs.push_back(spec);
  for (auto& spec : teacher_option_specs(/*alpha=*/0.0)) specs.push_back(spec);
  specs.push_back(precision_option_spec());
  specs.push_back(skip_option("slot paths (or prefixes) to leave dense"));
  return {"prune_gradual",
          "train while raising Linear/Conv2d sparsity along Zhu & Gupta's cubic schedule; pruned weights stay zero "
          "through every step (optionally distilling from teachers)",
          std::move(specs), [] { return std::make_unique<PruneGradual>(); }};
}

}  // namespace hone::compress
