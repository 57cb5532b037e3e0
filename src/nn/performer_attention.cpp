#include "hone/nn/performer_attention.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/modules/activation.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "hone/core/error.h"

namespace hone::nn {
namespace {

/// splitmix64's finalizer: turns (seed, redraw count) into well-spread generator seeds.
std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t redraw) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (redraw + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void check_heads_layout(const at::Tensor& t, const char* name, const char* what) {
  HONE_CHECK(t.defined() && t.dim() == 4, "{}: {} must be [batch, heads, seq, dim], got {}", what, name,
             t.defined() ? t.sizes() : at::IntArrayRef{});
  HONE_CHECK(t.is_floating_point(), "{}: {} must be a floating type, got {}", what, name, t.scalar_type());
}

void check_omega(const at::Tensor& x, const at::Tensor& omega, const char* what) {
  HONE_CHECK(omega.defined() && omega.dim() == 2 && omega.size(1) == x.size(-1),
             "{}: omega must be [features, head_dim = {}], got {}", what, x.size(-1),
             omega.defined() ? omega.sizes() : at::IntArrayRef{});
  HONE_CHECK(omega.size(0) > 0, "{}: omega must have at least one feature (row), got {}", what, omega.sizes());
  HONE_CHECK(omega.scalar_type() == x.scalar_type() && omega.device() == x.device(),
             "{}: omega must be {} on {} like the input, got {} on {}", what, x.scalar_type(), x.device(),
             omega.scalar_type(), omega.device());
}

/// key_padding_mask [batch, seq] -> [batch, 1, seq, 1] (true = keep), checked against x.
std::optional<at::Tensor> keep_rows(const at::Tensor& x, const std::optional<at::Tensor>& key_padding_mask,
                                    const char* what) {
  if (!key_padding_mask) return std::nullopt;
  const auto& mask = *key_padding_mask;
  HONE_CHECK(mask.defined() && mask.scalar_type() == at::kBool && mask.dim() == 2 && mask.size(0) == x.size(0) &&
                 mask.size(1) == x.size(2),
             "{}: key_padding_mask must be bool [batch, seq] = [{}, {}], got {} {}", what, x.size(0), x.size(2),
             mask.defined() ? mask.scalar_type() : at::kBool, mask.defined() ? mask.sizes() : at::IntArrayRef{});
  HONE_CHECK(mask.device() == x.device(), "{}: key_padding_mask must be on {} like the keys, got {}", what, x.device(),
             mask.device());
  return mask.view({x.size(0), 1, x.size(2), 1});
}

/// Σ_{c' < c} t[..., c', ...] along `dim`: the state before each chunk.
at::Tensor exclusive_cumsum(const at::Tensor& t, std::int64_t dim) {
  const auto count = t.size(dim);
  if (count == 1) return at::zeros_like(t);
  return at::cat({at::zeros_like(t.narrow(dim, 0, 1)), at::cumsum(t.narrow(dim, 0, count - 1), dim)}, dim);
}

at::Tensor linear_attention_causal(const at::Tensor& q_features, const at::Tensor& k_features, const at::Tensor& v,
                                   std::int64_t causal_chunk) {
  const auto batch = q_features.size(0), heads = q_features.size(1), length = q_features.size(2);
  const auto features = q_features.size(3), value_dim = v.size(3);
  const auto chunk = std::min(causal_chunk, length);
  const auto chunks = (length + chunk - 1) / chunk;
  const auto padded = chunks * chunk;
  // Zero rows at the end fill the last chunk; their outputs (0/0) are cut off before the division.
  auto pad = [&](const at::Tensor& t) {
    return padded == length ? t : at::constant_pad_nd(t, {0, 0, 0, padded - length});
  };
  const auto q = pad(q_features).view({batch, heads, chunks, chunk, features});
  const auto k = pad(k_features).view({batch, heads, chunks, chunk, features});
  const auto values = pad(v).reshape({batch, heads, chunks, chunk, value_dim});
  // Across chunks: the running Σφ(k)vᵀ and Σφ(k) of every earlier chunk.
  const auto state_before = exclusive_cumsum(at::matmul(k.transpose(-2, -1), values), 2);
  const auto sum_before = exclusive_cumsum(k.sum(-2), 2).unsqueeze(-1);
  // Within a chunk: the lower triangle (j <= i) of φ(Q)φ(K)ᵀ, directly.
  const auto scores = at::tril(at::matmul(q, k.transpose(-2, -1)));
  const auto numerator = at::matmul(q, state_before) + at::matmul(scores, values);
  const auto denominator = at::matmul(q, sum_before) + scores.sum(-1, /*keepdim=*/true);
  return numerator.reshape({batch, heads, padded, value_dim}).narrow(2, 0, length) /
         denominator.reshape({batch, heads, padded, 1}).narrow(2, 0, length);
}

struct Projection {
  const char* name;
  at::Tensor weight;
  at::Tensor bias;  // may be undefined
};

PerformerAttention from_weights(const PerformerAttentionOptions& options, const std::array<Projection, 4>& projections,
                                const char* what) {
  const auto embed = options.embed_dim();
  const auto& reference = projections[0].weight;
  bool any_bias = false;
  for (const auto& p : projections) {
    HONE_CHECK(p.weight.defined() && p.weight.dim() == 2 && p.weight.size(0) == embed && p.weight.size(1) == embed,
               "{}: {} weight must be [embed_dim, embed_dim] = [{}, {}], got {}", what, p.name, embed, embed,
               p.weight.defined() ? p.weight.sizes() : at::IntArrayRef{});
    HONE_CHECK(p.weight.scalar_type() == reference.scalar_type() && p.weight.device() == reference.device(),
               "{}: {} weight is {} on {}, the query weight {} on {}", what, p.name, p.weight.scalar_type(),
               p.weight.device(), reference.scalar_type(), reference.device());
    if (p.bias.defined()) {
      HONE_CHECK(p.bias.dim() == 1 && p.bias.size(0) == embed, "{}: {} bias must be [embed_dim] = [{}], got {}", what,
                 p.name, embed, p.bias.sizes());
      any_bias = true;
    }
  }
  auto with_bias = options;
  with_bias.bias(any_bias);
  PerformerAttention attention(with_bias);
  attention->to(reference.device(), reference.scalar_type());
  at::NoGradGuard no_grad;
  const std::array<torch::nn::LinearImpl*, 4> targets{attention->query().get(), attention->key().get(),
                                                      attention->value().get(), attention->output().get()};
  for (std::size_t i = 0; i < targets.size(); ++i) {
    targets[i]->weight.copy_(projections[i].weight);
    if (!any_bias) continue;
    if (projections[i].bias.defined()) {
      targets[i]->bias.copy_(projections[i].bias);
    } else {
      targets[i]->bias.zero_();
    }
  }
  return attention;
}

}  // namespace

PerformerKernel performer_kernel_from_name(const std::string& name) {
  if (name == "softmax") return PerformerKernel::kSoftmax;
  if (name == "relu") return PerformerKernel::kRelu;
  fail("performer attention: unknown kernel '{}' (expected softmax or relu)", name);
}

std::string performer_kernel_name(PerformerKernel kernel) {
  return kernel == PerformerKernel::kSoftmax ? "softmax" : "relu";
}

at::Tensor performer_projection(std::int64_t features, std::int64_t head_dim, bool orthogonal, std::uint64_t seed,
                                c10::ScalarType dtype) {
  HONE_CHECK(features > 0, "performer_projection: features must be positive, got {}", features);
  HONE_CHECK(head_dim > 0, "performer_projection: head_dim must be positive, got {}", head_dim);
  HONE_CHECK(at::isFloatingType(dtype), "performer_projection: dtype must be a floating type, got {}", dtype);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto options = at::TensorOptions().dtype(at::kDouble);
  if (!orthogonal) return at::randn({features, head_dim}, generator, options).to(dtype);
  std::vector<at::Tensor> blocks;
  for (std::int64_t row = 0; row < features; row += head_dim) {
    // Rows of Qᵀ for Q from the QR of a Gaussian matrix, with column signs flipped so that R's
    // diagonal is positive: only then is Q uniformly (Haar) distributed. Householder QR alone
    // returns a Q biased towards a sign pattern, which made the estimator biased (at m = 4096 its
    // error stalled at ~3x that of iid features).
    const auto [q, r] = at::linalg_qr(at::randn({head_dim, head_dim}, generator, options));
    const auto signs = at::where(r.diagonal() < 0, -1.0, 1.0);
    blocks.push_back((q * signs).transpose(0, 1).narrow(0, 0, std::min(head_dim, features - row)));
  }
  // Row lengths of Gaussian vectors, so that each row has the length distribution of N(0, I).
  const auto lengths = at::randn({features, head_dim}, generator, options).norm(2, {1}, /*keepdim=*/true);
  return (at::cat(blocks, 0) * lengths).to(dtype).contiguous();
}

at::Tensor performer_features_softmax(const at::Tensor& x, const at::Tensor& omega, PerformerRole role,
                                      const std::optional<at::Tensor>& key_padding_mask) {
  const char* what = "performer_features_softmax";
  check_heads_layout(x, "x", what);
  check_omega(x, omega, what);
  HONE_CHECK(!key_padding_mask || role == PerformerRole::kKey, "{}: key_padding_mask applies to keys only", what);
  const auto keep = keep_rows(x, key_padding_mask, what);
  const auto scaled = x * std::pow(static_cast<double>(x.size(-1)), -0.25);
  auto exponent = at::matmul(scaled, omega.transpose(0, 1)) - scaled.square().sum(-1, /*keepdim=*/true) / 2;
  if (keep) exponent = exponent.masked_fill(keep->logical_not(), -std::numeric_limits<double>::infinity());
  // The stabilizer is a positive factor per query row / per key tensor that attention's
  // normalization cancels exactly, so it carries no gradient.
  auto stabilizer = role == PerformerRole::kQuery ? exponent.detach().amax({-1}, /*keepdim=*/true)
                                                  : exponent.detach().amax({-2, -1}, /*keepdim=*/true);
  if (keep) stabilizer = stabilizer.masked_fill(stabilizer.isneginf(), 0);  // every key dropped
  return at::exp(exponent - stabilizer) / std::sqrt(static_cast<double>(omega.size(0)));
}

at::Tensor performer_features_relu(const at::Tensor& x, const at::Tensor& omega,
                                   const std::optional<at::Tensor>& key_padding_mask) {
  const char* what = "performer_features_relu";
  check_heads_layout(x, "x", what);
  check_omega(x, omega, what);
  const auto keep = keep_rows(x, key_padding_mask, what);
  auto features = (at::relu(at::matmul(x, omega.transpose(0, 1))) + kPerformerReluEpsilon) /
                  std::sqrt(static_cast<double>(omega.size(0)));
  if (keep) features = features.masked_fill(keep->logical_not(), 0);
  return features;
}

at::Tensor performer_features(const at::Tensor& x, const at::Tensor& omega, PerformerKernel kernel, PerformerRole role,
                              const std::optional<at::Tensor>& key_padding_mask) {
  return kernel == PerformerKernel::kSoftmax ? performer_features_softmax(x, omega, role, key_padding_mask)
                                             : performer_features_relu(x, omega, key_padding_mask);
}

at::Tensor performer_attention_from_features(const at::Tensor& q_features, const at::Tensor& k_features,
                                             const at::Tensor& v, bool causal, std::int64_t causal_chunk) {
  const char* what = "performer_attention_from_features";
  check_heads_layout(q_features, "q_features", what);
  check_heads_layout(k_features, "k_features", what);
  check_heads_layout(v, "v", what);
  HONE_CHECK(
      k_features.sizes().slice(0, 2) == q_features.sizes().slice(0, 2) && k_features.size(3) == q_features.size(3),
      "{}: k_features must be [batch, heads, seq, features] = [{}, {}, seq, {}] like q_features, got {}", what,
      q_features.size(0), q_features.size(1), q_features.size(3), k_features.sizes());
  HONE_CHECK(v.sizes().slice(0, 3) == k_features.sizes().slice(0, 3),
             "{}: v must be [batch, heads, seq, value_dim] with [batch, heads, seq] = {} like k_features, got {}", what,
             k_features.sizes().slice(0, 3), v.sizes());
  HONE_CHECK(!causal || q_features.size(2) == k_features.size(2),
             "{}: causal attention needs as many queries as keys, got {} and {}", what, q_features.size(2),
             k_features.size(2));
  HONE_CHECK(causal_chunk > 0, "{}: causal_chunk must be positive, got {}", what, causal_chunk);
  if (causal) return linear_attention_causal(q_features, k_features, v, causal_chunk);
  const auto state = at::matmul(k_features.transpose(-2, -1), v);               // [b, h, m, d_v]
  const auto key_sum = k_features.sum(-2, /*keepdim=*/true).transpose(-2, -1);  // [b, h, m, 1]
  return at::matmul(q_features, state) / at::matmul(q_features, key_sum);
}

at::Tensor performer_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, PerformerKernel kernel,
                               const at::Tensor& omega, bool causal, const std::optional<at::Tensor>& key_padding_mask,
                               std::int64_t causal_chunk) {
  const char* what = "performer_attention";
  check_heads_layout(q, "q", what);
  check_heads_layout(k, "k", what);
  check_heads_layout(v, "v", what);
  HONE_CHECK(k.size(0) == q.size(0) && k.size(1) == q.size(1) && k.size(3) == q.size(3),
             "{}: k must be [batch, heads, seq, head_dim] = [{}, {}, seq, {}] like q, got {}", what, q.size(0),
             q.size(1), q.size(3), k.sizes());
  HONE_CHECK(v.sizes().slice(0, 3) == k.sizes().slice(0, 3),
             "{}: v must be [batch, heads, seq, value_dim] with [batch, heads, seq] = {} like k, got {}", what,
             k.sizes().slice(0, 3), v.sizes());
  HONE_CHECK(k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type(),
             "{}: q, k and v must have one dtype, got {}, {}, {}", what, q.scalar_type(), k.scalar_type(),
             v.scalar_type());
  check_omega(q, omega, what);
  keep_rows(k, key_padding_mask, what);  // checked here too, so that the message names this function
  const auto q_features = performer_features(q, omega, kernel, PerformerRole::kQuery);
  const auto k_features = performer_features(k, omega, kernel, PerformerRole::kKey, key_padding_mask);
  return performer_attention_from_features(q_features, k_features, v, causal, causal_chunk);
}

