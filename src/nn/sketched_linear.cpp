#include "hone/nn/sketched_linear.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>
#include <torch/nn/init.h>

#include <cmath>
#include <ostream>

#include "hone/core/error.h"
#include "hone/ops/sketched_linear.h"

namespace hone::nn {
namespace {

void check_options(const SketchedLinearOptions& o) {
  HONE_CHECK(o.in > 0 && o.out > 0, "sketched_linear: in and out must be positive, got {} and {}", o.in, o.out);
  HONE_CHECK(o.terms > 0, "sketched_linear: terms (L) must be positive, got {}", o.terms);
  HONE_CHECK(o.rank > 0, "sketched_linear: rank (k) must be positive, got {}", o.rank);
}

}  // namespace

SketchedLinearImpl::SketchedLinearImpl(const SketchedLinearOptions& options) : options_(options) {
  check_options(options);
  torch::Tensor weight = torch::empty({options.out, options.in});
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  std::optional<torch::Tensor> bias_value;
  if (options.bias) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(options.in));
    bias_value = torch::empty({options.out}).uniform_(-bound, bound);
  }
  init_from(weight, bias_value);
}

SketchedLinearImpl::SketchedLinearImpl(const SketchedLinearOptions& options, const torch::Tensor& weight,
                                       const std::optional<torch::Tensor>& bias_value)
    : options_(options) {
  check_options(options);
  HONE_CHECK(weight.dim() == 2 && weight.size(0) == options.out && weight.size(1) == options.in,
             "sketched_linear: weight must be [out={}, in={}], got {}", options.out, options.in,
             fmt::format("{}", weight.sizes()));
  HONE_CHECK(!bias_value.has_value() || !options.bias || bias_value->sizes() == torch::IntArrayRef{options.out},
             "sketched_linear: bias must be [out={}]", options.out);
  init_from(weight, bias_value);
}

void SketchedLinearImpl::init_from(const torch::Tensor& weight, const std::optional<torch::Tensor>& bias_value) {
  const auto& o = options_;
  torch::NoGradGuard no_grad;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  // Build in double so the sketched parameters are exact products, then store in the weight's dtype.
  const auto exact = torch::TensorOptions().dtype(torch::kDouble);
  const torch::Tensor u1_exact = sign_sketches(o.terms, o.rank, o.out, o.rank, generator, exact);
  const torch::Tensor u2_exact = sign_sketches(o.terms, o.in, o.rank, o.rank, generator, exact);
  const torch::Tensor map = weight.detach().to(torch::kDouble).cpu().t();       // [in, out]
  const torch::Tensor s1_exact = torch::matmul(map, u1_exact.transpose(1, 2));  // [L, in, k]
  const torch::Tensor s2_exact = torch::matmul(u2_exact.transpose(1, 2), map);  // [L, k, out]
  const auto options = weight.options();
  s1 = register_parameter("s1", s1_exact.to(options));
  s2 = register_parameter("s2", s2_exact.to(options));
  u1 = register_buffer("u1", u1_exact.to(options));
  u2 = register_buffer("u2", u2_exact.to(options));
  if (o.bias)
    bias = register_parameter(
        "bias", bias_value.has_value() ? bias_value->detach().clone().to(options) : torch::zeros({o.out}, options));
}

const SketchedLinearImpl::Packed& SketchedLinearImpl::packed() {
  const std::array<const torch::Tensor*, 4> sources{&s1, &s2, &u1, &u2};
  Packed key;
  for (std::size_t i = 0; i < sources.size(); ++i) {
    key.data[i] = sources[i]->data_ptr();
    key.versions[i] = sources[i]->_version();
  }
  if (!packed_ || packed_->data != key.data || packed_->versions != key.versions) {
    torch::NoGradGuard no_grad;
    key.left = ops::sketched_linear_pack_left(s1, u2);
    key.right = ops::sketched_linear_pack_right(u1, s2);
    packed_ = std::move(key);
  }
  return *packed_;
}

torch::Tensor SketchedLinearImpl::forward(const torch::Tensor& x) {
  const bool wants_grad =
      at::GradMode::is_enabled() &&
      (x.requires_grad() || s1.requires_grad() || s2.requires_grad() || (bias.defined() && bias.requires_grad()));
  if (x.is_cuda() && !wants_grad && !ops::sketched_linear_tensor_cores_requested() &&
      x.scalar_type() == s1.scalar_type() && s1.is_cuda() && x.dim() >= 1 && x.size(-1) == options_.in) {
    const Packed& p = packed();
    auto out_shape = x.sizes().vec();
    out_shape.back() = options_.out;
    const auto bias_arg = bias.defined() ? std::optional<torch::Tensor>(bias) : std::nullopt;
    return ops::sketched_linear_packed(x.reshape({-1, options_.in}).contiguous(), p.left, p.right, options_.terms,
                                       bias_arg)
        .view(out_shape);
  }
  return ops::sketched_linear(x, s1, s2, u1, u2, bias.defined() ? std::optional<torch::Tensor>(bias) : std::nullopt);
}

torch::Tensor SketchedLinearImpl::effective_weight() const {
  const auto sum = torch::matmul(s1, u1).sum(0) + torch::matmul(u2, s2).sum(0);  // [in, out]
  return (sum / static_cast<double>(2 * options_.terms)).t();
}

std::int64_t SketchedLinearImpl::parameter_count() const {
  return s1.numel() + s2.numel() + (bias.defined() ? bias.numel() : 0);
}
std::int64_t SketchedLinearImpl::buffer_count() const { return u1.numel() + u2.numel(); }

void SketchedLinearImpl::pretty_print(std::ostream& stream) const {
  stream << "hone::nn::SketchedLinear(in_features=" << options_.in << ", out_features=" << options_.out
         << ", terms=" << options_.terms << ", rank=" << options_.rank
         << ", bias=" << (options_.bias ? "true" : "false") << ")";
}

torch::Tensor sign_sketches(std::int64_t count, std::int64_t rows, std::int64_t cols, std::int64_t rank,
                            at::Generator& generator, const torch::TensorOptions& options) {
  const auto signs = at::randint(0, 2, {count, rows, cols}, generator, torch::TensorOptions().dtype(torch::kFloat));
  return ((signs * 2 - 1) / std::sqrt(static_cast<double>(rank))).to(options);
}

std::int64_t sketched_linear_macs(std::int64_t in, std::int64_t out, std::int64_t terms, std::int64_t rank) {
  return 2 * terms * rank * (in + out);
}

LayerKind sketched_linear_kind() {
  return {"sketched_linear", [](const nlohmann::json& spec) {
            SketchedLinearOptions o;
            o.in = spec_int(spec, "in");
            o.out = spec_int(spec, "out");
            o.terms = spec_int(spec, "terms");
            o.rank = spec_int(spec, "rank");
            o.bias = spec_bool(spec, "bias");
            HONE_CHECK(o.in > 0 && o.out > 0 && o.terms > 0 && o.rank > 0,
                       "layer spec 'sketched_linear': in, out, terms and rank must be positive, got {}", spec.dump());
            // Placeholder values; the saved file supplies S1, S2, the sketches and the bias.
            return make_layer(SketchedLinear(o, torch::zeros({o.out, o.in}), std::nullopt));
          }};
}

}  // namespace hone::nn
