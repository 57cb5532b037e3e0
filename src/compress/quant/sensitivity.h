#pragma once
// Mixed precision by per-layer sensitivity: the 'accuracy_budget' option of the int8 passes.
//
// A pass builds every int8 layer it can (its candidates) and hands them to quantize_within_budget,
// which decides which go in. With the budget off, all of them, without scoring anything. Otherwise
// the model is scored before the pass, then with each candidate alone in int8 (its sensitivity:
// the drop from before), then with all of them; while the drop exceeds the budget, the most
// sensitive candidate still in int8 goes back to float and the model is scored again. Trials swap
// slots directly and every float layer is back before the chosen ones go in through the
// ModelEditor, so only those are recorded for replay.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "hone/compress/pass.h"
#include "hone/models/model.h"
#include "hone/nn/layer.h"

namespace hone::compress::quant {

/// The 'accuracy_budget' option, declared once for both int8 passes.
OptionSpec accuracy_budget_option();

/// The option's value; negative means off. Throws hone::UsageError naming `pass` when it is on and
/// `context` has no validation score (a zoo model has no dataset to measure accuracy on).
double read_accuracy_budget(const std::string& pass, const nlohmann::json& options, const PassContext& context);

/// One slot an int8 candidate changes.
struct SlotChange {
  nn::SlotRef ref;
  nn::Layer original;     ///< what the slot holds before the pass
  nn::Layer replacement;  ///< what it holds in int8
  nlohmann::json spec;    ///< rebuilds `replacement` (nn::build_layer), for the editor
};

/// A layer a pass would put in int8: its own slot first, then any slot that changes with it (the
/// ReLU fused into it becomes an identity), with what the report says when it goes in.
struct Int8Candidate {
  std::vector<SlotChange> changes;
  std::string line;       ///< its `changed` line
  nlohmann::json detail;  ///< its row of report.details["layers"]
  const std::string& path() const { return changes.front().ref.path; }
};

/// Puts the candidates that fit `budget` (negative: all of them, nothing scored) into the model
/// through context.editor, in order, with their lines in report.changed; returns their detail rows.
/// With the budget on, also adds to report.details "sensitivity" [{path, score_alone, drop, int8}],
/// "score_before", "score_after", "drop", "drop_unit" and "evaluations", and a `skipped` line for
/// each candidate kept in float. If scoring throws, the model holds its float layers again.
nlohmann::json quantize_within_budget(models::Model& model, std::vector<Int8Candidate>& candidates, double budget,
                                      PassContext& context, PassReport& report);

}  // namespace hone::compress::quant
