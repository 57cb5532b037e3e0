#pragma once
// How a fall of PassContext::validation_score counts against a pass's 'accuracy_budget' (sketch,
// quant_int8_static, quant_int8_dynamic), so every budget means the same thing.
#include <cmath>
#include <string>

namespace hone::compress {

/// A score >= 0 is an accuracy (0..1; train::EvalMetrics::score), whose drop counts in points
/// (x100); a negative score is -RMSE (or -loss), whose drop counts as a percentage of
/// |score before|.
struct ScoreScale {
  double before = 0;
  bool relative() const { return before < 0; }
  double drop(double after) const {
    return relative() ? 100 * (before - after) / std::abs(before) : 100 * (before - after);
  }
  /// Appended to a number: "1.5 points", "1.5%".
  std::string unit() const { return relative() ? "%" : " points"; }
  /// For reports' "drop_unit".
  std::string unit_name() const { return relative() ? "percent of |score|" : "accuracy points"; }
};

}  // namespace hone::compress
