// The schema of hone::sketched_conv2d, its dispatcher wrapper, input checks, the ATen reference and
// the fused form's channel projection shared by the kernels.
#include "hone/ops/sketched_conv2d.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

namespace hone::ops {

TORCH_LIBRARY_FRAGMENT(hone, m) {
  m.def(
      "sketched_conv2d(Tensor input, Tensor s, Tensor u, Tensor? bias, int[2] stride, int[2] padding, "
      "int[2] dilation) -> Tensor");
}

at::Tensor sketched_conv2d(const at::Tensor& input, const at::Tensor& s, const at::Tensor& u,
                           const std::optional<at::Tensor>& bias, at::IntArrayRef stride, at::IntArrayRef padding,
                           at::IntArrayRef dilation) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("hone::sketched_conv2d", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&,
                            at::IntArrayRef, at::IntArrayRef, at::IntArrayRef)>();
  return op.call(input, s, u, bias, stride, padding, dilation);
}

void check_sketched_conv2d_inputs(const at::Tensor& input, const at::Tensor& s, const at::Tensor& u,
                                  const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                  at::IntArrayRef padding, at::IntArrayRef dilation) {
  TORCH_CHECK(input.dim() == 4, "sketched_conv2d: input must be [B, C, H, W], got ", input.sizes());
  TORCH_CHECK(s.dim() == 5, "sketched_conv2d: s must be [T, k, C, kh, kw], got ", s.sizes());
  const int64_t terms = s.size(0), rank = s.size(1), channels = s.size(2);
  TORCH_CHECK(terms >= 1 && rank >= 1 && channels >= 1 && s.size(3) >= 1 && s.size(4) >= 1,
              "sketched_conv2d: empty sketch, s ", s.sizes());
  TORCH_CHECK(u.dim() == 3 && u.size(0) == terms && u.size(1) == rank && u.size(2) >= 1,
              "sketched_conv2d: u must be [T=", terms, ", k=", rank, ", out], got ", u.sizes());
  const int64_t out = u.size(2);
  TORCH_CHECK(input.size(1) == channels, "sketched_conv2d: input has ", input.size(1),
              " channels but s takes C=", channels, " (groups = 1 only)");
  TORCH_CHECK(at::isFloatingType(input.scalar_type()), "sketched_conv2d: input must be floating point, got ",
              input.scalar_type());
  for (const auto* t : {&s, &u}) {
    TORCH_CHECK(t->scalar_type() == input.scalar_type(), "sketched_conv2d: s and u must have the input's dtype ",
                input.scalar_type(), ", got ", t->scalar_type());
    TORCH_CHECK(t->device() == input.device(), "sketched_conv2d: s and u must be on the input's device ",
                input.device(), ", got ", t->device());
  }
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == out, "sketched_conv2d: bias must be [out=", out, "], got ",
                bias->sizes());
    TORCH_CHECK(bias->scalar_type() == input.scalar_type() && bias->device() == input.device(),
                "sketched_conv2d: bias must have the input's dtype and device");
  }
  TORCH_CHECK(stride.size() == 2 && stride[0] >= 1 && stride[1] >= 1,
              "sketched_conv2d: stride must be two positive integers, got ", stride);
  TORCH_CHECK(padding.size() == 2 && padding[0] >= 0 && padding[1] >= 0,
              "sketched_conv2d: padding must be two non-negative integers, got ", padding);
  TORCH_CHECK(dilation.size() == 2 && dilation[0] >= 1 && dilation[1] >= 1,
              "sketched_conv2d: dilation must be two positive integers, got ", dilation);
  for (int64_t d = 0; d < 2; ++d) {
    const int64_t span = dilation[d] * (s.size(3 + d) - 1) + 1;
    TORCH_CHECK(input.size(2 + d) + 2 * padding[d] >= span, "sketched_conv2d: input ", input.sizes(), " padded by ",
                padding, " is smaller than the dilated kernel ", s.sizes().slice(3), " (dilation ", dilation, ")");
  }
}

at::Tensor sketched_conv2d_reference(const at::Tensor& input, const at::Tensor& s, const at::Tensor& u,
                                     const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                     at::IntArrayRef padding, at::IntArrayRef dilation) {
  check_sketched_conv2d_inputs(input, s, u, bias, stride, padding, dilation);
  const int64_t terms = s.size(0);
  at::Tensor sum;
  for (int64_t i = 0; i < terms; ++i) {
    const at::Tensor sketch = at::conv2d(input, s[i], {}, stride, padding, dilation);  // [B, k, H', W']
    const at::Tensor term = at::einsum("ko,bkhw->bohw", {u[i], sketch});
    sum = sum.defined() ? sum + term : term;
  }
  sum = sum / static_cast<double>(terms);
  if (bias.has_value() && bias->defined()) sum = sum + bias->view({1, -1, 1, 1});
  return sum;
}

at::Tensor sketched_conv2d_pack_weight(const at::Tensor& s) {
  return s.reshape({s.size(0) * s.size(1), s.size(2), s.size(3), s.size(4)});
}

at::Tensor sketched_conv2d_pack_projection(const at::Tensor& u) {
  // [T, k, out] is [T·k, out] row-major: row t·k + c is Uₜ[c, :], matching channel t·k + c of the
  // packed convolution's output.
  return u.reshape({u.size(0) * u.size(1), u.size(2)}).t();
}

at::Tensor sketched_conv2d_project_channels(const at::Tensor& z, const at::Tensor& matrix,
                                            const std::optional<at::Tensor>& bias, double scale) {
  const int64_t batch = z.size(0), channels = z.size(1), height = z.size(2), width = z.size(3);
  const int64_t out = matrix.size(0);
  const bool has_bias = bias.has_value() && bias->defined();
  if (z.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    // Pixels as rows: [B·H·W, Cz] · [Cz, O], a view of z and of the result.
    const at::Tensor pixels = z.permute({0, 2, 3, 1}).reshape({-1, channels});
    const at::Tensor y =
        has_bias ? at::addmm(*bias, pixels, matrix.t(), 1.0, scale) : at::mm(pixels, matrix.t()).mul_(scale);
    return y.view({batch, height, width, out}).permute({0, 3, 1, 2});
  }
  const at::Tensor planes = z.contiguous().view({batch, channels, height * width});
  const at::Tensor left = matrix.expand({batch, out, channels});
  const at::Tensor y =
      has_bias ? at::baddbmm(bias->view({1, out, 1}), left, planes, 1.0, scale) : at::bmm(left, planes).mul_(scale);
  return y.view({batch, out, height, width});
}

}  // namespace hone::ops
