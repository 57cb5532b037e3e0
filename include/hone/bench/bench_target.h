#pragma once
/// @file What `hone bench` and `hone profile` run: a zoo model (random weights) or a saved run,
/// prepared for a device, dtype, autocast and memory format, fed random inputs of its dataset's
/// shape (floats, or token ids for text models: timing only), eagerly or through a CUDA graph.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <memory>
#include <string>

#include "hone/data/dataset_info.h"
#include "hone/models/model.h"

namespace hone::bench {

struct RunSettings {
  c10::Device device = c10::kCPU;
  c10::ScalarType dtype = c10::kFloat;  ///< weights and float inputs
  bool amp = false;                     ///< keep the weights' dtype, autocast matmuls/convs to bf16
  bool channels_last = false;           ///< 4-D weights and inputs in NHWC memory format
  std::int64_t seq_len = 128;           ///< tokens per sample for text models (zoo targets)
};

/// Settings from command-line spellings ("cuda", "bf16"...): parse errors and --amp with a low
/// --dtype are hone::UsageError, shared by `hone bench` and `hone profile`.
RunSettings make_run_settings(const std::string& device, const std::string& dtype, bool amp, bool channels_last,
                              std::int64_t seq_len);

struct BenchTarget {
  std::string target;  ///< as given: a zoo name or a run directory
  models::ModelPtr model;
  data::DatasetInfo info;       ///< input shape (one sample), vocab size for token inputs
  std::int64_t file_bytes = 0;  ///< the run's model.safetensors; 0 for a zoo model
  std::string weights;          ///< "random (timing only)" or the weights file
};

/// A zoo name (random weights, its default dataset's shapes; text models take seq_len tokens) or a
/// run directory. Unknown names throw hone::UsageError listing the zoo; a broken run directory
/// throws hone::Error naming the file.
BenchTarget load_bench_target(const std::string& target, std::int64_t seq_len = 128);

/// Eval mode, no gradients, moved to the device and dtype, channels-last when asked.
void prepare_model(models::Model& model, const RunSettings& settings);

/// A random batch of `batch` samples of `info`'s shape: normal floats in the settings' dtype, or
/// token ids in [1000, vocab) (never padding) for text models. Timing only.
at::Tensor make_random_input(const data::DatasetInfo& info, std::int64_t batch, const RunSettings& settings);

/// Turns autocast on for the settings' device while alive (when settings.amp), restoring it after.
class AutocastScope {
 public:
  explicit AutocastScope(const RunSettings& settings);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType device_type_ = c10::kCPU;
  bool was_enabled_ = false;
  c10::ScalarType was_dtype_ = c10::kBFloat16;
};

/// One forward pass on a fixed input, run eagerly or replayed from a CUDA graph captured once
/// (after `warmup` eager passes on a side stream, as graph capture requires).
class ForwardRunner {
 public:
  ForwardRunner(models::Model& model, at::Tensor input, const RunSettings& settings, bool cuda_graph, int warmup);
  ~ForwardRunner();
  ForwardRunner(const ForwardRunner&) = delete;
  ForwardRunner& operator=(const ForwardRunner&) = delete;
  /// Runs once and returns the output (for a graph: the same static output tensor each time).
  at::Tensor run();
  bool uses_cuda_graph() const { return graph_ != nullptr; }

 private:
  models::Model& model_;
  at::Tensor input_, output_;
  RunSettings settings_;
  struct Graph;
  std::unique_ptr<Graph> graph_;
};

/// Waits for the device's queued work (no-op on the CPU).
void synchronize(const c10::Device& device);
/// CUDA: resets / reads the caching allocator's peak allocated (or reserved) bytes. CPU: no-op / -1.
void reset_peak_memory(const c10::Device& device);
std::int64_t peak_memory(const c10::Device& device);
std::int64_t peak_reserved_memory(const c10::Device& device);
/// The process's CPU memory high-water mark (getrusage), in bytes.
std::int64_t peak_rss_bytes();

/// "8GiB", "512MiB", "1.5GB", "1000000" -> bytes. Throws hone::UsageError on anything else.
std::int64_t parse_bytes(const std::string& text);
/// 1536 -> "1.5 KiB"; negative -> "-".
std::string bytes_text(std::int64_t bytes);

}  // namespace hone::bench
