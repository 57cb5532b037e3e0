// hone bench: forward latency percentiles, throughput and memory of a zoo model or a trained run;
// two models side by side (--compare A B); the largest batch within a memory budget (--find-batch).
#include <iostream>

#include "commands.h"
#include "flags.h"
#include "hone/bench/model_bench.h"
#include "hone/bench/train_bench.h"
#include "hone/core/error.h"
#include "hone/runtime/device_probe.h"
#include "hone/runtime/forward_runner.h"
#include "hone/runtime/settings.h"
#include "hone/runtime/target.h"
#include "hone/runtime/units.h"

namespace hone::cli {
namespace {

struct BenchCommand {
  std::string target;
  std::vector<std::string> compare;
  bench::BenchOptions options;
  std::string batches = "1";
  bool find_batch = false;
  std::string memory_budget;
  bool train = false;
  bench::TrainBenchOptions train_options;
  int threads = 0;
  bool json = false;
};

void run_bench(BenchCommand& cmd) {
  apply_threads(cmd.threads);
  if (cmd.target.empty() == cmd.compare.empty()) {
    fail_usage("give one MODEL to bench, or --compare A B (not both)");
  }
  if (!cmd.memory_budget.empty() && !cmd.find_batch) fail_usage("--memory-budget goes with --find-batch");
  cmd.options.batches = bench::parse_batch_list(cmd.batches);
  if (!cmd.compare.empty()) {
    if (cmd.find_batch) fail_usage("--find-batch and --compare cannot be combined");
    const auto report = bench::compare_models(cmd.compare[0], cmd.compare[1], cmd.options);
    std::cout << (cmd.json ? report.to_json().dump(2) + "\n" : report.to_text());
    return;
  }
  if (cmd.train) {
    auto& t = cmd.train_options;
    t.device = cmd.options.device;
    t.batches = cmd.options.batches;
    t.warmup = cmd.options.warmup;
    t.iterations = cmd.options.iterations;
    t.cuda_graphs = cmd.options.cuda_graphs;
    t.channels_last = cmd.options.channels_last;
    t.seq_len = cmd.options.seq_len;
    if (cmd.find_batch) {
      if (cmd.memory_budget.empty()) fail_usage("--find-batch needs --memory-budget, e.g. --memory-budget 8GiB");
      const auto report = bench::find_train_batch(cmd.target, t, runtime::parse_bytes(cmd.memory_budget));
      std::cout << (cmd.json ? report.to_json().dump(2) + "\n" : report.to_text());
      return;
    }
    const auto report = bench::bench_train_step(cmd.target, t);
    std::cout << (cmd.json ? report.to_json().dump(2) + "\n" : report.to_text());
    return;
  }
  if (cmd.find_batch) {
    if (cmd.memory_budget.empty()) fail_usage("--find-batch needs --memory-budget, e.g. --memory-budget 8GiB");
    const auto report = bench::find_max_batch(cmd.target, cmd.options, runtime::parse_bytes(cmd.memory_budget));
    std::cout << (cmd.json ? report.to_json().dump(2) + "\n" : report.to_text());
    return;
  }
  const bench::BenchReport report = bench::bench_model(cmd.target, cmd.options);
  std::cout << (cmd.json ? report.to_json().dump(2) + "\n" : report.to_text());
}

}  // namespace

void register_bench(CLI::App& root) {
  auto cmd = std::make_shared<BenchCommand>();
  CLI::App* app = root.add_subcommand("bench", "Time a model's forward pass: latency percentiles, throughput, memory");
  app->footer(
      "MODEL is a zoo name (random weights, its dataset's input shape; minilm takes --seq-len random token\n"
      "ids) or a run directory from `hone train`. Inputs are random: the numbers are timings, never\n"
      "accuracy. --json schemas: hone-bench/1, hone-bench-compare/1, hone-bench-find-batch/1 (docs/bench.md).\n"
      "Examples:\n"
      "  hone bench cnn --batch 1,64\n"
      "  hone bench runs/cnn --device cuda --batch 1,8,64,256 --json\n"
      "  hone bench minilm --device cuda --dtype bf16 --cuda-graphs --batch 1,256\n"
      "  hone bench --compare cnn mobilenet --batch 1,64\n"
      "  hone bench minilm --device cuda --find-batch --memory-budget 8GiB\n"
      "  hone bench cnn --train --batch 128                       # one full training step (AdamW)\n"
      "  hone bench minilm --train --device cuda --precision bf16 --cuda-graphs --batch 64\n");
  add_flag(*app, flags::kTarget, cmd->target);
  add_flag(*app, flags::kCompare, cmd->compare)->expected(2)->type_name("A B");
  add_flag(*app, flags::kDevice, cmd->options.device);
  add_flag(*app, flags::kBatch, cmd->batches);
  add_flag(*app, flags::kDtype, cmd->options.dtype);
  add_flag(*app, flags::kAmp, cmd->options.amp);
  add_flag(*app, flags::kChannelsLast, cmd->options.channels_last);
  add_flag(*app, flags::kCudaGraphs, cmd->options.cuda_graphs);
  add_flag(*app, flags::kSeqLen, cmd->options.seq_len);
  add_flag(*app, flags::kFindBatch, cmd->find_batch);
  add_flag(*app, flags::kMemoryBudget, cmd->memory_budget);
  add_flag(*app, flags::kTrain, cmd->train);
  add_flag(*app, flags::kPrecision, cmd->train_options.precision)
      ->check(CLI::IsMember({"fp32", "tf32", "bf16", "fp16"}));
  add_flag(*app, flags::kOptimizer, cmd->train_options.optimizer)->check(CLI::IsMember({"adamw", "sgd", "lion"}));
  add_flag(*app, flags::kCheckpointActivations, cmd->train_options.checkpoint_activations);
  add_flag(*app, flags::kWarmup, cmd->options.warmup);
  add_flag(*app, flags::kIterations, cmd->options.iterations);
  add_flag(*app, flags::kThreads, cmd->threads);
  add_flag(*app, flags::kJson, cmd->json);
  app->callback([cmd] { run_bench(*cmd); });
}

}  // namespace hone::cli
