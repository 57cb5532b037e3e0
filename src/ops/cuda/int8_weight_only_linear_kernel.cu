// hone::int8_weight_only_linear's CUDA kernel for few rows (decoding, small batches): the matmul is
// bound by reading the int8 weight, so each warp streams whole weight rows (output channels) with
// 16-byte loads, converts in registers and accumulates every input row in fp32; the input rows are
// staged in shared memory one chunk of `in` at a time. One rounding: scale and bias are applied to
// the fp32 sum, then converted to the output dtype.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "float_convert.cuh"
#include "int8_weight_only_linear_kernel.cuh"

namespace hone::ops::cuda_detail {
namespace {

constexpr int kWarps = 8;         // per block
constexpr int kColumns = 4;       // output channels per warp
constexpr int kChunk = 1024;      // input features staged in shared memory at a time (32 KiB)
constexpr int kVectorBytes = 16;  // one int4 load of weights per lane

/// kVector: every weight row starts 16-byte aligned and `in` is a multiple of 16 (else one byte
/// per lane at a time). kRows: input rows per block (blockIdx.y covers the rest), the smallest of
/// 1, 2, 4, 8 that holds the call's rows, so one row does one row's arithmetic.
template <typename T, bool kVector, int kRows>
__global__ void __launch_bounds__(kWarps * 32)
    int8_weight_only_kernel(const T* __restrict__ x, const int8_t* __restrict__ w, const T* __restrict__ scales,
                            const T* __restrict__ bias, T* __restrict__ y, int64_t rows, int64_t in, int64_t out) {
  __shared__ float staged[kRows][kChunk];
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * kRows;
  const int live_rows = static_cast<int>(rows - row0 < kRows ? rows - row0 : kRows);
  const int64_t col0 = (static_cast<int64_t>(blockIdx.x) * kWarps + warp) * kColumns;
  float acc[kColumns][kRows];
#pragma unroll
  for (int c = 0; c < kColumns; ++c)
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[c][r] = 0.f;

  for (int64_t k0 = 0; k0 < in; k0 += kChunk) {
    const int length = static_cast<int>(in - k0 < kChunk ? in - k0 : kChunk);
    __syncthreads();  // the previous chunk is no longer read
    for (int i = static_cast<int>(threadIdx.x); i < live_rows * kChunk; i += kWarps * 32) {
      const int r = i / kChunk, k = i % kChunk;
      staged[r][k] = k < length ? to_float(x[(row0 + r) * in + k0 + k]) : 0.f;
    }
    __syncthreads();
    if (kVector) {
      for (int k = lane * kVectorBytes; k < length; k += 32 * kVectorBytes) {
        int4 packed[kColumns];
#pragma unroll
        for (int c = 0; c < kColumns; ++c) {
          const int64_t col = col0 + c;
          packed[c] = col < out ? __ldg(reinterpret_cast<const int4*>(w + col * in + k0 + k)) : make_int4(0, 0, 0, 0);
        }
#pragma unroll
        for (int j = 0; j < kVectorBytes; ++j) {
          float xv[kRows];
#pragma unroll
          for (int r = 0; r < kRows; ++r) xv[r] = staged[r][k + j];
#pragma unroll
          for (int c = 0; c < kColumns; ++c) {
            const float wv = static_cast<float>(reinterpret_cast<const int8_t*>(&packed[c])[j]);
#pragma unroll
            for (int r = 0; r < kRows; ++r) acc[c][r] = fmaf(wv, xv[r], acc[c][r]);
          }
        }
      }
    } else {
      for (int k = lane; k < length; k += 32) {
        float xv[kRows];
#pragma unroll
        for (int r = 0; r < kRows; ++r) xv[r] = staged[r][k];
#pragma unroll
        for (int c = 0; c < kColumns; ++c) {
          const int64_t col = col0 + c;
          const float wv = col < out ? static_cast<float>(w[col * in + k0 + k]) : 0.f;
#pragma unroll
          for (int r = 0; r < kRows; ++r) acc[c][r] = fmaf(wv, xv[r], acc[c][r]);
        }
      }
    }
  }

#pragma unroll
  for (int c = 0; c < kColumns; ++c) {
    const int64_t col = col0 + c;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      float v = acc[c][r];
#pragma unroll
      for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
      if (lane == 0 && col < out && r < live_rows) {
        const float b = bias != nullptr ? to_float(bias[col]) : 0.f;
        y[(row0 + r) * out + col] = from_float<T>(fmaf(v, to_float(scales[col]), b));
      }
    }
  }
}

template <typename T, int kRows>
cudaError_t launch(const Int8WeightOnlyProblem& p, cudaStream_t stream) {
  const int64_t columns_per_block = static_cast<int64_t>(kWarps) * kColumns;
  const dim3 grid(static_cast<unsigned>((p.out + columns_per_block - 1) / columns_per_block),
                  static_cast<unsigned>((p.rows + kRows - 1) / kRows));
  const dim3 block(kWarps * 32);
  const bool vector = p.in % kVectorBytes == 0 && reinterpret_cast<uintptr_t>(p.w) % kVectorBytes == 0;
  const auto* x = static_cast<const T*>(p.x);
  const auto* scales = static_cast<const T*>(p.scales);
  const auto* bias = static_cast<const T*>(p.bias);
  auto* y = static_cast<T*>(p.y);
  if (vector) {
    int8_weight_only_kernel<T, true, kRows><<<grid, block, 0, stream>>>(x, p.w, scales, bias, y, p.rows, p.in, p.out);
  } else {
    int8_weight_only_kernel<T, false, kRows><<<grid, block, 0, stream>>>(x, p.w, scales, bias, y, p.rows, p.in, p.out);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_rows(const Int8WeightOnlyProblem& p, cudaStream_t stream) {
  if (p.rows == 1) return launch<T, 1>(p, stream);
  if (p.rows == 2) return launch<T, 2>(p, stream);
  if (p.rows <= 4) return launch<T, 4>(p, stream);
  return launch<T, 8>(p, stream);
}

}  // namespace

cudaError_t launch_int8_weight_only_linear(const Int8WeightOnlyProblem& problem, FloatKind kind, cudaStream_t stream) {
  if (problem.rows <= 0 || problem.out <= 0) return cudaSuccess;
  switch (kind) {
    case FloatKind::fp32:
      return launch_rows<float>(problem, stream);
    case FloatKind::bf16:
      return launch_rows<__nv_bfloat16>(problem, stream);
    case FloatKind::fp16:
      return launch_rows<__half>(problem, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace hone::ops::cuda_detail
