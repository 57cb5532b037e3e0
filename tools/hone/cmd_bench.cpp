// hone bench: forward latency percentiles, throughput and memory of a zoo model or a trained run;
// two models side by side (--compare A B); the largest batch within a memory budget (--find-batch).
#include <iostream>

#include "commands.h"
#include "flags.h"
#include "hone/bench/bench_target.h"
#include "hone/bench/model_bench.h"
#include "hone/core/error.h"

namespace hone::cli {
namespace {

struct BenchCommand {
  std::string target;
  std::vector<std::string> compare;
  bench::BenchOptions options;
  std::string batches = "1";
  bool find_batch = false;
  std::string memory_budget;
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
  if (cmd.find_batch) {
    if (cmd.memory_budget.empty()) fail_usage("--find-batch needs --memory-budget, e.g. --memory-budget 8GiB");
    const auto report = bench::find_max_batch(cmd.target, cmd.options, bench::parse_bytes(cmd.memory_budget));
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
      "  hone bench minilm --device cuda --find-batch --memory-budget 8GiB\n");
  add_flag(*app, flags::kBenchTarget, cmd->target);
  app->add_option("--compare", cmd->compare, "time two models (zoo names or run directories) side by side")
      ->expected(2)
      ->type_name("A B");
  add_flag(*app, flags::kDevice, cmd->options.device);
  add_flag(*app, flags::kBatchList, cmd->batches);
  add_flag(*app, flags::kDtype, cmd->options.dtype);
  app->add_flag("--amp", cmd->options.amp, "keep fp32 weights and autocast matmuls/convolutions to bf16");
  app->add_flag("--channels-last", cmd->options.channels_last, "NHWC memory format for 4-D weights and inputs");
  app->add_flag("--cuda-graphs", cmd->options.cuda_graphs,
                "capture the forward once per batch size as a CUDA graph and time its replays");
  app->add_option("--seq-len", cmd->options.seq_len, "tokens per sample for text models (minilm)")
      ->capture_default_str();
  app->add_flag("--find-batch", cmd->find_batch, "find the largest batch within --memory-budget (CUDA)");
  app->add_option("--memory-budget", cmd->memory_budget, "device memory for --find-batch, e.g. 8GiB or 512MiB");
  add_flag(*app, flags::kWarmup, cmd->options.warmup);
  add_flag(*app, flags::kIterations, cmd->options.iterations);
  add_flag(*app, flags::kThreads, cmd->threads);
  add_flag(*app, flags::kJson, cmd->json);
  app->callback([cmd] { run_bench(*cmd); });
}

}  // namespace hone::cli
