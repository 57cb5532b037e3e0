#pragma once
// Every flag of the hone program is declared once here, with its help text and environment
// variable; commands pick the ones they use. (The llama.cpp common/arg.h idea, on CLI11.)
#include <CLI/CLI.hpp>

#include <string>

namespace hone::cli {

struct Flag {
  const char* names;  ///< CLI11 spelling, e.g. "-o,--out"
  const char* help;
  const char* env;  ///< environment variable that sets it, or nullptr
};

namespace flags {
inline constexpr Flag kDevice{"--device", "where to run: cpu, cuda or cuda:N", "HONE_DEVICE"};
inline constexpr Flag kJson{"--json", "print machine-readable JSON on stdout instead of text", nullptr};
inline constexpr Flag kModel{"-m,--model", "architecture from the zoo (see `hone info`)", nullptr};
inline constexpr Flag kData{"-d,--data", "dataset (see `hone info`)", nullptr};
inline constexpr Flag kModelConfig{"--model-config",
                                   "JSON merged onto the model's default config, e.g. '{\"widths\":[16,32]}'", nullptr};
inline constexpr Flag kEpochs{"-e,--epochs", "training epochs", nullptr};
inline constexpr Flag kBatchSize{"-b,--batch-size", "samples per batch", nullptr};
inline constexpr Flag kLearningRate{"--lr", "peak learning rate (AdamW, cosine decay)", nullptr};
inline constexpr Flag kWeightDecay{"--weight-decay", "AdamW weight decay", nullptr};
inline constexpr Flag kSeed{"--seed", "random seed (data order, init, dropout)", "HONE_SEED"};
inline constexpr Flag kWorkers{"--workers", "data-loader worker threads", "HONE_WORKERS"};
inline constexpr Flag kOut{"-o,--out", "run directory to write (config, weights, checkpoint)", nullptr};
inline constexpr Flag kResume{"--resume", "continue the run in --out from its last checkpoint", nullptr};
inline constexpr Flag kWindow{"--window", "forecasting: days of history per sample", nullptr};
inline constexpr Flag kLimit{"--limit", "use at most N samples per split (quick trials)", nullptr};
inline constexpr Flag kMaxSteps{"--max-steps", "cut each epoch after N steps (quick trials)", nullptr};
inline constexpr Flag kQuiet{"-q,--quiet", "no progress bar", nullptr};
inline constexpr Flag kRunDir{"run_dir", "a run directory written by `hone train`", nullptr};
inline constexpr Flag kSplit{"--split", "which split to evaluate: test or val", nullptr};
inline constexpr Flag kThreads{"--threads", "CPU threads for torch (0: torch's default)", "HONE_THREADS"};
inline constexpr Flag kBenchTarget{"model", "a zoo model name or a run directory", nullptr};
inline constexpr Flag kBatchList{"-b,--batch", "batch sizes to time, comma-separated (e.g. 1,8,64,256)", nullptr};
inline constexpr Flag kWarmup{"--warmup", "untimed iterations before timing each batch size", nullptr};
inline constexpr Flag kDtype{"--dtype", "floating dtype of weights and activations: fp32, fp16 or bf16", nullptr};
inline constexpr Flag kIterations{"--iterations", "timed iterations per batch size", nullptr};
inline constexpr Flag kBatch{"-b,--batch", "samples per forward pass", nullptr};
inline constexpr Flag kAmp{"--amp", "keep fp32 weights and autocast matmuls/convolutions to bf16", nullptr};
inline constexpr Flag kChannelsLast{"--channels-last", "NHWC memory format for 4-D weights and inputs", nullptr};
inline constexpr Flag kSeqLen{"--seq-len", "tokens per sample for text models (minilm)", nullptr};
inline constexpr Flag kProfileWarmup{"--warmup", "unprofiled forward passes before profiling", nullptr};
inline constexpr Flag kSteps{"--steps", "profiled forward passes", nullptr};
inline constexpr Flag kTrace{"--trace", "write a Chrome trace (chrome://tracing, ui.perfetto.dev) here", nullptr};
inline constexpr Flag kTop{"--top", "rows of the top-ops table (0: all)", nullptr};
inline constexpr Flag kCeilings{"--ceilings", "measure (once, then cached) matmul TFLOP/s and memory GB/s", nullptr};
inline constexpr Flag kRefresh{"--refresh", "with --ceilings: measure again even if cached", nullptr};
inline constexpr Flag kCompressOut{"-o,--out", "directory to write the compressed model to (a run directory)", nullptr};
inline constexpr Flag kRecipe{"--recipe", "JSON recipe: {\"passes\": [{\"pass\": NAME, ...options}]}", nullptr};
inline constexpr Flag kQuant{
    "--quant", "quantize: int8-dynamic, int8-static, int8-weight-only, int4-weight-only, fp16 or bf16", nullptr};
inline constexpr Flag kObserver{"--observer", "int8-static calibration: minmax, percentile or entropy", nullptr};
inline constexpr Flag kPrune{"--prune",
                             "prune: structured:FRACTION (removes channels), magnitude:FRACTION or "
                             "magnitude-global:FRACTION (zeros weights), or 2:4 (semi-structured Linear "
                             "weights for the GPU's sparse tensor cores)",
                             nullptr};
inline constexpr Flag kLowRank{"--lowrank", "SVD-factorize Linear layers keeping this fraction of energy, e.g. 0.95",
                               nullptr};
inline constexpr Flag kFuse{"--fuse", "fold batch norms into the convolutions/linears before them", nullptr};
inline constexpr Flag kForce{"--force", "replace the output directory if it exists", nullptr};
inline constexpr Flag kNoVerdict{"--no-verdict", "apply and save only; skip measuring before/after", nullptr};
inline constexpr Flag kEvalLimit{"--eval-limit", "score at most N test samples in the verdict (0: all)", nullptr};
inline constexpr Flag kListPasses{"--list-passes", "print every pass with its options and exit", nullptr};
}  // namespace flags

/// Adds `flag` bound to `value` (its current value is shown as the default).
template <typename T>
CLI::Option* add_flag(CLI::App& app, const Flag& flag, T& value) {
  CLI::Option* option = nullptr;
  if constexpr (std::is_same_v<T, bool>) {
    option = app.add_flag(flag.names, value, flag.help);
  } else {
    option = app.add_option(flag.names, value, flag.help)->capture_default_str();
  }
  if (flag.env != nullptr) option->envname(flag.env);
  return option;
}

/// Sets torch's CPU thread count when `threads` > 0.
void apply_threads(int threads);

}  // namespace hone::cli
