#pragma once
// Private to src/ops/cuda: the raw launcher of hone::sketched_linear's tensor-core forward, with no
// ATen types so that nvcc compiles it without torch's headers.
#include <cuda_runtime.h>

#include <cstdint>

namespace hone::ops::cuda_detail {

enum class HalfKind { bf16, fp16 };

struct SketchedLinearForward {
  const void* x;     // [rows, in], row-major, contiguous
  const void* s1;    // [L, in, k]
  const void* s2;    // [L, k, out]
  const void* u1;    // [L, k, out]
  const void* u2;    // [L, in, k]
  const void* bias;  // [out] or nullptr
  void* y;           // [rows, out]
  float* partial;    // workspace [splits, rows, 2Lk] (unused when splits == 1)
  void* sketch;      // workspace [rows, 2Lk], the input's dtype
  int64_t rows, in, out, terms, rank;
  int64_t splits, k_per_split;  // split of the in-dimension reduction of the first product
};

/// Tile sizes of the kernels (the wrapper sizes the split and the workspaces with them).
inline constexpr int kTileRows = 64, kTileCols = 64, kTileDepth = 32;

/// True when the tensor-core kernels have an image for this device (compute capability ≥ 8.0 and
/// built for it); checked at run time, never assumed from the build machine.
bool tensor_core_kernels_available(int device);

/// Enqueues the forward on `stream` (no synchronization). Returns the launch status.
cudaError_t launch_sketched_linear_forward(const SketchedLinearForward& problem, HalfKind kind, cudaStream_t stream);

}  // namespace hone::ops::cuda_detail
