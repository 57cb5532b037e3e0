// hone compress: apply compression passes to a model and print the measured verdict.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>

#include "commands.h"
#include "flags.h"
#include "hone/bench/model_bench.h"
#include "hone/compress/compress.h"
#include "hone/compress/shorthand.h"
#include "hone/core/error.h"

namespace hone::cli {
namespace {

struct CompressCommand {
  std::string target;
  std::string out;
  std::string recipe;
  std::string quant;
  std::string observer;
  std::string prune;
  double lowrank = 0;
  bool fuse = false;
  bool force = false;
  bool no_verdict = false;
  bool list_passes = false;
  std::string device = "cpu";
  std::string batches = "1,64";
  int warmup = 5;
  int iterations = 30;
  std::int64_t eval_limit = 0;
  int threads = 0;
  bool json = false;
};

std::string option_text(const compress::OptionSpec& spec) {
  std::string text = "    " + spec.name;
  if (!spec.choices.empty()) text += fmt::format(" ({})", fmt::join(spec.choices, "|"));
  text += spec.default_value.is_null() ? " [required]" : " [default " + spec.default_value.dump() + "]";
  return text + ": " + spec.help;
}

void list_passes() {
  for (const auto& entry : compress::pass_registry()) {
    std::cout << entry.name << " - " << entry.summary << "\n";
    for (const auto& spec : entry.options) std::cout << option_text(spec) << "\n";
  }
}

void run_compress(const CompressCommand& cmd) {
  if (cmd.list_passes) {
    list_passes();
    return;
  }
  if (cmd.target.empty()) fail_usage("compress: give a model (a run directory or a zoo name)");
  if (cmd.out.empty()) fail_usage("compress: give the output directory with -o DIR");
  apply_threads(cmd.threads);
  compress::CompressOptions options;
  options.source = cmd.target;
  const bool has_flags = !cmd.quant.empty() || !cmd.prune.empty() || cmd.lowrank > 0 || cmd.fuse;
  if (!cmd.recipe.empty() && has_flags) fail_usage("compress: give either --recipe or pass flags, not both");
  compress::Shorthand shorthand;
  shorthand.quant = cmd.quant;
  shorthand.observer = cmd.observer;
  shorthand.prune = cmd.prune;
  shorthand.lowrank = cmd.lowrank;
  shorthand.fuse = cmd.fuse;
  options.recipe = cmd.recipe.empty() ? compress::recipe_from_shorthand(shorthand) : compress::load_recipe(cmd.recipe);
  if (options.recipe.passes.empty()) {
    fail_usage("compress: nothing to do; give --recipe FILE or at least one of --quant, --prune, --lowrank, --fuse");
  }
  options.output = cmd.out;
  options.force = cmd.force;
  options.device = cmd.device;
  options.measure = !cmd.no_verdict;
  options.batches = bench::parse_batch_list(cmd.batches);
  options.warmup = cmd.warmup;
  options.iterations = cmd.iterations;
  options.eval_limit = cmd.eval_limit;
  const auto report = compress::compress_model(options);
  if (cmd.json) {
    std::cout << report.to_json().dump(2) << "\n";
  } else {
    std::cout << report.to_text();
  }
}

}  // namespace

void register_compress(CLI::App& root) {
  auto cmd = std::make_shared<CompressCommand>();
  CLI::App* app =
      root.add_subcommand("compress", "Quantize, prune, factorize or fuse a model; print the measured verdict");
  app->footer(
      "Writes a run directory that `hone eval` and `hone bench` load like any other, and measures\n"
      "parameters, file size, memory, CPU latency (batch 1 and 64) and test accuracy before and after.\n"
      "Examples:\n"
      "  hone compress runs/cnn --fuse --quant int8-static --observer entropy -o runs/cnn-int8\n"
      "  hone compress runs/lstm --quant int8-dynamic -o runs/lstm-int8 --json\n"
      "  hone compress minilm --device cuda --quant int4-weight-only -o runs/minilm-int4\n"
      "  hone compress minilm --device cuda --quant bf16 --prune 2:4 -o runs/minilm-24\n"
      "  hone compress runs/cnn --recipe recipe.json -o runs/cnn-small\n"
      "  hone compress runs/cnn --recipe docs/recipes/cnn-distill-prune-qat.json -o runs/cnn-kd   # trains: prune, "
      "distill, fold, QAT\n"
      "  hone compress --list-passes\n");
  add_flag(*app, flags::kTarget, cmd->target);
  add_flag(*app, flags::kOut, cmd->out);
  add_flag(*app, flags::kRecipe, cmd->recipe);
  add_flag(*app, flags::kQuant, cmd->quant)
      ->check(CLI::IsMember({"int8-dynamic", "int8-static", "int8-weight-only", "int4-weight-only", "fp16", "bf16"}));
  add_flag(*app, flags::kObserver, cmd->observer)->check(CLI::IsMember({"minmax", "percentile", "entropy"}));
  add_flag(*app, flags::kPrune, cmd->prune);
  add_flag(*app, flags::kLowRank, cmd->lowrank)->check(CLI::Range(0.0, 1.0));
  add_flag(*app, flags::kFuse, cmd->fuse);
  add_flag(*app, flags::kForce, cmd->force);
  add_flag(*app, flags::kNoVerdict, cmd->no_verdict);
  add_flag(*app, flags::kListPasses, cmd->list_passes);
  add_flag(*app, flags::kDevice, cmd->device);
  add_flag(*app, flags::kBatch, cmd->batches);
  add_flag(*app, flags::kWarmup, cmd->warmup)->check(CLI::NonNegativeNumber);
  add_flag(*app, flags::kIterations, cmd->iterations)->check(CLI::PositiveNumber);
  add_flag(*app, flags::kEvalLimit, cmd->eval_limit)->check(CLI::NonNegativeNumber);
  add_flag(*app, flags::kThreads, cmd->threads);
  add_flag(*app, flags::kJson, cmd->json);
  app->callback([cmd] { run_compress(*cmd); });
}

}  // namespace hone::cli
