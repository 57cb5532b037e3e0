// The schema of hone::sketched_linear, its dispatcher wrapper, input checks and the ATen reference.
#include "hone/ops/sketched_linear.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <cstdlib>
#include <string_view>

namespace hone::ops {

TORCH_LIBRARY_FRAGMENT(hone, m) {
  m.def("sketched_linear(Tensor input, Tensor s1, Tensor s2, Tensor u1, Tensor u2, Tensor? bias) -> Tensor");
}

at::Tensor sketched_linear(const at::Tensor& input, const at::Tensor& s1, const at::Tensor& s2, const at::Tensor& u1,
                           const at::Tensor& u2, const std::optional<at::Tensor>& bias) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("hone::sketched_linear", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                         const at::Tensor&, const std::optional<at::Tensor>&)>();
  return op.call(input, s1, s2, u1, u2, bias);
}

void check_sketched_linear_inputs(const at::Tensor& input, const at::Tensor& s1, const at::Tensor& s2,
                                  const at::Tensor& u1, const at::Tensor& u2, const std::optional<at::Tensor>& bias) {
  TORCH_CHECK(input.dim() >= 1, "sketched_linear: input must have at least one dimension [..., in]");
  TORCH_CHECK(s1.dim() == 3, "sketched_linear: s1 must be [L, in, k], got ", s1.sizes());
  const int64_t terms = s1.size(0), in = s1.size(1), rank = s1.size(2);
  TORCH_CHECK(s2.dim() == 3 && s2.size(0) == terms && s2.size(1) == rank, "sketched_linear: s2 must be [L=", terms,
              ", k=", rank, ", out], got ", s2.sizes());
  const int64_t out = s2.size(2);
  TORCH_CHECK(terms >= 1 && rank >= 1 && in >= 1 && out >= 1, "sketched_linear: empty sketch, s1 ", s1.sizes(), " s2 ",
              s2.sizes());
  TORCH_CHECK(u1.sizes() == s2.sizes(), "sketched_linear: u1 must be [L, k, out] = ", s2.sizes(), ", got ", u1.sizes());
  TORCH_CHECK(u2.sizes() == s1.sizes(), "sketched_linear: u2 must be [L, in, k] = ", s1.sizes(), ", got ", u2.sizes());
  TORCH_CHECK(input.size(-1) == in, "sketched_linear: input's last dimension is ", input.size(-1),
              " but the layer takes in=", in);
  TORCH_CHECK(at::isFloatingType(input.scalar_type()), "sketched_linear: input must be floating point, got ",
              input.scalar_type());
  for (const auto* t : {&s1, &s2, &u1, &u2}) {
    TORCH_CHECK(t->scalar_type() == input.scalar_type(), "sketched_linear: s1, s2, u1, u2 must have the input's dtype ",
                input.scalar_type(), ", got ", t->scalar_type());
    TORCH_CHECK(t->device() == input.device(), "sketched_linear: s1, s2, u1, u2 must be on the input's device ",
                input.device(), ", got ", t->device());
  }
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == out, "sketched_linear: bias must be [out=", out, "], got ",
                bias->sizes());
    TORCH_CHECK(bias->scalar_type() == input.scalar_type() && bias->device() == input.device(),
                "sketched_linear: bias must have the input's dtype and device");
  }
}

at::Tensor sketched_linear_reference(const at::Tensor& input, const at::Tensor& s1, const at::Tensor& s2,
                                     const at::Tensor& u1, const at::Tensor& u2,
                                     const std::optional<at::Tensor>& bias) {
  check_sketched_linear_inputs(input, s1, s2, u1, u2, bias);
  const int64_t terms = s1.size(0);
  at::Tensor sum;
  for (int64_t i = 0; i < terms; ++i) {
    at::Tensor term = at::matmul(at::matmul(input, s1[i]), u1[i]) + at::matmul(at::matmul(input, u2[i]), s2[i]);
    sum = sum.defined() ? sum + term : term;
  }
  sum = sum / static_cast<double>(2 * terms);
  if (bias.has_value() && bias->defined()) sum = sum + *bias;
  return sum;
}

at::Tensor sketched_linear_pack_left(const at::Tensor& s1, const at::Tensor& u2) {
  // [L, in, k] -> [in, L*k] for each, side by side: column t*k + c of the first half is S1[t][:, c].
  const int64_t terms = s1.size(0), in = s1.size(1), rank = s1.size(2);
  return at::cat({s1.permute({1, 0, 2}).reshape({in, terms * rank}), u2.permute({1, 0, 2}).reshape({in, terms * rank})},
                 1);
}

at::Tensor sketched_linear_pack_right(const at::Tensor& u1, const at::Tensor& s2) {
  // [L, k, out] is already [L*k, out] row-major; U1's rows first, then S2's.
  return at::cat({u1.reshape({-1, u1.size(2)}), s2.reshape({-1, s2.size(2)})}, 0);
}

at::Tensor sketched_linear_packed(const at::Tensor& rows, const at::Tensor& left, const at::Tensor& right,
                                  int64_t terms, const std::optional<at::Tensor>& bias) {
  const at::Tensor sketch = at::mm(rows, left);
  const double scale = 1.0 / static_cast<double>(2 * terms);
  if (bias.has_value() && bias->defined()) return at::addmm(*bias, sketch, right, 1.0, scale);
  return at::mm(sketch, right).mul_(scale);
}

bool sketched_linear_tensor_cores_requested() {
  const char* forced = std::getenv("HONE_SKETCH_KERNEL");
  return forced != nullptr && std::string_view(forced) == "tensor_cores";
}

}  // namespace hone::ops
