// hone::sketched_linear on CPU: x is read once for both paths. Rows are split into blocks in
// parallel; each block computes its [rows, 2Lk] intermediate x·[S1 | U2] (which stays in cache) and
// immediately multiplies it by [U1 ; S2]/(2L), adding the bias.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>

#include "hone/ops/sketched_linear.h"

namespace hone::ops {
namespace {

// Rows per block: large enough for an efficient GEMM, small enough that the intermediate
// (rows × 2Lk) and the output block stay in L2.
constexpr int64_t kRowBlock = 64;

at::Tensor sketched_linear_cpu(const at::Tensor& input, const at::Tensor& s1, const at::Tensor& s2,
                               const at::Tensor& u1, const at::Tensor& u2, const std::optional<at::Tensor>& bias) {
  check_sketched_linear_inputs(input, s1, s2, u1, u2, bias);
  TORCH_CHECK(input.device().is_cpu(), "sketched_linear (CPU kernel): input is on ", input.device());
  const int64_t terms = s1.size(0), in = s1.size(1), out = s2.size(2);
  const at::Tensor x = input.reshape({-1, in}).contiguous();
  const int64_t rows = x.size(0);
  const at::Tensor left = sketched_linear_pack_left(s1, u2).contiguous();
  const at::Tensor right = (sketched_linear_pack_right(u1, s2) / static_cast<double>(2 * terms)).contiguous();
  const bool has_bias = bias.has_value() && bias->defined();
  at::Tensor y = at::empty({rows, out}, x.options());
  if (rows > 0) {
    at::parallel_for(0, (rows + kRowBlock - 1) / kRowBlock, 1, [&](int64_t first, int64_t last) {
      for (int64_t block = first; block < last; ++block) {
        const int64_t begin = block * kRowBlock, count = std::min(kRowBlock, rows - begin);
        const at::Tensor sketch = at::mm(x.narrow(0, begin, count), left);
        at::Tensor y_block = y.narrow(0, begin, count);
        if (has_bias)
          at::addmm_out(y_block, *bias, sketch, right);
        else
          at::mm_out(y_block, sketch, right);
      }
    });
  }
  auto shape = input.sizes().vec();
  shape.back() = out;
  return y.view(shape);
}

}  // namespace

TORCH_LIBRARY_IMPL(hone, CPU, m) { m.impl("sketched_linear", &sketched_linear_cpu); }

}  // namespace hone::ops
