#include "hone/nn/sketched_conv2d.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/init.h>

#include <fmt/ranges.h>

#include <cmath>
#include <ostream>

#include "hone/core/error.h"
#include "hone/nn/conv_geometry.h"
#include "hone/nn/sketched_linear.h"
#include "hone/ops/sketched_conv2d.h"

namespace hone::nn {
namespace {

bool two_at_least(const std::vector<std::int64_t>& values, std::int64_t least) {
  return values.size() == 2 && values[0] >= least && values[1] >= least;
}

void check_options(const SketchedConv2dOptions& o) {
  HONE_CHECK(o.in_channels > 0 && o.out_channels > 0,
             "sketched_conv2d: in_channels and out_channels must be positive, got {} and {}", o.in_channels,
             o.out_channels);
  HONE_CHECK(two_at_least(o.kernel_size, 1), "sketched_conv2d: kernel_size must be two positive integers, got [{}]",
             fmt::join(o.kernel_size, ", "));
  HONE_CHECK(two_at_least(o.stride, 1), "sketched_conv2d: stride must be two positive integers, got [{}]",
             fmt::join(o.stride, ", "));
  HONE_CHECK(two_at_least(o.padding, 0), "sketched_conv2d: padding must be two non-negative integers, got [{}]",
             fmt::join(o.padding, ", "));
  HONE_CHECK(two_at_least(o.dilation, 1), "sketched_conv2d: dilation must be two positive integers, got [{}]",
             fmt::join(o.dilation, ", "));
  HONE_CHECK(o.terms > 0, "sketched_conv2d: terms (L) must be positive, got {}", o.terms);
  HONE_CHECK(o.rank > 0, "sketched_conv2d: rank (k) must be positive, got {}", o.rank);
}

}  // namespace

SketchedConv2dImpl::SketchedConv2dImpl(const SketchedConv2dOptions& options) : options_(options) {
  check_options(options);
  const auto& o = options_;
  torch::Tensor weight = torch::empty({o.out_channels, o.in_channels, o.kernel_size[0], o.kernel_size[1]});
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  std::optional<torch::Tensor> bias_value;
  if (o.bias) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(o.in_channels * o.kernel_size[0] * o.kernel_size[1]));
    bias_value = torch::empty({o.out_channels}).uniform_(-bound, bound);
  }
  init_from(weight, bias_value);
}

SketchedConv2dImpl::SketchedConv2dImpl(const SketchedConv2dOptions& options, const torch::Tensor& weight,
                                       const std::optional<torch::Tensor>& bias_value)
    : options_(options) {
  check_options(options);
  const auto& o = options_;
  const std::vector<std::int64_t> expected{o.out_channels, o.in_channels, o.kernel_size[0], o.kernel_size[1]};
  HONE_CHECK(weight.sizes() == torch::IntArrayRef(expected),
             "sketched_conv2d: weight must be [out, C, kh, kw] = {} (a groups = 1 convolution), got {}",
             torch::IntArrayRef(expected), weight.sizes());
  HONE_CHECK(!bias_value.has_value() || o.bias, "sketched_conv2d: a bias was given but options.bias is false");
  HONE_CHECK(!bias_value.has_value() || bias_value->sizes() == torch::IntArrayRef{o.out_channels},
             "sketched_conv2d: bias must be [out={}], got {}", o.out_channels,
             bias_value.has_value() ? bias_value->sizes() : torch::IntArrayRef{});
  init_from(weight, bias_value);
}

std::shared_ptr<SketchedConv2dImpl> SketchedConv2dImpl::from_conv(const torch::nn::Conv2dImpl& conv, std::int64_t terms,
                                                                  std::int64_t rank, std::uint64_t seed) {
  const auto geometry = Conv2dGeometry::of(conv, "sketched_conv2d");
  HONE_CHECK(geometry.groups == 1, "sketched_conv2d: only groups = 1 convolutions can be sketched, got groups = {}",
             geometry.groups);
  const SketchedConv2dOptions o{
      geometry.in,   geometry.out, geometry.kernel, geometry.stride, geometry.padding, geometry.dilation, terms, rank,
      geometry.bias, seed};
  return std::make_shared<SketchedConv2dImpl>(
      o, conv.weight, conv.bias.defined() ? std::optional<torch::Tensor>(conv.bias) : std::nullopt);
}

