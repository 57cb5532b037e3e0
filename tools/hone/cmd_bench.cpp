// hone bench: forward latency percentiles, throughput and memory of a zoo model or a trained run.
#include <iostream>

#include "commands.h"
#include "flags.h"
#include "hone/bench/model_bench.h"

namespace hone::cli {
namespace {

struct BenchCommand {
  std::string target;
  bench::BenchOptions options;
  std::string batches = "1";
  int threads = 0;
  bool json = false;
};

void run_bench(BenchCommand& cmd) {
  apply_threads(cmd.threads);
  cmd.options.batches = bench::parse_batch_list(cmd.batches);
  const bench::BenchReport report = bench::bench_model(cmd.target, cmd.options);
  if (cmd.json) {
    std::cout << report.to_json().dump(2) << "\n";
  } else {
    std::cout << report.to_text();
  }
}

}  // namespace

void register_bench(CLI::App& root) {
  auto cmd = std::make_shared<BenchCommand>();
  CLI::App* app = root.add_subcommand("bench", "Time a model's forward pass: latency percentiles, throughput, memory");
  app->footer(
      "MODEL is a zoo name (random weights, its dataset's input shape) or a run directory from `hone train`.\n"
      "Inputs are random tensors: the numbers are timings, never accuracy. --json schema: hone-bench/1\n"
      "(docs/bench.md).\n"
      "Examples:\n"
      "  hone bench cnn --batch 1,64\n"
      "  hone bench runs/cnn --device cuda --batch 1,8,64,256 --json\n");
  add_flag(*app, flags::kBenchTarget, cmd->target)->required();
  add_flag(*app, flags::kDevice, cmd->options.device);
  add_flag(*app, flags::kBatchList, cmd->batches);
  add_flag(*app, flags::kWarmup, cmd->options.warmup);
  add_flag(*app, flags::kIterations, cmd->options.iterations);
  add_flag(*app, flags::kThreads, cmd->threads);
  add_flag(*app, flags::kJson, cmd->json);
  app->callback([cmd] { run_bench(*cmd); });
}

}  // namespace hone::cli
