// The sketched-linear landscape: hone::sketched_linear (SKLinear) against a dense nn.Linear
// (cuBLAS / oneDNN) over num_terms L × low_rank k × in = out, at one batch size. Per point: forward
// and forward+backward latency (medians of timed repeats after warm-up, CUDA events on the GPU),
// the peak memory of forward+backward, parameters and buffers. Forward is timed twice: eager (what
// a plain loop sees, including each call's CPU launch cost) and replayed from a CUDA graph of ten
// calls (the GPU's own time, as `hone bench --cuda-graphs` runs a model), and forward+backward
// (the gradients of input, weights and bias) both eager and as one CUDA graph, as `hone train
// --cuda-graphs` runs a training step; sketched forwards on
// both CUDA paths (tensor-core kernels and cuBLAS) and through the nn::SketchedLinear layer, which
// keeps its operands packed at inference (where L·k <= 64). Random tensors: timings only.
// Inputs rotate through enough buffers to exceed the last-level cache.
//   hone_sketched_linear_grid [DEVICE] [DTYPE] [BATCH] [SIZES] [TERMS] [RANKS] [REPEATS]
//   e.g. build/bench/hone_sketched_linear_grid cuda bf16 256 1024,4096,8192 1,2,4,8 16,32,64,128
// Prints one JSON object per line (schema hone-sketch-grid/1); bench/sketch_landscape.py turns
// them into the docs table and plot.
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "gpu_timing.h"
#include "hone/nn/sketched_linear.h"
#include "hone/ops/sketched_linear.h"
#include "hone/runtime/statistics.h"

using hone::bench::micro::graph_time_ms;
using hone::bench::micro::parse_list;
using hone::bench::micro::time_ms;

namespace {

void set_path(const char* path) {
  if (path == nullptr)
    unsetenv("HONE_SKETCH_KERNEL");
  else
    setenv("HONE_SKETCH_KERNEL", path, 1);
}

std::int64_t peak_bytes(const torch::Device& device, const std::function<void()>& body) {
  if (!device.is_cuda()) return -1;
  const c10::DeviceIndex index = device.index() < 0 ? 0 : device.index();
  torch::cuda::synchronize();
  c10::cuda::CUDACachingAllocator::resetPeakStats(index);
  const auto before = c10::cuda::CUDACachingAllocator::getDeviceStats(index).allocated_bytes[0].current;
  body();
  torch::cuda::synchronize();
  return c10::cuda::CUDACachingAllocator::getDeviceStats(index).allocated_bytes[0].peak - before;
}

}  // namespace

