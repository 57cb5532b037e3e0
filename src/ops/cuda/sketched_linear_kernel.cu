// hone::sketched_linear forward on tensor cores (WMMA bf16/fp16, fp32 accumulation), any shape.
//
// Two tiled GEMMs and, when the first is split, a reduction between them:
//   1. sketch = x · [S1 | U2]          [rows, in] × [in, 2Lk]; the in-dimension is split across
//                                       blocks (the output is small), partial sums in fp32;
//   2. sketch (fp32 partials summed and rounded once to the input dtype);
//   3. y = sketch · [U1 ; S2] / (2L) + b   [rows, 2Lk] × [2Lk, out], scale and bias in fp32 in the
//                                       epilogue, one rounding to the output dtype.
// The packed operands are never materialized: loaders read S1/U2/U1/S2 in place. Every load and
// store is bounds-checked (tails are zero-filled in shared memory), so no dimension needs to be a
// multiple of 16. Nothing synchronizes the device; everything runs on the caller's stream.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include <algorithm>

#include "sketched_linear_kernel.cuh"

namespace hone::ops::cuda_detail {
namespace {

constexpr int kThreads = 128;  // 4 warps, 2×2, each warp a 32×32 sub-tile (2×2 WMMA fragments)
constexpr int kPadHalf = 8;    // keeps WMMA's 32-byte row alignment and spreads shared-memory banks
constexpr int kPadFloat = 4;

template <typename T>
struct Convert;
template <>
struct Convert<__nv_bfloat16> {
  static __device__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __device__ __nv_bfloat16 from_float(float v) { return __float2bfloat16(v); }
};
template <>
struct Convert<__half> {
  static __device__ float to_float(__half v) { return __half2float(v); }
  static __device__ __half from_float(float v) { return __float2half(v); }
};

template <typename T>
struct RowMajor {  // element (r, c) of a row-major matrix with leading dimension ld
  const T* data;
  int64_t ld;
  __device__ T operator()(int64_t r, int64_t c) const { return data[r * ld + c]; }
};

template <typename T>
struct PackedLeft {  // [S1 | U2] as [in, 2Lk]: column j < Lk is S1[j / k][:, j % k], then U2's
  const T* s1;
  const T* u2;
  int64_t in, rank, half;  // half = L*k
  __device__ T operator()(int64_t row, int64_t col) const {
    const T* base = col < half ? s1 : u2;
    const int64_t j = col < half ? col : col - half;
    const int64_t term = j / rank;
    return base[(term * in + row) * rank + (j - term * rank)];
  }
};

template <typename T>
struct PackedRight {  // [U1 ; S2] as [2Lk, out]: [L, k, out] tensors are already [L*k, out]
  const T* u1;
  const T* s2;
  int64_t half, out;
  __device__ T operator()(int64_t row, int64_t col) const {
    return row < half ? u1[row * out + col] : s2[(row - half) * out + col];
  }
};

struct StorePartial {  // fp32 partial sums of split `split`: [splits, rows, cols]
  float* data;
  int64_t rows, cols;
  __device__ int column(int64_t) const { return 0; }
  __device__ void operator()(int, int64_t split, int64_t r, int64_t c, float v) const {
    data[(split * rows + r) * cols + c] = v;
  }
};

template <typename T>
struct StoreRounded {  // unsplit first product: straight to the sketch in the input dtype
  T* data;
  int64_t cols;
  __device__ int column(int64_t) const { return 0; }
  __device__ void operator()(int, int64_t, int64_t r, int64_t c, float v) const {
    data[r * cols + c] = Convert<T>::from_float(v);
  }
};

template <typename T>
struct StoreOutput {  // y = scale · acc + bias, rounded once
  T* data;
  const T* bias;
  int64_t cols;
  float scale;
  __device__ float column(int64_t c) const { return bias != nullptr ? Convert<T>::to_float(bias[c]) : 0.0f; }
  __device__ void operator()(float column_bias, int64_t, int64_t r, int64_t c, float v) const {
    data[r * cols + c] = Convert<T>::from_float(v * scale + column_bias);
  }
};

// C[rows, cols] (+)= A[rows, depth] · B[depth, cols] over the depth range of split blockIdx.z.
template <typename T, typename LoadA, typename LoadB, typename Store>
__global__ void __launch_bounds__(kThreads)
    tile_gemm(int64_t rows, int64_t cols, int64_t depth, int64_t depth_per_split, LoadA load_a, LoadB load_b,
              Store store) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  __shared__ __align__(32) T a_tile[kTileRows][kTileDepth + kPadHalf];
  __shared__ __align__(32) T b_tile[kTileDepth][kTileCols + kPadHalf];
  __shared__ __align__(32) float c_tile[kTileRows][kTileCols + kPadFloat];

