#pragma once
/// @file The one table of numeric tolerances used by hone's tests (relative, by ‖a−b‖/‖b‖ unless
/// a test says otherwise). Choose the row for the arithmetic the fast path really does.
namespace hone::testing {

struct Tolerance {
  double relative;
  double absolute;
};

inline constexpr Tolerance kExact{0.0, 0.0};
inline constexpr Tolerance kFp64{1e-12, 1e-12};
/// A backward-stable factorization in double (QR, SVD, CQRRPT, randomized SVD at exact rank) of a
/// matrix with n <= ~300 columns: relative for ‖A - Q·R‖/‖A‖ (measured ~3e-16 to 1e-15), absolute
/// for ‖QᵀQ - I‖_F (measured ~2e-15 to 6e-15); both O(n·u), u = 1.1e-16, with ~20x headroom.
inline constexpr Tolerance kFp64Factorization{1e-14, 1e-13};
inline constexpr Tolerance kFp32{1e-5, 1e-6};
/// Same math, different kernels or reduction order (e.g. CPU vs CUDA, fused vs unfused) in fp32.
inline constexpr Tolerance kFp32Reordered{1e-4, 1e-5};
inline constexpr Tolerance kTf32{3e-3, 1e-4};
inline constexpr Tolerance kFp16{5e-3, 1e-3};
inline constexpr Tolerance kBf16{1e-2, 1e-2};
/// Analytic gradient against central differences (eps 1e-6) in double: gradcheck's max error.
inline constexpr Tolerance kGradcheck{1e-6, 1e-6};
/// One int8 layer (8-bit weights, 7-8-bit activations) against its float original: each operand
/// is off by up to half a step, ~0.4-0.8% of its range, and errors add in quadrature over a dot product.
inline constexpr Tolerance kInt8Layer{3e-2, 1e-2};
/// A whole statically quantized cnn (~9 int8 layers in a row) against its float original.
inline constexpr Tolerance kInt8Model{1e-1, 1e-2};
/// An ONNX export run by onnxruntime against hone (max |ort - hone| / max |hone| per output): fp32 is
/// the same math in onnxruntime's kernels; fp16 rounds weights and activations to 11 bits (and a
/// bf16-weight model that hone computes in bf16 is compared at this row too). The same values are
/// `hone export`'s own thresholds (hone/export/export.h; tests/export static_asserts they agree).
inline constexpr Tolerance kExportFp32{1e-5, 1e-6};
inline constexpr Tolerance kExportFp16{2e-2, 1e-3};
/// An int8 static model exported as QDQ: onnxruntime's int8 kernels round some values one step away
/// from LibTorch's, so outputs agree to a few quantization steps (~0.4 % of the range each).
inline constexpr Tolerance kExportInt8{5e-2, 1e-2};

}  // namespace hone::testing
