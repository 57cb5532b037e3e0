#include "hone/train/grad_scaler.h"

#include <ATen/ATen.h>

#include <map>

#include "hone/core/error.h"

namespace hone::train {

GradScaler::GradScaler(bool enabled, const c10::Device& device, GradScalerOptions options)
    : enabled_(enabled), options_(options) {
  HONE_CHECK(options.init_scale > 0 && options.growth_factor > 1 && options.backoff_factor > 0 &&
                 options.backoff_factor < 1 && options.growth_interval >= 1,
             "grad scaler: need init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1 and growth_interval >= 1");
  const auto on = at::TensorOptions().device(device);
  scale_ = at::full({1}, options.init_scale, on.dtype(at::kFloat));
  growth_tracker_ = at::zeros({1}, on.dtype(at::kInt));
  skipped_ = at::zeros({1}, on.dtype(at::kFloat));
}

at::Tensor GradScaler::scale(const at::Tensor& loss) const {
  if (!enabled_) return loss;
  return loss * scale_.to(loss.scalar_type());
}

at::Tensor GradScaler::unscale(const std::vector<at::Tensor>& grads) {
  if (!enabled_) return {};
  at::Tensor found_inf = at::zeros_like(scale_);
  // As PyTorch: the reciprocal in double, then float, so 1/2^k is exact.
  const at::Tensor inv_scale = scale_.to(at::kDouble).reciprocal().to(at::kFloat);
  // The kernel takes one dtype per call.
  std::map<c10::ScalarType, std::vector<at::Tensor>> by_dtype;
  for (const auto& g : grads) {
    if (g.defined()) by_dtype[g.scalar_type()].push_back(g);
  }
  for (auto& [dtype, list] : by_dtype) at::_amp_foreach_non_finite_check_and_unscale_(list, found_inf, inv_scale);
  return found_inf;
}

void GradScaler::update(const at::Tensor& found_inf) {
  if (!enabled_) return;
  HONE_CHECK(found_inf.defined(), "grad scaler: update needs the found_inf of this step's unscale");
  skipped_.add_(found_inf);
  at::_amp_update_scale_(scale_, growth_tracker_, found_inf, options_.growth_factor, options_.backoff_factor,
                         options_.growth_interval);
}

double GradScaler::current_scale() const { return enabled_ ? scale_.item<double>() : 1.0; }
std::int64_t GradScaler::skipped_steps() const {
  return enabled_ ? static_cast<std::int64_t>(skipped_.item<double>()) : 0;
}

nlohmann::json GradScaler::state() const {
  if (!enabled_) return nullptr;
  return {{"scale", current_scale()},
          {"growth_tracker", growth_tracker_.item<std::int64_t>()},
          {"skipped_steps", skipped_steps()}};
}

void GradScaler::load(const nlohmann::json& state) {
  if (!enabled_) return;
  try {
    scale_.fill_(state.at("scale").get<double>());
    growth_tracker_.fill_(state.at("growth_tracker").get<std::int64_t>());
    skipped_.fill_(static_cast<double>(state.at("skipped_steps").get<std::int64_t>()));
  } catch (const nlohmann::json::exception& e) {
    fail("grad scaler state is malformed: {}", e.what());
  }
}

}  // namespace hone::train
