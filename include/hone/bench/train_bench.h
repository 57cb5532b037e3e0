#pragma once
/// @file `hone bench MODEL --train`: the time of one full training step (forward, loss, backward,
/// optimizer update) with bench's harness — warm-up, device-synchronized timed steps,
/// percentiles, samples/s and peak memory — under the training engine's precision, optimizer,
/// activation checkpointing and (CUDA) whole-step graphs. Weights, inputs and targets are random:
/// timings only. bench/peers/train_step_peers.py times the same step in PyTorch beside it.
///
///   bench::TrainBenchOptions o;
///   o.device = "cuda"; o.batches = {64}; o.precision = "bf16";
///   bench::TrainBenchReport r = bench::bench_train_step("minilm", o);   // schema hone-bench-train/1
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "hone/runtime/batch_search.h"
#include "hone/runtime/statistics.h"

namespace hone::bench {

struct TrainBenchOptions {
  std::string device = "cpu";
  std::vector<std::int64_t> batches{128};
  int warmup = 5;
  int iterations = 20;
  std::string precision = "fp32";  ///< fp32, tf32, bf16, fp16
  std::string optimizer = "adamw";
  bool checkpoint_activations = false;
  bool cuda_graphs = false;    ///< capture the whole step once, time its replays
  bool channels_last = false;  ///< conv weights and the random 4-D inputs in NHWC
  std::int64_t seq_len = 128;
};

struct TrainBatchResult {
  std::int64_t batch = 0;
  runtime::Summary step_ms;
  double samples_per_second = 0;
  std::int64_t peak_memory_bytes = -1;  ///< CUDA: max allocated over the timed steps; CPU: -1
};

struct TrainBenchReport {
  std::string target, architecture, device, precision, optimizer;
  bool checkpoint_activations = false, cuda_graphs = false, channels_last = false;
  std::int64_t parameters = 0;
  std::string input_kind;
  std::string loss;  ///< what the timed loss is (cross-entropy on random labels, ...)
  int threads = 0;
  std::vector<TrainBatchResult> results;
  nlohmann::json to_json() const;  ///< schema hone-bench-train/1
  std::string to_text() const;
};

TrainBenchReport bench_train_step(const std::string& target, const TrainBenchOptions& options);

/// `hone bench MODEL --train --find-batch`: the largest batch whose eager training step fits
/// `budget_bytes` (runtime::search_largest_batch; CUDA only), then that batch timed.
struct TrainFindBatchReport {
  runtime::BatchSearch search;
  TrainBenchReport bench;          ///< results empty when nothing fits
  nlohmann::json to_json() const;  ///< schema hone-bench-train-find-batch/1
  std::string to_text() const;
};
TrainFindBatchReport find_train_batch(const std::string& target, const TrainBenchOptions& options,
                                      std::int64_t budget_bytes, std::int64_t max_batch = 1 << 16);

}  // namespace hone::bench
