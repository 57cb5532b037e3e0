#include "hone/bench/bench_target.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <sys/resource.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include <cctype>
#include <cmath>
#include <filesystem>

#include "hone/core/device.h"
#include "hone/core/error.h"
#include "hone/data/datasets.h"
#include "hone/models/registry.h"
#include "hone/train/checkpoint.h"

#ifdef HONE_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace hone::bench {
namespace fs = std::filesystem;
namespace {

/// Which dataset's shapes a zoo model is timed on when no run directory gives one.
data::DatasetInfo default_inputs_for(const std::string& architecture, std::int64_t seq_len) {
  if (architecture == "minilm") {
    HONE_CHECK(seq_len >= 1, "sequence length must be >= 1, got {}", seq_len);
    data::DatasetInfo info;
    info.name = "random token ids";
    info.task = data::TaskKind::kClassification;
    info.input_shape = {seq_len};
    info.vocab_size = 30522;  // all-MiniLM-L6-v2's WordPiece vocabulary
    return info;
  }
  const bool forecaster = architecture == "lstm" || architecture == "attention";
  return data::describe_dataset(forecaster ? "goldsilver" : "fashion-mnist");
}

}  // namespace

RunSettings make_run_settings(const std::string& device, const std::string& dtype, bool amp, bool channels_last,
                              std::int64_t seq_len) {
  RunSettings settings;
  settings.device = parse_device(device);
  settings.dtype = parse_dtype(dtype);
  settings.amp = amp;
  settings.channels_last = channels_last;
  settings.seq_len = seq_len;
  if (amp && settings.dtype != c10::kFloat) {
    fail_usage("--amp autocasts fp32 weights to bf16; drop --dtype {} or --amp", dtype);
  }
  return settings;
}

BenchTarget load_bench_target(const std::string& target, std::int64_t seq_len) {
  BenchTarget result;
  result.target = target;
  std::error_code ec;
  if (target.find('/') != std::string::npos && !fs::is_directory(target, ec)) {
    fail("no run directory at '{}' (`hone train -o DIR` writes one; zoo model names have no '/')", target);
  }
  if (fs::is_directory(target, ec)) {
    const train::RunConfig config = train::load_run_config(target);
    result.model = train::load_run_model(target);
    // A run compressed from a zoo name (random weights) has no real dataset: it takes the zoo
    // model's inputs (token ids for minilm).
    result.info = data::is_dataset(config.dataset) ? data::describe_dataset(config.dataset, config.data_options)
                                                   : default_inputs_for(config.architecture, seq_len);
    const fs::path weights = fs::path(target) / "model.safetensors";
    result.file_bytes = static_cast<std::int64_t>(fs::file_size(weights));
    result.weights = weights.string();
    return result;
  }
  const models::ModelEntry& entry = models::find_model(target);  // UsageError listing names if unknown
  torch::manual_seed(0);
  result.info = default_inputs_for(entry.name, seq_len);
  result.model = models::make_model(entry.name, result.info);
  result.weights = "random (timing only)";
  return result;
}

void prepare_model(models::Model& model, const RunSettings& settings) {
  HONE_CHECK(c10::isFloatingType(settings.dtype), "bench dtype must be floating, got {}", settings.dtype);
  HONE_CHECK(!(settings.amp && settings.dtype != c10::kFloat),
             "--amp autocasts fp32 weights; it cannot be combined with --dtype {}", settings.dtype);
  model.eval();
  // Module::to(device, dtype) would cast integer buffers too (int8 weights of quantized layers,
  // batch-norm counters): move everything, then cast only floating tensors.
  model.to(settings.device);
  if (settings.dtype != c10::kFloat) {
    for (auto& p : model.parameters())
      if (c10::isFloatingType(p.scalar_type())) p.set_data(p.to(settings.dtype));
    for (auto& b : model.buffers())
      if (c10::isFloatingType(b.scalar_type())) b.set_data(b.to(settings.dtype));
  }
  for (auto& p : model.parameters()) p.requires_grad_(false);  // inference: no autograd, no autocast cache
  if (settings.channels_last) {
    for (auto& p : model.parameters())
      if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
    for (auto& b : model.buffers())
      if (b.dim() == 4) b.set_data(b.contiguous(at::MemoryFormat::ChannelsLast));
  }
}

at::Tensor make_random_input(const data::DatasetInfo& info, std::int64_t batch, const RunSettings& settings) {
  std::vector<std::int64_t> shape{batch};
  shape.insert(shape.end(), info.input_shape.begin(), info.input_shape.end());
  if (info.vocab_size > 0) {
    // Ids of ordinary word pieces: never padding (0) and, for real vocabularies, past the specials.
    const std::int64_t low = info.vocab_size > 2000 ? 1000 : 1;
    return torch::randint(low, info.vocab_size, shape, at::TensorOptions().dtype(at::kLong).device(settings.device));
  }
  auto x = torch::randn(shape, at::TensorOptions().dtype(settings.dtype).device(settings.device));
  if (settings.channels_last && x.dim() == 4) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  return x;
}

