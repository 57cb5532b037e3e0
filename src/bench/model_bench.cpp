#include "hone/bench/model_bench.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/utils.h>

#include <chrono>
#include <sstream>

#include "hone/core/device.h"
#include "hone/core/error.h"
#include "hone/models/registry.h"
#include "hone/profile/flop_counter.h"
#include "hone/runtime/device_probe.h"
#include "hone/runtime/forward_runner.h"
#include "hone/runtime/settings.h"
#include "hone/runtime/target.h"
#include "hone/runtime/units.h"

namespace hone::bench {
namespace {

struct Prepared {
  runtime::ModelTarget target;
  runtime::RunSettings settings;
};

void check_options(const BenchOptions& options) {
  if (options.warmup < 0 || options.iterations < 1) {
    fail_usage_option("iterations", "need warmup >= 0 and iterations >= 1, got {} and {}", options.warmup,
                      options.iterations);
  }
  HONE_CHECK(!options.batches.empty(), "no batch sizes to run");
}

Prepared prepare(const std::string& target, const BenchOptions& options) {
  Prepared p;
  p.settings =
      runtime::make_run_settings(options.device, options.dtype, options.amp, options.channels_last, options.seq_len);
  if (options.cuda_graphs && !p.settings.device.is_cuda()) {
    fail_usage_option("cuda_graphs", "CUDA graphs need a CUDA device, got {}", options.device);
  }
  p.target = runtime::load_target(target, options.seq_len);
  runtime::prepare_model(*p.target.model, p.settings);
  return p;
}

/// Everything but the timings: sizes, FLOPs (one eager pass at batch 1).
BenchReport describe(const Prepared& p, const BenchOptions& options) {
  BenchReport report;
  const auto& model = *p.target.model;
  report.target = p.target.target;
  report.architecture = model.architecture();
  report.device = p.settings.device.str();
  report.dtype = dtype_name(p.settings.dtype);
  report.amp = options.amp;
  report.channels_last = options.channels_last;
  report.cuda_graphs = options.cuda_graphs;
  report.weights = p.target.weights;
  report.input_shape = p.target.info.input_shape;
  report.input_kind = p.target.info.vocab_size > 0 ? "random token ids (timing only)" : "random normal (timing only)";
  report.threads = at::get_num_threads();
  report.parameters = models::count_parameters(model);
  report.buffer_elements = models::count_buffer_elements(model);
  for (const auto& t : model.parameters())
    report.memory_bytes += t.numel() * static_cast<std::int64_t>(t.element_size());
  for (const auto& t : model.buffers()) report.memory_bytes += t.numel() * static_cast<std::int64_t>(t.element_size());
  report.file_bytes = p.target.file_bytes;
  torch::NoGradGuard no_grad;
  const auto x = runtime::make_random_input(p.target.info, 1, p.settings);
  profile::FlopCounter counter;
  runtime::AutocastScope autocast(p.settings);
  p.target.model->forward(x);
  report.flops_per_sample = counter.total();
  return report;
}

double time_once_ms(runtime::ForwardRunner& runner, const c10::Device& device) {
  const auto start = std::chrono::steady_clock::now();
  runner.run();
  runtime::synchronize(device);
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

BatchResult finish(std::int64_t batch, const std::vector<double>& times_ms, const c10::Device& device) {
  BatchResult result;
  result.batch = batch;
  result.latency_ms = runtime::summarize(times_ms);
  result.samples_per_second = static_cast<double>(batch) / (result.latency_ms.mean / 1000.0);
  result.peak_memory_bytes = runtime::peak_memory(device);
  return result;
}

std::string settings_text(const BenchReport& r) {
  std::string text = r.dtype;
  if (r.amp) text += " +amp(bf16)";
  if (r.channels_last) text += " channels-last";
  if (r.cuda_graphs) text += " cuda-graphs";
  return text;
}

nlohmann::json results_json(const std::vector<BatchResult>& results) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : results) {
    rows.push_back({{"batch", r.batch},
                    {"latency_ms", runtime::to_json(r.latency_ms)},
                    {"samples_per_second", r.samples_per_second},
                    {"peak_memory_bytes", r.peak_memory_bytes}});
  }
  return rows;
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

runtime::Summary time_forward_ms(models::Model& model, const at::Tensor& input, const runtime::RunSettings& settings,
                                 int warmup, int iterations, bool cuda_graph) {
  HONE_CHECK(warmup >= 0 && iterations >= 1, "need warmup >= 0 and iterations >= 1, got {} and {}", warmup, iterations);
  runtime::ForwardRunner runner(model, input, settings, cuda_graph, warmup);
  runtime::synchronize(settings.device);
  std::vector<double> times_ms;
  times_ms.reserve(static_cast<std::size_t>(iterations));
  for (int i = 0; i < iterations; ++i) times_ms.push_back(time_once_ms(runner, settings.device));
  return runtime::summarize(times_ms);
}

BenchReport bench_model(const std::string& target, const BenchOptions& options) {
  check_options(options);
  Prepared p = prepare(target, options);
  BenchReport report = describe(p, options);
  const auto& device = p.settings.device;
  for (const std::int64_t batch : options.batches) {
    runtime::ForwardRunner runner(*p.target.model, runtime::make_random_input(p.target.info, batch, p.settings),
                                  p.settings, options.cuda_graphs, options.warmup);
    runtime::synchronize(device);
    runtime::reset_peak_memory(device);
    std::vector<double> times_ms;
    times_ms.reserve(static_cast<std::size_t>(options.iterations));
    for (int i = 0; i < options.iterations; ++i) times_ms.push_back(time_once_ms(runner, device));
    report.results.push_back(finish(batch, times_ms, device));
  }
  report.peak_rss_bytes = runtime::peak_rss_bytes();
  return report;
}

CompareReport compare_models(const std::string& target_a, const std::string& target_b, const BenchOptions& options) {
  check_options(options);
  Prepared a = prepare(target_a, options);
  Prepared b = prepare(target_b, options);
  CompareReport report{describe(a, options), describe(b, options)};
  const auto& device = a.settings.device;
  for (const std::int64_t batch : options.batches) {
    runtime::ForwardRunner run_a(*a.target.model, runtime::make_random_input(a.target.info, batch, a.settings),
                                 a.settings, options.cuda_graphs, options.warmup);
    runtime::ForwardRunner run_b(*b.target.model, runtime::make_random_input(b.target.info, batch, b.settings),
                                 b.settings, options.cuda_graphs, options.warmup);
    runtime::synchronize(device);
    runtime::reset_peak_memory(device);
    std::vector<double> times_a, times_b;
    for (int i = 0; i < options.iterations; ++i) {
      if (i % 2 == 0) {
        times_a.push_back(time_once_ms(run_a, device));
        times_b.push_back(time_once_ms(run_b, device));
      } else {
        times_b.push_back(time_once_ms(run_b, device));
        times_a.push_back(time_once_ms(run_a, device));
      }
    }
    report.a.results.push_back(finish(batch, times_a, device));
    report.b.results.push_back(finish(batch, times_b, device));
  }
  report.a.peak_rss_bytes = report.b.peak_rss_bytes = runtime::peak_rss_bytes();
  return report;
}

FindBatchReport find_max_batch(const std::string& target, const BenchOptions& options, std::int64_t budget_bytes,
                               std::int64_t max_batch) {
  check_options(options);
  HONE_CHECK(budget_bytes > 0, "memory budget must be positive, got {}", budget_bytes);
  if (!parse_device(options.device).is_cuda()) {
    fail_usage_option(
        "find_batch",
        "the batch finder needs a CUDA device: on the CPU, memory is not tracked per allocation and running out "
        "of it kills the process instead of raising an error");
  }
  Prepared p = prepare(target, options);
  const auto& device = p.settings.device;
  const runtime::BatchSearch search = runtime::search_largest_batch(
      [&](std::int64_t batch) {
        runtime::synchronize(device);
        runtime::reset_peak_memory(device);
        torch::NoGradGuard no_grad;
        runtime::AutocastScope autocast(p.settings);
        const auto x = runtime::make_random_input(p.target.info, batch, p.settings);
        p.target.model->forward(x);
        runtime::synchronize(device);
        return runtime::peak_memory(device);
      },
      {.budget_bytes = budget_bytes, .max_batch = max_batch, .device = device});
  FindBatchReport report;
  report.search = search;
  const std::int64_t good = search.largest_batch;
  if (good > 0) {
    BenchOptions at_best = options;
    at_best.batches = {good};
    report.bench = bench_model(target, at_best);
  } else {
    report.bench = describe(p, options);
  }
  return report;
}

nlohmann::json BenchReport::to_json() const {
  return {{"schema", "hone-bench/1"},
          {"target", target},
          {"architecture", architecture},
          {"device", device},
          {"dtype", dtype},
          {"amp", amp},
          {"channels_last", channels_last},
          {"cuda_graphs", cuda_graphs},
          {"weights", weights},
          {"threads", threads},
          {"input", {{"shape", input_shape}, {"kind", input_kind}}},
          {"parameters", parameters},
          {"buffer_elements", buffer_elements},
          {"memory_bytes", memory_bytes},
          {"file_bytes", file_bytes},
          {"flops_per_sample", flops_per_sample},
          {"peak_rss_bytes", peak_rss_bytes},
          {"results", results_json(results)}};
}

std::string BenchReport::to_text() const {
  std::string out = fmt::format(
      "{} ({}) on {}, {}, {} threads; weights {}; inputs: {} {}\n"
      "parameters {}  buffers {}  in memory {}  file {}  forward {:.2f} MFLOP/sample  peak RSS {}\n",
      target, architecture, device, settings_text(*this), threads, weights, input_kind,
      fmt::format("{}", c10::IntArrayRef(input_shape)), parameters, buffer_elements, runtime::bytes_text(memory_bytes),
      file_bytes > 0 ? runtime::bytes_text(file_bytes) : "-", static_cast<double>(flops_per_sample) / 1e6,
      runtime::bytes_text(peak_rss_bytes));
  out += fmt::format("{:>6} {:>10} {:>10} {:>10} {:>10} {:>9} {:>12} {:>11}\n", "batch", "p50 ms", "p90 ms", "p99 ms",
                     "mean ms", "std ms", "samples/s", "peak mem");
  for (const auto& r : results) {
    const auto& l = r.latency_ms;
    out += fmt::format("{:>6} {:>10.3f} {:>10.3f} {:>10.3f} {:>10.3f} {:>9.3f} {:>12.1f} {:>11}\n", r.batch, l.p50,
                       l.p90, l.p99, l.mean, l.stddev, r.samples_per_second, runtime::bytes_text(r.peak_memory_bytes));
  }
  return out;
}

nlohmann::json CompareReport::to_json() const {
  nlohmann::json ratios = nlohmann::json::array();
  for (std::size_t i = 0; i < a.results.size() && i < b.results.size(); ++i) {
    ratios.push_back({{"batch", a.results[i].batch},
                      {"p50", b.results[i].latency_ms.p50 / a.results[i].latency_ms.p50},
                      {"mean", b.results[i].latency_ms.mean / a.results[i].latency_ms.mean}});
  }
  return {{"schema", "hone-bench-compare/1"},
          {"a", a.to_json()},
          {"b", b.to_json()},
          {"ratio_b_over_a",
           {{"parameters", static_cast<double>(b.parameters) / static_cast<double>(a.parameters)},
            {"memory_bytes", static_cast<double>(b.memory_bytes) / static_cast<double>(a.memory_bytes)},
            {"latency", ratios}}}};
}

std::string CompareReport::to_text() const {
  std::string out = fmt::format("A = {} ({}), B = {} ({}); {} on {}, {} threads, timed interleaved\n", a.target,
                                a.architecture, b.target, b.architecture, settings_text(a), a.device, a.threads);
  out += fmt::format("parameters A {} B {} (B/A {:.3f}); in memory A {} B {}\n", a.parameters, b.parameters,
                     static_cast<double>(b.parameters) / static_cast<double>(a.parameters),
                     runtime::bytes_text(a.memory_bytes), runtime::bytes_text(b.memory_bytes));
  out += fmt::format("{:>6} {:>11} {:>11} {:>9} {:>12} {:>12} {:>10}\n", "batch", "A p50 ms", "B p50 ms", "B/A p50",
                     "A mean ms", "B mean ms", "B/A mean");
  for (std::size_t i = 0; i < a.results.size() && i < b.results.size(); ++i) {
    const auto& la = a.results[i].latency_ms;
    const auto& lb = b.results[i].latency_ms;
    out += fmt::format("{:>6} {:>11.3f} {:>11.3f} {:>9.3f} {:>12.3f} {:>12.3f} {:>10.3f}\n", a.results[i].batch, la.p50,
                       lb.p50, lb.p50 / la.p50, la.mean, lb.mean, lb.mean / la.mean);
  }
  return out;
}

nlohmann::json FindBatchReport::to_json() const {
  nlohmann::json j = search.to_json();
  j["schema"] = "hone-bench-find-batch/1";
  j["bench"] = bench.to_json();
  return j;
}

std::string FindBatchReport::to_text() const {
  std::string out = search.to_text();
  return search.largest_batch == 0 ? out : out + bench.to_text();
}

}  // namespace hone::bench
