// hone train: train a zoo model on a real dataset, with validation and resumable checkpoints.
#include <iostream>

#include "commands.h"
#include "flags.h"
#include "hone/core/error.h"
#include "hone/core/progress.h"
#include "hone/data/datasets.h"
#include "hone/models/registry.h"
#include "hone/train/trainer.h"

namespace hone::cli {
namespace {

struct TrainCommand {
  train::TrainOptions options;
  std::string model_config;
  std::string out = "run";
  bool json = false;
  bool quiet = false;
  bool no_decay_norms_biases = false;
  int threads = 0;
};

void run_train(TrainCommand& cmd) {
  apply_threads(cmd.threads);
  train::TrainOptions& o = cmd.options;
  o.out_dir = cmd.out;
  o.progress = !cmd.quiet && !cmd.json;
  o.decay_norms_and_biases = !cmd.no_decay_norms_biases;
  if (!cmd.model_config.empty()) {
    try {
      o.model_overrides = nlohmann::json::parse(cmd.model_config);
    } catch (const nlohmann::json::parse_error& e) {
      fail_usage("--model-config is not valid JSON: {}", e.what());
    }
    if (!o.model_overrides.is_object()) fail_usage("--model-config must be a JSON object");
  }
  const bool text = !cmd.json;
  auto on_epoch = [&](const train::EpochRecord& r, bool best) {
    if (!text) return;
    std::cout << fmt::format("epoch {:>3}  train loss {:.4f}  {}  {}{}\n", r.epoch, r.train_loss, r.val.to_text(),
                             format_duration(r.seconds), best ? "  (best)" : "")
              << std::flush;
  };
  const train::TrainResult result = train::train(o, on_epoch);
  const auto& state = result.state;
  if (cmd.json) {
    nlohmann::json j = train::to_json(state);
    j["run_dir"] = result.run_dir.string();
    j["parameters"] = result.parameters;
    j["options"] = train::to_json(o);
    j["final_loss_scale"] = state.history.empty() ? 1.0 : state.history.back().loss_scale;
    std::cout << j.dump(2) << "\n";
    return;
  }
  if (state.best_epoch > 0) {
    const auto& best = state.history.at(static_cast<std::size_t>(state.best_epoch - 1)).val;
    std::cout << fmt::format("best epoch {}: {}\nsaved {} ({} parameters); evaluate with `hone eval {}`\n",
                             state.best_epoch, best.to_text(), (result.run_dir / "model.safetensors").string(),
                             result.parameters, result.run_dir.string());
  }
}

}  // namespace

void register_train(CLI::App& root) {
  auto cmd = std::make_shared<TrainCommand>();
  std::string models, datasets;
  for (const auto& m : models::model_registry()) models += fmt::format("\n  {:<14} {}", m.name, m.summary);
  for (const auto& d : data::dataset_registry()) datasets += fmt::format("\n  {:<14} {}", d.name, d.summary);
  CLI::App* app = root.add_subcommand("train", "Train a zoo model on a real dataset");
  app->footer("Models:" + models + "\nDatasets:" + datasets +
              "\nExamples:\n"
              "  hone train --model cnn --data fashion-mnist --epochs 4 -o runs/cnn\n"
              "  hone train -m lstm -d goldsilver --epochs 20 -o runs/lstm --json\n"
              "  hone train -m cnn -d fashion-mnist --epochs 8 -o runs/cnn --resume   # continue a run\n"
              "  hone train -m cnn -d fashion-mnist --device cuda --precision bf16 -o runs/cnn-bf16\n"
              "  hone train -m cnn -d fashion-mnist --batch-size 64 --accumulate 4 --optimizer sgd --nesterov "
              "--lr 0.05 --lr-schedule one-cycle -o runs/cnn-sgd\n"
              "Every figure: docs/train.md.\n");
  auto& o = cmd->options;
  add_flag(*app, flags::kModel, o.model);
  add_flag(*app, flags::kData, o.data);
  add_flag(*app, flags::kModelConfig, cmd->model_config);
  add_flag(*app, flags::kOut, cmd->out);
  add_flag(*app, flags::kEpochs, o.epochs);
  add_flag(*app, flags::kBatchSize, o.batch_size);
  add_flag(*app, flags::kLearningRate, o.learning_rate);
  add_flag(*app, flags::kWeightDecay, o.weight_decay);
  add_flag(*app, flags::kAccumulate, o.accumulate);
  add_flag(*app, flags::kPrecision, o.precision)->check(CLI::IsMember({"fp32", "tf32", "bf16", "fp16"}));
  add_flag(*app, flags::kOptimizer, o.optimizer)->check(CLI::IsMember({"adamw", "sgd", "lion"}));
  add_flag(*app, flags::kMomentum, o.momentum);
  add_flag(*app, flags::kNesterov, o.nesterov);
  add_flag(*app, flags::kLrSchedule, o.lr_schedule)
      ->check(CLI::IsMember({"constant", "linear", "cosine", "one-cycle"}));
  add_flag(*app, flags::kWarmupSteps, o.warmup_steps);
  add_flag(*app, flags::kNoDecayNormsBiases, cmd->no_decay_norms_biases);
  add_flag(*app, flags::kGradClip, o.grad_clip);
  add_flag(*app, flags::kDeterministic, o.deterministic);
  add_flag(*app, flags::kCheckpointActivations, o.checkpoint_activations);
  add_flag(*app, flags::kSeed, o.seed);
  add_flag(*app, flags::kDevice, o.device);
  add_flag(*app, flags::kWorkers, o.workers);
  add_flag(*app, flags::kThreads, cmd->threads);
  add_flag(*app, flags::kResume, o.resume);
  add_flag(*app, flags::kWindow, o.data_options.window);
  add_flag(*app, flags::kLimit, o.data_options.limit);
  add_flag(*app, flags::kMaxSteps, o.max_steps_per_epoch);
  add_flag(*app, flags::kQuiet, cmd->quiet);
  add_flag(*app, flags::kJson, cmd->json);
  app->callback([cmd] { run_train(*cmd); });
}

}  // namespace hone::cli
