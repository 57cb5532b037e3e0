#pragma once
/// @file Randomized multi-head attention (Performer, FAVOR+; Choromanski et al., "Rethinking
/// Attention with Performers", ICLR 2021). Exact attention softmax(QKᵀ/√d)·V costs O(n²) time and
/// memory in the sequence length n; FAVOR+ replaces the kernel exp(q·k/√d) by an inner product of
/// random features φ(q)·φ(k) with m features, so that
///
///     out = φ(Q)·(φ(K)ᵀV) / (φ(Q)·(φ(K)ᵀ1))
///
/// costs O(n·m·d) time and O(n·m + m·d) memory per head: linear in n.
///
/// What is approximated: with the softmax kernel (positive random features) φ(q)·φ(k) is an
/// unbiased estimator of exp(q·k/√d), and the output is a ratio of two such estimators, so it
/// converges to exact softmax attention as m grows (error ~ 1/√m, growing with ‖q‖·‖k‖/√d). The
/// ReLU kernel is not an estimator of softmax: it is a different attention (kernel relu(ωq)·relu(ωk))
/// that a model is trained with. Everything else (projections, normalization, masking) is exact.
///
/// Every function here is plain ATen ops: float, double and bfloat16, on CPU or CUDA, with autograd.
#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>
#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

namespace torch::nn {
class MultiheadAttentionImpl;
}

namespace hone::nn {

/// Which random features φ: kSoftmax (FAVOR+ positive features, estimates softmax attention) or
/// kRelu (relu(ωx), a different kernel).
enum class PerformerKernel { kSoftmax, kRelu };

/// "softmax" | "relu" -> the kernel; anything else throws hone::Error naming the accepted names.
PerformerKernel performer_kernel_from_name(const std::string& name);
/// The kernel's name, as performer_kernel_from_name accepts it.
std::string performer_kernel_name(PerformerKernel kernel);

/// Whether features are computed for queries or keys: they differ only in the numerical
/// stabilizer (see performer_features_softmax).
enum class PerformerRole { kQuery, kKey };

/// How many sequence positions the causal prefix scan handles per chunk (see performer_attention).
inline constexpr std::int64_t kPerformerCausalChunk = 64;

/// Added to every ReLU feature (before the 1/√m scale), as in the Performer reference code
/// (kernel_epsilon = 1e-3): keeps the normalizer φ(q)·Σφ(k) > 0 when relu zeroes every feature.
inline constexpr double kPerformerReluEpsilon = 1e-3;

/// The random projection ω [features, head_dim], deterministic from `seed` (drawn in double on
/// the CPU, then cast to `dtype`).
///   - orthogonal: blocks of head_dim rows that are orthonormal within a block (QR of a Gaussian
///     matrix; the last block is truncated), each row rescaled to the norm of an independent
///     Gaussian vector of size head_dim, so every row is still distributed as N(0, I) but rows of
///     a block are exactly orthogonal (lower variance; Performer's "ORF").
///   - otherwise: iid N(0, 1) entries.
/// Throws hone::Error when features or head_dim is not positive.
at::Tensor performer_projection(std::int64_t features, std::int64_t head_dim, bool orthogonal, std::uint64_t seed,
                                c10::ScalarType dtype = c10::kFloat);

/// Softmax-kernel positive random features of x [batch, heads, seq, head_dim] for ω [m, head_dim]:
/// with x' = x·head_dim^(-1/4),
///
///     φ(x) = exp(ω·x' − ‖x'‖²/2 − c) / √m          -> [batch, heads, seq, m]
///
/// so that E[φ(q)·φ(k)] = exp(q·k/√d)·exp(−c_q − c_k). The stabilizer c is the largest exponent
/// (taken without gradient): for queries per row, for keys one value per (batch, head) over every
/// kept key and feature. Both factors cancel exactly in attention's normalization, so gradients
/// through performer_attention are exact; φ alone is defined only up to those factors.
/// key_padding_mask [batch, seq] bool (true = keep, keys only): dropped rows are excluded from the
/// stabilizer and set to zero. Time O(batch·heads·seq·m·head_dim); memory O(batch·heads·seq·m).
at::Tensor performer_features_softmax(const at::Tensor& x, const at::Tensor& omega, PerformerRole role,
                                      const std::optional<at::Tensor>& key_padding_mask = std::nullopt);

/// ReLU-kernel features: φ(x) = (relu(ω·x) + kPerformerReluEpsilon) / √m -> [batch, heads, seq, m]
/// (no input scaling: relu is positively homogeneous). key_padding_mask as for
/// performer_features_softmax (dropped rows are zero).
at::Tensor performer_features_relu(const at::Tensor& x, const at::Tensor& omega,
                                   const std::optional<at::Tensor>& key_padding_mask = std::nullopt);

/// performer_features_softmax or performer_features_relu, by kernel.
at::Tensor performer_features(const at::Tensor& x, const at::Tensor& omega, PerformerKernel kernel, PerformerRole role,
                              const std::optional<at::Tensor>& key_padding_mask = std::nullopt);

/// Linear attention on given features: q_features [b, h, n_q, m], k_features [b, h, n_k, m],
/// v [b, h, n_k, d_v] -> [b, h, n_q, d_v], out_i = φ(q_i)·Σ_j φ(k_j)v_jᵀ / φ(q_i)·Σ_j φ(k_j).
///   - non-causal: j over all keys. Time O(b·h·(n_q + n_k)·m·d_v); extra memory O(b·h·m·d_v).
///   - causal (n_q = n_k = n): j ≤ i, as prefix sums computed chunk by chunk: within a chunk of c =
///     causal_chunk positions the c×c masked products directly, across chunks the running state
///     Σφ(k_j)v_jᵀ. Time O(b·h·n·(m·d_v + c·(m + d_v))), extra memory O(b·h·(n/c·m·d_v + n·c)) —
///     instead of the O(b·h·n·m·d_v) of a cumsum over every position's outer product.
/// A query whose every (kept) key has zero features gets 0/0 = NaN, as exact attention does with
/// every key masked (e.g. a causal query at position 0 whose key is padding).
at::Tensor performer_attention_from_features(const at::Tensor& q_features, const at::Tensor& k_features,
                                             const at::Tensor& v, bool causal,
                                             std::int64_t causal_chunk = kPerformerCausalChunk);

/// Randomized attention: q [b, h, n_q, d], k [b, h, n_k, d], v [b, h, n_k, d_v], ω [m, d] (same
/// dtype and device as q) -> [b, h, n_q, d_v]. performer_features of q and k, then
/// performer_attention_from_features (costs there). key_padding_mask [b, n_k] bool, true = keep:
/// dropped keys contribute nothing. Throws hone::Error naming the argument on bad shapes or dtypes.
at::Tensor performer_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, PerformerKernel kernel,
                               const at::Tensor& omega, bool causal,
                               const std::optional<at::Tensor>& key_padding_mask = std::nullopt,
                               std::int64_t causal_chunk = kPerformerCausalChunk);

