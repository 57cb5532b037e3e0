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
inline constexpr Tolerance kFp32{1e-5, 1e-6};
/// Same math, different kernels or reduction order (e.g. CPU vs CUDA, fused vs unfused) in fp32.
inline constexpr Tolerance kFp32Reordered{1e-4, 1e-5};
inline constexpr Tolerance kTf32{3e-3, 1e-4};
inline constexpr Tolerance kFp16{5e-3, 1e-3};
inline constexpr Tolerance kBf16{1e-2, 1e-2};

}  // namespace hone::testing
