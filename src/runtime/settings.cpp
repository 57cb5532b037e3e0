#include "hone/runtime/settings.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/utils.h>

#include "hone/core/device.h"
#include "hone/core/error.h"

namespace hone::runtime {

RunSettings make_run_settings(const std::string& device, const std::string& dtype, bool amp, bool channels_last,
                              std::int64_t seq_len) {
  RunSettings settings;
  settings.device = parse_device(device);
  settings.dtype = parse_dtype(dtype);
  settings.amp = amp;
  settings.channels_last = channels_last;
  settings.seq_len = seq_len;
  if (amp && settings.dtype != c10::kFloat) {
    fail_usage_option(
        "amp", "amp (autocast) keeps fp32 weights and casts matmuls to bf16; it cannot be combined with dtype {}",
        dtype);
  }
  return settings;
}

void prepare_model(models::Model& model, const RunSettings& settings) {
  HONE_CHECK(c10::isFloatingType(settings.dtype), "the model dtype must be floating, got {}", settings.dtype);
  HONE_CHECK(!(settings.amp && settings.dtype != c10::kFloat),
             "amp (autocast) keeps fp32 weights; it cannot be combined with dtype {}", settings.dtype);
  model.eval();
  // Module::to(device, dtype) would cast integer buffers too (int8 weights of quantized layers,
  // batch-norm counters): move everything, then cast only floating tensors.
  model.to(settings.device);
  if (settings.dtype != c10::kFloat) {
    for (auto& p : model.parameters())
      if (c10::isFloatingType(p.scalar_type())) p.set_data(p.to(settings.dtype));
    for (auto& b : model.buffers())
      if (c10::isFloatingType(b.scalar_type())) b.set_data(b.to(settings.dtype));
  }
  for (auto& p : model.parameters()) p.requires_grad_(false);  // inference: no autograd, no autocast cache
  if (settings.channels_last) to_channels_last(model);
}

void to_channels_last(models::Model& model) {
  for (auto& p : model.parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
  for (auto& b : model.buffers())
    if (b.dim() == 4) b.set_data(b.contiguous(at::MemoryFormat::ChannelsLast));
}

at::Tensor channels_last_input(const at::Tensor& x) {
  return x.dim() == 4 ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
}

at::Tensor make_random_input(const data::DatasetInfo& info, std::int64_t batch, const RunSettings& settings) {
  std::vector<std::int64_t> shape{batch};
  shape.insert(shape.end(), info.input_shape.begin(), info.input_shape.end());
  if (info.vocab_size > 0) {
    // Ids of ordinary word pieces: never padding (0) and, for real vocabularies, past the specials.
    const std::int64_t low = info.vocab_size > 2000 ? 1000 : 1;
    return torch::randint(low, info.vocab_size, shape, at::TensorOptions().dtype(at::kLong).device(settings.device));
  }
  auto x = torch::randn(shape, at::TensorOptions().dtype(settings.dtype).device(settings.device));
  return settings.channels_last ? channels_last_input(x) : x;
}

AutocastScope::AutocastScope(const RunSettings& settings) : active_(settings.amp) {
  if (!active_) return;
  device_type_ = settings.device.type();
  was_enabled_ = at::autocast::is_autocast_enabled(device_type_);
  was_dtype_ = at::autocast::get_autocast_dtype(device_type_);
  at::autocast::set_autocast_dtype(device_type_, at::kBFloat16);
  at::autocast::set_autocast_enabled(device_type_, true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(device_type_, was_enabled_);
  at::autocast::set_autocast_dtype(device_type_, was_dtype_);
}

}  // namespace hone::runtime