AutocastScope::AutocastScope(const RunSettings& settings) : active_(settings.amp) {
  if (!active_) return;
  device_type_ = settings.device.type();
  was_enabled_ = at::autocast::is_autocast_enabled(device_type_);
  was_dtype_ = at::autocast::get_autocast_dtype(device_type_);
  at::autocast::set_autocast_dtype(device_type_, at::kBFloat16);
  at::autocast::set_autocast_enabled(device_type_, true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(device_type_, was_enabled_);
  at::autocast::set_autocast_dtype(device_type_, was_dtype_);
}

#ifdef HONE_WITH_CUDA
struct ForwardRunner::Graph {
  at::cuda::CUDAGraph graph;
};
#else
struct ForwardRunner::Graph {};
#endif

ForwardRunner::ForwardRunner(models::Model& model, at::Tensor input, const RunSettings& settings, bool cuda_graph,
                             int warmup)
    : model_(model), input_(std::move(input)), settings_(settings) {
  torch::NoGradGuard no_grad;
  if (!cuda_graph) {
    for (int i = 0; i < warmup; ++i) {
      AutocastScope autocast(settings_);
      model_.forward(input_);
    }
    return;
  }
  HONE_CHECK(settings.device.is_cuda(), "--cuda-graphs needs a CUDA device, got {}", settings.device.str());
#ifdef HONE_WITH_CUDA
  // Capture must run on a side stream, after eager passes have allocated every workspace.
  const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, settings.device.index());
  torch::cuda::synchronize(settings.device.index());  // the input was made on the current stream
  {
    c10::cuda::CUDAStreamGuard guard(side);
    for (int i = 0; i < std::max(warmup, 3); ++i) {
      AutocastScope autocast(settings_);
      model_.forward(input_);
    }
    side.synchronize();
    graph_ = std::make_unique<Graph>();
    AutocastScope autocast(settings_);
    graph_->graph.capture_begin();
    output_ = model_.forward(input_);
    graph_->graph.capture_end();
  }
  side.synchronize();
#else
  fail("--cuda-graphs needs a CUDA build of hone (HONE_CUDA=ON)");
#endif
}

ForwardRunner::~ForwardRunner() = default;

at::Tensor ForwardRunner::run() {
#ifdef HONE_WITH_CUDA
  if (graph_) {
    graph_->graph.replay();
    return output_;
  }
#endif
  torch::NoGradGuard no_grad;
  AutocastScope autocast(settings_);
  return model_.forward(input_);
}

void synchronize(const c10::Device& device) {
#ifdef HONE_WITH_CUDA
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
#else
  (void)device;
#endif
}

void reset_peak_memory(const c10::Device& device) {
#ifdef HONE_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#else
  (void)device;
#endif
}

std::int64_t peak_memory(const c10::Device& device) {
#ifdef HONE_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return stats.allocated_bytes[static_cast<std::size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
  }
#else
  (void)device;
#endif
  return -1;
}

std::int64_t peak_reserved_memory(const c10::Device& device) {
#ifdef HONE_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return stats.reserved_bytes[static_cast<std::size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
  }
#else
  (void)device;
#endif
  return -1;
}

std::int64_t peak_rss_bytes() {
  struct rusage usage {};
  return ::getrusage(RUSAGE_SELF, &usage) == 0 ? static_cast<std::int64_t>(usage.ru_maxrss) * 1024 : 0;
}

std::int64_t parse_bytes(const std::string& text) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  std::string unit = text.substr(used);
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  double scale = 0;
  if (unit.empty() || unit == "b") scale = 1;
  if (unit == "kb") scale = 1e3;
  if (unit == "mb") scale = 1e6;
  if (unit == "gb") scale = 1e9;
  if (unit == "kib" || unit == "k") scale = 1024.0;
  if (unit == "mib" || unit == "m") scale = 1024.0 * 1024;
  if (unit == "gib" || unit == "g") scale = 1024.0 * 1024 * 1024;
  if (used == 0 || scale == 0 || !(value > 0) || !std::isfinite(value * scale) || value * scale > 9e18) {
    fail_usage(
        "bad size '{}': expected a positive number with an optional unit B, KB, MB, GB, KiB, MiB or GiB "
        "(e.g. 8GiB)",
        text);
  }
  return static_cast<std::int64_t>(value * scale);
}

std::string bytes_text(std::int64_t bytes) {
  if (bytes < 0) return "-";
  if (bytes < 1024 * 1024) return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / 1024);
  if (bytes < 1024LL * 1024 * 1024) return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1024.0 * 1024));
  return fmt::format("{:.2f} GiB", static_cast<double>(bytes) / (1024.0 * 1024 * 1024));
}

}  // namespace hone::bench
