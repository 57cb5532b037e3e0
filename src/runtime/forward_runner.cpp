#include "hone/runtime/forward_runner.h"

#include <ATen/ATen.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#include <algorithm>

#include "hone/core/error.h"

#ifdef HONE_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace hone::runtime {

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
  if (!settings.device.is_cuda())
    fail_usage_option("cuda_graphs", "CUDA graphs need a CUDA device, got {}", settings.device.str());
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
  fail_option("cuda_graphs", "CUDA graphs need a CUDA build of hone (HONE_CUDA=ON)");
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

}  // namespace hone::runtime
