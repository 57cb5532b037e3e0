// Autograd for hone::sketched_conv2d with explicit gradients. With P = [U₁ᵀ | … | U_Tᵀ] [out, T·k]
// (the stacked projection), S the stacked conv weight [T·k, C, kh, kw] and gy [B, out, H', W']:
//   g  = 1/T · Pᵀ·gy over channels              [B, T·k, H', W']  (the sketch's gradient)
//   dx, dS = convolution_backward(g, x, S)      (one call, whatever the number of terms)
//   db = Σ_{b,h,w} gy
// The sketches u get no gradient. Nothing synchronizes the device.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "hone/ops/sketched_conv2d.h"

namespace hone::ops {
namespace {

class SketchedConv2dFunction : public torch::autograd::Function<SketchedConv2dFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input, const at::Tensor& s,
                            const at::Tensor& u, const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                            at::IntArrayRef padding, at::IntArrayRef dilation) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({input, s, u});
    ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
    ctx->saved_data["stride"] = stride.vec();
    ctx->saved_data["padding"] = padding.vec();
    ctx->saved_data["dilation"] = dilation.vec();
    return sketched_conv2d(input, s, u, bias, stride, padding, dilation);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &input = saved[0], &s = saved[1], &u = saved[2];
    const at::Tensor& gy = grad_outputs[0];
    // needs_input_grad counts tensor arguments that were given: bias is index 3 only when present.
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    const bool need_x = ctx->needs_input_grad(0), need_s = ctx->needs_input_grad(1),
               need_bias = has_bias && ctx->needs_input_grad(3);

    at::Tensor grad_input, grad_s, grad_bias;
    if (need_x || need_s) {
      const double scale = 1.0 / static_cast<double>(s.size(0));
      // Pᵀ = u as [T·k, out]: the projection's transpose maps gy's out channels back to T·k.
      const at::Tensor grad_sketch =
          sketched_conv2d_project_channels(gy, sketched_conv2d_pack_projection(u).t(), std::nullopt, scale);
      const auto stride = ctx->saved_data["stride"].toIntVector();
      const auto padding = ctx->saved_data["padding"].toIntVector();
      const auto dilation = ctx->saved_data["dilation"].toIntVector();
      const int64_t no_output_padding[] = {0, 0};
      auto grads = at::convolution_backward(grad_sketch, input, sketched_conv2d_pack_weight(s), std::nullopt, stride,
                                            padding, dilation, /*transposed=*/false, no_output_padding,
                                            /*groups=*/1, {need_x, need_s, false});
      grad_input = std::get<0>(grads);
      if (need_s) grad_s = std::get<1>(grads).reshape(s.sizes());
    }
    if (need_bias) grad_bias = gy.sum({0, 2, 3});
    return {grad_input, grad_s, at::Tensor(), grad_bias, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor sketched_conv2d_autograd(const at::Tensor& input, const at::Tensor& s, const at::Tensor& u,
                                    const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                                    at::IntArrayRef padding, at::IntArrayRef dilation) {
  return SketchedConv2dFunction::apply(input, s, u, bias, stride, padding, dilation);
}

}  // namespace

TORCH_LIBRARY_IMPL(hone, Autograd, m) { m.impl("sketched_conv2d", &sketched_conv2d_autograd); }

}  // namespace hone::ops
