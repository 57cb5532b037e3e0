#include "sensitivity.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "../score_scale.h"
#include "hone/core/error.h"

namespace hone::compress::quant {
namespace {

void put(const Int8Candidate& candidate, bool int8) {
  for (const auto& change : candidate.changes) {
    change.ref.parent->replace_layer(change.ref.name, int8 ? change.replacement : change.original);
  }
}

/// Puts every candidate's float layers back however the search ends.
struct RestoreFloat {
  const std::vector<Int8Candidate>& candidates;
  ~RestoreFloat() {
    for (const auto& candidate : candidates) put(candidate, false);
  }
};

/// Which candidates go in int8 (one flag each); the model holds its float layers when it returns.
std::vector<bool> choose_within_budget(models::Model& model, const std::vector<Int8Candidate>& candidates,
                                       double budget, PassContext& context, PassReport& report) {
  std::vector<bool> int8(candidates.size(), true);
  if (budget < 0 || candidates.empty()) return int8;
  HONE_CHECK(context.validation_score, "{}: 'accuracy_budget' needs a validation score", report.pass);
  RestoreFloat restore{candidates};
  std::int64_t evaluations = 0;
  const auto score = [&] {
    ++evaluations;
    return context.validation_score(model);
  };
  const ScoreScale scale{score()};

  auto rows = nlohmann::json::array();
  std::vector<double> drop_alone;
  for (const auto& candidate : candidates) {
    put(candidate, true);
    const double alone = score();
    put(candidate, false);
    drop_alone.push_back(scale.drop(alone));
    rows.push_back({{"path", candidate.path()}, {"score_alone", alone}, {"drop", drop_alone.back()}});
  }

  for (const auto& candidate : candidates) put(candidate, true);
  double after = score();
  const auto remaining = [&] { return std::count(int8.begin(), int8.end(), true); };
  while (scale.drop(after) > budget && remaining() > 0) {
    std::optional<std::size_t> worst;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      if (int8[i] && (!worst || drop_alone[i] > drop_alone[*worst])) worst = i;
    }
    put(candidates[*worst], false);
    int8[*worst] = false;
    report.skipped.push_back(fmt::format(
        "{}: kept in float: the most sensitive layer left in int8 (drop {:.3g}{} alone) while the model dropped "
        "{:.3g}{}, over the accuracy budget of {}{}",
        candidates[*worst].path(), drop_alone[*worst], scale.unit(), scale.drop(after), scale.unit(), budget,
        scale.unit()));
    // With every layer back in float the model is the one scored first.
    after = remaining() > 0 ? score() : scale.before;
  }

  for (std::size_t i = 0; i < candidates.size(); ++i) rows[i]["int8"] = static_cast<bool>(int8[i]);
  report.details["sensitivity"] = std::move(rows);
  report.details["score_before"] = scale.before;
  report.details["score_after"] = after;
  report.details["drop"] = scale.drop(after);
  report.details["drop_unit"] = scale.unit_name();
  report.details["evaluations"] = evaluations;
  return int8;
}

}  // namespace

OptionSpec accuracy_budget_option() {
  return {"accuracy_budget",
          OptionSpec::Type::Number,
          -1.0,
          {},
          -1.0,
          1e300,
          "largest drop of the validation score the pass may cause, in accuracy points (percent of |score|, "
          "i.e. of RMSE, for forecasters; as in sketch): the layers whose int8 costs most stay in float until it "
          "holds (needs a run directory); -1: quantize every layer"};
}

double read_accuracy_budget(const std::string& pass, const nlohmann::json& options, const PassContext& context) {
  const auto budget = options.at("accuracy_budget").get<double>();
  if (budget >= 0 && !context.validation_score) {
    fail_usage(
        "{}: 'accuracy_budget' {} needs a dataset to score the model on: compress a run directory (its validation "
        "split is scored), or leave 'accuracy_budget' at -1 to quantize every layer",
        pass, budget);
  }
  return budget;
}

nlohmann::json quantize_within_budget(models::Model& model, std::vector<Int8Candidate>& candidates, double budget,
                                      PassContext& context, PassReport& report) {
  const auto int8 = choose_within_budget(model, candidates, budget, context, report);
  auto details = nlohmann::json::array();
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (!int8[i]) continue;
    for (const auto& change : candidates[i].changes) {
      context.editor->replace(change.ref.path, change.spec, change.replacement);
    }
    report.changed.push_back(std::move(candidates[i].line));
    details.push_back(std::move(candidates[i].detail));
  }
  return details;
}

}  // namespace hone::compress::quant
