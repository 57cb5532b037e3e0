#pragma once
/// @file Latency and throughput of a model's forward pass (`hone bench`): warm-up, then timed
/// iterations with device synchronization, summarized as percentiles per batch size, beside the
/// model's parameters, in-memory size, file size and FLOPs. Inputs are random tensors of the
/// dataset's shape: these are timings, never accuracy.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "hone/bench/statistics.h"

namespace hone::bench {

struct BenchOptions {
  std::string device = "cpu";
  std::vector<std::int64_t> batches{1};
  int warmup = 10;      ///< untimed iterations per batch size
  int iterations = 50;  ///< timed iterations per batch size
};

struct BatchResult {
  std::int64_t batch = 0;
  Summary latency_ms;                   ///< per forward call, milliseconds
  double samples_per_second = 0;        ///< batch / mean latency
  std::int64_t peak_memory_bytes = -1;  ///< CUDA: max allocated during the timed loop; CPU: -1 (see peak_rss)
};

struct BenchReport {
  std::string target;  ///< what was asked for: a zoo name or a run directory
  std::string architecture;
  std::string device;
  std::vector<std::int64_t> input_shape;  ///< one sample
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

/// Parses "1,8,64" into batch sizes; throws hone::UsageError on anything else.
std::vector<std::int64_t> parse_batch_list(const std::string& text);

}  // namespace hone::bench
