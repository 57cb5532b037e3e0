#pragma once
/// @file `hone optimize`: the whole strategy in one call — measure a baseline, propose candidate
/// recipes from every pass hone has, measure each on this device (latency, size, validation score),
/// train only the promising ones (successive halving under a time budget), choose the best plan that
/// meets every target (or report the Pareto front and why each target was missed), then write the
/// chosen run, its replayable recipe, an ONNX export verified by onnxruntime, and a report
/// (report.json + a self-contained report.html).
///
/// Use:
/// @code
///   hone::optimize::OptimizeOptions options;
///   options.source = "runs/demo-cnn";
///   options.output = "runs/demo-opt";
///   options.targets.speedup = 3;   // at every batch in options.targets.batches
///   options.targets.size = 5;      // file size ratio
///   options.targets.max_accuracy_drop = 1.0;  // accuracy points (forecasters: % of RMSE)
///   hone::optimize::OptimizeReport report = hone::optimize::optimize_run(options);
///   // report.chosen: the plan, or empty with report.reason
/// @endcode
///
/// The output directory holds, once finished:
///   report.json, report.html   every number behind the choice (schema hone-optimize/1)
///   model/                     the chosen run (loads with hone eval / bench / export / serve)
///   recipe.json                replays it: hone compress SOURCE --recipe OUT/recipe.json -o X
///   model.onnx                 the chosen run exported, verified on the real test split
///   state.json, baseline.json, candidates/<id>/{model/,result.json}: the search's progress;
///                              an interrupted optimize continues from them (same source, targets,
///                              device), every file written atomically.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "hone/optimize/targets.h"

namespace hone::optimize {

struct OptimizeOptions {
  std::string source;  ///< a run directory with a dataset (classification or forecasting)
  std::filesystem::path output;
  Targets targets;
  std::string device = "cpu";
  double budget_minutes = 15;  ///< for the search (baseline and final verdict not counted); > 0
  std::string preset;          ///< "", edge-cpu, gpu-latency, gpu-throughput: read by apply_preset, not by optimize_run
  bool force = false;          ///< start over even when `output` holds another optimize's state
  bool progress = true;        ///< progress bars on stderr
  int warmup = 5;              ///< untimed forwards before timing each batch size
  int iterations = 30;         ///< timed forwards per batch size
  bool export_onnx = true;     ///< export and verify the chosen run
  std::string python;          ///< onnxruntime's interpreter (empty: export's default)
  /// Cut every training pass to this many steps per epoch (> 0; quick runs and tests); 0: as
  /// the candidates ask.
  std::int64_t max_train_steps = 0;
};

/// Applies a preset's defaults to the fields it sets (device, batches, which candidates are
/// considered); throws hone::UsageError naming "preset" for an unknown one.
void apply_preset(OptimizeOptions& options);

/// One measured model: the baseline or a candidate.
struct ModelMeasure {
  std::int64_t file_bytes = 0;
  std::int64_t memory_bytes = 0;
  std::vector<std::pair<std::int64_t, double>> latency_ms;  ///< (batch, p50 ms) on the device
  double validation = 0;                                    ///< accuracy 0..1 or RMSE on the validation split
  std::optional<double> test;
  nlohmann::json to_json() const;
  static ModelMeasure from_json(const nlohmann::json& j);
};

/// A candidate's outcome.
struct CandidateResult {
  std::string id;                  ///< "c03"
  std::string label;               ///< "int8 static (entropy)"
  std::string stage;               ///< post-training | training
  std::string status = "pending";  ///< measured | failed | dropped | no-effect
  nlohmann::json recipe;           ///< {"passes": [...]} as run
  std::optional<ModelMeasure> measure;
  Verdict verdict;  ///< against the targets (when measured)
  bool pareto = false;
  std::string error;                                      ///< failed: why; dropped: the reason
  std::string rung;                                       ///< training candidates: short | full
  double seconds = 0;                                     ///< to build and measure it
  nlohmann::json pass_details = nlohmann::json::array();  ///< each pass's report details
  nlohmann::json to_json() const;
  static CandidateResult from_json(const nlohmann::json& j);
};

struct OptimizeReport {
  std::string source, output, architecture, dataset, device, machine, date;
  std::string metric;  ///< accuracy | rmse
  Targets targets;
  ModelMeasure baseline;
  nlohmann::json baseline_hot_spots = nlohmann::json::array();
  std::vector<CandidateResult> candidates;
  std::optional<std::string> chosen;  ///< a candidate id
  nlohmann::json chosen_details;      ///< test scores, final verdict, export, op time after
  std::string reason;                 ///< why nothing was chosen
  std::vector<std::string> notes;
  double seconds = 0;
  nlohmann::json to_json() const;  ///< schema hone-optimize/1
  std::string to_text() const;
};

/// Runs the strategy. Bad options (targets <= 0, a source without a dataset, a budget too small for
/// the baseline) throw hone::UsageError / hone::Error before any model is changed; an interrupted
/// run leaves `output` resumable and never half-written.
OptimizeReport optimize_run(const OptimizeOptions& options);

}  // namespace hone::optimize
