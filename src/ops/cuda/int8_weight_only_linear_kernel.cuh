#pragma once
// Private to src/ops/cuda: the raw launcher of hone::int8_weight_only_linear's small-row kernel,
// with no ATen types so that nvcc compiles it without torch's headers.
#include <cuda_runtime.h>

#include <cstdint>

namespace hone::ops::cuda_detail {

enum class FloatKind { fp32, bf16, fp16 };

struct Int8WeightOnlyProblem {
  const void* x;       // [rows, in], row-major, contiguous, FloatKind
  const int8_t* w;     // [out, in], row-major, contiguous
  const void* scales;  // [out], FloatKind
  const void* bias;    // [out] or nullptr, FloatKind
  void* y;             // [rows, out], FloatKind
  int64_t rows, in, out;
};

/// The kernel's limit: up to this many rows per call (more rows: the caller runs one GEMM on the
/// dequantized weight instead).
inline constexpr int64_t kInt8WeightOnlyMaxRows = 16;

/// Enqueues y = x·(W·diag(s))ᵀ + b on `stream` (no synchronization). Returns the launch status.
cudaError_t launch_int8_weight_only_linear(const Int8WeightOnlyProblem& problem, FloatKind kind, cudaStream_t stream);

}  // namespace hone::ops::cuda_detail
