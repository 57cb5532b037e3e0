#pragma once
/// @file The learning-rate range test (Smith 2015, as fastai's and Lightning's lr_find): from a
/// fresh model, train `steps` optimizer steps with the rate growing exponentially from min_lr to
/// max_lr, record each step's loss, smooth it (exponential moving average, bias-corrected), stop
/// once the smoothed loss exceeds `divergence` times its best, and suggest the rate where the
/// smoothed loss falls fastest against log(lr). The weights are thrown away; nothing is written
/// but the curve.
///
///   train::LrFindResult r = train::find_lr(options, {.steps = 100});
///   r.suggested_lr;   // 0 when the curve is too short to suggest one
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "hone/train/trainer.h"

namespace hone::train {

struct LrFindOptions {
  double min_lr = 1e-7;
  double max_lr = 10;
  std::int64_t steps = 100;
  double smoothing = 0.98;                     ///< EMA factor of the smoothed loss (0: no smoothing)
  double divergence = 4;                       ///< stop when smoothed loss > this × the best smoothed loss
  std::int64_t skip_begin = 10, skip_end = 1;  ///< points left out of the steepest-descent search
};

struct LrFindResult {
  std::vector<double> lrs, losses, smoothed;  ///< one entry per step run
  double suggested_lr = 0;                    ///< 0: no suggestion (too few points)
  std::int64_t suggested_step = -1;
  bool diverged = false;  ///< stopped early (loss > divergence × best, or not finite)
  LrFindOptions options;
  nlohmann::json to_json() const;  ///< schema hone-lr-find/1
  std::string to_text() const;     ///< the curve (every few points) and the suggestion
};

/// Throws hone::UsageError naming lr_find for bad options (min_lr >= max_lr, steps < 2...).
LrFindResult find_lr(const TrainOptions& train_options, const LrFindOptions& options = {});

/// The suggestion alone, from a recorded curve (the steepest descent of smoothed vs log10(lr)).
std::int64_t steepest_descent(const std::vector<double>& lrs, const std::vector<double>& smoothed,
                              std::int64_t skip_begin, std::int64_t skip_end);

}  // namespace hone::train