PerformerAttentionImpl::PerformerAttentionImpl(PerformerAttentionOptions options) : options_(std::move(options)) {
  const auto embed = options_.embed_dim(), heads = options_.heads();
  HONE_CHECK(embed > 0, "performer attention: embed_dim must be positive, got {}", embed);
  HONE_CHECK(heads > 0 && embed % heads == 0, "performer attention: embed_dim {} is not divisible by heads {}", embed,
             heads);
  HONE_CHECK(options_.features() > 0, "performer attention: features must be positive, got {}", options_.features());
  const auto linear = torch::nn::LinearOptions(embed, embed).bias(options_.bias());
  query_ = register_module("query", torch::nn::Linear(linear));
  key_ = register_module("key", torch::nn::Linear(linear));
  value_ = register_module("value", torch::nn::Linear(linear));
  output_ = register_module("output", torch::nn::Linear(linear));
  projection_ = register_buffer(
      "projection", performer_projection(options_.features(), head_dim(), options_.orthogonal(), options_.seed()));
}

at::Tensor PerformerAttentionImpl::forward(const at::Tensor& x, const std::optional<at::Tensor>& key_padding_mask) {
  const auto embed = options_.embed_dim();
  HONE_CHECK(x.defined() && x.dim() == 3 && x.size(2) == embed,
             "performer attention: x must be [batch, seq, embed_dim = {}], got {}", embed,
             x.defined() ? x.sizes() : at::IntArrayRef{});
  const auto batch = x.size(0), length = x.size(1);
  auto split_heads = [&](const at::Tensor& t) {
    return t.view({batch, length, options_.heads(), head_dim()}).transpose(1, 2);
  };
  const auto context = performer_attention(split_heads(query_->forward(x)), split_heads(key_->forward(x)),
                                           split_heads(value_->forward(x)), options_.kernel(), projection_,
                                           options_.causal(), key_padding_mask);
  return output_->forward(context.transpose(1, 2).reshape({batch, length, embed}));
}

