// Performer (FAVOR+) attention: the linear-time paths against an explicit quadratic reference on
// the same features, gradients against finite differences, the softmax estimator against exact
// softmax attention as the number of features grows, key padding, the module built from an exact
// attention layer, and errors that name the argument.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "hone/core/error.h"
#include "hone/nn/performer_attention.h"
#include "support/error_message.h"
#include "support/gradcheck.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone::nn {
namespace {

using testing::relative_error;

// Odd sizes throughout: seq 13, head_dim 12, 3 heads; causal chunks of 4 and 5 leave tails.
constexpr std::int64_t kBatch = 2, kHeads = 3, kSeq = 13, kHeadDim = 12;

struct Operands {
  torch::Tensor q, k, v;
};

/// q, k, v [batch, heads, seq, head_dim] with entries N(0, scale²); q is a non-contiguous view
/// (heads split from [batch, seq, heads, head_dim], as a module does).
Operands random_operands(std::uint64_t seed, double scale, torch::Dtype dtype = torch::kDouble,
                         std::int64_t batch = kBatch) {
  torch::manual_seed(seed);
  const auto o = torch::TensorOptions().dtype(dtype);
  Operands p;
  p.q = (torch::randn({batch, kSeq, kHeads, kHeadDim}, o) * scale).transpose(1, 2);
  p.k = torch::randn({batch, kHeads, kSeq, kHeadDim}, o) * scale;
  p.v = torch::randn({batch, kHeads, kSeq, kHeadDim}, o);
  return p;
}

/// The same attention in O(n²): A = φ(Q)φ(K)ᵀ, entries j > i zeroed when causal, rows normalized.
torch::Tensor quadratic_reference(const torch::Tensor& q_features, const torch::Tensor& k_features,
                                  const torch::Tensor& v, bool causal) {
  auto scores = torch::matmul(q_features, k_features.transpose(-2, -1));
  if (causal) {
    const auto n = scores.size(-1);
    const auto later = torch::ones({n, n}, torch::kBool).triu(1);
    scores = scores.masked_fill(later, 0);
  }
  return torch::matmul(scores / scores.sum(-1, /*keepdim=*/true), v);
}

/// Exact softmax attention softmax(QKᵀ/√d)·V, with the future masked when causal.
torch::Tensor exact_attention(const Operands& p, bool causal) {
  auto logits = torch::matmul(p.q, p.k.transpose(-2, -1)) / std::sqrt(static_cast<double>(p.q.size(-1)));
  if (causal) {
    const auto n = logits.size(-1);
    logits = logits.masked_fill(torch::ones({n, n}, torch::kBool).triu(1), -std::numeric_limits<double>::infinity());
  }
  return torch::matmul(torch::softmax(logits, -1), p.v);
}

void note(const std::string& what, double value, double bound) {
  std::cout << "[ measured ] " << what << ": " << value << " (bound " << bound << ")\n";
}

using KernelAndCausal = std::tuple<PerformerKernel, bool>;
class PerformerAttentionCases : public ::testing::TestWithParam<KernelAndCausal> {};

TEST_P(PerformerAttentionCases, MatchesTheQuadraticReferenceOnTheSameFeatures) {
  const auto [kernel, causal] = GetParam();
  const auto p = random_operands(1, 0.7);
  const auto omega = performer_projection(16, kHeadDim, true, 5, torch::kDouble);
  const auto reference = quadratic_reference(performer_features(p.q, omega, kernel, PerformerRole::kQuery),
                                             performer_features(p.k, omega, kernel, PerformerRole::kKey), p.v, causal);
  // One chunk, chunks with a tail, the default chunk (longer than the sequence).
  for (const std::int64_t chunk : {kSeq, std::int64_t{4}, std::int64_t{5}, kPerformerCausalChunk}) {
    const auto out = performer_attention(p.q, p.k, p.v, kernel, omega, causal, std::nullopt, chunk);
    ASSERT_EQ(out.sizes(), p.v.sizes());
    const double error = relative_error(out, reference);
    note("fp64 vs quadratic reference, " + performer_kernel_name(kernel) + (causal ? " causal" : "") + ", chunk " +
             std::to_string(chunk),
         error, testing::kFp64.relative);
    EXPECT_LT(error, testing::kFp64.relative) << "chunk " << chunk;
    if (!causal) break;  // the chunk only matters for the causal scan
  }
}

TEST_P(PerformerAttentionCases, GradcheckInDoubleWithRespectToQueriesKeysValues) {
  const auto [kernel, causal] = GetParam();
  auto p = random_operands(2, 0.7, torch::kDouble, /*batch=*/1);
  const auto omega = performer_projection(16, kHeadDim, true, 6, torch::kDouble);
  const auto result = testing::gradcheck(
      [&, kernel = kernel, causal = causal](const std::vector<torch::Tensor>& a) {
        return performer_attention(a[0], a[1], a[2], kernel, omega, causal, std::nullopt, /*causal_chunk=*/4);
      },
      {p.q.contiguous().requires_grad_(true), p.k.requires_grad_(true), p.v.requires_grad_(true)});
  note("gradcheck performer_attention " + performer_kernel_name(kernel) + (causal ? " causal" : ""), result.max_error,
       testing::kGradcheck.relative);
  EXPECT_LT(result.max_error, testing::kGradcheck.relative) << result.where;
}

TEST_P(PerformerAttentionCases, FloatAndBfloat16MatchDoubleOnTheSameRoundedInputs) {
  const auto [kernel, causal] = GetParam();
  const auto p = random_operands(3, 0.7);
  const auto omega = performer_projection(32, kHeadDim, true, 7, torch::kDouble);
  struct Case {
    torch::Dtype dtype;
    testing::Tolerance tolerance;
  };
  for (const Case c : {Case{torch::kFloat, testing::kFp32Reordered}, Case{torch::kBFloat16, testing::kBf16}}) {
    auto cast = [&](const torch::Tensor& t) { return t.to(c.dtype); };
    auto back = [&](const torch::Tensor& t) { return t.to(c.dtype).to(torch::kDouble); };
    const auto out = performer_attention(cast(p.q), cast(p.k), cast(p.v), kernel, cast(omega), causal, std::nullopt, 5);
    EXPECT_EQ(out.scalar_type(), c.dtype);
    const auto reference = performer_attention(back(p.q), back(p.k), back(p.v), kernel, back(omega), causal);
    const double error = relative_error(out, reference);
    note(std::string(c10::toString(c.dtype)) + " vs fp64, " + performer_kernel_name(kernel) + (causal ? " causal" : ""),
         error, c.tolerance.relative);
    EXPECT_LT(error, c.tolerance.relative) << c10::toString(c.dtype);
  }
}

INSTANTIATE_TEST_SUITE_P(KernelsAndMasks, PerformerAttentionCases,
                         ::testing::Combine(::testing::Values(PerformerKernel::kSoftmax, PerformerKernel::kRelu),
                                            ::testing::Bool()),
                         [](const ::testing::TestParamInfo<KernelAndCausal>& info) {
                           return performer_kernel_name(std::get<0>(info.param)) +
                                  (std::get<1>(info.param) ? "Causal" : "Bidirectional");
                         });

TEST(PerformerAttentionTest, SoftmaxEstimatorApproachesExactAttentionAsFeaturesGrow) {
  // Small-norm inputs (entries N(0, 0.09), ‖q‖ ≈ 1): the estimator's variance grows like
  // exp(‖q‖² + ‖k‖²)/√d, so larger inputs need many more features for the same error.
  const auto p = random_operands(4, 0.3);
  for (const bool causal : {false, true}) {
    const auto exact = exact_attention(p, causal);
    auto error_with = [&](std::int64_t features) {
      const auto omega = performer_projection(features, kHeadDim, true, 11, torch::kDouble);
      return relative_error(performer_attention(p.q, p.k, p.v, PerformerKernel::kSoftmax, omega, causal), exact);
    };
    const double few = error_with(64), many = error_with(4096);
    // Error ~ 1/√m: 8x lower from 64 to 4096 features; ask for at least 4x, and an absolute bound.
    constexpr double kBoundAt4096 = 0.03;
    note(std::string("softmax estimator vs exact attention") + (causal ? " causal" : "") + ", m = 64", few, 1.0);
    note(std::string("softmax estimator vs exact attention") + (causal ? " causal" : "") + ", m = 4096", many,
         kBoundAt4096);
    EXPECT_LT(many, few / 4) << "causal " << causal;
    EXPECT_LT(many, kBoundAt4096) << "causal " << causal;
  }
}

TEST(PerformerAttentionTest, OrthogonalFeaturesHaveLowerErrorThanIidOnAverage) {
  // Measured before asserting (10 input draws x 20 seeds, m = 24 and 64): orthogonal features
  // had a 6-17% lower mean error on every draw. Without the sign fix in performer_projection's QR
  // they were biased and lost to iid features at m = 4096.
  const auto p = random_operands(5, 0.3);
  const auto exact = exact_attention(p, false);
  constexpr int kSeeds = 20;
  double orthogonal = 0.0, iid = 0.0;
  for (int seed = 0; seed < kSeeds; ++seed) {
    for (const bool orth : {true, false}) {
      const auto omega = performer_projection(24, kHeadDim, orth, 100 + seed, torch::kDouble);
      const double error =
          relative_error(performer_attention(p.q, p.k, p.v, PerformerKernel::kSoftmax, omega, false), exact);
      (orth ? orthogonal : iid) += error / kSeeds;
    }
  }
  note("mean error over 20 seeds, m = 24, orthogonal", orthogonal, iid);
  note("mean error over 20 seeds, m = 24, iid", iid, 1.0);
  EXPECT_LT(orthogonal, iid);
}

TEST(PerformerAttentionTest, ProjectionIsDeterministicAndOrthogonalWithinBlocks) {
  const auto a = performer_projection(30, kHeadDim, true, 9, torch::kDouble);
  EXPECT_TRUE(torch::equal(a, performer_projection(30, kHeadDim, true, 9, torch::kDouble)));
  EXPECT_FALSE(torch::equal(a, performer_projection(30, kHeadDim, true, 10, torch::kDouble)));
  ASSERT_EQ(a.sizes(), (torch::IntArrayRef{30, kHeadDim}));
  // Blocks of head_dim rows (12, 12, then 6) are mutually orthogonal.
  for (const std::int64_t start : {0, 12, 24}) {
    const auto block = a.narrow(0, start, std::min<std::int64_t>(kHeadDim, 30 - start));
    const auto gram = torch::matmul(block, block.t());
    const auto off_diagonal = gram - torch::diag(gram.diagonal());
    EXPECT_LT(off_diagonal.abs().max().item<double>(), 1e-12 * gram.diagonal().max().item<double>()) << start;
  }
  const auto iid = performer_projection(30, kHeadDim, false, 9);
  EXPECT_EQ(iid.scalar_type(), torch::kFloat);
  EXPECT_EQ(iid.sizes(), a.sizes());
}

TEST(PerformerAttentionTest, PaddedKeysContributeNothing) {
  auto p = random_operands(6, 0.7);
  constexpr std::int64_t kKept = 9;
  // Padding with large values, which would dominate a stabilizer that counted them.
  p.k.select(0, 1).narrow(1, kKept, kSeq - kKept).mul_(4);
  auto mask = torch::ones({kBatch, kSeq}, torch::kBool);
  mask[1].narrow(0, kKept, kSeq - kKept).fill_(false);
  const auto omega = performer_projection(24, kHeadDim, true, 8, torch::kDouble);
  for (const auto kernel : {PerformerKernel::kSoftmax, PerformerKernel::kRelu}) {
    const auto out = performer_attention(p.q, p.k, p.v, kernel, omega, false, mask);
    const auto full = performer_attention(p.q, p.k, p.v, kernel, omega, false);
    EXPECT_LT(relative_error(out.select(0, 0), full.select(0, 0)), testing::kFp64.relative);
    auto row = [&](const torch::Tensor& t) { return t.narrow(0, 1, 1).narrow(2, 0, kKept); };
    const auto truncated = performer_attention(row(p.q), row(p.k), row(p.v), kernel, omega, false);
    const double error = relative_error(row(out), truncated);
    note("masked vs truncated sequence, " + performer_kernel_name(kernel), error, testing::kFp64.relative);
    EXPECT_LT(error, testing::kFp64.relative);
  }
}

PerformerAttentionOptions small_options() { return PerformerAttentionOptions(kHeads * 4, kHeads).features(8).seed(3); }

TEST(PerformerAttentionModuleTest, GradcheckWithRespectToInputAndProjectionWeights) {
  for (const bool causal : {false, true}) {
    torch::manual_seed(12);
    PerformerAttention attention(small_options().causal(causal));
    attention->to(torch::kDouble);
    const auto x = torch::randn({2, 5, kHeads * 4}, torch::kDouble) * 0.7;
    // Batch 1's last two keys are padding (non-causal only: a causal query sees earlier keys).
    std::optional<torch::Tensor> mask;
    if (!causal) {
      mask = torch::ones({2, 5}, torch::kBool);
      (*mask)[1].narrow(0, 3, 2).fill_(false);
    }
    // f puts the checked tensors in place of the Linears' weights (forward reads those members).
    const auto result = testing::gradcheck(
        [&](const std::vector<torch::Tensor>& a) {
          attention->query()->weight = a[1];
          attention->key()->weight = a[2];
          attention->value()->weight = a[3];
          attention->output()->weight = a[4];
          return attention->forward(a[0], mask);
        },
        {x.clone().requires_grad_(true), attention->query()->weight.detach().clone().requires_grad_(true),
         attention->key()->weight.detach().clone().requires_grad_(true),
         attention->value()->weight.detach().clone().requires_grad_(true),
         attention->output()->weight.detach().clone().requires_grad_(true)});
    note(std::string("gradcheck module") + (causal ? " causal" : " with key padding"), result.max_error,
         testing::kGradcheck.relative);
    EXPECT_LT(result.max_error, testing::kGradcheck.relative) << result.where;
  }
}

TEST(PerformerAttentionModuleTest, KeyPaddingMaskMatchesTheTruncatedSequence) {
  torch::manual_seed(13);
  PerformerAttention attention(PerformerAttentionOptions(kHeads * kHeadDim, kHeads).features(32).seed(4));
  attention->to(torch::kDouble);
  const auto x = torch::randn({kBatch, kSeq, kHeads * kHeadDim}, torch::kDouble);
  constexpr std::int64_t kKept = 9;
  auto mask = torch::ones({kBatch, kSeq}, torch::kBool);
  mask[1].narrow(0, kKept, kSeq - kKept).fill_(false);
  const auto out = attention->forward(x, mask);
  ASSERT_EQ(out.sizes(), x.sizes());
  const auto truncated = attention->forward(x.narrow(0, 1, 1).narrow(1, 0, kKept));
  EXPECT_LT(relative_error(out.narrow(0, 1, 1).narrow(1, 0, kKept), truncated), testing::kFp64.relative);
  EXPECT_LT(relative_error(out.select(0, 0), attention->forward(x).select(0, 0)), testing::kFp64.relative);
}

TEST(PerformerAttentionModuleTest, BuiltFromExactAttentionKeepsItsWeightsAndApproximatesIt) {
  torch::manual_seed(14);
  constexpr std::int64_t kEmbed = kHeads * kHeadDim;
  torch::nn::MultiheadAttention exact(torch::nn::MultiheadAttentionOptions(kEmbed, kHeads));
  exact->to(torch::kDouble);
  exact->eval();
  {
    torch::NoGradGuard no_grad;
    exact->in_proj_bias.uniform_(-0.1, 0.1);
    exact->out_proj->bias.uniform_(-0.1, 0.1);
  }
  auto options = PerformerAttentionOptions(kEmbed, kHeads).features(4096).seed(21);
  auto approx = performer_attention_from_multihead(options, *exact);
  const auto weights = exact->in_proj_weight.chunk(3, 0);
  const auto biases = exact->in_proj_bias.chunk(3, 0);
  const std::vector<torch::nn::Linear> linears{approx->query(), approx->key(), approx->value()};
  for (std::size_t i = 0; i < linears.size(); ++i) {
    EXPECT_TRUE(torch::equal(linears[i]->weight, weights[i])) << i;
    EXPECT_TRUE(torch::equal(linears[i]->bias, biases[i])) << i;
  }
  EXPECT_TRUE(torch::equal(approx->output()->weight, exact->out_proj->weight));
  EXPECT_TRUE(torch::equal(approx->output()->bias, exact->out_proj->bias));
  EXPECT_EQ(approx->projection().scalar_type(), torch::kDouble);

  // Exact vs randomized on small-norm inputs ([seq, batch, embed] for MultiheadAttention).
  const auto x = torch::randn({kBatch, kSeq, kEmbed}, torch::kDouble) * 0.5;
  const auto xt = x.transpose(0, 1);
  const auto expected = std::get<0>(exact->forward(xt, xt, xt, {}, /*need_weights=*/false)).transpose(0, 1);
  const double error = relative_error(approx->forward(x), expected);
  constexpr double kBound = 0.03;
  note("from MultiheadAttention, m = 4096, vs exact layer", error, kBound);
  EXPECT_LT(error, kBound);

  // From Linears: the same copies; a missing bias becomes zeros.
  torch::nn::Linear q(kEmbed, kEmbed), k(kEmbed, kEmbed), v(torch::nn::LinearOptions(kEmbed, kEmbed).bias(false)),
      o(kEmbed, kEmbed);
  auto from_linears = performer_attention_from_linears(options.features(16), *q, *k, *v, *o);
  EXPECT_TRUE(torch::equal(from_linears->key()->weight, k->weight));
  EXPECT_TRUE(torch::equal(from_linears->value()->weight, v->weight));
  EXPECT_EQ(from_linears->value()->bias.abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(from_linears->output()->bias, o->bias));
}

TEST(PerformerAttentionModuleTest, ProjectionIsASeededBufferThatRedrawsOnlyWhenAllowed) {
  PerformerAttention a(small_options()), b(small_options()), other(small_options().seed(4));
  const auto buffers = a->named_buffers();
  ASSERT_TRUE(buffers.contains("projection"));
  EXPECT_TRUE(buffers["projection"].is_same(a->projection()));
  EXPECT_EQ(a->projection().sizes(), (torch::IntArrayRef{8, 4}));
  EXPECT_TRUE(torch::equal(a->projection(), b->projection()));
  EXPECT_TRUE(torch::equal(a->projection(), performer_projection(8, 4, true, 3)));
  EXPECT_FALSE(torch::equal(a->projection(), other->projection()));

  const auto before = a->projection().clone();
  EXPECT_FALSE(a->redraw_features());
  EXPECT_TRUE(torch::equal(a->projection(), before));

  PerformerAttention c(small_options().redraw(true)), d(small_options().redraw(true));
  EXPECT_TRUE(c->redraw_features());
  EXPECT_TRUE(d->redraw_features());
  EXPECT_EQ(c->redraws(), 1);
  EXPECT_FALSE(torch::equal(c->projection(), before));
  EXPECT_TRUE(torch::equal(c->projection(), d->projection()));
  EXPECT_TRUE(c->named_buffers()["projection"].is_same(c->projection()));  // redrawn in place
  const auto first = c->projection().clone();
  c->redraw_features();
  EXPECT_FALSE(torch::equal(c->projection(), first));
}

TEST(PerformerAttentionTest, BadInputsNameTheProblem) {
  using testing::error_message;
  using ::testing::HasSubstr;
  const auto p = random_operands(7, 1.0);
  const auto omega = performer_projection(8, kHeadDim, true, 1, torch::kDouble);
  const auto softmax = PerformerKernel::kSoftmax;
  EXPECT_THAT(error_message([&] { performer_attention(p.q, p.k.narrow(3, 0, 10), p.v, softmax, omega, false); }),
              HasSubstr("k must be [batch, heads, seq, head_dim] = [2, 3, seq, 12]"));
  EXPECT_THAT(error_message([&] { performer_attention(p.q, p.k, p.v, softmax, omega.narrow(1, 0, 10), false); }),
              HasSubstr("omega must be [features, head_dim = 12], got [8,10]"));
  EXPECT_THAT(error_message([&] { performer_attention(p.q, p.k, p.v, softmax, omega.to(torch::kFloat), false); }),
              HasSubstr("omega must be Double on cpu like the input, got Float"));
  EXPECT_THAT(error_message([&] { performer_attention(p.q.narrow(2, 0, 5), p.k, p.v, softmax, omega, true); }),
              HasSubstr("causal attention needs as many queries as keys"));
  EXPECT_THAT(
      error_message([&] {
        performer_attention(p.q, p.k, p.v, softmax, omega, false, torch::ones({kBatch, kSeq + 1}, torch::kBool));
      }),
      HasSubstr("key_padding_mask must be bool [batch, seq] = [2, 13]"));
  EXPECT_THAT(error_message([] { PerformerAttention{PerformerAttentionOptions(10, 3)}; }),
              HasSubstr("embed_dim 10 is not divisible by heads 3"));
  EXPECT_THAT(error_message([] { PerformerAttention{PerformerAttentionOptions(12, 3).features(0)}; }),
              HasSubstr("features must be positive, got 0"));
  EXPECT_THAT(error_message([] { performer_projection(-1, 12, true, 0); }), HasSubstr("features must be positive"));
  EXPECT_THAT(error_message([] { performer_kernel_from_name("gaussian"); }),
              HasSubstr("unknown kernel 'gaussian' (expected softmax or relu)"));
  EXPECT_EQ(performer_kernel_from_name("relu"), PerformerKernel::kRelu);
  PerformerAttention attention(small_options());
  EXPECT_THAT(error_message([&] {
                attention->forward(torch::randn({2, 5, 8}));
              }),
              HasSubstr("x must be [batch, seq, embed_dim = 12], got [2,5,8]"));
  torch::nn::Linear square(12, 12), wide(12, 16);
  EXPECT_THAT(
      error_message([&] { performer_attention_from_linears(small_options(), *square, *square, *wide, *square); }),
      HasSubstr("value weight must be [embed_dim, embed_dim] = [12, 12], got [16,12]"));
}

}  // namespace
}  // namespace hone::nn