void SketchedConv2dImpl::init_from(const torch::Tensor& weight, const std::optional<torch::Tensor>& bias_value) {
  const auto& o = options_;
  torch::NoGradGuard no_grad;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  // Build in double so the sketched parameters are exact products, then store in the weight's dtype.
  const auto exact = torch::TensorOptions().dtype(torch::kDouble);
  const std::int64_t count = 2 * o.terms;
  const torch::Tensor u_exact = sign_sketches(count, o.rank, o.out_channels, o.rank, generator, exact);  // [2L, k, out]
  const torch::Tensor flat = weight.detach().to(torch::kDouble).cpu().reshape({o.out_channels, -1});  // [out, C·kh·kw]
  const torch::Tensor s_exact =
      torch::matmul(u_exact, flat)
          .view({count, o.rank, o.in_channels, o.kernel_size[0], o.kernel_size[1]});  // Uᵢ·W_f, [2L, k, C, kh, kw]
  const auto options = weight.options();
  s = register_parameter("s", s_exact.to(options));
  u = register_buffer("u", u_exact.to(options));
  if (o.bias)
    bias = register_parameter("bias", bias_value.has_value() ? bias_value->detach().clone().to(options)
                                                             : torch::zeros({o.out_channels}, options));
}

torch::Tensor SketchedConv2dImpl::forward(const torch::Tensor& x) {
  const auto& o = options_;
  return ops::sketched_conv2d(x, s, u, bias.defined() ? std::optional<torch::Tensor>(bias) : std::nullopt, o.stride,
                              o.padding, o.dilation);
}

torch::Tensor SketchedConv2dImpl::effective_weight() const {
  const auto& o = options_;
  // [out, 2L·k] · [2L·k, C·kh·kw] = Σᵢ Uᵢᵀ·Sᵢ
  const auto sum = torch::matmul(ops::sketched_conv2d_pack_projection(u), s.reshape({2 * o.terms * o.rank, -1}));
  return (sum / static_cast<double>(2 * o.terms))
      .view({o.out_channels, o.in_channels, o.kernel_size[0], o.kernel_size[1]});
}

nlohmann::json SketchedConv2dImpl::spec() const {
  const auto& o = options_;
  return {{"kind", "sketched_conv2d"},
          {"in", o.in_channels},
          {"out", o.out_channels},
          {"kernel", o.kernel_size},
          {"stride", o.stride},
          {"padding", o.padding},
          {"dilation", o.dilation},
          {"terms", o.terms},
          {"rank", o.rank},
          {"bias", o.bias}};
}

std::int64_t SketchedConv2dImpl::parameter_count() const { return s.numel() + (bias.defined() ? bias.numel() : 0); }
std::int64_t SketchedConv2dImpl::buffer_count() const { return u.numel(); }

void SketchedConv2dImpl::pretty_print(std::ostream& stream) const {
  const auto& o = options_;
  stream << fmt::format(
      "hone::nn::SketchedConv2d({}, {}, kernel_size=[{}], stride=[{}], padding=[{}], dilation=[{}], terms={}, "
      "rank={}, bias={})",
      o.in_channels, o.out_channels, fmt::join(o.kernel_size, ", "), fmt::join(o.stride, ", "),
      fmt::join(o.padding, ", "), fmt::join(o.dilation, ", "), o.terms, o.rank, o.bias);
}

std::int64_t sketched_conv2d_macs_per_pixel(const SketchedConv2dOptions& options) {
  const auto& o = options;
  const std::int64_t width = 2 * o.terms * o.rank;
  return width * o.in_channels * o.kernel_size.at(0) * o.kernel_size.at(1) + width * o.out_channels;
}

LayerKind sketched_conv2d_kind() {
  return {"sketched_conv2d", [](const nlohmann::json& spec) {
            SketchedConv2dOptions o;
            o.in_channels = spec_int(spec, "in");
            o.out_channels = spec_int(spec, "out");
            o.kernel_size = spec_ints(spec, "kernel");
            o.stride = spec_ints(spec, "stride");
            o.padding = spec_ints(spec, "padding");
            o.dilation = spec_ints(spec, "dilation");
            o.terms = spec_int(spec, "terms");
            o.rank = spec_int(spec, "rank");
            o.bias = spec_bool(spec, "bias");
            HONE_CHECK(o.in_channels > 0 && o.out_channels > 0 && o.terms > 0 && o.rank > 0,
                       "layer spec 'sketched_conv2d': in, out, terms and rank must be positive, got {}", spec.dump());
            HONE_CHECK(two_at_least(o.kernel_size, 1) && two_at_least(o.stride, 1) && two_at_least(o.padding, 0) &&
                           two_at_least(o.dilation, 1),
                       "layer spec 'sketched_conv2d': kernel, stride, dilation must be two positive integers and "
                       "padding two non-negative ones, got {}",
                       spec.dump());
            // Placeholder values; the saved file supplies S, the sketches and the bias.
            return make_layer(SketchedConv2d(
                o, torch::zeros({o.out_channels, o.in_channels, o.kernel_size[0], o.kernel_size[1]}), std::nullopt));
          }};
}

}  // namespace hone::nn