bool PerformerAttentionImpl::redraw_features() {
  if (!options_.redraw()) return false;
  const auto fresh =
      performer_projection(options_.features(), head_dim(), options_.orthogonal(),
                           mix_seed(options_.seed(), static_cast<std::uint64_t>(redraws_)), projection_.scalar_type());
  at::NoGradGuard no_grad;
  projection_.copy_(fresh);
  ++redraws_;
  return true;
}

void PerformerAttentionImpl::pretty_print(std::ostream& stream) const {
  stream << "hone::nn::PerformerAttention(embed_dim=" << options_.embed_dim() << ", heads=" << options_.heads()
         << ", features=" << options_.features() << ", kernel=" << performer_kernel_name(options_.kernel())
         << ", causal=" << std::boolalpha << options_.causal() << ", orthogonal=" << options_.orthogonal() << ")";
}

PerformerAttention performer_attention_from_linears(const PerformerAttentionOptions& options,
                                                    const torch::nn::LinearImpl& query,
                                                    const torch::nn::LinearImpl& key,
                                                    const torch::nn::LinearImpl& value,
                                                    const torch::nn::LinearImpl& output) {
  return from_weights(options,
                      {Projection{"query", query.weight, query.bias}, Projection{"key", key.weight, key.bias},
                       Projection{"value", value.weight, value.bias}, Projection{"output", output.weight, output.bias}},
                      "performer_attention_from_linears");
}

