// hone train: train a zoo model on a real dataset, with validation and resumable checkpoints.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <set>

#include <fmt/ranges.h>

#include "commands.h"
#include "flags.h"
#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "hone/core/progress.h"
#include "hone/data/datasets.h"
#include "hone/models/registry.h"
#include "hone/runtime/units.h"
#include "hone/train/batch_finder.h"
#include "hone/train/distributed/launcher.h"
#include "hone/train/lr_finder.h"
#include "hone/train/presets.h"
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
  bool no_autotune = false;
  int threads = 0;
  std::string preset;
  bool lr_find = false;
  std::int64_t lr_find_steps = 100;
  bool find_batch = false;
  std::string memory_budget;
  int nproc = 0;
  std::set<std::string> explicit_options;  ///< library option names of the flags given (presets keep them)
};

void run_lr_find(TrainCommand& cmd) {
  train::LrFindOptions find;
  find.steps = cmd.lr_find_steps;
  const train::LrFindResult r = train::find_lr(cmd.options, find);
  const nlohmann::json j = r.to_json();
  std::filesystem::create_directories(cmd.out);
  write_file_atomic(std::filesystem::path(cmd.out) / "lr_find.json", j.dump(2) + "\n");
  if (cmd.json) {
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << r.to_text()
              << fmt::format("curve saved to {}\n", (std::filesystem::path(cmd.out) / "lr_find.json").string());
  }
}

/// --nproc N: this command again in N worker processes, as torchrun would start them.
void run_workers(TrainCommand& cmd) {
  if (cmd.lr_find || cmd.find_batch) fail_usage("--nproc trains; find the learning rate or the batch without it");
  if (std::getenv("WORLD_SIZE") != nullptr)
    fail_usage(
        "--nproc inside a distributed job (WORLD_SIZE is set): let torchrun or --nproc start the ranks, not both");
  train::distributed::LaunchOptions launch;
  launch.processes = cmd.nproc;
  launch.device = cmd.options.device;
  launch.arguments = train::distributed::arguments_without("--nproc");
  const int code = train::distributed::launch_local_workers(launch);
  if (code != 0) fail("the {}-process run failed (above: which rank, and what the others saw)", cmd.nproc);
}

