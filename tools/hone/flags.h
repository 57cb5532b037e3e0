#pragma once
// Every flag of the hone program is declared once here, with its help text, environment variable
// and the library option it sets (the name library errors use); a flag whose meaning shifts a
// little between commands carries per-command help. Commands pick the flags they use; none is
// declared anywhere else (tests/cli/flag_table_test.cpp checks). The llama.cpp common/arg.h idea,
// on CLI11.
#include <CLI/CLI.hpp>

#include <span>
#include <string>
#include <type_traits>

namespace hone::cli {

/// A command's own help for a flag, e.g. {"profile", "samples per profiled forward pass"}.
struct CommandHelp {
  const char* command;
  const char* help;
};

struct Flag {
  const char* names;   ///< CLI11 spelling, e.g. "-o,--out" (a positional has no dash)
  const char* help;    ///< for every command without its own entry in `per_command`
  const char* env;     ///< environment variable that sets it, or nullptr
  const char* option;  ///< the library option it sets ("epochs"): library errors name it, the CLI maps it back
  std::span<const CommandHelp> per_command = {};
};

namespace flags {
inline constexpr Flag kDevice{"--device", "where to run: cpu, cuda or cuda:N", "HONE_DEVICE", "device"};
inline constexpr Flag kJson{"--json", "print machine-readable JSON on stdout instead of text", nullptr, "json"};
inline constexpr Flag kModel{"-m,--model", "architecture from the zoo (see `hone info`)", nullptr, "architecture"};
inline constexpr CommandHelp kDataHelp[] = {
    {"eval", "evaluate on this dataset instead of the run's own (same task and input shape; see hone info)"}};
inline constexpr Flag kData{"-d,--data", "dataset (see `hone info`)", nullptr, "dataset", kDataHelp};
inline constexpr Flag kModelConfig{"--model-config",
                                   "JSON merged onto the model's default config, e.g. '{\"widths\":[16,32]}'", nullptr,
                                   "model_overrides"};
inline constexpr Flag kEpochs{"-e,--epochs", "training epochs", nullptr, "epochs"};
inline constexpr Flag kBatchSize{"--batch-size", "samples per batch", nullptr, "batch_size"};
inline constexpr Flag kLearningRate{"--lr", "peak learning rate (AdamW, cosine decay)", nullptr, "learning_rate"};
inline constexpr Flag kWeightDecay{"--weight-decay", "AdamW weight decay", nullptr, "weight_decay"};
inline constexpr Flag kSeed{"--seed", "random seed (data order, init, dropout)", "HONE_SEED", "seed"};
inline constexpr Flag kWorkers{"--workers", "data-loader worker threads", "HONE_WORKERS", "workers"};
inline constexpr CommandHelp kOutHelp[] = {
    {"compress", "directory to write the compressed model to (a run directory)"},
    {"export", "the .onnx file to write (atomically; removed if verification fails)"},
    {"optimize", "directory for the chosen run, its recipe, the ONNX export and report.html (resumable)"}};
inline constexpr Flag kOut{"-o,--out", "run directory to write (config, weights, checkpoint)", nullptr, "output",
                           kOutHelp};
inline constexpr Flag kAccumulate{"--accumulate",
                                  "micro-batches per optimizer step (gradient accumulation; effective batch = "
                                  "--batch-size x N)",
                                  nullptr, "accumulate"};
inline constexpr CommandHelp kPrecisionHelp[] = {
    {"bench", "with --train: the step's precision: fp32, tf32, bf16 or fp16 (weights stay fp32)"}};
inline constexpr Flag kPrecision{"--precision",
                                 "training precision: fp32, tf32 (CUDA), bf16 (CUDA, or a CPU with AVX512-BF16/AMX) "
                                 "or fp16 (CUDA, dynamic loss scaling); weights stay fp32",
                                 "HONE_PRECISION", "precision", kPrecisionHelp};
inline constexpr Flag kOptimizer{"--optimizer", "adamw (fused), sgd (fused, momentum) or lion", nullptr, "optimizer"};
inline constexpr Flag kMomentum{"--momentum", "SGD momentum", nullptr, "momentum"};
inline constexpr Flag kNesterov{"--nesterov", "SGD with Nesterov momentum", nullptr, "nesterov"};
inline constexpr Flag kLrSchedule{"--lr-schedule", "constant, linear, cosine (to 5% of --lr) or one-cycle", nullptr,
                                  "lr_schedule"};
inline constexpr Flag kWarmupSteps{"--warmup-steps", "linear learning-rate warm-up over the first N optimizer steps",
                                   nullptr, "warmup_steps"};
inline constexpr Flag kNoDecayNormsBiases{"--no-decay-norms-biases",
                                          "no weight decay on norms' weights and biases (1-D parameters)", nullptr,
                                          "decay_norms_and_biases"};
inline constexpr Flag kGradClip{"--grad-clip", "clip the global gradient norm to this (0: off)", nullptr, "grad_clip"};
inline constexpr Flag kDeterministic{"--deterministic",
                                     "deterministic algorithms only (cuDNN autotuning off); slower on the GPU", nullptr,
                                     "deterministic"};
inline constexpr Flag kNoAutotune{"--no-autotune",
                                  "skip cuDNN's per-shape algorithm search (benchmark mode): it costs seconds at the "
                                  "start of a run (3-7 s for the CNN on an H200) and pays only in long runs",
                                  nullptr, "autotune"};
inline constexpr Flag kCheckpointActivations{"--checkpoint-activations",
                                             "recompute each block's activations in backward (less memory, about "
                                             "one more forward of time)",
                                             nullptr, "checkpoint_activations"};
inline constexpr CommandHelp kPresetHelp[] = {
    {"optimize",
     "edge-cpu (cpu, batch 1), gpu-latency (cuda, batch 1) or gpu-throughput (cuda, batch 256); flags "
     "given explicitly win"}};
inline constexpr Flag kPreset{"--preset",
                              "set the training options for a goal: fast-gpu, low-memory, cpu or throughput (flags "
                              "given explicitly win; docs/train.md lists what each sets)",
                              nullptr, "preset", kPresetHelp};
inline constexpr Flag kInit{"--init",
                            "initial weights: auto (pretrained where hone has them, i.e. minilm: all-MiniLM-L6-v2; "
                            "else random), pretrained or random",
                            nullptr, "init"};
inline constexpr Flag kPretrainedLrScale{"--pretrained-lr-scale",
                                         "pretrained parameters train at --lr x this (a new head at --lr)", nullptr,
                                         "pretrained_lr_scale"};
inline constexpr Flag kLrFind{"--lr-find",
                              "run the learning-rate range test instead of training: prints the loss-vs-lr curve and "
                              "a suggested --lr, saves it as lr_find.json in --out",
                              nullptr, "lr_find"};
inline constexpr Flag kTrain{"--train",
                             "time one full training step (forward, loss, backward, optimizer) instead of a forward",
                             nullptr, "train"};
inline constexpr Flag kResume{"--resume", "continue the run in --out from its last checkpoint", nullptr, "resume"};
inline constexpr Flag kWindow{"--window", "forecasting: days of history per sample", nullptr, "window"};
inline constexpr Flag kLimit{"--limit", "use at most N samples per split (quick trials)", nullptr, "limit"};
inline constexpr Flag kMaxSteps{"--max-steps", "cut each epoch after N steps (quick trials)", nullptr, "max_steps"};
inline constexpr Flag kNproc{"--nproc",
                             "data-parallel on N local processes (one per GPU with --device cuda; Gloo on the CPU); "
                             "--batch-size is per process",
                             nullptr, "nproc"};
inline constexpr Flag kDistributedTimeout{"--dist-timeout",
                                          "data-parallel: seconds a rank waits for the others before it stops, "
                                          "naming the one that did not answer",
                                          "HONE_DIST_TIMEOUT", "distributed_timeout_seconds"};
inline constexpr Flag kQuiet{"-q,--quiet", "no progress bar", nullptr, "quiet"};
inline constexpr Flag kRunDir{"run_dir", "a run directory written by `hone train`", nullptr, "run_dir"};
inline constexpr Flag kSplit{"--split", "which split to evaluate: test or val", nullptr, "split"};
inline constexpr Flag kThreads{"--threads", "CPU threads for torch (0: torch's default)", "HONE_THREADS", "threads"};
inline constexpr Flag kTarget{"model", "a zoo model name or a run directory", nullptr, "target"};
inline constexpr Flag kCompare{"--compare", "time two models (zoo names or run directories) side by side", nullptr,
                               "compare"};
inline constexpr CommandHelp kBatchHelp[] = {{"profile", "samples per profiled forward pass"}};
inline constexpr Flag kBatch{"-b,--batch", "batch sizes to time, comma-separated (e.g. 1,8,64,256)", nullptr, "batch",
                             kBatchHelp};
inline constexpr CommandHelp kWarmupHelp[] = {{"profile", "unprofiled forward passes before profiling"}};
inline constexpr Flag kWarmup{"--warmup", "untimed iterations before timing each batch size", nullptr, "warmup",
                              kWarmupHelp};
inline constexpr CommandHelp kDtypeHelp[] = {
    {"export", "dtype of the ONNX graph's weights and compute: fp32 or fp16 (Casts at the inputs and outputs)"}};
inline constexpr Flag kDtype{"--dtype", "floating dtype of weights and activations: fp32, fp16 or bf16", nullptr,
                             "dtype", kDtypeHelp};
inline constexpr Flag kIterations{"--iterations", "timed iterations per batch size", nullptr, "iterations"};
inline constexpr Flag kAmp{"--amp", "keep fp32 weights and autocast matmuls/convolutions to bf16", nullptr, "amp"};
inline constexpr CommandHelp kChannelsLastHelp[] = {
    {"train",
     "conv weights and image batches in NHWC memory format, the layout cuDNN's tensor-core and oneDNN's "
     "convolutions run natively (conv nets; no effect on models without 4-D weights)"},
};
inline constexpr Flag kChannelsLast{"--channels-last", "NHWC memory format for 4-D weights and inputs", nullptr,
                                    "channels_last", kChannelsLastHelp};
inline constexpr CommandHelp kCudaGraphsHelp[] = {
    {"train",
     "capture the whole training step (forward, backward, optimizer) once as a CUDA graph and replay it "
     "(CUDA, --accumulate 1)"}};
inline constexpr Flag kCudaGraphs{"--cuda-graphs",
                                  "capture the forward once per batch size as a CUDA graph and time its replays",
                                  nullptr, "cuda_graphs", kCudaGraphsHelp};
inline constexpr CommandHelp kSeqLenHelp[] = {
    {"serve",
     "text models: tokens per row of verification inputs and of the --p99-budget-ms latency curve; the most "
     "tokens of a text in /embed bodies written by --write-requests or sent by --bench"}};
inline constexpr Flag kSeqLen{"--seq-len", "tokens per sample for text models (minilm)", nullptr, "seq_len",
                              kSeqLenHelp};
inline constexpr CommandHelp kFindBatchHelp[] = {
    {"train", "find the largest batch whose full training step fits --memory-budget (CUDA), then train with it"}};
inline constexpr Flag kFindBatch{"--find-batch", "find the largest batch within --memory-budget (CUDA)", nullptr,
                                 "find_batch", kFindBatchHelp};
inline constexpr CommandHelp kMemoryBudgetHelp[] = {
    {"train", "device memory for --find-batch, e.g. 8GiB or 512MiB (default: all of the device's)"}};
inline constexpr Flag kMemoryBudget{"--memory-budget", "device memory for --find-batch, e.g. 8GiB or 512MiB", nullptr,
                                    "memory_budget", kMemoryBudgetHelp};
inline constexpr CommandHelp kStepsHelp[] = {{"train", "with --lr-find: steps of the range test"}};
inline constexpr Flag kSteps{"--steps", "profiled forward passes", nullptr, "steps", kStepsHelp};
inline constexpr Flag kTrace{"--trace", "write a Chrome trace (chrome://tracing, ui.perfetto.dev) here", nullptr,
                             "trace"};
inline constexpr Flag kTop{"--top", "rows of the top-ops table (0: all)", nullptr, "top"};
inline constexpr Flag kCeilings{"--ceilings", "measure (once, then cached) matmul TFLOP/s and memory GB/s", nullptr,
                                "ceilings"};
inline constexpr Flag kRefresh{"--refresh", "with --ceilings: measure again even if cached", nullptr, "refresh"};
inline constexpr Flag kRecipe{"--recipe", "JSON recipe: {\"passes\": [{\"pass\": NAME, ...options}]}", nullptr,
                              "recipe"};
inline constexpr Flag kQuant{"--quant",
                             "quantize: int8-dynamic, int8-static, int8-weight-only, int4-weight-only, fp16 or bf16",
                             nullptr, "quant"};
inline constexpr Flag kObserver{"--observer", "int8-static calibration: minmax, percentile or entropy", nullptr,
                                "observer"};
inline constexpr Flag kPrune{"--prune",
                             "prune: structured:FRACTION (removes channels), magnitude:FRACTION or "
                             "magnitude-global:FRACTION (zeros weights), or 2:4 (semi-structured Linear "
                             "weights for the GPU's sparse tensor cores)",
                             nullptr, "prune"};
inline constexpr Flag kLowRank{"--lowrank", "SVD-factorize Linear layers keeping this fraction of energy, e.g. 0.95",
                               nullptr, "lowrank"};
inline constexpr Flag kFuse{"--fuse", "fold batch norms into the convolutions/linears before them", nullptr, "fuse"};
inline constexpr Flag kForce{"--force", "replace the output directory if it exists", nullptr, "force"};
inline constexpr Flag kNoVerdict{"--no-verdict", "apply and save only; skip measuring before/after", nullptr,
                                 "no_verdict"};
inline constexpr Flag kEvalLimit{"--eval-limit", "score at most N test samples in the verdict (0: all)", nullptr,
                                 "eval_limit"};
inline constexpr Flag kListPasses{"--list-passes", "print every pass with its options and exit", nullptr,
                                  "list_passes"};
inline constexpr Flag kTexts{"texts", "texts to embed (or use --file)", nullptr, "texts"};
inline constexpr Flag kFile{"-f,--file", "read texts from this file, one per line ('-': standard input)", nullptr,
                            "file"};
inline constexpr Flag kModelDir{"--model-dir",
                                "sentence-transformers model directory (default: $HONE_MINILM_DIR or the set-up's "
                                "link)",
                                nullptr, "model_dir"};
inline constexpr Flag kMaxLength{"--max-length", "tokens per text incl. [CLS]/[SEP] (0: the model's, 256)", nullptr,
                                 "max_length"};
inline constexpr Flag kSimilarity{"--similarity", "print pairwise cosine similarities instead of the vectors", nullptr,
                                  "similarity"};

// serve
inline constexpr Flag kHost{"--host", "address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface)",
                            nullptr, "host"};
inline constexpr Flag kPort{"--port", "TCP port to listen on (0: any free port, printed at start)", "HONE_PORT",
                            "port"};
inline constexpr Flag kName{
    "--name", "model name in /v2/models/{name} (default: the run directory's name or the zoo name)", nullptr, "name"};
inline constexpr Flag kMaxBatch{"--max-batch", "most rows (and requests) per model batch", nullptr, "max_batch_size"};
inline constexpr Flag kMaxQueueDelayUs{"--max-queue-delay-us",
                                       "0: greedy batching; > 0: wait up to this long for a fuller batch", nullptr,
                                       "max_queue_delay"};
inline constexpr Flag kMaxQueue{"--max-queue", "most requests waiting; one more is answered 429 with Retry-After",
                                nullptr, "max_queue_size"};
inline constexpr CommandHelp kTimeoutMsHelp[] = {{"loadgen", "per-request timeout (connect, send, receive)"}};
inline constexpr Flag kTimeoutMs{"--timeout-ms", "per-request deadline from arrival; past it the answer is 504",
                                 nullptr, "timeout", kTimeoutMsHelp};
inline constexpr Flag kMaxBatchTokens{"--max-batch-tokens", "token models: most padded tokens per batch", nullptr,
                                      "max_batch_tokens"};
inline constexpr Flag kHttpThreads{"--http-threads",
                                   "connection threads (one per live keep-alive connection; more clients queue)",
                                   nullptr, "http_threads"};
inline constexpr Flag kWriteRequests{
    "--write-requests",
    "write request bodies of real inputs here, one per line, and exit: OIP infer bodies of "
    "test inputs, or /embed bodies of real reviews for a text encoder",
    nullptr, "write_requests"};
inline constexpr Flag kRequests{
    "--requests", "with --write-requests or --bench: how many request bodies of real inputs", nullptr, "requests"};
inline constexpr Flag kTextsPerRequest{"--texts-per-request",
                                       "text encoders: texts per /embed body written by --write-requests or sent by "
                                       "--bench",
                                       nullptr, "texts_per_request"};
inline constexpr Flag kP99BudgetMs{"--p99-budget-ms",
                                   "choose --max-batch and --max-queue-delay-us from the model's batch-size -> latency "
                                   "curve measured at start so a full batch plus queueing fits this p99 (explicit "
                                   "flags win); with --bench also the knee's criterion",
                                   nullptr, "p99_budget_ms"};
inline constexpr Flag kBench{"--bench",
                             "find the knee: the highest open-loop rate whose p99 is within --p99-budget-ms with every "
                             "answer 200, through an in-process server on 127.0.0.1, for MODEL and a compressed run's "
                             "source; prints a table (--json: hone-serve-bench/1)",
                             nullptr, "bench"};
inline constexpr Flag kMaxRates{"--max-rates", "with --bench: most rates tried per model (doubling, then bisecting)",
                                nullptr, "max_rates"};
inline constexpr Flag kUrl{"url", "http://HOST:PORT/PATH to send requests to", nullptr, "url"};
inline constexpr CommandHelp kRateHelp[] = {
    {"serve", "with --bench: the first rate of the sweep (requests per second)"}};
inline constexpr Flag kRate{"--rate", "intended requests per second (open loop: sent on schedule)", nullptr, "rate",
                            kRateHelp};
inline constexpr CommandHelp kDurationHelp[] = {{"serve", "with --bench: seconds of load at each rate"}};
inline constexpr Flag kDuration{"--duration", "seconds of schedule (rate x duration requests)", nullptr, "duration",
                                kDurationHelp};
inline constexpr CommandHelp kConnectionsHelp[] = {
    {"serve", "with --bench: the load generator's keep-alive connections (the server gets as many threads + 4)"}};
inline constexpr Flag kConnections{"--connections", "keep-alive connections (one sender thread each)", nullptr,
                                   "connections", kConnectionsHelp};
inline constexpr Flag kBody{
    "--body", "request bodies, one per line, cycled (from `hone serve --write-requests`); none: GET", nullptr, "body"};
// end serve

// export
inline constexpr Flag kOpset{"--opset", "ONNX opset of the default domain (>= 20: Gelu, LayerNormalization)", nullptr,
                             "opset"};
inline constexpr Flag kBatchAxis{"--batch-axis",
                                 "the graph's batch axis: dynamic, or a fixed size N (fixed exports skip verification "
                                 "at other batch sizes: use --no-verify)",
                                 nullptr, "batch_axis"};
inline constexpr Flag kNoVerify{"--no-verify",
                                "write without running onnxruntime on the test split (no comparison, no fusion report)",
                                nullptr, "verify"};
// end export

// optimize
inline constexpr Flag kSpeedup{"--speedup", "target: this many times lower latency than the source at every --batch",
                               nullptr, "speedup"};
inline constexpr Flag kSize{"--size", "target: this many times smaller model file than the source", nullptr, "size"};
inline constexpr Flag kMaxAccuracyDrop{"--max-accuracy-drop",
                                       "target: at most this many accuracy points lost on the validation split "
                                       "(forecasters: % RMSE increase)",
                                       nullptr, "max_accuracy_drop"};
inline constexpr Flag kLatencyMs{"--latency-ms", "target: p50 latency at the first --batch at most this (0: none)",
                                 nullptr, "latency_ms"};
inline constexpr Flag kBudgetMinutes{"--budget-minutes",
                                     "minutes the search may spend on candidates (training ones are cut first)",
                                     "HONE_BUDGET_MINUTES", "budget_minutes"};
inline constexpr Flag kMaxTrainSteps{"--max-train-steps",
                                     "cut every training pass to N steps per epoch (quick runs; 0: as planned)",
                                     nullptr, "max_train_steps"};
inline constexpr Flag kNoExport{"--no-export", "do not export the chosen run to ONNX", nullptr, "export_onnx"};
// end optimize

/// Every flag above, for the table test and for naming a flag from a library option.
inline constexpr const Flag* kAll[] = {
    &kDevice,
    &kJson,
    &kModel,
    &kData,
    &kModelConfig,
    &kEpochs,
    &kBatchSize,
    &kLearningRate,
    &kWeightDecay,
    &kSeed,
    &kWorkers,
    &kOut,
    &kResume,
    &kWindow,
    &kLimit,
    &kMaxSteps,
    &kNproc,
    &kDistributedTimeout,
    &kQuiet,
    &kRunDir,
    &kSplit,
    &kThreads,
    &kTarget,
    &kCompare,
    &kBatch,
    &kWarmup,
    &kDtype,
    &kIterations,
    &kAmp,
    &kChannelsLast,
    &kCudaGraphs,
    &kSeqLen,
    &kFindBatch,
    &kMemoryBudget,
    &kSteps,
    &kTrace,
    &kTop,
    &kCeilings,
    &kRefresh,
    &kRecipe,
    &kQuant,
    &kObserver,
    &kPrune,
    &kLowRank,
    &kFuse,
    &kForce,
    &kNoVerdict,
    &kEvalLimit,
    &kListPasses,
    &kTexts,
    &kFile,
    &kModelDir,
    &kMaxLength,
    &kSimilarity,
    &kAccumulate,
    &kPrecision,
    &kOptimizer,
    &kMomentum,
    &kNesterov,
    &kLrSchedule,
    &kWarmupSteps,
    &kNoDecayNormsBiases,
    &kGradClip,
    &kDeterministic,
    &kNoAutotune,
    &kCheckpointActivations,
    &kTrain,
    &kPreset,
    &kInit,
    &kPretrainedLrScale,
    &kLrFind,
    // serve
    &kHost,
    &kPort,
    &kName,
    &kMaxBatch,
    &kMaxQueueDelayUs,
    &kMaxQueue,
    &kTimeoutMs,
    &kMaxBatchTokens,
    &kHttpThreads,
    &kWriteRequests,
    &kRequests,
    &kTextsPerRequest,
    &kP99BudgetMs,
    &kBench,
    &kMaxRates,
    &kUrl,
    &kRate,
    &kDuration,
    &kConnections,
    &kBody,
    // export
    &kOpset,
    &kBatchAxis,
    &kNoVerify,
    // optimize
    &kSpeedup,
    &kSize,
    &kMaxAccuracyDrop,
    &kLatencyMs,
    &kBudgetMinutes,
    &kMaxTrainSteps,
    &kNoExport,
};
}  // namespace flags

/// The help `flag` shows in `command` (its per-command text, or the general one).
const char* help_for(const Flag& flag, const std::string& command);

/// The flag that sets library option `option` ("--epochs"), or "" when no flag does.
std::string flag_for_option(const std::string& option);

/// Adds `flag` bound to `value` (its current value is shown as the default).
template <typename T>
CLI::Option* add_flag(CLI::App& app, const Flag& flag, T& value) {
  CLI::Option* option = nullptr;
  const char* help = help_for(flag, app.get_name());
  if constexpr (std::is_same_v<T, bool>) {
    option = app.add_flag(flag.names, value, help);
  } else {
    option = app.add_option(flag.names, value, help)->capture_default_str();
  }
  if (flag.env != nullptr) option->envname(flag.env);
  return option;
}

/// Sets torch's CPU thread count when `threads` > 0.
void apply_threads(int threads);

}  // namespace hone::cli
