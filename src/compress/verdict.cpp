#include "hone/compress/verdict.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/rnn.h>
#include <torch/utils.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>

#include "hone/core/error.h"
#include "hone/core/system_info.h"
#include "hone/nn/layer_kinds.h"
#include "hone/nn/linear_semi_structured.h"
#include "hone/nn/linear_weight_only.h"
#include "hone/runtime/device_probe.h"
#include "hone/runtime/forward_runner.h"
#include "hone/runtime/settings.h"
#include "hone/runtime/statistics.h"
#include "hone/runtime/target.h"
#include "hone/runtime/units.h"
#include "hone/train/evaluate.h"

namespace hone::compress {
namespace fs = std::filesystem;

nlohmann::json Measurement::to_json() const {
  nlohmann::json latency = nlohmann::json::array();
  for (const auto& [batch, ms] : latency_ms) latency.push_back({{"batch", batch}, {"p50_ms", ms}});
  nlohmann::json j = {{"parameters", parameters},     {"buffer_elements", buffer_elements},
                      {"memory_bytes", memory_bytes}, {"file_bytes", file_bytes},
                      {"latency", latency},           {"peak_rss_bytes", peak_rss_bytes},
                      {"test_samples", samples}};
  j["accuracy"] = accuracy ? nlohmann::json(*accuracy) : nlohmann::json(nullptr);
  j["rmse"] = rmse ? nlohmann::json(*rmse) : nlohmann::json(nullptr);
  return j;
}

namespace {

std::int64_t tensor_bytes(const torch::nn::Module& model) {
  std::int64_t bytes = 0;
  for (const auto& p : model.parameters()) bytes += p.numel() * static_cast<std::int64_t>(p.element_size());
  for (const auto& b : model.buffers()) bytes += b.numel() * static_cast<std::int64_t>(b.element_size());
  return bytes;
}

double p50_latency_ms(models::Model& model, const data::DatasetInfo& info, std::int64_t batch,
                      const VerdictSettings& settings) {
  runtime::RunSettings run;
  run.device = settings.device;
  const auto input = runtime::make_random_input(info, batch, run);
  runtime::ForwardRunner runner(model, input, run, /*cuda_graph=*/false, settings.warmup);
  std::vector<double> samples;
  samples.reserve(static_cast<std::size_t>(settings.iterations));
  for (int i = 0; i < settings.iterations; ++i) {
    runtime::synchronize(settings.device);
    const auto start = std::chrono::steady_clock::now();
    runner.run();
    runtime::synchronize(settings.device);
    samples.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return runtime::summarize(samples).p50;
}

std::int64_t saved_size(const torch::nn::Module& model) {
  const auto path =
      fs::temp_directory_path() /
      fmt::format("hone-size-{}.safetensors", std::chrono::steady_clock::now().time_since_epoch().count());
  run::save_weights(path, model);
  const auto bytes = static_cast<std::int64_t>(fs::file_size(path));
  fs::remove(path);
  return bytes;
}

}  // namespace

Measurement measure_model(models::Model& model, std::int64_t file_bytes, const data::LoadedData* data,
                          const data::DatasetInfo& inputs, const VerdictSettings& settings) {
  torch::NoGradGuard no_grad;
  Measurement m;
  m.parameters = models::count_parameters(model);
  m.buffer_elements = models::count_buffer_elements(model);
  m.memory_bytes = tensor_bytes(model);
  m.file_bytes = file_bytes > 0 ? file_bytes : saved_size(model);
  runtime::RunSettings run;
  run.device = settings.device;
  runtime::prepare_model(model, run);
  const auto& info = inputs;
  for (const auto batch : settings.batches)
    m.latency_ms.emplace_back(batch, p50_latency_ms(model, info, batch, settings));
  m.peak_rss_bytes = runtime::peak_rss_bytes();
  if (data != nullptr) {
    auto split = data->test;
    if (settings.eval_limit > 0 && split.dataset.count() > settings.eval_limit) {
      split.dataset = split.dataset.slice(0, settings.eval_limit);
      if (split.forecast) {
        split.forecast->last_value = split.forecast->last_value.slice(0, 0, settings.eval_limit);
        split.forecast->true_value = split.forecast->true_value.slice(0, 0, settings.eval_limit);
      }
    }
    const auto metrics = train::evaluate(model, split, data->info.task, "test", settings.device);
    m.accuracy = metrics.accuracy;
    m.rmse = metrics.rmse;
    m.samples = metrics.samples;
  }
  return m;
}

std::vector<std::string> diagnose(models::Model& after_model, const std::vector<PassReport>& passes,
                                  const Measurement& before, const Measurement& after,
                                  const VerdictSettings& settings) {
  std::vector<std::string> out;
  std::vector<std::int64_t> not_faster;
  for (std::size_t i = 0; i < before.latency_ms.size() && i < after.latency_ms.size(); ++i) {
    if (after.latency_ms[i].second >= 0.95 * before.latency_ms[i].second)
      not_faster.push_back(before.latency_ms[i].first);
  }
  const bool smaller = after.file_bytes < before.file_bytes;
  if (!smaller) {
    out.push_back(fmt::format("the file did not shrink ({} -> {}): the passes changed values, not storage",
                              runtime::bytes_text(before.file_bytes), runtime::bytes_text(after.file_bytes)));
  }
  if (not_faster.empty()) return out;

  // What is still float, what is quantized.
  std::vector<std::string> float_layers, quantized_layers, weight_only_layers, sparse_dense;
  std::string sparse_kernel;
  for (const auto& ref : nn::all_slots(after_model)) {
    const auto* module = ref.slot->module().get();
    if (dynamic_cast<const torch::nn::LinearImpl*>(module) || dynamic_cast<const torch::nn::Conv2dImpl*>(module) ||
        dynamic_cast<const torch::nn::LSTMImpl*>(module)) {
      float_layers.push_back(ref.path);
    } else if (const auto* sparse = dynamic_cast<const nn::LinearSemiStructuredImpl*>(module)) {
      if (sparse->kernel() != "cusparselt") {
        sparse_dense.push_back(ref.path);
        sparse_kernel = sparse->kernel();
      }
    } else if (dynamic_cast<const nn::LinearWeightOnlyImpl*>(module) != nullptr) {
      weight_only_layers.push_back(ref.path);
    } else if (dynamic_cast<const nn::Repackable*>(module) != nullptr) {  // the int8 layers with packed weights
      quantized_layers.push_back(ref.path);
    }
  }
  out.push_back(fmt::format("not faster at batch {} on {}", fmt::join(not_faster, ", "), settings.device.str()));
  bool any_pass_speeds_up = false;
  for (const auto& pass : passes) {
    if (pass.pass == "prune_magnitude") {
      out.push_back(
          "prune_magnitude leaves zeros in dense tensors: dense kernels do the same work and the file "
          "keeps every zero (use prune_structured to remove channels)");
    } else if (!pass.changed.empty()) {
      any_pass_speeds_up = true;
    }
  }
  if (!any_pass_speeds_up) out.push_back("no pass changed a layer that costs time");
  if (!quantized_layers.empty() && !float_layers.empty()) {
    out.push_back(fmt::format(
        "{} layer(s) still run in float ({}{}): each int8 -> float boundary adds a "
        "dequantize/quantize pass over the activations",
        float_layers.size(),
        fmt::join(float_layers.begin(), float_layers.begin() + std::min<std::size_t>(4, float_layers.size()), ", "),
        float_layers.size() > 4 ? ", ..." : ""));
  }
  if (!sparse_dense.empty()) {
    out.push_back(fmt::format("{} 2:4 sparse layer(s) ran as {}", sparse_dense.size(), sparse_kernel));
  } else if (std::any_of(passes.begin(), passes.end(),
                         [](const PassReport& p) { return p.pass == "prune_semi_structured" && !p.changed.empty(); })) {
    out.push_back(
        "the 2:4 layers ran on sparse tensor cores, but at most 2x fewer multiplies pay only on GEMMs large enough "
        "to be compute-bound, and with cuSPARSELt's algorithm search (HONE_CSLT_SEARCH=1; on an H200 from ~2,048 "
        "rows of 4,096 features); smaller layers are bound by memory and launch costs");
    out.push_back(
        "LibTorch's aten::_cslt_sparse_mm sets cuSPARSELt up again on every call (~0.4-0.7 ms of CPU time each on "
        "an H200 host), so eager 2:4 models are slow; replay them from a CUDA graph");
  }
  if (!weight_only_layers.empty()) {
    out.push_back(fmt::format(
        "{} weight-only layer(s): their kernels are made for few rows per call (decoding, small batches), "
        "where reading the weight dominates; with many rows (batch x sequence) the dense float GEMM is faster{}. "
        "They still save weight memory",
        weight_only_layers.size(),
        settings.device.is_cuda() ? " (and CUDA's int8 weight-only kernel does not use tensor cores)" : ""));
  }
  if (!quantized_layers.empty()) {
    if (!settings.device.is_cpu()) {
      out.push_back("int8 layers run on LibTorch's quantized CPU kernels only; on CUDA they fall back through the CPU");
    }
    const auto info = collect_system_info();
    const auto has = [&](const char* isa) {
      return std::find(info.cpu_isa.begin(), info.cpu_isa.end(), isa) != info.cpu_isa.end();
    };
    if (!has("avx512_vnni") && !has("avx_vnni") && !has("amx_int8")) {
      out.push_back("this CPU has no VNNI or AMX int8 instructions: int8 matmuls gain little over fp32 here");
    }
  }
  if (std::find(not_faster.begin(), not_faster.end(), 1) != not_faster.end()) {
    out.push_back(
        "at batch 1 the layers are small: fixed per-call costs (dispatch, quantizing the input, thread "
        "start-up) dominate the arithmetic that compression removes");
  }
  return out;
}

}  // namespace hone::compress
