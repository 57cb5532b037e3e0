#pragma once
/// @file Finite-difference gradient check in double precision (as torch.autograd.gradcheck): the
/// analytic gradient of ⟨f(inputs), w⟩ for a fixed random w against central differences, element by
/// element, for every input that requires grad.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

namespace hone::testing {

struct GradcheckResult {
  /// Largest |analytic − numeric| / max(1, |numeric|) over every checked element.
  double max_error = 0.0;
  /// Which input and element it was, for the failure message.
  std::string where;
};

/// Checks d⟨f(inputs), w⟩/d input for every input with requires_grad (they must be double).
/// `eps` is the central-difference step; errors of O(eps²) are expected.
inline GradcheckResult gradcheck(const std::function<at::Tensor(const std::vector<at::Tensor>&)>& f,
                                 std::vector<at::Tensor> inputs, double eps = 1e-6, uint64_t seed = 7) {
  GradcheckResult result;
  at::Tensor out = f(inputs);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor weight = at::randn(out.sizes(), gen, out.options().requires_grad(false)).detach();
  std::vector<at::Tensor> wrt;
  std::vector<size_t> index;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].requires_grad()) {
      wrt.push_back(inputs[i]);
      index.push_back(i);
    }
  const auto analytic = torch::autograd::grad({(out * weight).sum()}, wrt, {}, false, false, true);
  for (size_t n = 0; n < wrt.size(); ++n) {
    const size_t i = index[n];
    at::Tensor grad = analytic[n].defined() ? analytic[n].contiguous() : at::zeros_like(inputs[i]);
    at::NoGradGuard no_grad;
    // f sees a contiguous copy of the input with one element moved by ±eps.
    at::Tensor base = inputs[i].detach().clone().contiguous();
    auto flat = base.view({-1});
    auto grad_flat = grad.view({-1});
    for (int64_t e = 0; e < flat.numel(); ++e) {
      const double original = flat[e].item<double>();
      std::vector<at::Tensor> args = inputs;
      flat[e] = original + eps;
      args[i] = base.clone();
      const double plus = (f(args) * weight).sum().item<double>();
      flat[e] = original - eps;
      args[i] = base.clone();
      const double minus = (f(args) * weight).sum().item<double>();
      flat[e] = original;
      const double numeric = (plus - minus) / (2 * eps);
      const double error = std::abs(grad_flat[e].item<double>() - numeric) / std::max(1.0, std::abs(numeric));
      if (error > result.max_error) {
        result.max_error = error;
        result.where = "input " + std::to_string(i) + " element " + std::to_string(e) + ": analytic " +
                       std::to_string(grad_flat[e].item<double>()) + " numeric " + std::to_string(numeric);
      }
    }
  }
  return result;
}

}  // namespace hone::testing