int main(int argc, char** argv) {
  const torch::Device device(argc > 1 ? argv[1] : "cuda");
  const std::string dtype_name = argc > 2 ? argv[2] : "bf16";
  const std::int64_t batch = argc > 3 ? std::stoll(argv[3]) : 256;
  const auto sizes = parse_list(argc > 4 ? argv[4] : "1024,4096,8192");
  const auto terms_grid = parse_list(argc > 5 ? argv[5] : "1,2,4,8");
  const auto rank_grid = parse_list(argc > 6 ? argv[6] : "16,32,64,128");
  const int repeats = argc > 7 ? std::stoi(argv[7]) : 25;
  const auto dtype = dtype_name == "bf16" ? torch::kBFloat16 : dtype_name == "fp16" ? torch::kHalf : torch::kFloat;
  const auto options = torch::TensorOptions().device(device).dtype(dtype);
  torch::manual_seed(0);
  // "auto": forward_ms / forward_graph_ms are the op's default choice of path (see the op's CUDA file).
  const std::string kernel = device.is_cuda() ? (dtype == torch::kFloat ? "cublas" : "auto") : "cpu";

  for (const auto size : sizes) {
    // ≥ 64 MiB of distinct inputs, so that no point is timed from a warm cache.
    const std::int64_t bytes = batch * size * static_cast<std::int64_t>(torch::elementSize(dtype));
    const int rotation = static_cast<int>(std::max<std::int64_t>(2, (64LL << 20) / bytes));
    std::vector<torch::Tensor> inputs, grads;
    for (int i = 0; i < rotation; ++i) {
      inputs.push_back(torch::randn({batch, size}, options).requires_grad_(true));
      grads.push_back(torch::randn({batch, size}, options));
    }
    auto weight = (torch::randn({size, size}, options) / std::sqrt(static_cast<double>(size))).requires_grad_(true);
    auto bias = torch::zeros({size}, options).requires_grad_(true);
    const double dense_forward = time_ms(device, repeats, [&](int i) {
      torch::NoGradGuard no_grad;
      torch::nn::functional::linear(inputs[i % rotation], weight, bias);
    });
    const double dense_graph =
        device.is_cuda()
            ? graph_time_ms(repeats, [&](int i) { torch::nn::functional::linear(inputs[i % rotation], weight, bias); })
            : -1;
    const double dense_backward = time_ms(device, repeats, [&](int i) {
      auto y = torch::nn::functional::linear(inputs[i % rotation], weight, bias);
      y.backward(grads[i % rotation]);
    });
    // A training step's share of the layer: forward plus the gradients of input, weight and bias,
    // captured as one CUDA graph (no autograd-engine or launch cost per call).
    const double dense_train_graph = device.is_cuda()
                                         ? graph_time_ms(
                                               repeats,
                                               [&](int i) {
                                                 const auto& x = inputs[i % rotation];
                                                 auto y = torch::nn::functional::linear(x, weight, bias);
                                                 torch::autograd::grad({y}, {x, weight, bias}, {grads[i % rotation]});
                                               },
                                               /*grad=*/true)
                                         : -1;
    const auto dense_peak = peak_bytes(device, [&] {
      auto y = torch::nn::functional::linear(inputs[0], weight, bias);
      y.backward(grads[0]);
    });
    std::printf(
        "{\"schema\": \"hone-sketch-grid/1\", \"layer\": \"dense\", \"device\": \"%s\", \"dtype\": \"%s\", "
        "\"batch\": %ld, \"in\": %ld, \"out\": %ld, \"forward_ms\": %.5f, \"forward_graph_ms\": %.5f, "
        "\"forward_backward_ms\": %.5f, \"forward_backward_graph_ms\": %.5f, \"peak_bytes\": %ld, "
        "\"parameters\": %ld, \"buffers\": 0}\n",
        device.str().c_str(), dtype_name.c_str(), batch, size, size, dense_forward, dense_graph, dense_backward,
        dense_train_graph, dense_peak, size * size + size);
    std::fflush(stdout);
    weight = torch::Tensor();
    for (const auto terms : terms_grid)
      for (const auto rank : rank_grid) {
        const double scale = 1.0 / std::sqrt(static_cast<double>(size));
        auto s1 = (torch::randn({terms, size, rank}, options) * scale).requires_grad_(true);
        auto s2 = (torch::randn({terms, rank, size}, options) * scale).requires_grad_(true);
        const auto u1 = torch::randn({terms, rank, size}, options).sign() / std::sqrt(static_cast<double>(rank));
        const auto u2 = torch::randn({terms, size, rank}, options).sign() / std::sqrt(static_cast<double>(rank));
        auto sketched_forward = [&](int i) {
          torch::NoGradGuard no_grad;
          hone::ops::sketched_linear(inputs[i % rotation], s1, s2, u1, u2, bias);
        };
        // Eager and graphed forward on each CUDA path, then the default choice.
        double eager[2] = {-1, -1}, graphed[2] = {-1, -1};
        const char* paths[2] = {"tensor_cores", "cublas"};
        for (int p = 0; p < (device.is_cuda() && dtype != torch::kFloat ? 2 : 0); ++p) {
          set_path(paths[p]);
          eager[p] = time_ms(device, repeats, sketched_forward);
          graphed[p] = graph_time_ms(repeats, sketched_forward);
        }
        set_path(nullptr);
        // The layer (nn::SketchedLinear) at inference keeps its operands packed (CUDA): timed where
        // building it is cheap (its exact double-precision init costs ~in·out·L·k on the CPU).
        double layer_eager = -1, layer_graphed = -1;
        if (device.is_cuda() && terms * rank <= 64) {
          hone::nn::SketchedLinear layer(hone::nn::SketchedLinearOptions{size, size, terms, rank, true, 7});
          layer->to(device, dtype);
          auto layer_forward = [&](int i) {
            torch::NoGradGuard no_grad;
            layer->forward(inputs[i % rotation]);
          };
          layer_eager = time_ms(device, repeats, layer_forward);
          layer_graphed = graph_time_ms(repeats, layer_forward);
        }
        const double forward = time_ms(device, repeats, sketched_forward);
        const double forward_graph = device.is_cuda() ? graph_time_ms(repeats, sketched_forward) : -1;
        const double backward = time_ms(device, repeats, [&](int i) {
          auto y = hone::ops::sketched_linear(inputs[i % rotation], s1, s2, u1, u2, bias);
          y.backward(grads[i % rotation]);
        });
        const double backward_graph = device.is_cuda()
                                          ? graph_time_ms(
                                                repeats,
                                                [&](int i) {
                                                  const auto& x = inputs[i % rotation];
                                                  auto y = hone::ops::sketched_linear(x, s1, s2, u1, u2, bias);
                                                  torch::autograd::grad({y}, {x, s1, s2, bias}, {grads[i % rotation]});
                                                },
                                                /*grad=*/true)
                                          : -1;
        const auto peak = peak_bytes(device, [&] {
          auto y = hone::ops::sketched_linear(inputs[0], s1, s2, u1, u2, bias);
          y.backward(grads[0]);
        });
        std::printf(
            "{\"schema\": \"hone-sketch-grid/1\", \"layer\": \"sketched\", \"kernel\": \"%s\", \"device\": \"%s\", "
            "\"dtype\": \"%s\", \"batch\": %ld, \"in\": %ld, \"out\": %ld, \"terms\": %ld, \"rank\": %ld, "
            "\"forward_ms\": %.5f, \"forward_graph_ms\": %.5f, \"tensor_cores_forward_ms\": %.5f, "
            "\"tensor_cores_forward_graph_ms\": %.5f, \"cublas_forward_ms\": %.5f, \"cublas_forward_graph_ms\": %.5f, "
            "\"layer_forward_ms\": %.5f, \"layer_forward_graph_ms\": %.5f, "
            "\"forward_backward_ms\": %.5f, \"forward_backward_graph_ms\": %.5f, \"peak_bytes\": %ld, "
            "\"parameters\": %ld, \"buffers\": %ld, \"dense_forward_ms\": %.5f, \"dense_forward_graph_ms\": %.5f, "
            "\"dense_forward_backward_ms\": %.5f, \"dense_forward_backward_graph_ms\": %.5f, "
            "\"forward_speedup\": %.3f, \"forward_graph_speedup\": %.3f, \"forward_backward_speedup\": %.3f, "
            "\"forward_backward_graph_speedup\": %.3f}\n",
            kernel.c_str(), device.str().c_str(), dtype_name.c_str(), batch, size, size, terms, rank, forward,
            forward_graph, eager[0], graphed[0], eager[1], graphed[1], layer_eager, layer_graphed, backward,
            backward_graph, peak, terms * rank * 2 * size + size, terms * rank * 2 * size, dense_forward, dense_graph,
            dense_backward, dense_train_graph, dense_forward / forward, dense_graph / forward_graph,
            dense_backward / backward, dense_train_graph / backward_graph);
        std::fflush(stdout);
      }
  }
  return 0;
}