  const int warp = threadIdx.x / 32;
  const int warp_row = warp / 2, warp_col = warp % 2;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * kTileRows;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kTileCols;
  const int64_t depth_begin = static_cast<int64_t>(blockIdx.z) * depth_per_split;
  const int64_t depth_end = min(depth, depth_begin + depth_per_split);
  const T zero = Convert<T>::from_float(0.0f);

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  // Each thread stages its share of the next A and B tiles in registers: all of its global loads
  // are in flight at once (a load-then-store loop would wait out each load's latency in turn), and
  // the next tiles load while the tensor cores work on the current ones.
  constexpr int kPerThreadA = kTileRows * kTileDepth / kThreads, kPerThreadB = kTileDepth * kTileCols / kThreads;
  T a_next[kPerThreadA], b_next[kPerThreadB];
  auto stage = [&](int64_t d0) {
#pragma unroll
    for (int i = 0; i < kPerThreadA; ++i) {
      const int e = threadIdx.x + i * kThreads, r = e / kTileDepth, c = e % kTileDepth;
      const int64_t row = row0 + r, d = d0 + c;
      a_next[i] = (row < rows && d < depth_end) ? load_a(row, d) : zero;
    }
#pragma unroll
    for (int i = 0; i < kPerThreadB; ++i) {
      const int e = threadIdx.x + i * kThreads, r = e / kTileCols, c = e % kTileCols;
      const int64_t d = d0 + r, col = col0 + c;
      b_next[i] = (d < depth_end && col < cols) ? load_b(d, col) : zero;
    }
  };
  if (depth_begin < depth_end) stage(depth_begin);
  for (int64_t d0 = depth_begin; d0 < depth_end; d0 += kTileDepth) {
#pragma unroll
    for (int i = 0; i < kPerThreadA; ++i) {
      const int e = threadIdx.x + i * kThreads;
      a_tile[e / kTileDepth][e % kTileDepth] = a_next[i];
    }
#pragma unroll
    for (int i = 0; i < kPerThreadB; ++i) {
      const int e = threadIdx.x + i * kThreads;
      b_tile[e / kTileCols][e % kTileCols] = b_next[i];
    }
    __syncthreads();
    if (d0 + kTileDepth < depth_end) stage(d0 + kTileDepth);
    for (int k = 0; k < kTileDepth; k += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b[2];
      for (int i = 0; i < 2; ++i)
        wmma::load_matrix_sync(a[i], &a_tile[warp_row * 32 + i * 16][k], kTileDepth + kPadHalf);
      for (int j = 0; j < 2; ++j)
        wmma::load_matrix_sync(b[j], &b_tile[k][warp_col * 32 + j * 16], kTileCols + kPadHalf);
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(&c_tile[warp_row * 32 + i * 16][warp_col * 32 + j * 16], acc[i][j], kTileCols + kPadFloat,
                              wmma::mem_row_major);
  __syncthreads();
  // kThreads is a multiple of kTileCols: each thread writes one column of the tile, so per-column
  // state (the bias) is read once, and no store waits on a load it might alias.
  static_assert(kThreads % kTileCols == 0, "one column per thread in the epilogue");
  const int c = threadIdx.x % kTileCols;
  const int64_t col = col0 + c;
  if (col < cols) {
    const auto column = store.column(col);
    for (int r = threadIdx.x / kTileCols; r < kTileRows; r += kThreads / kTileCols) {
      const int64_t row = row0 + r;
      if (row < rows) store(column, blockIdx.z, row, col, c_tile[r][c]);
    }
  }
#endif
}

// sketch[i] = Σ_split partial[split][i], rounded once to T.
template <typename T>
__global__ void sum_splits(const float* partial, T* sketch, int64_t count, int64_t splits) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float sum = 0.0f;
    for (int64_t s = 0; s < splits; ++s) sum += partial[s * count + i];
    sketch[i] = Convert<T>::from_float(sum);
  }
}

dim3 grid_for(int64_t rows, int64_t cols, int64_t splits) {
  return dim3(static_cast<unsigned>((cols + kTileCols - 1) / kTileCols),
              static_cast<unsigned>((rows + kTileRows - 1) / kTileRows), static_cast<unsigned>(splits));
}

template <typename T>
cudaError_t launch(const SketchedLinearForward& p, cudaStream_t stream) {
  const int64_t half = p.terms * p.rank, width = 2 * half;
  const auto* x = static_cast<const T*>(p.x);
  T* sketch = static_cast<T*>(p.sketch);
  const PackedLeft<T> left{static_cast<const T*>(p.s1), static_cast<const T*>(p.u2), p.in, p.rank, half};
  const dim3 first_grid = grid_for(p.rows, width, p.splits);
  if (p.splits == 1) {
    tile_gemm<T><<<first_grid, kThreads, 0, stream>>>(p.rows, width, p.in, p.k_per_split, RowMajor<T>{x, p.in}, left,
                                                      StoreRounded<T>{sketch, width});
  } else {
    tile_gemm<T><<<first_grid, kThreads, 0, stream>>>(p.rows, width, p.in, p.k_per_split, RowMajor<T>{x, p.in}, left,
                                                      StorePartial{p.partial, p.rows, width});
    const int64_t count = p.rows * width;
    const int blocks = static_cast<int>(std::min<int64_t>((count + 255) / 256, 4096));
    sum_splits<T><<<blocks, 256, 0, stream>>>(p.partial, sketch, count, p.splits);
  }
  const PackedRight<T> right{static_cast<const T*>(p.u1), static_cast<const T*>(p.s2), half, p.out};
  const StoreOutput<T> output{static_cast<T*>(p.y), static_cast<const T*>(p.bias), p.out,
                              1.0f / static_cast<float>(2 * p.terms)};
  tile_gemm<T><<<grid_for(p.rows, p.out, 1), kThreads, 0, stream>>>(p.rows, p.out, width, width,
                                                                    RowMajor<T>{sketch, width}, right, output);
  return cudaGetLastError();
}

}  // namespace

bool tensor_core_kernels_available(int device) {
  cudaDeviceProp properties{};
  if (cudaGetDeviceProperties(&properties, device) != cudaSuccess || properties.major < 8) return false;
  // An image for this device must exist in the binary (SASS for it, or PTX it can JIT).
  cudaFuncAttributes attributes{};
  const auto kernel =
      tile_gemm<__nv_bfloat16, RowMajor<__nv_bfloat16>, PackedLeft<__nv_bfloat16>, StoreRounded<__nv_bfloat16>>;
  const bool ok = cudaFuncGetAttributes(&attributes, kernel) == cudaSuccess;
  if (!ok) (void)cudaGetLastError();  // a missing image is not sticky: clear it for later launches
  return ok;
}

cudaError_t launch_sketched_linear_forward(const SketchedLinearForward& problem, HalfKind kind, cudaStream_t stream) {
  return kind == HalfKind::bf16 ? launch<__nv_bfloat16>(problem, stream) : launch<__half>(problem, stream);
}

}  // namespace hone::ops::cuda_detail
