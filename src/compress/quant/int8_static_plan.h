#pragma once
// What quant_int8_static and qat share: which slots go to int8 and how (plan_static_targets),
// observing them while the model runs — the same modules called through recording functions, so
// the module tree does not change (replace_targets / restore_targets) — and the int8 layers built
// from the observed ranges, as candidates for quantize_within_budget (static_candidates).
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "../passes.h"
#include "hone/nn/layer.h"
#include "observers.h"
#include "sensitivity.h"

namespace hone::compress::quant {

enum class StaticTargetType { kConv, kLinear, kAdd };

struct StaticTarget {
  nn::SlotRef ref;
  StaticTargetType type;
  std::optional<nn::SlotRef> relu;  ///< the ReLU slot fused into this layer
  bool has_consumer = false;
  std::unique_ptr<Observer> input, input_b, output;
  nn::Layer original;
};

/// The activation range of this CPU's int8 kernels: [0, 255], or [0, 127] without VNNI (fbgemm
/// sums u8 x s8 products in saturating int16 pairs there).
QuantRange static_activation_range();

/// The slots to quantize, in execution order; reports the ones that cannot be.
std::vector<StaticTarget> plan_static_targets(models::Model& model, const nlohmann::json& skip, PassReport& report);

/// The calibration tap of a target: its module called through a function that records input and
/// output into the target's observers (residual adds: both inputs and the output).
nn::Layer observing_tap(StaticTarget& target);

/// Puts `make_tap(target)` into every target's slot; restore_targets puts the originals back.
void replace_targets(std::vector<StaticTarget>& targets, const std::function<nn::Layer(StaticTarget&)>& make_tap);
void restore_targets(std::vector<StaticTarget>& targets);

/// Runs `batches` (eval mode, no grad) with every target observed, then restores the float layers
/// (also on error).
void calibrate_static_targets(models::Model& model, std::vector<StaticTarget>& targets,
                              const std::vector<torch::Tensor>& batches);

/// The int8 layer of every observed target, built from its observers' qparams, with its report
/// line and detail row; targets the batches never reached get a `skipped` line instead.
std::vector<Int8Candidate> static_candidates(const std::vector<StaticTarget>& targets, bool per_channel,
                                             QuantRange range, PassReport& report);

}  // namespace hone::compress::quant
