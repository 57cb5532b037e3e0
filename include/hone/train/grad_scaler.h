#pragma once
/// @file Dynamic loss scaling for fp16 training, with PyTorch GradScaler's semantics: the loss is
/// multiplied by a scale (initially 2^16) before backward; the gradients are unscaled (and checked
/// for inf/NaN) before clipping; a step whose gradients are not finite is skipped and the scale
/// halved; after `growth_interval` (2000) clean steps in a row the scale doubles. Everything stays
/// on the device (ATen's _amp_foreach_non_finite_check_and_unscale_ and _amp_update_scale_): no
/// step waits for the host. A disabled scaler (fp32/tf32/bf16) passes everything through.
///
///   train::GradScaler scaler(/*enabled=*/true, device);
///   scaler.scale(loss).backward();
///   at::Tensor found_inf = scaler.unscale(grads);     // 1.0 where a gradient was inf/NaN
///   optimizer.step(lr, found_inf);                     // skips the update when found_inf != 0
///   scaler.update(found_inf);
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace hone::train {

struct GradScalerOptions {
  double init_scale = 65536.0;  ///< 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  std::int64_t growth_interval = 2000;
};

class GradScaler {
 public:
  GradScaler(bool enabled, const c10::Device& device, GradScalerOptions options = {});

  bool enabled() const { return enabled_; }
  /// loss * scale (or loss itself when disabled).
  at::Tensor scale(const at::Tensor& loss) const;
  /// Divides every gradient by the scale in place and returns a 1-element float tensor on the
  /// device: 1 when any gradient held inf/NaN, else 0. Undefined when disabled.
  at::Tensor unscale(const std::vector<at::Tensor>& grads);
  /// Halves the scale after an overflow (and counts the skipped step), grows it after
  /// growth_interval clean steps. No-op when disabled.
  void update(const at::Tensor& found_inf);

  /// Host reads (they wait for the device): for logs, epoch ends and checkpoints only.
  double current_scale() const;
  std::int64_t skipped_steps() const;

  /// {"scale", "growth_tracker", "skipped_steps"} for a checkpoint's state.json; load() restores it.
  nlohmann::json state() const;
  void load(const nlohmann::json& state);

 private:
  bool enabled_;
  GradScalerOptions options_;
  at::Tensor scale_;           ///< float32 [1] on the device
  at::Tensor growth_tracker_;  ///< int32 [1] on the device: clean steps since the last change
  at::Tensor skipped_;         ///< float32 [1] on the device: steps skipped for inf/NaN
};

}  // namespace hone::train