struct PerformerAttentionOptions {
  PerformerAttentionOptions(std::int64_t embed_dim, std::int64_t heads) : embed_dim_(embed_dim), heads_(heads) {}
  /// Model width; must be divisible by heads (head_dim = embed_dim / heads).
  TORCH_ARG(std::int64_t, embed_dim);
  TORCH_ARG(std::int64_t, heads);
  /// Random features m: cost and memory grow linearly in m, estimator error falls as 1/√m.
  TORCH_ARG(std::int64_t, features) = 256;
  TORCH_ARG(PerformerKernel, kernel) = PerformerKernel::kSoftmax;
  TORCH_ARG(bool, causal) = false;
  /// Orthogonal random features (see performer_projection) rather than iid Gaussian.
  TORCH_ARG(bool, orthogonal) = true;
  /// Seed of the first projection; redraw k uses a seed derived from (seed, k).
  TORCH_ARG(std::uint64_t, seed) = 0;
  /// Whether redraw_features() re-samples ω (Performer redraws during training).
  TORCH_ARG(bool, redraw) = false;
  /// Biases on the query, key, value and output projections.
  TORCH_ARG(bool, bias) = true;
};

/// Multi-head self-attention whose softmax is replaced by FAVOR+: x -> query/key/value Linears ->
/// split into heads -> performer_attention (ω shared by every head) -> merge -> output Linear.
/// Submodules query, key, value, output; ω is the buffer "projection" [features, head_dim] (saved
/// with the module and counted in its buffers). Time O(batch·seq·(embed² + embed·m)), memory
/// O(batch·seq·(embed + heads·m)) where exact attention needs O(batch·heads·seq²).
class PerformerAttentionImpl : public torch::nn::Module {
 public:
  explicit PerformerAttentionImpl(PerformerAttentionOptions options);
  /// x [batch, seq, embed_dim] -> [batch, seq, embed_dim]. key_padding_mask [batch, seq] bool,
  /// true = keep (the opposite of TransformerEncoderLayer's mask): padded keys contribute nothing.
  at::Tensor forward(const at::Tensor& x, const std::optional<at::Tensor>& key_padding_mask = std::nullopt);
  /// Draws a new ω (in place, same dtype and device) when options.redraw is set and returns true;
  /// returns false and changes nothing otherwise. Deterministic: the k-th redraw of modules with
  /// the same seed gives the same ω.
  bool redraw_features();

  const PerformerAttentionOptions& options() const { return options_; }
  std::int64_t head_dim() const { return options_.embed_dim() / options_.heads(); }
  /// The projections [embed_dim, embed_dim] (registered as "query", "key", "value", "output").
  torch::nn::Linear& query() { return query_; }
  torch::nn::Linear& key() { return key_; }
  torch::nn::Linear& value() { return value_; }
  torch::nn::Linear& output() { return output_; }
  /// ω [features, head_dim], the registered buffer "projection".
  const at::Tensor& projection() const { return projection_; }
  /// How many times ω has been redrawn.
  std::int64_t redraws() const { return redraws_; }
  void pretty_print(std::ostream& stream) const override;

 private:
  PerformerAttentionOptions options_;
  torch::nn::Linear query_{nullptr}, key_{nullptr}, value_{nullptr}, output_{nullptr};
  at::Tensor projection_;
  std::int64_t redraws_ = 0;
};
TORCH_MODULE(PerformerAttention);

/// Swaps an exact attention layer for its randomized approximation: a PerformerAttention whose
/// query/key/value/output weights and biases are copies of the given Linears' (each [embed_dim,
/// embed_dim]; a missing bias becomes zeros). Only the softmax is approximated (options.kernel
/// should be kSoftmax for that). Throws hone::Error naming the Linear whose shape does not fit.
PerformerAttention performer_attention_from_linears(const PerformerAttentionOptions& options,
                                                    const torch::nn::LinearImpl& query,
                                                    const torch::nn::LinearImpl& key,
                                                    const torch::nn::LinearImpl& value,
                                                    const torch::nn::LinearImpl& output);

/// The same from a torch::nn::MultiheadAttention (packed in_proj_weight split into query, key,
/// value; out_proj as output). options.embed_dim and heads must equal the layer's; layers with
/// separate key/value dims, bias_k/bias_v or add_zero_attn are refused with a hone::Error.
PerformerAttention performer_attention_from_multihead(const PerformerAttentionOptions& options,
                                                      const torch::nn::MultiheadAttentionImpl& exact);

}  // namespace hone::nn
