// Autograd for hone::sketched_linear with explicit gradients. With s = 1/(2L), T1 = x·U2 (the
// second path's sketch of x) and G = gy·U1ᵢᵀ:
//   dx  = s · Σᵢ (gy·U1ᵢᵀ·S1ᵢᵀ + gy·S2ᵢᵀ·U2ᵢᵀ)
//   dS1ᵢ = s · xᵀ·(gy·U1ᵢᵀ)        dS2ᵢ = s · (x·U2ᵢ)ᵀ·gy        db = Σ_rows gy
// computed in packed form (two or three GEMMs, whatever the number of terms). The sketches U1, U2
// get no gradient. Nothing synchronizes the device.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "hone/ops/sketched_linear.h"

namespace hone::ops {
namespace {

class SketchedLinearFunction : public torch::autograd::Function<SketchedLinearFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input, const at::Tensor& s1,
                            const at::Tensor& s2, const at::Tensor& u1, const at::Tensor& u2,
                            const std::optional<at::Tensor>& bias) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward({input, s1, s2, u1, u2});
    ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
    return sketched_linear(input, s1, s2, u1, u2, bias);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &input = saved[0], &s1 = saved[1], &s2 = saved[2], &u1 = saved[3], &u2 = saved[4];
    const int64_t terms = s1.size(0), in = s1.size(1), rank = s1.size(2), out = s2.size(2);
    const double scale = 1.0 / static_cast<double>(2 * terms);
    const at::Tensor gy = grad_outputs[0].reshape({-1, out});
    const at::Tensor x = input.reshape({-1, in});

    at::Tensor grad_input, grad_s1, grad_s2, grad_bias;
    // needs_input_grad counts only the tensors given: without a bias there is no index 5.
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    const bool need_x = ctx->needs_input_grad(0), need_s1 = ctx->needs_input_grad(1),
               need_s2 = ctx->needs_input_grad(2), need_bias = has_bias && ctx->needs_input_grad(5);
    if (need_x || need_s1) {
      // gy·[U1 ; S2]ᵀ·s = [gy·U1ᵀ | gy·S2ᵀ]·s  → [rows, 2Lk]
      const at::Tensor right = sketched_linear_pack_right(u1, s2);
      const at::Tensor grad_sketch = at::mm(gy, right.t()).mul_(scale);
      if (need_x) {
        const at::Tensor left = sketched_linear_pack_left(s1, u2);
        grad_input = at::mm(grad_sketch, left.t()).view(input.sizes());
      }
      if (need_s1) {
        // xᵀ·(gy·U1ᵀ·s) → [in, L*k] → [L, in, k]
        const at::Tensor first = grad_sketch.narrow(1, 0, terms * rank);
        grad_s1 = at::mm(x.t(), first).view({in, terms, rank}).permute({1, 0, 2}).contiguous();
      }
    }
    if (need_s2) {
      const at::Tensor x_u2 = at::mm(x, u2.permute({1, 0, 2}).reshape({in, terms * rank}));  // [rows, L*k]
      grad_s2 = at::mm(x_u2.t(), gy).mul_(scale).view({terms, rank, out});
    }
    if (need_bias) grad_bias = gy.sum(0);
    return {grad_input, grad_s1, grad_s2, at::Tensor(), at::Tensor(), grad_bias};
  }
};

at::Tensor sketched_linear_autograd(const at::Tensor& input, const at::Tensor& s1, const at::Tensor& s2,
                                    const at::Tensor& u1, const at::Tensor& u2, const std::optional<at::Tensor>& bias) {
  // Inference (no grad mode, or nothing that wants a gradient) skips building a graph node: at
  // these sizes the bookkeeping costs more than the kernels.
  const bool wants_grad = input.requires_grad() || s1.requires_grad() || s2.requires_grad() ||
                          (bias.has_value() && bias->defined() && bias->requires_grad());
  if (!at::GradMode::is_enabled() || !wants_grad) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return sketched_linear(input, s1, s2, u1, u2, bias);
  }
  return SketchedLinearFunction::apply(input, s1, s2, u1, u2, bias);
}

}  // namespace

TORCH_LIBRARY_IMPL(hone, Autograd, m) { m.impl("sketched_linear", &sketched_linear_autograd); }

}  // namespace hone::ops
