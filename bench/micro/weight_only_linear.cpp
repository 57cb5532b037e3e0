// Weight-only int8 / int4 Linear (nn::LinearWeightOnly: LibTorch's _weight_int8pack_mm and
// _weight_int4pack_mm) and the 2:4 sparse Linear (nn::LinearSemiStructured: cuSPARSELt) against
// the dense bf16 Linear, over rows per call (1 = one decoding step) and square layer sizes, on the
// GPU: where does reading a 1- or 0.5-byte weight pay, and where do sparse tensor cores?
// Forward latency replayed from a CUDA graph (the GPU's own time) and eager, medians of repeats.
// Random tensors: timings only.
//   hone_weight_only_linear [SIZES] [ROWS] [REPEATS]
//   e.g. build/bench/hone_weight_only_linear 1024,4096,8192 1,16,64,256,2048 25
// Prints one JSON object per line (schema hone-weight-only/1).
#include <torch/torch.h>

#include <cstdio>

#include "gpu_timing.h"
#include "hone/nn/linear_semi_structured.h"
#include "hone/nn/linear_weight_only.h"

using hone::bench::micro::graph_time_ms;
using hone::bench::micro::parse_list;
using hone::bench::micro::time_ms;

int main(int argc, char** argv) {
  const auto sizes = parse_list(argc > 1 ? argv[1] : "1024,4096,8192");
  const auto rows_grid = parse_list(argc > 2 ? argv[2] : "1,16,64,256,2048");
  const int repeats = argc > 3 ? std::stoi(argv[3]) : 25;
  const torch::Device device(torch::kCUDA);
  const auto options = torch::TensorOptions().device(device).dtype(torch::kBFloat16);
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  for (const auto size : sizes) {
    torch::nn::Linear dense(size, size);
    auto int8 = hone::nn::LinearWeightOnlyImpl::from_float(*dense, 8, 0);
    auto int4 = hone::nn::LinearWeightOnlyImpl::from_float(*dense, 4, 128);
    auto sparse = hone::nn::LinearSemiStructuredImpl::from_float(*dense, torch::kBFloat16);
    dense->to(device, torch::kBFloat16);
    sparse->to(device);
    int8->to(device);
    int4->to(device);
    for (const auto rows : rows_grid) {
      // Rotate through >= 64 MiB of inputs so no point is timed from a warm cache.
      const int rotation = static_cast<int>(std::max<std::int64_t>(2, (64LL << 20) / (rows * size * 2)));
      std::vector<torch::Tensor> inputs;
      for (int i = 0; i < std::min(rotation, 64); ++i) inputs.push_back(torch::randn({rows, size}, options));
      const auto n = static_cast<int>(inputs.size());
      struct Point {
        const char* name;
        std::function<void(int)> call;
      };
      const Point points[] = {{"dense_bf16", [&](int i) { dense->forward(inputs[i % n]); }},
                              {"int8_weight_only", [&](int i) { int8->forward(inputs[i % n]); }},
                              {"int4_weight_only", [&](int i) { int4->forward(inputs[i % n]); }},
                              {"sparse_2_4", [&](int i) { sparse->forward(inputs[i % n]); }}};
      double dense_graph = 0;
      for (const auto& point : points) {
        const double eager = time_ms(device, repeats, point.call);
        const double graphed = graph_time_ms(repeats, point.call);
        if (dense_graph == 0) dense_graph = graphed;
        std::printf(
            "{\"schema\": \"hone-weight-only/1\", \"layer\": \"%s\", \"device\": \"%s\", \"in\": %ld, \"out\": %ld, "
            "\"rows\": %ld, \"forward_ms\": %.5f, \"forward_graph_ms\": %.5f, \"graph_speedup_vs_dense\": %.3f}\n",
            point.name, device.str().c_str(), size, size, rows, eager, graphed, dense_graph / graphed);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
