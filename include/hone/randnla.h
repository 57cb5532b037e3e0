#pragma once
/// @file hone's randomized numerical linear algebra (RandNLA): sketch operators (Gaussian, sign,
/// SJLT, CountSketch, SRHT), randomized truncated SVD, and CQRRPT (randomized column-pivoted
/// Cholesky QR for tall matrices). Plain ATen ops throughout: float or double, CPU or CUDA.
#include "hone/randnla/cqrrpt.h"          // IWYU pragma: export
#include "hone/randnla/randomized_svd.h"  // IWYU pragma: export
#include "hone/randnla/sketch.h"          // IWYU pragma: export