PerformerAttention performer_attention_from_multihead(const PerformerAttentionOptions& options,
                                                      const torch::nn::MultiheadAttentionImpl& exact) {
  const char* what = "performer_attention_from_multihead";
  const auto& exact_options = exact.options;
  HONE_CHECK(exact_options.embed_dim() == options.embed_dim() && exact_options.num_heads() == options.heads(),
             "{}: options say embed_dim {} and heads {}, the MultiheadAttention has {} and {}", what,
             options.embed_dim(), options.heads(), exact_options.embed_dim(), exact_options.num_heads());
  HONE_CHECK(exact._qkv_same_embed_dim, "{}: key and value dims ({}, {}) must equal embed_dim {}", what,
             exact_options.kdim(), exact_options.vdim(), exact_options.embed_dim());
  HONE_CHECK(!exact_options.add_bias_kv() && !exact_options.add_zero_attn(),
             "{}: add_bias_kv and add_zero_attn have no Performer counterpart", what);
  const auto weights = exact.in_proj_weight.chunk(3, 0);
  std::vector<at::Tensor> biases(3);
  if (exact.in_proj_bias.defined()) biases = exact.in_proj_bias.chunk(3, 0);
  return from_weights(
      options,
      {Projection{"query", weights[0], biases[0]}, Projection{"key", weights[1], biases[1]},
       Projection{"value", weights[2], biases[2]}, Projection{"output", exact.out_proj->weight, exact.out_proj->bias}},
      what);
}

}  // namespace hone::nn
