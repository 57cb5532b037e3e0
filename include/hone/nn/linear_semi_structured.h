#pragma once
/// @file linear_semi_structured: a Linear with 2:4 semi-structured sparse weights — in every group
/// of 4 consecutive input weights of an output row, at most 2 are non-zero — stored compressed and
/// run on NVIDIA's sparse tensor cores (cuSPARSELt, through LibTorch's aten::_cslt_compress and
/// aten::_cslt_sparse_mm) where they exist.
///
/// Stored (the weights file holds these, device-independent):
///   values [out, in/2] (a float dtype): the two kept weights of each group, in input order;
///   meta uint8 [out, in/4]: per group, the kept positions i0 < i1 in {0..3} as i0 | (i1 << 2);
///   bias [out] when there is one.
/// The file holds 9/16 of the dense fp32 layer's bytes (values halved, plus a byte per 4 inputs).
///
/// Forward, x [..., in] -> [..., out]:
///   - CUDA with fp16 or bf16 compute and cuSPARSELt present: the weight compressed once per device
///     and dtype into cuSPARSELt's form (repack() drops it), then one sparse GEMM with the bias in its
///     epilogue; rows are padded to a multiple of 8 as cuSPARSELt asks. Algorithm 0 by default;
///     with HONE_CSLT_SEARCH=1 the first call with a new row count (outside CUDA graph capture)
///     times cuSPARSELt's algorithms for that shape (aten::_cslt_sparse_mm_search) and keeps the
///     fastest — up to 2x faster on large GEMMs (docs/BENCHMARKS.md), but opt-in: on an H200 the
///     search failed with a cuSPARSELt "internal error" on one of the test shapes and left the CUDA
///     context unusable (illegal instruction) for the rest of the process.
///   - anywhere else (CPU, fp32, no cuSPARSELt): the weight expanded to dense (zeros included), one
///     dense GEMM — the same numbers, no speed-up; kernel() says which ran.
/// `compute` fixes the compute dtype (fp16/bf16: the input is cast there and the output back, like
/// linear_float); undefined (kFloat stored, "input" in the spec): compute in the input's dtype.
/// Spec: {"kind": "linear_semi_structured", "in", "out", "bias", "dtype": "input" | "fp16" | "bf16"}.
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <string>

#include "hone/nn/layer_kinds.h"

namespace hone::nn {

/// Why a [out, in] Linear cannot be stored 2:4 here (empty when it can): `in` must be a multiple of
/// 16 and `out` a multiple of 16 (cuSPARSELt's fp16/bf16 sparse-operand constraint), both ≥ 16.
std::string semi_structured_unsupported(std::int64_t in, std::int64_t out);

/// The 2:4 magnitude mask of `weight` [out, in] (in % 4 == 0): in every group of 4 consecutive
/// inputs, true for the 2 largest |w| (ties: the earlier position is kept).
torch::Tensor semi_structured_mask(const torch::Tensor& weight);

/// {values [out, in/2] in weight's dtype, meta uint8 [out, in/4]} of a weight with `mask`'s
/// pattern (exactly 2 true per group of 4).
std::pair<torch::Tensor, torch::Tensor> compress_semi_structured(const torch::Tensor& weight,
                                                                 const torch::Tensor& mask);
/// The dense [out, in] weight (zeros where pruned) the stored tensors stand for. Throws
/// hone::Error when a meta byte is not a valid pair of positions.
torch::Tensor expand_semi_structured(const torch::Tensor& values, const torch::Tensor& meta);

class LinearSemiStructuredImpl : public torch::nn::Module, public Repackable {
 public:
  /// Throws hone::Error when semi_structured_unsupported(in, out) is not empty, or `compute` is not
  /// kFloat (compute in the input's dtype), kHalf or kBFloat16.
  LinearSemiStructuredImpl(std::int64_t in, std::int64_t out, bool bias, c10::ScalarType compute);
  /// Prunes `linear`'s weight to 2:4 by magnitude and stores it (values in `compute` when that is
  /// fp16/bf16, else in fp32).
  static std::shared_ptr<LinearSemiStructuredImpl> from_float(const torch::nn::LinearImpl& linear,
                                                              c10::ScalarType compute);

  torch::Tensor forward(const torch::Tensor& x);
  void repack() override;
  nlohmann::json spec() const;

  /// The dense weight [out, in] (fp32) with the pruned zeros.
  torch::Tensor dense_weight() const;
  /// What the last forward ran: "cusparselt", or "dense (<why>)".
  const std::string& kernel() const { return kernel_; }

  torch::Tensor values, meta, bias;  ///< as stored; bias undefined without one

 private:
  struct Packed {
    c10::Device device{c10::kCPU};
    c10::ScalarType dtype = c10::kFloat;
    bool sparse = false;
    torch::Tensor weight;  ///< cuSPARSELt's compressed form, or the dense weight [out, in]
    torch::Tensor bias;
    std::string kernel;
    std::map<std::int64_t, std::int64_t> algorithms;  ///< padded rows -> cuSPARSELt algorithm id
  };
  Packed& packed_for(c10::Device device, c10::ScalarType dtype);

  std::int64_t in_, out_;
  c10::ScalarType compute_;
  std::optional<Packed> packed_;
  std::string kernel_ = "none yet";
};
TORCH_MODULE(LinearSemiStructured);

LayerKind linear_semi_structured_kind();

}  // namespace hone::nn
