// hone::add_layer_norm's CUDA kernel: out = layer_norm(x + residual) · weight + bias over rows of
// `hidden` elements, in one pass over memory. The op is bound by memory traffic, so each row is read
// once (16-byte loads where every pointer and the row length allow), x + residual is held in fp32
// registers (up to kMaxValuesPerThread per thread), the mean and then the variance are summed from
// those registers (two passes: no cancellation when the mean is large against the spread), and the
// normalized row is written once in the output dtype. Short rows (up to 32·kMaxValuesPerThread
// elements: BERT's 384-1024) take one warp each, several rows per block, and reduce with shuffles
// alone; longer rows take 2, 4 or 8 warps that combine their sums through shared memory.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <climits>

#include "add_layer_norm_kernel.cuh"
#include "float_convert.cuh"

namespace hone::ops::cuda_detail {
namespace {

constexpr int kWarpSize = 32;
constexpr int kBlockWarps = 4;           // warps per block while a row takes fewer
constexpr int kMaxValuesPerThread = 32;  // fp32 registers holding a thread's share of a row
constexpr int kMaxWarpsPerRow = 8;       // 256 threads: the longest row, 8192 elements
constexpr int kPackBytes = 16;           // one 128-bit load or store
static_assert(kMaxWarpsPerRow * kWarpSize * kMaxValuesPerThread == kAddLayerNormMaxHidden);

/// kPack consecutive elements, loaded and stored as one access (16 bytes when kPack·sizeof(T) is).
template <typename T, int kPack>
struct alignas(sizeof(T) * kPack) Pack {
  T v[kPack];
};

template <typename T, int kPack>
__device__ __forceinline__ Pack<T, kPack> zero_pack() {
  Pack<T, kPack> zero;
#pragma unroll
  for (int k = 0; k < kPack; ++k) zero.v[k] = from_float<T>(0.f);
  return zero;
}

template <int kWarpsPerRow>
constexpr int rows_per_block() {
  return kWarpsPerRow >= kBlockWarps ? 1 : kBlockWarps / kWarpsPerRow;
}

/// The sum of `v` over the threads of one row, returned to all of them: butterfly shuffles within
/// the warp, then (several warps per row) the warps' partial sums through `scratch`. Every thread
/// of the block must call it (it synchronizes the block when a row spans warps).
template <int kWarpsPerRow>
__device__ __forceinline__ float row_sum(float v, float* scratch, int warp_in_row, int lane) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  if constexpr (kWarpsPerRow == 1) {
    return v;
  } else {
    if (lane == 0) scratch[warp_in_row] = v;
    __syncthreads();
    float total = 0.f;
#pragma unroll
    for (int w = 0; w < kWarpsPerRow; ++w) total += scratch[w];
    __syncthreads();  // the scratch is free for the next sum
    return total;
  }
}

/// One row per kWarpsPerRow warps (blockDim = 32·kWarpsPerRow × rows_per_block); thread t of a row
/// holds packs t, t + threads_per_row, ... (consecutive threads touch consecutive 16-byte chunks:
/// coalesced). kPacksPerThread·kPack values per thread; packs past the row's end are zeros that
/// take no part in the sums.
template <typename T, int kPack, int kPacksPerThread, int kWarpsPerRow>
__global__ void __launch_bounds__(kWarpsPerRow* kWarpSize* rows_per_block<kWarpsPerRow>())
    add_layer_norm_kernel(const T* __restrict__ x, const T* __restrict__ residual, const T* __restrict__ weight,
                          const T* __restrict__ bias, T* __restrict__ out, int64_t rows, int hidden, float eps) {
  using P = Pack<T, kPack>;
  constexpr int kThreadsPerRow = kWarpsPerRow * kWarpSize;
  constexpr int kRowsPerBlock = rows_per_block<kWarpsPerRow>();
  constexpr int kValues = kPacksPerThread * kPack;
  __shared__ float scratch[kRowsPerBlock][kWarpsPerRow];

  const int thread = static_cast<int>(threadIdx.x);
  const int warp_in_row = thread / kWarpSize, lane = thread % kWarpSize;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.y;
  // A block's last rows may lie past the end: their threads still take part in the block-wide
  // synchronization of row_sum, with nothing loaded or stored.
  const bool live = row < rows;
  const int64_t offset = live ? row * hidden : 0;
  const P* x_row = reinterpret_cast<const P*>(x + offset);
  const P* residual_row = reinterpret_cast<const P*>(residual + offset);
  const int packs = hidden / kPack;

  // Every load is issued before the first is used, so that a thread keeps all its row in flight.
  P a[kPacksPerThread], b[kPacksPerThread];
#pragma unroll
  for (int i = 0; i < kPacksPerThread; ++i) {
    const int p = i * kThreadsPerRow + thread;
    const bool inside = live && p < packs;
    a[i] = inside ? x_row[p] : zero_pack<T, kPack>();
    b[i] = inside ? residual_row[p] : zero_pack<T, kPack>();
  }
  float v[kValues];
  float sum = 0.f;
#pragma unroll
  for (int i = 0; i < kPacksPerThread; ++i)
#pragma unroll
    for (int k = 0; k < kPack; ++k) {
      v[i * kPack + k] = to_float(a[i].v[k]) + to_float(b[i].v[k]);
      sum += v[i * kPack + k];
    }
  float* row_scratch = scratch[threadIdx.y];
  const float mean = row_sum<kWarpsPerRow>(sum, row_scratch, warp_in_row, lane) / static_cast<float>(hidden);

  float squares = 0.f;
#pragma unroll
  for (int i = 0; i < kPacksPerThread; ++i) {
    const int p = i * kThreadsPerRow + thread;
    if (p < packs) {
#pragma unroll
      for (int k = 0; k < kPack; ++k) {
        const float d = v[i * kPack + k] - mean;
        squares = fmaf(d, d, squares);
      }
    }
  }
  const float variance = row_sum<kWarpsPerRow>(squares, row_scratch, warp_in_row, lane) / static_cast<float>(hidden);
  const float inverse_std = rsqrtf(variance + eps);
  if (!live) return;

  const P* weight_packs = reinterpret_cast<const P*>(weight);
  const P* bias_packs = reinterpret_cast<const P*>(bias);
  P* out_row = reinterpret_cast<P*>(out + offset);
#pragma unroll
  for (int i = 0; i < kPacksPerThread; ++i) {
    const int p = i * kThreadsPerRow + thread;
    if (p < packs) {
      const P w = weight_packs[p], c = bias_packs[p];
      P o;
#pragma unroll
      for (int k = 0; k < kPack; ++k)
        o.v[k] = from_float<T>(fmaf((v[i * kPack + k] - mean) * inverse_std, to_float(w.v[k]), to_float(c.v[k])));
      out_row[p] = o;
    }
  }
}

template <typename T, int kPack, int kPacksPerThread, int kWarpsPerRow>
cudaError_t launch(const AddLayerNormProblem& p, cudaStream_t stream) {
  constexpr int kRowsPerBlock = rows_per_block<kWarpsPerRow>();
  const int64_t blocks = (p.rows + kRowsPerBlock - 1) / kRowsPerBlock;
  if (blocks > INT_MAX) return cudaErrorInvalidValue;
  const dim3 grid(static_cast<unsigned>(blocks));
  const dim3 block(kWarpsPerRow * kWarpSize, kRowsPerBlock);
  add_layer_norm_kernel<T, kPack, kPacksPerThread, kWarpsPerRow><<<grid, block, 0, stream>>>(
      static_cast<const T*>(p.x), static_cast<const T*>(p.residual), static_cast<const T*>(p.weight),
      static_cast<const T*>(p.bias), static_cast<T*>(p.out), p.rows, static_cast<int>(p.hidden), p.eps);
  return cudaGetLastError();
}

/// One warp per row: the fewest packs per thread (a power of two) that hold the row.
template <typename T, int kPack, int kPacksPerThread>
cudaError_t launch_one_warp(const AddLayerNormProblem& p, int64_t packs, cudaStream_t stream) {
  if constexpr (kPacksPerThread * kPack < kMaxValuesPerThread) {
    if (packs > static_cast<int64_t>(kWarpSize) * kPacksPerThread)
      return launch_one_warp<T, kPack, 2 * kPacksPerThread>(p, packs, stream);
  }
  return launch<T, kPack, kPacksPerThread, 1>(p, stream);
}

/// Rows one warp can hold run one warp each; longer rows the fewest warps (2, 4, 8) that hold them,
/// each thread full (a row that needs more than one warp fills at least half of its warps).
template <typename T, int kPack>
cudaError_t launch_packed(const AddLayerNormProblem& p, cudaStream_t stream) {
  constexpr int kMaxPacks = kMaxValuesPerThread / kPack;
  constexpr int64_t kPacksPerWarp = static_cast<int64_t>(kWarpSize) * kMaxPacks;
  const int64_t packs = p.hidden / kPack;
  if (packs <= kPacksPerWarp) return launch_one_warp<T, kPack, 1>(p, packs, stream);
  if (packs <= 2 * kPacksPerWarp) return launch<T, kPack, kMaxPacks, 2>(p, stream);
  if (packs <= 4 * kPacksPerWarp) return launch<T, kPack, kMaxPacks, 4>(p, stream);
  static_assert(kMaxWarpsPerRow == 8);
  return launch<T, kPack, kMaxPacks, 8>(p, stream);
}

bool aligned(const void* pointer) { return reinterpret_cast<uintptr_t>(pointer) % kPackBytes == 0; }

template <typename T>
cudaError_t launch_dtype(const AddLayerNormProblem& p, cudaStream_t stream) {
  constexpr int kVector = kPackBytes / static_cast<int>(sizeof(T));
  const bool vector = p.hidden % kVector == 0 && aligned(p.x) && aligned(p.residual) && aligned(p.weight) &&
                      aligned(p.bias) && aligned(p.out);
  return vector ? launch_packed<T, kVector>(p, stream) : launch_packed<T, 1>(p, stream);
}

}  // namespace

cudaError_t launch_add_layer_norm(const AddLayerNormProblem& problem, AddLayerNormDtype dtype, cudaStream_t stream) {
  if (problem.hidden < 1 || problem.hidden > kAddLayerNormMaxHidden) return cudaErrorInvalidValue;
  if (problem.rows <= 0) return cudaSuccess;
  switch (dtype) {
    case AddLayerNormDtype::fp32:
      return launch_dtype<float>(problem, stream);
    case AddLayerNormDtype::bf16:
      return launch_dtype<__nv_bfloat16>(problem, stream);
    case AddLayerNormDtype::fp16:
      return launch_dtype<__half>(problem, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace hone::ops::cuda_detail
