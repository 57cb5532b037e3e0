// lottery_ticket: iterative magnitude pruning with rewinding (Frankle & Carbin 2019). Each round
// removes the same fraction of the weights still alive in Linear/Conv2d layers — one magnitude
// threshold over all of them — rewinds every surviving weight (and every other parameter and
// buffer) to the run's initial values (train::initial_model: the same seed, the same
// construction), and retrains with the mask held, so after `rounds` rounds the sparsity is
// `target_sparsity`. The control, beside it in the report: the same final mask on a fresh random
// initialization, trained the same way — a ticket that does no better than it is not a ticket. The
// model keeps the last round's ticket. Needs the source run's own structure (run it before passes
// that change shapes) and trains on the run's dataset.
#include <ATen/ATen.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <fmt/format.h>

#include <cmath>

#include "../distill/teacher_targets.h"
#include "../passes.h"
#include "../training/fine_tune.h"
#include "hone/core/error.h"
#include "hone/core/format.h"
#include "hone/core/log.h"
#include "hone/data/datasets.h"
#include "hone/nn/layer.h"

namespace hone::compress {
namespace {

struct Prunable {
  std::string path;
  at::Tensor weight;
  at::Tensor mask;  ///< the weight's dtype; 1 = alive
};

std::vector<Prunable> prunable_weights(models::Model& model, const nlohmann::json& skip) {
  std::vector<Prunable> out;
  for (const auto& ref : nn::all_slots(model)) {
    at::Tensor weight;
    if (auto* linear = ref.slot->as<torch::nn::LinearImpl>()) weight = linear->weight;
    if (auto* conv = ref.slot->as<torch::nn::Conv2dImpl>()) weight = conv->weight;
    if (!weight.defined() || is_skipped(ref.path, skip)) continue;
    out.push_back({ref.path, weight, at::ones_like(weight)});
  }
  return out;
}

/// Removes `fraction` of the weights still alive, by one global magnitude threshold.
void prune_alive(std::vector<Prunable>& layers, double fraction) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> alive;
  for (const auto& l : layers) alive.push_back(l.weight.detach().abs().masked_select(l.mask.to(at::kBool)));
  const at::Tensor all = at::cat(alive);
  const auto remove = static_cast<std::int64_t>(std::floor(fraction * static_cast<double>(all.numel()) + 1e-9));
  if (remove <= 0) return;
  const double threshold = std::get<0>(at::kthvalue(all.to(at::kDouble), remove)).item<double>();
  for (auto& l : layers) {
    l.mask = l.mask * l.weight.detach().abs().to(at::kDouble).gt(threshold).to(l.mask.dtype());
    l.weight.mul_(l.mask);
  }
}

double sparsity(const std::vector<Prunable>& layers) {
  std::int64_t n = 0, zeros = 0;
  for (const auto& l : layers) {
    n += l.mask.numel();
    zeros += l.mask.numel() - l.mask.count_nonzero().item<std::int64_t>();
  }
  return static_cast<double>(zeros) / static_cast<double>(n);
}

/// Copies every parameter and buffer of `from` into `to` (same structure), then applies the masks.
void rewind(models::Model& to, models::Model& from, std::vector<Prunable>& layers) {
  at::NoGradGuard no_grad;
  auto dst = to.named_parameters(), src = from.named_parameters();
  for (const auto& item : dst) item.value().copy_(src[item.key()]);
  auto dst_b = to.named_buffers(), src_b = from.named_buffers();
  for (const auto& item : dst_b) item.value().copy_(src_b[item.key()]);
  for (auto& l : layers) l.weight.mul_(l.mask.to(l.weight.device()));
}

void check_same_structure(models::Model& model, models::Model& initial) {
  auto mine = model.named_parameters();
  auto theirs = initial.named_parameters();
  for (const auto& item : mine) {
    const auto* other = theirs.find(item.key());
    if (other == nullptr || other->sizes() != item.value().sizes())
      fail_usage_option("pass",
                        "lottery_ticket rewinds to the run's initial weights, but '{}' is {} here and {} there: run "
                        "it before passes that change shapes",
                        item.key(), fmt::format("{}", item.value().sizes()),
                        other == nullptr ? std::string("absent") : fmt::format("{}", other->sizes()));
  }
}

class LotteryTicket : public Pass {
 public:
  PassReport apply(models::Model& model, const nlohmann::json& options, PassContext& context) override {
    PassReport report{"lottery_ticket", options, {}, {}};
    if (context.data == nullptr || !context.initial_model)
      fail_usage_option("pass", "lottery_ticket retrains the run from its initial weights: compress a run directory");
    check_trainable(model, "lottery_ticket");
    const double target = options["target_sparsity"].get<double>();
    if (!(target > 0 && target < 1))
      fail_usage_option("target_sparsity", "lottery_ticket: target_sparsity must be in (0, 1), got {}", target);
    const auto rounds = options["rounds"].get<std::int64_t>();
    models::ModelPtr initial = context.initial_model(0);
    check_same_structure(model, *initial);
    auto layers = prunable_weights(model, options["skip"]);
    if (layers.empty()) fail_usage_option("pass", "lottery_ticket: no Linear or Conv2d weight to prune");

    const auto& data = *context.data;
    TeacherOptions no_teacher;
    no_teacher.pass = "lottery_ticket";
    TrainingTargets training = make_training_targets(model, data, no_teacher, context.load_model);
    FineTuneOptions tune = read_fine_tune_options("lottery_ticket", options, context.train_device);
    tune.best_from_epoch = 1;  // a rewound model is not a candidate: it is untrained
    const auto score = validation_scorer(data, context.train_device);
    const auto train_masked = [&](models::Model& m, std::vector<Prunable>& masked) {
      return fine_tune(m, training.train, training.loss, tune, score, [&](std::int64_t) {
        at::NoGradGuard no_grad;
        for (auto& l : masked) {
          if (l.mask.device() != l.weight.device()) l.mask = l.mask.to(l.weight.device());
          l.weight.mul_(l.mask);
        }
      });
    };

    model.to(context.train_device);  // the scorer runs on the training device (the model arrives on the CPU)
    const double dense_score = score(model);
    model.to(c10::kCPU);
    const double rate = 1.0 - std::pow(1.0 - target, 1.0 / static_cast<double>(rounds));
    nlohmann::json history = nlohmann::json::array();
    for (std::int64_t round = 1; round <= rounds; ++round) {
      for (auto& l : layers) l.mask = l.mask.to(c10::kCPU);
      // The last round removes exactly what is left to reach the target.
      const double alive = 1.0 - sparsity(layers);
      const double fraction = round == rounds ? std::max(0.0, 1.0 - (1.0 - target) / alive) : rate;
      prune_alive(layers, fraction);
      rewind(model, *initial, layers);
      log_info("lottery_ticket round {}/{}: sparsity {:.1f} %, rewound to the initial weights", round, rounds,
               100 * sparsity(layers));
      const FineTuneResult result = train_masked(model, layers);
      history.push_back({{"round", round},
                         {"sparsity", sparsity(layers)},
                         {"val_score", result.best_score},
                         {"training", result.to_json()}});
    }
    const double ticket = history.back()["val_score"].get<double>();

    nlohmann::json control = nullptr;
    if (options["control"].get<bool>()) {
      models::ModelPtr random = context.initial_model(7919);
      auto control_layers = prunable_weights(*random, options["skip"]);
      for (std::size_t i = 0; i < control_layers.size(); ++i) control_layers[i].mask = layers[i].mask.to(c10::kCPU);
      {
        at::NoGradGuard no_grad;
        for (auto& l : control_layers) l.weight.mul_(l.mask);
      }
      log_info("lottery_ticket control: the final mask on a fresh random initialization");
      const FineTuneResult result = train_masked(*random, control_layers);
      control = {
          {"sparsity", sparsity(control_layers)}, {"val_score", result.best_score}, {"training", result.to_json()}};
    }
    report.details["dense_val_score"] = dense_score;
    report.details["rounds"] = history;
    report.details["ticket_val_score"] = ticket;
    report.details["random_reinit_control"] = control;
    report.details["total_sparsity"] = sparsity(layers);
    report.changed.push_back(fmt::format(
        "Linear/Conv2d weights: {} rounds to {:.1f} % zeros, rewound to the initial weights each time; validation "
        "{:.4f} dense -> {:.4f} ticket{}",
        rounds, 100 * sparsity(layers), dense_score, ticket,
        control.is_null() ? std::string()
                          : fmt::format(" (random re-initialization with the same mask: {:.4f})",
                                        control["val_score"].get<double>())));
    return report;
  }
};

}  // namespace

PassEntry lottery_ticket_entry() {
  using Type = OptionSpec::Type;
  std::vector<OptionSpec> specs = {
      {"target_sparsity", Type::Number, 0.8, {}, 0.0, 1.0, "final fraction of zeros over the pruned layers"},
      {"rounds", Type::Integer, 3, {}, 1, 100, "prune-rewind-retrain rounds (each trains `epochs`)"},
      {"control",
       Type::Boolean,
       true,
       {},
       -1e300,
       1e300,
       "also train the final mask from a fresh random initialization (the control)"}};
  for (auto& spec : fine_tune_option_specs(/*epochs=*/2, /*lr=*/2e-3, /*weight_decay=*/1e-4)) specs.push_back(spec);
  specs.push_back(skip_option("slot paths (or prefixes) to leave dense"));
  return {"lottery_ticket",
          "iterative magnitude pruning with rewinding to the run's initial weights (Frankle & Carbin), with the "
          "random re-initialization control",
          std::move(specs), [] { return std::make_unique<LotteryTicket>(); }};
}

}  // namespace hone::compress
