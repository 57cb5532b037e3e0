// distill: knowledge distillation. The model as the recipe has made it so far (pruned, low-rank...)
// is the student; it trains on the run's training split against the soft targets of frozen
// teachers — by default the source model itself, as it was before any pass — mixed with the true
// labels (Hinton et al. 2015: alpha · KL(teacher/T ‖ student/T) · T² + (1 − alpha) · CE), or for
// forecasters against the teachers' outputs mixed with the true targets (MSE). The teachers'
// outputs are computed once. Weights that are exactly zero when the pass starts (an earlier
// pruning pass) are kept at zero through every optimizer step. The best epoch by validation score
// is kept — the student as it came in counts as epoch 0, so distillation never makes it worse on
// validation. Changes weights only, never structure: nothing is recorded in the editor.
#include <ATen/ATen.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "../passes.h"
#include "../training/fine_tune.h"
#include "hone/core/error.h"
#include "hone/data/datasets.h"
#include "teacher_targets.h"

namespace hone::compress {
namespace {

/// Masks of the weights (2-D and up) that are at least 1 % exact zeros: what an earlier pruning
/// pass left, which training must not grow back.
struct ZeroMasks {
  std::vector<std::pair<at::Tensor, at::Tensor>> masks;  ///< (parameter, mask on its device)
  nlohmann::json paths = nlohmann::json::array();

  explicit ZeroMasks(models::Model& model) {
    for (const auto& item : model.named_parameters()) {
      const at::Tensor& p = item.value();
      if (p.dim() < 2 || !p.is_floating_point()) continue;
      const auto zeros = p.numel() - p.count_nonzero().item<std::int64_t>();
      if (zeros * 100 < p.numel()) continue;
      masks.emplace_back(p, p.ne(0).to(p.dtype()));
      paths.push_back(
          {{"parameter", item.key()}, {"sparsity", static_cast<double>(zeros) / static_cast<double>(p.numel())}});
    }
  }
  void apply() {
    at::NoGradGuard no_grad;
    for (auto& [p, mask] : masks) {
      if (mask.device() != p.device()) mask = mask.to(p.device());
      p.mul_(mask);
    }
  }
};

std::vector<double> number_list(const nlohmann::json& list) {
  std::vector<double> out;
  for (const auto& v : list) out.push_back(v.get<double>());
  return out;
}

class Distill : public Pass {
 public:
  PassReport apply(models::Model& model, const nlohmann::json& options, PassContext& context) override {
    PassReport report{"distill", options, {}, {}};
    if (context.data == nullptr || !context.load_model)
      fail_usage_option("pass", "distill trains on the run's dataset: compress a run directory, not a zoo name");
    check_trainable(model, "distill");
    const auto& data = *context.data;
    TeacherOptions teacher = read_teacher_options("distill", options, context.train_device);
    if (teacher.teachers.empty()) fail_usage_option("teachers", "distill: name at least one teacher (\"source\")");
    teacher.weights = number_list(options["teacher_weights"]);
    TrainingTargets targets = make_training_targets(model, data, teacher, context.load_model);

    const FineTuneOptions tune = read_fine_tune_options("distill", options, context.train_device);
    ZeroMasks zeros(model);
    const FineTuneResult result =
        fine_tune(model, targets.train, targets.loss, tune, validation_scorer(data, context.train_device),
                  [&](std::int64_t) { zeros.apply(); });

    report.details = targets.details;
    report.details["training"] = result.to_json();
    report.details["kept_zero_masks"] = zeros.paths;
    report.changed.push_back(fmt::format(
        "all weights: distilled for {} epochs from {}; validation score {:.4f} -> {:.4f} (kept epoch {})", tune.epochs,
        fmt::join(teacher.teachers, ", "), result.start_score, result.best_score, result.best_epoch));
    if (result.best_epoch == 0)
      report.skipped.push_back("no epoch beat the student as it came in on validation: its weights were kept");
    return report;
  }
};

}  // namespace

PassEntry distill_entry() {
  using Type = OptionSpec::Type;
  std::vector<OptionSpec> specs = teacher_option_specs(/*alpha=*/0.9);
  specs.push_back({"teacher_weights",
                   Type::IntegerList,
                   nlohmann::json::array(),
                   {},
                   0,
                   1000000,
                   "relative weight per teacher (integers; empty: equal)"});
  for (auto& spec : fine_tune_option_specs(/*epochs=*/3, /*lr=*/1e-3, /*weight_decay=*/1e-4)) specs.push_back(spec);
  specs.push_back({"warmup_steps", Type::Integer, 0, {}, 0, 1 << 30, "linear warm-up steps"});
  specs.push_back(precision_option_spec());
  return {"distill",
          "train the model (the student) on soft targets of frozen teachers (default: the source model) mixed "
          "with the labels; keeps the best epoch by validation score",
          std::move(specs), [] { return std::make_unique<Distill>(); }};
}

}  // namespace hone::compress
