// hone::sketched_linear on CUDA: the two packed products through cuBLAS, or (on request, where the
// device has them: checked at run time) hone's tensor-core kernels for bf16/fp16. fp32 is never
// silently lowered: it runs in fp32 (tf32 only where the caller enabled it for matmuls).
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <mutex>
#include <string>

#include "hone/ops/sketched_linear.h"
#include "sketched_linear_kernel.cuh"

namespace hone::ops {
namespace {

// What the wrapper asks of a device on every call, looked up once per device (the CUDA queries
// behind it cost tens of microseconds, more than the kernels at small sizes).
struct DeviceFacts {
  bool tensor_cores = false;
  int64_t multiprocessors = 0;
};
const DeviceFacts& device_facts(int device) {
  static constexpr int kMaxDevices = 64;
  static std::array<std::once_flag, kMaxDevices> once;
  static std::array<DeviceFacts, kMaxDevices> facts;
  TORCH_CHECK(device >= 0 && device < kMaxDevices, "sketched_linear: CUDA device index ", device, " out of range");
  std::call_once(once[device], [device] {
    facts[device].tensor_cores = cuda_detail::tensor_core_kernels_available(device);
    facts[device].multiprocessors = at::cuda::getDeviceProperties(device)->multiProcessorCount;
  });
  return facts[device];
}

// Which path a bf16/fp16 call takes. Measured on an H100 (docs/BENCHMARKS.md, "Sketched layers"),
// the packed cuBLAS path is faster than hone's WMMA tiles at every point of the grid (graphed,
// 8192², L=1, k=16: 15.9 µs against 33.3 µs), so it is the default; HONE_SKETCH_KERNEL=tensor_cores
// selects the tensor-core kernels (sketched_linear_tensor_cores_requested; the tests and the
// benchmark run both), =cublas forces cuBLAS.

at::Tensor sketched_linear_cublas(const at::Tensor& x, const at::Tensor& s1, const at::Tensor& s2, const at::Tensor& u1,
                                  const at::Tensor& u2, const std::optional<at::Tensor>& bias) {
  return sketched_linear_packed(x, sketched_linear_pack_left(s1, u2), sketched_linear_pack_right(u1, s2), s1.size(0),
                                bias);
}

at::Tensor sketched_linear_cuda(const at::Tensor& input, const at::Tensor& s1_in, const at::Tensor& s2_in,
                                const at::Tensor& u1_in, const at::Tensor& u2_in,
                                const std::optional<at::Tensor>& bias_in) {
  check_sketched_linear_inputs(input, s1_in, s2_in, u1_in, u2_in, bias_in);
  TORCH_CHECK(input.is_cuda(), "sketched_linear (CUDA kernel): input is on ", input.device());
  const c10::cuda::CUDAGuard device_guard(input.device());
  const int64_t terms = s1_in.size(0), in = s1_in.size(1), rank = s1_in.size(2), out = s2_in.size(2);
  auto dense = [](const at::Tensor& t) { return t.is_contiguous() ? t : t.contiguous(); };
  const at::Tensor x = dense(input.reshape({-1, in}));
  const at::Tensor s1 = dense(s1_in), s2 = dense(s2_in), u1 = dense(u1_in), u2 = dense(u2_in);
  std::optional<at::Tensor> bias;
  if (bias_in.has_value() && bias_in->defined()) bias = dense(*bias_in);
  const int64_t rows = x.size(0);
  auto shape = input.sizes().vec();
  shape.back() = out;

  const auto dtype = x.scalar_type();
  const bool half = dtype == at::kBFloat16 || dtype == at::kHalf;
  const int64_t width = 2 * terms * rank;
  if (rows == 0) return at::empty(shape, x.options());
  const DeviceFacts& facts = device_facts(x.get_device());
  if (!half || !facts.tensor_cores || !sketched_linear_tensor_cores_requested())
    return sketched_linear_cublas(x, s1, s2, u1, u2, bias).view(shape);

  // Split the first product's in-dimension so that its few output tiles still fill the GPU
  // (about two blocks per multiprocessor), keeping at least four depth tiles per block.
  const int64_t tiles = ((rows + cuda_detail::kTileRows - 1) / cuda_detail::kTileRows) *
                        ((width + cuda_detail::kTileCols - 1) / cuda_detail::kTileCols);
  const int64_t target = 2 * facts.multiprocessors;
  const int64_t max_splits = std::max<int64_t>(1, in / (4 * cuda_detail::kTileDepth));
  int64_t splits = std::clamp<int64_t>((target + tiles - 1) / tiles, 1, max_splits);
  int64_t per_split = (in + splits - 1) / splits;
  per_split = (per_split + cuda_detail::kTileDepth - 1) / cuda_detail::kTileDepth * cuda_detail::kTileDepth;
  splits = (in + per_split - 1) / per_split;

  at::Tensor y = at::empty({rows, out}, x.options());
  // One workspace: the fp32 partial sums (when split), then the sketch in the input dtype.
  const int64_t partial_floats = splits > 1 ? splits * rows * width : 0;
  const int64_t sketch_floats = (rows * width * static_cast<int64_t>(x.element_size()) + 3) / 4;
  const at::Tensor workspace = at::empty({partial_floats + sketch_floats}, x.options().dtype(at::kFloat));
  float* partial = workspace.data_ptr<float>();
  void* sketch = partial + partial_floats;
  cuda_detail::SketchedLinearForward problem{x.data_ptr(),
                                             s1.data_ptr(),
                                             s2.data_ptr(),
                                             u1.data_ptr(),
                                             u2.data_ptr(),
                                             bias ? bias->data_ptr() : nullptr,
                                             y.data_ptr(),
                                             splits > 1 ? partial : nullptr,
                                             sketch,
                                             rows,
                                             in,
                                             out,
                                             terms,
                                             rank,
                                             splits,
                                             per_split};
  const auto kind = dtype == at::kBFloat16 ? cuda_detail::HalfKind::bf16 : cuda_detail::HalfKind::fp16;
  const cudaError_t status =
      cuda_detail::launch_sketched_linear_forward(problem, kind, at::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(status == cudaSuccess, "sketched_linear: CUDA launch failed: ", cudaGetErrorString(status));
  return y.view(shape);
}

}  // namespace

TORCH_LIBRARY_IMPL(hone, CUDA, m) { m.impl("sketched_linear", &sketched_linear_cuda); }

}  // namespace hone::ops
