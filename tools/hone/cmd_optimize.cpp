// hone optimize: baseline -> candidates -> search -> the chosen plan, exported and verified, with a
// report (docs/optimize.md).
#include <iostream>

#include "commands.h"
#include "flags.h"
#include "hone/bench/model_bench.h"
#include "hone/core/error.h"
#include "hone/optimize/optimize.h"

namespace hone::cli {
namespace {

struct OptimizeCommand {
  std::string target;
  std::string out;
  double speedup = 3.0;
  double size = 5.0;
  double max_accuracy_drop = 1.0;
  double latency_ms = 0;
  std::string batches = "1,64";
  std::string device = "cpu";
  double budget_minutes = 15;
  std::string preset;
  std::int64_t max_train_steps = 0;
  bool no_export = false;
  bool force = false;
  int warmup = 5;
  int iterations = 30;
  int threads = 0;
  bool json = false;
  CLI::App* app = nullptr;
};

void run_optimize(const OptimizeCommand& cmd) {
  if (cmd.target.empty()) fail_usage("optimize: give a trained run directory");
  if (cmd.out.empty()) fail_usage("optimize: give the output directory with -o DIR");
  apply_threads(cmd.threads);
  optimize::OptimizeOptions options;
  options.preset = cmd.preset;
  optimize::apply_preset(options);  // explicit flags below win over the preset
  const auto given = [&](const char* name) { return cmd.app->count(name) > 0; };
  options.source = cmd.target;
  options.output = cmd.out;
  options.targets.speedup = cmd.speedup;
  options.targets.size = cmd.size;
  options.targets.max_accuracy_drop = cmd.max_accuracy_drop;
  if (given("--batch") || cmd.preset.empty()) options.targets.batches = bench::parse_batch_list(cmd.batches);
  if (given("--device") || cmd.preset.empty()) options.device = cmd.device;
  if (cmd.latency_ms != 0) {
    options.targets.latency_ms = cmd.latency_ms;
    options.targets.latency_batch = options.targets.batches.empty() ? 1 : options.targets.batches.front();
  }
  options.budget_minutes = cmd.budget_minutes;
  options.max_train_steps = cmd.max_train_steps;
  options.export_onnx = !cmd.no_export;
  options.force = cmd.force;
  options.warmup = cmd.warmup;
  options.iterations = cmd.iterations;
  options.progress = !cmd.json;
  const auto report = optimize::optimize_run(options);
  if (cmd.json) {
    std::cout << report.to_json().dump(2) << "\n";
  } else {
    std::cout << report.to_text();
  }
}

}  // namespace

void register_optimize(CLI::App& root) {
  auto cmd = std::make_shared<OptimizeCommand>();
  CLI::App* app = root.add_subcommand(
      "optimize", "Find the compression plan that meets speed, size and accuracy targets on this device");
  cmd->app = app;
  app->footer(
      "Measures the run (latency at each --batch on --device, file size, validation accuracy), tries every\n"
      "plan hone has for it (bf16/fp16, int8 static/dynamic, low-rank, structured pruning; pruning +\n"
      "distillation + QAT trained on a short rung first and fully only when promising, within\n"
      "--budget-minutes), chooses the most accurate plan that meets every target, scores it once on the\n"
      "test split, exports it to ONNX (verified by onnxruntime) and writes OUT/report.html. When no plan\n"
      "meets the targets it says which targets each plan met and shows the Pareto front. An interrupted\n"
      "optimize resumes: run the same command again.\n"
      "Examples:\n"
      "  hone optimize runs/demo-cnn -o runs/demo-opt                        # 3x faster, 5x smaller, -1 point\n"
      "  hone optimize runs/demo-cnn -o runs/opt --speedup 2 --size 4 --max-accuracy-drop 0.5 --batch 1\n"
      "  hone optimize runs/lstm -o runs/lstm-opt --speedup 1.2 --size 2 --json\n"
      "  hone optimize runs/cnn -o runs/cnn-gpu --preset gpu-latency\n");
  add_flag(*app, flags::kTarget, cmd->target);
  add_flag(*app, flags::kOut, cmd->out);
  add_flag(*app, flags::kSpeedup, cmd->speedup);
  add_flag(*app, flags::kSize, cmd->size);
  add_flag(*app, flags::kMaxAccuracyDrop, cmd->max_accuracy_drop);
  add_flag(*app, flags::kLatencyMs, cmd->latency_ms);
  add_flag(*app, flags::kBatch, cmd->batches);
  add_flag(*app, flags::kDevice, cmd->device);
  add_flag(*app, flags::kBudgetMinutes, cmd->budget_minutes);
  add_flag(*app, flags::kPreset, cmd->preset)->check(CLI::IsMember({"edge-cpu", "gpu-latency", "gpu-throughput"}));
  add_flag(*app, flags::kMaxTrainSteps, cmd->max_train_steps)->check(CLI::NonNegativeNumber);
  add_flag(*app, flags::kNoExport, cmd->no_export);
  add_flag(*app, flags::kForce, cmd->force);
  add_flag(*app, flags::kWarmup, cmd->warmup)->check(CLI::NonNegativeNumber);
  add_flag(*app, flags::kIterations, cmd->iterations)->check(CLI::PositiveNumber);
  add_flag(*app, flags::kThreads, cmd->threads);
  add_flag(*app, flags::kJson, cmd->json);
  app->callback([cmd] { run_optimize(*cmd); });
}

}  // namespace hone::cli
