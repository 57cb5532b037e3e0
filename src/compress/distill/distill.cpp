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
#include "hone/train/evaluate.h"
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
    TeacherOptions teacher;
    teacher.pass = "distill";
    teacher.teachers = options["teachers"].get<std::vector<std::string>>();
    if (teacher.teachers.empty()) fail_usage_option("teachers", "distill: name at least one teacher (\"source\")");
    teacher.weights = number_list(options["teacher_weights"]);
    teacher.temperature = options["temperature"].get<double>();
    teacher.alpha = options["alpha"].get<double>();
    teacher.device = context.train_device;
    TrainingTargets targets = make_training_targets(model, data, teacher, context.load_model);

    FineTuneOptions tune;
    tune.pass = "distill";
    tune.epochs = options["epochs"].get<std::int64_t>();
    tune.batch_size = options["batch_size"].get<std::int64_t>();
    tune.learning_rate = options["lr"].get<double>();
    tune.weight_decay = options["weight_decay"].get<double>();
    tune.warmup_steps = options["warmup_steps"].get<std::int64_t>();
    tune.max_steps_per_epoch = options["max_steps_per_epoch"].get<std::int64_t>();
    tune.precision = options["precision"].get<std::string>();
    tune.seed = options["seed"].get<std::uint64_t>();
    tune.device = context.train_device;
    ZeroMasks zeros(model);
    const auto task = data.info.task;
    const c10::Device device = context.train_device;
    const FineTuneResult result = fine_tune(
        model, targets.train, targets.loss, tune,
        [&](models::Model& m) { return train::evaluate(m, data.val, task, "val", device).score(); },
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
  return {"distill",
          "train the model (the student) on soft targets of frozen teachers (default: the source model) mixed "
          "with the labels; keeps the best epoch by validation score",
          {{"teachers",
            Type::StringList,
            nlohmann::json::array({"source"}),
            {},
            -1e300,
            1e300,
            "teachers: \"source\" (the model before any pass), run directories or zoo names; several are averaged"},
           {"teacher_weights",
            Type::IntegerList,
            nlohmann::json::array(),
            {},
            0,
            1000000,
            "relative weight per teacher (integers; empty: equal)"},
           {"temperature", Type::Number, 4.0, {}, 1e-3, 1000, "softmax temperature T of the soft targets"},
           {"alpha", Type::Number, 0.9, {}, 0.0, 1.0, "weight of the teacher term; 1 - alpha goes to the true labels"},
           {"epochs", Type::Integer, 3, {}, 1, 1000, "training epochs"},
           {"lr", Type::Number, 1e-3, {}, 1e-9, 10.0, "peak AdamW learning rate (cosine schedule)"},
           {"batch_size", Type::Integer, 128, {}, 1, 1 << 20, "samples per step"},
           {"weight_decay", Type::Number, 1e-4, {}, 0.0, 1.0, "AdamW decoupled weight decay"},
           {"warmup_steps", Type::Integer, 0, {}, 0, 1 << 30, "linear warm-up steps"},
           {"precision",
            Type::String,
            "fp32",
            {"fp32", "tf32", "bf16", "fp16"},
            -1e300,
            1e300,
            "training precision (as hone train --precision)"},
           {"max_steps_per_epoch", Type::Integer, 0, {}, 0, 1 << 30, "> 0: cut each epoch (quick runs)"},
           {"seed", Type::Integer, 0, {}, 0, 1e15, "batch order and dropout"}},
          [] { return std::make_unique<Distill>(); }};
}

}  // namespace hone::compress
