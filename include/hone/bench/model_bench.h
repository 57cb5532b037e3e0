#pragma once
/// @file Latency and throughput of a model's forward pass (`hone bench`): warm-up, then timed
/// iterations with device synchronization, summarized as percentiles per batch size, beside the
/// model's parameters, in-memory size, file size and FLOPs. Inputs are random tensors of the
/// dataset's shape: these are timings, never accuracy. Also: two models timed side by side
/// (interleaved, in one process) and the largest batch that fits a memory budget.
#include <ATen/core/Tensor.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "hone/models/model.h"
#include "hone/runtime/batch_search.h"
#include "hone/runtime/settings.h"
#include "hone/runtime/statistics.h"

namespace hone::bench {

struct BenchOptions {
  std::string device = "cpu";
  std::vector<std::int64_t> batches{1};
  int warmup = 10;             ///< untimed iterations per batch size
  int iterations = 50;         ///< timed iterations per batch size
  std::string dtype = "fp32";  ///< fp32 | fp16 | bf16: weights and float inputs
  bool amp = false;            ///< fp32 weights, autocast to bf16
  bool channels_last = false;  ///< NHWC weights and inputs (4-D only)
  bool cuda_graphs = false;    ///< capture the forward once per batch size, time the replays
  std::int64_t seq_len = 128;  ///< tokens per sample for text models
};

struct BatchResult {
  std::int64_t batch = 0;
  runtime::Summary latency_ms;          ///< per forward call, milliseconds
  double samples_per_second = 0;        ///< batch / mean latency
  std::int64_t peak_memory_bytes = -1;  ///< CUDA: max allocated during the timed loop; CPU: -1 (see peak_rss)
};

struct BenchReport {
  std::string target;  ///< what was asked for: a zoo name or a run directory
  std::string architecture;
  std::string device;
  std::string dtype = "fp32";
  bool amp = false, channels_last = false, cuda_graphs = false;
  std::string weights;                    ///< "random (timing only)" or the weights file
  std::vector<std::int64_t> input_shape;  ///< one sample
  std::string input_kind;                 ///< "random normal (timing only)" or "random token ids (timing only)"
  std::int64_t parameters = 0;
  std::int64_t buffer_elements = 0;
  std::int64_t memory_bytes = 0;      ///< parameters + buffers, as held in memory
  std::int64_t file_bytes = 0;        ///< the run's model.safetensors (0 for a zoo model)
  std::int64_t flops_per_sample = 0;  ///< forward, counted at batch 1 (see profile/flop_counter.h)
  std::int64_t peak_rss_bytes = 0;    ///< process high-water mark after the runs (CPU memory)
  int threads = 0;
  std::vector<BatchResult> results;

  nlohmann::json to_json() const;
  std::string to_text() const;
};

/// `target` is a zoo model name (random weights, its default dataset's input shape) or a run
/// directory written by `hone train` (its weights and dataset shape).
BenchReport bench_model(const std::string& target, const BenchOptions& options);

/// Two targets under the same options, loaded together and timed interleaved (A, B, B, A, ...
/// so drift and thermal state hit both alike). Ratios are B / A.
struct CompareReport {
  BenchReport a, b;
  nlohmann::json to_json() const;  ///< schema hone-bench-compare/1
  std::string to_text() const;
};
CompareReport compare_models(const std::string& target_a, const std::string& target_b, const BenchOptions& options);

/// The largest batch whose forward pass fits `budget_bytes` of device memory (CUDA: peak
/// allocated, with out-of-memory caught and recovered from): doubling, then bisection.
struct FindBatchReport {
  runtime::BatchSearch search;     ///< the trials and the answer (largest_batch 0: nothing fits)
  BenchReport bench;               ///< the largest batch, timed (results empty when nothing fits)
  nlohmann::json to_json() const;  ///< schema hone-bench-find-batch/1
  std::string to_text() const;
};
FindBatchReport find_max_batch(const std::string& target, const BenchOptions& options, std::int64_t budget_bytes,
                               std::int64_t max_batch = 1 << 20);

/// Times a prepared model's forward pass on one input as bench_model does for each batch size:
/// `warmup` untimed passes, then `iterations` timed ones, each ended by a device synchronization;
/// milliseconds per call. For modules above bench that need a model's measured latency (serve's
/// batch-size -> latency curve). Call under inference mode; autocast follows `settings`.
runtime::Summary time_forward_ms(models::Model& model, const at::Tensor& input, const runtime::RunSettings& settings,
                                 int warmup, int iterations, bool cuda_graph = false);

/// Parses "1,8,64" into batch sizes; throws hone::UsageError on anything else.
std::vector<std::int64_t> parse_batch_list(const std::string& text);

}  // namespace hone::bench
