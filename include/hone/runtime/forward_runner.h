#pragma once
/// @file One forward pass on a fixed input, run eagerly or replayed from a CUDA graph captured
/// once (after warm-up passes on a side stream, as graph capture requires).
///
///   runtime::ForwardRunner runner(*model, input, settings, /*cuda_graph=*/true, /*warmup=*/3);
///   at::Tensor out = runner.run();   // a graph replays into the same static output each time
#include <ATen/core/Tensor.h>

#include <memory>

#include "hone/models/model.h"
#include "hone/runtime/settings.h"

namespace hone::runtime {

class ForwardRunner {
 public:
  /// A CUDA graph on a non-CUDA device is a hone::UsageError naming the option cuda_graphs.
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

}  // namespace hone::runtime
