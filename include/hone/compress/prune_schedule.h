#pragma once
/// @file The cubic sparsity schedule of gradual magnitude pruning (Zhu & Gupta 2017):
///   s(t) = s_f + (s_i − s_f) · (1 − (t − t_0) / (t_1 − t_0))³   for t_0 <= t <= t_1,
/// s_i before t_0 and s_f after t_1, t in optimizer steps (0-based). Masks are recomputed every
/// `frequency` steps from t_0, and at t_1 exactly, so the run always ends at s_f.
///
///   compress::PruneSchedule s{.initial_sparsity = 0, .final_sparsity = 0.9, .begin_step = 0,
///                             .end_step = 999, .frequency = 50};
///   s.sparsity_at(500);   // 0.9 − 0.9 · (1 − 500/999)³ ≈ 0.787
#include <cstdint>

namespace hone::compress {

struct PruneSchedule {
  double initial_sparsity = 0;
  double final_sparsity = 0.5;
  std::int64_t begin_step = 0;
  std::int64_t end_step = 0;  ///< the step at which final_sparsity is reached (>= begin_step)
  std::int64_t frequency = 50;

  double sparsity_at(std::int64_t step) const;
  /// Whether the masks are recomputed after step `step`.
  bool updates_at(std::int64_t step) const;
};

}  // namespace hone::compress
