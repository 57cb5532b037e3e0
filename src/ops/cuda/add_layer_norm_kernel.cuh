#pragma once
// Private to src/ops/cuda: the raw launcher of hone::add_layer_norm's kernel, with no ATen types so
// that nvcc compiles it without torch's headers.
#include <cuda_runtime.h>

#include <cstdint>

namespace hone::ops::cuda_detail {

enum class AddLayerNormDtype { fp32, bf16, fp16 };

struct AddLayerNormProblem {
  const void* x;         // [rows, hidden], row-major, contiguous
  const void* residual;  // [rows, hidden], row-major, contiguous
  const void* weight;    // [hidden]
  const void* bias;      // [hidden]
  void* out;             // [rows, hidden], row-major, contiguous
  int64_t rows, hidden;
  float eps;
};

/// The kernel's limit: rows of up to this many elements (each of up to 8 warps per row keeps 32
/// values per thread in registers); longer rows: the caller runs the composite instead.
inline constexpr int64_t kAddLayerNormMaxHidden = 8192;

/// Enqueues out = layer_norm(x + residual) · weight + bias on `stream` (no synchronization, no
/// allocation: CUDA-graph capturable). Returns the launch status; cudaErrorInvalidValue where
/// hidden is outside [1, kAddLayerNormMaxHidden].
cudaError_t launch_add_layer_norm(const AddLayerNormProblem& problem, AddLayerNormDtype dtype, cudaStream_t stream);

}  // namespace hone::ops::cuda_detail
