#pragma once
// What the micro benchmarks share: a comma list from argv, and medians of timed calls on the CPU
// or GPU (CUDA events), eager or replayed from a CUDA graph.
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "hone/runtime/statistics.h"

namespace hone::bench::micro {

inline std::vector<std::int64_t> parse_list(const std::string& text) {
  std::vector<std::int64_t> values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) values.push_back(std::stoll(item));
  return values;
}

inline double median(std::vector<double> values) { return hone::runtime::percentile(std::move(values), 50); }

// Median milliseconds of `body` (which picks its own rotating input from the call index).
inline double time_ms(const torch::Device& device, int repeats, const std::function<void(int)>& body) {
  for (int i = 0; i < 10; ++i) body(i);
  std::vector<double> samples;
  if (device.is_cuda()) {
    torch::cuda::synchronize();
    for (int r = 0; r < repeats; ++r) {
      auto start = at::cuda::CUDAEvent(cudaEventDefault), stop = at::cuda::CUDAEvent(cudaEventDefault);
      start.record();
      for (int i = 0; i < 10; ++i) body(r * 10 + i);
      stop.record();
      stop.synchronize();
      samples.push_back(start.elapsed_time(stop) / 10.0);
    }
  } else {
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      body(r);
      samples.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
  }
  return median(samples);
}

// Median milliseconds per call of ten calls of `body` captured in one CUDA graph and replayed.
// With `grad`, autograd stays on, so a body that runs backward is captured with it (a training
// step's forward+backward as one graph).
inline double graph_time_ms(int repeats, const std::function<void(int)>& body, bool grad = false) {
  const at::AutoGradMode grad_mode(grad);
  const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
  torch::cuda::synchronize();
  at::cuda::CUDAGraph graph;
  {
    const c10::cuda::CUDAStreamGuard guard(side);
    for (int i = 0; i < 3; ++i) body(i);
    side.synchronize();
    graph.capture_begin();
    for (int i = 0; i < 10; ++i) body(i);
    graph.capture_end();
  }
  side.synchronize();
  for (int i = 0; i < 3; ++i) graph.replay();
  std::vector<double> samples;
  for (int r = 0; r < repeats; ++r) {
    auto start = at::cuda::CUDAEvent(cudaEventDefault), stop = at::cuda::CUDAEvent(cudaEventDefault);
    start.record();
    graph.replay();
    stop.record();
    stop.synchronize();
    samples.push_back(start.elapsed_time(stop) / 10.0);
  }
  return median(samples);
}

}  // namespace hone::bench::micro