void run_train(TrainCommand& cmd) {
  if (cmd.nproc < 0) fail_usage("--nproc must be at least 1, got {}", cmd.nproc);
  if (cmd.nproc > 1) return run_workers(cmd);
  apply_threads(cmd.threads);
  train::TrainOptions& o = cmd.options;
  o.autotune = !cmd.no_autotune;
  if (!cmd.preset.empty()) {
    const auto made = train::apply_preset(o, cmd.preset, cmd.explicit_options);
    if (!cmd.json && !cmd.quiet)
      std::cout << fmt::format(
          "preset {}: {}\n", cmd.preset,
          made.empty() ? "nothing (every option it sets was given)" : fmt::format("{}", fmt::join(made, " ")));
  }
  if (!cmd.memory_budget.empty() && !cmd.find_batch) fail_usage("--memory-budget goes with --find-batch");
  if (cmd.lr_find && cmd.find_batch) fail_usage("--lr-find and --find-batch cannot be combined; find the batch first");
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
  if (cmd.lr_find) return run_lr_find(cmd);
  if (cmd.find_batch) {
    const runtime::BatchSearch search =
        train::find_train_batch(o, cmd.memory_budget.empty() ? 0 : runtime::parse_bytes(cmd.memory_budget));
    if (search.largest_batch == 0)
      fail("not even batch 1 of a training step fits in {}:\n{}", runtime::bytes_text(search.budget_bytes),
           search.to_text());
    if (!cmd.json)
      std::cout << search.to_text() << fmt::format("training with --batch-size {}\n", search.largest_batch);
    o.batch_size = search.largest_batch;
  }
  const bool text = !cmd.json;
  auto on_epoch = [&](const train::EpochRecord& r, bool best) {
    if (!text) return;
    std::cout << fmt::format("epoch {:>3}  train loss {:.4f}  {}  {}{}\n", r.epoch, r.train_loss, r.val.to_text(),
                             format_duration(r.seconds), best ? "  (best)" : "")
              << std::flush;
  };
  const train::TrainResult result = train::train(o, on_epoch);
  if (result.rank != 0) return;  // rank 0 speaks for a data-parallel run
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

std::string preset_summary(const std::string& name) {
  for (const auto& p : train::train_presets()) {
    if (p.name == name) return p.summary;
  }
  return {};
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
              "  hone train -m cnn -d fashion-mnist --preset fast-gpu -o runs/cnn-fast     # bf16 + CUDA graphs\n"
              "  hone train -m cnn -d fashion-mnist --lr-find -o runs/lr                  # range test, no training\n"
              "  hone train -m minilm -d fine-foods-text --device cuda --precision bf16 --epochs 3 --lr 1e-3 "
              "-o runs/minilm-ff\n"
              "  hone train -m cnn -d fashion-mnist --device cuda --find-batch --memory-budget 4GiB -o runs/big\n"
              "  hone train -m cnn -d fashion-mnist --nproc 2 -o runs/cnn-ddp            # 2 CPU processes on Gloo\n"
              "  hone train -m minilm -d fine-foods-text --device cuda --nproc 2 -o runs/minilm-ddp   # 2 GPUs, NCCL\n"
              "  torchrun --no-python --nproc-per-node 2 hone train -m cnn -d fashion-mnist -o runs/cnn-ddp\n"
              "Presets:\n"
              "  fast-gpu       " +
              preset_summary("fast-gpu") +
              "\n"
              "  low-memory     " +
              preset_summary("low-memory") +
              "\n"
              "  cpu            " +
              preset_summary("cpu") +
              "\n"
              "  throughput     " +
              preset_summary("throughput") +
              "\n"
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
  add_flag(*app, flags::kNoAutotune, cmd->no_autotune);
  add_flag(*app, flags::kCheckpointActivations, o.checkpoint_activations);
  add_flag(*app, flags::kCudaGraphs, o.cuda_graphs);
  add_flag(*app, flags::kChannelsLast, o.channels_last);
  add_flag(*app, flags::kPreset, cmd->preset)->check(CLI::IsMember({"fast-gpu", "low-memory", "cpu", "throughput"}));
  add_flag(*app, flags::kInit, o.init)->check(CLI::IsMember({"auto", "pretrained", "random"}));
  add_flag(*app, flags::kPretrainedLrScale, o.pretrained_lr_scale);
  add_flag(*app, flags::kLrFind, cmd->lr_find);
  add_flag(*app, flags::kSteps, cmd->lr_find_steps);
  add_flag(*app, flags::kFindBatch, cmd->find_batch);
  add_flag(*app, flags::kMemoryBudget, cmd->memory_budget);
  add_flag(*app, flags::kSeed, o.seed);
  add_flag(*app, flags::kDevice, o.device);
  add_flag(*app, flags::kWorkers, o.workers);
  add_flag(*app, flags::kThreads, cmd->threads);
  add_flag(*app, flags::kResume, o.resume);
  add_flag(*app, flags::kWindow, o.data_options.window);
  add_flag(*app, flags::kLimit, o.data_options.limit);
  add_flag(*app, flags::kMaxSteps, o.max_steps_per_epoch);
  add_flag(*app, flags::kNproc, cmd->nproc);
  add_flag(*app, flags::kDistributedTimeout, o.distributed_timeout_seconds);
  add_flag(*app, flags::kQuiet, cmd->quiet);
  add_flag(*app, flags::kJson, cmd->json);
  app->callback([cmd, app] {
    for (const Flag* flag : flags::kAll) {
      // The option a preset must leave alone: a flag given on the command line or by its variable.
      const std::string names = flag->names;
      const std::string name = names.substr(names.find_last_of(',') + 1);
      const CLI::Option* given = name.starts_with("-") ? app->get_option_no_throw(name) : nullptr;
      if (given != nullptr && given->count() > 0) cmd->explicit_options.insert(flag->option);
      if (given != nullptr && flag->env != nullptr && std::getenv(flag->env) != nullptr)
        cmd->explicit_options.insert(flag->option);
    }
    run_train(*cmd);
  });
}

}  // namespace hone::cli
