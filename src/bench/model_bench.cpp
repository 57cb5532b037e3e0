#include "hone/bench/model_bench.h"

#include <ATen/Parallel.h>
#include <sys/resource.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include <chrono>
#include <filesystem>
#include <sstream>

#include "hone/core/device.h"
#include "hone/core/error.h"
#include "hone/data/datasets.h"
#include "hone/models/registry.h"
#include "hone/profile/flop_counter.h"
#include "hone/train/checkpoint.h"

#ifdef HONE_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace hone::bench {
namespace fs = std::filesystem;
namespace {

/// Which dataset's shapes a zoo model is timed on when no run directory gives one.
std::string default_dataset_for(const std::string& architecture) {
  return (architecture == "lstm" || architecture == "attention") ? "goldsilver" : "fashion-mnist";
}

void synchronize(const c10::Device& device) {
#ifdef HONE_WITH_CUDA
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
#endif
}

void reset_peak_memory(const c10::Device& device) {
#ifdef HONE_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#endif
}

std::int64_t peak_memory(const c10::Device& device) {
#ifdef HONE_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return stats.allocated_bytes[static_cast<std::size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
  }
#endif
  return -1;
}

std::string bytes_text(std::int64_t bytes) {
  if (bytes < 0) return "-";
  if (bytes < 1024 * 1024) return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / 1024);
  return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1024.0 * 1024));
}

}  // namespace

std::vector<std::int64_t> parse_batch_list(const std::string& text) {
  std::vector<std::int64_t> batches;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    std::size_t used = 0;
    std::int64_t value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || value < 1) {
      fail_usage("bad batch list '{}': expected positive integers separated by commas, e.g. 1,8,64", text);
    }
    batches.push_back(value);
  }
  if (batches.empty()) fail_usage("empty batch list");
  return batches;
}

BenchReport bench_model(const std::string& target, const BenchOptions& options) {
  if (options.warmup < 0 || options.iterations < 1) {
    fail_usage("need --warmup >= 0 and --iterations >= 1, got {} and {}", options.warmup, options.iterations);
  }
  HONE_CHECK(!options.batches.empty(), "no batch sizes to run");
  const c10::Device device = parse_device(options.device);
  BenchReport report;
  report.target = target;
  report.device = device.str();
  report.threads = at::get_num_threads();

  models::ModelPtr model;
  data::DatasetInfo info;
  std::error_code ec;
  if (fs::is_directory(target, ec)) {
    const train::RunConfig config = train::load_run_config(target);
    model = train::load_run_model(target);
    info = data::describe_dataset(config.dataset, config.data_options);
    report.file_bytes = static_cast<std::int64_t>(fs::file_size(fs::path(target) / "model.safetensors"));
  } else {
    const models::ModelEntry& entry = models::find_model(target);  // UsageError listing names if unknown
    torch::manual_seed(0);
    info = data::describe_dataset(default_dataset_for(entry.name));
    model = models::make_model(entry.name, info);
  }
  report.architecture = model->architecture();
  report.input_shape = info.input_shape;
  report.parameters = models::count_parameters(*model);
  report.buffer_elements = models::count_buffer_elements(*model);
  for (const auto& p : model->parameters())
    report.memory_bytes += p.numel() * static_cast<std::int64_t>(p.element_size());
  for (const auto& b : model->buffers()) report.memory_bytes += b.numel() * static_cast<std::int64_t>(b.element_size());

  model->eval();
  model->to(device);
  torch::NoGradGuard no_grad;
  auto input_for = [&](std::int64_t batch) {
    std::vector<std::int64_t> shape{batch};
    shape.insert(shape.end(), info.input_shape.begin(), info.input_shape.end());
    return torch::randn(shape, torch::TensorOptions().device(device));  // random: timing only
  };
  {
    const torch::Tensor x = input_for(1);
    profile::FlopCounter counter;
    model->forward(x);
    report.flops_per_sample = counter.total();
  }

  for (const std::int64_t batch : options.batches) {
    const torch::Tensor x = input_for(batch);
    for (int i = 0; i < options.warmup; ++i) model->forward(x);
    synchronize(device);
    reset_peak_memory(device);
    std::vector<double> times_ms;
    times_ms.reserve(static_cast<std::size_t>(options.iterations));
    for (int i = 0; i < options.iterations; ++i) {
      const auto start = std::chrono::steady_clock::now();
      model->forward(x);
      synchronize(device);
      times_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    BatchResult result;
    result.batch = batch;
    result.latency_ms = summarize(times_ms);
    result.samples_per_second = static_cast<double>(batch) / (result.latency_ms.mean / 1000.0);
    result.peak_memory_bytes = peak_memory(device);
    report.results.push_back(result);
  }
  struct rusage usage {};
  if (::getrusage(RUSAGE_SELF, &usage) == 0) report.peak_rss_bytes = static_cast<std::int64_t>(usage.ru_maxrss) * 1024;
  return report;
}

nlohmann::json BenchReport::to_json() const {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : results) {
    rows.push_back({{"batch", r.batch},
                    {"latency_ms", bench::to_json(r.latency_ms)},
                    {"samples_per_second", r.samples_per_second},
                    {"peak_memory_bytes", r.peak_memory_bytes}});
  }
  return {{"schema", "hone-bench/1"},
          {"target", target},
          {"architecture", architecture},
          {"device", device},
          {"threads", threads},
          {"input", {{"shape", input_shape}, {"kind", "random normal (timing only)"}}},
          {"parameters", parameters},
          {"buffer_elements", buffer_elements},
          {"memory_bytes", memory_bytes},
          {"file_bytes", file_bytes},
          {"flops_per_sample", flops_per_sample},
          {"peak_rss_bytes", peak_rss_bytes},
          {"results", rows}};
}

std::string BenchReport::to_text() const {
  std::string out = fmt::format(
      "{} ({}) on {}, {} threads; inputs: random {} (timing only)\n"
      "parameters {}  buffers {}  in memory {}  file {}  forward {:.2f} MFLOP/sample  peak RSS {}\n",
      target, architecture, device, threads, fmt::format("{}", c10::IntArrayRef(input_shape)), parameters,
      buffer_elements, bytes_text(memory_bytes), file_bytes > 0 ? bytes_text(file_bytes) : "-",
      static_cast<double>(flops_per_sample) / 1e6, bytes_text(peak_rss_bytes));
  out += fmt::format("{:>6} {:>10} {:>10} {:>10} {:>10} {:>9} {:>12} {:>11}\n", "batch", "p50 ms", "p90 ms", "p99 ms",
                     "mean ms", "std ms", "samples/s", "peak mem");
  for (const auto& r : results) {
    const auto& l = r.latency_ms;
    out += fmt::format("{:>6} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>9.3f} {:>12.1f} {:>11}\n", r.batch, l.p50,
                       l.p90, l.p99, l.mean, l.stddev, r.samples_per_second, bytes_text(r.peak_memory_bytes));
  }
  return out;
}

}  // namespace hone::bench
