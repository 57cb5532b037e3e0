#pragma once
/// @file How a model runs on this machine: device, dtype, autocast and memory format, and the
/// random inputs that timing uses (labelled as such wherever they are reported). Shared by
/// bench, profile, compress's verdict, training and serving.
///
///   runtime::RunSettings settings = runtime::make_run_settings("cuda", "bf16", false, false, 128);
///   runtime::prepare_model(*model, settings);
///   runtime::AutocastScope autocast(settings);   // on only when settings.amp
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <string>

#include "hone/data/dataset_info.h"
#include "hone/models/model.h"

namespace hone::runtime {

struct RunSettings {
  c10::Device device = c10::kCPU;
  c10::ScalarType dtype = c10::kFloat;  ///< weights and float inputs
  bool amp = false;                     ///< keep the weights' dtype, autocast matmuls/convs to bf16
  bool channels_last = false;           ///< 4-D weights and inputs in NHWC memory format
  std::int64_t seq_len = 128;           ///< tokens per sample for text models (zoo targets)
};

/// Settings from their spellings ("cuda", "bf16"...): parse errors and amp with a low dtype are
/// hone::UsageError naming the option (device, dtype, amp).
RunSettings make_run_settings(const std::string& device, const std::string& dtype, bool amp, bool channels_last,
                              std::int64_t seq_len);

/// Eval mode, no gradients, moved to the device and dtype, channels-last when asked.
void prepare_model(models::Model& model, const RunSettings& settings);

/// Every 4-D parameter and buffer (conv weights) in NHWC memory format, in place (set_data: the
/// optimizer, if one exists, must be made after). cuDNN's tensor-core and oneDNN's blocked
/// convolutions run NHWC natively; an NCHW conv net pays layout transposes in every layer.
void to_channels_last(models::Model& model);

/// `x` in NHWC when it is 4-D, else `x` itself.
at::Tensor channels_last_input(const at::Tensor& x);

/// A random batch of `batch` samples of `info`'s shape: normal floats in the settings' dtype, or
/// token ids in [1000, vocab) (never padding) for text models. Timing only.
at::Tensor make_random_input(const data::DatasetInfo& info, std::int64_t batch, const RunSettings& settings);

/// Turns autocast on for the settings' device while alive (when settings.amp), restoring the
/// previous state after and clearing autocast's weight cache when the outermost scope closes.
class AutocastScope {
 public:
  explicit AutocastScope(const RunSettings& settings);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType device_type_ = c10::kCPU;
  bool was_enabled_ = false;
  c10::ScalarType was_dtype_ = c10::kBFloat16;
};

}  // namespace hone::runtime
