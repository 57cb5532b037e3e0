#include "hone/optimize/optimize.h"

#include <torch/cuda.h>
#include <torch/utils.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>

#include "hone/compress/compress.h"
#include "hone/compress/verdict.h"
#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "hone/core/log.h"
#include "hone/core/progress.h"
#include "hone/core/system_info.h"
#include "hone/data/datasets.h"
#include "hone/export/export.h"
#include "hone/optimize/candidates.h"
#include "hone/optimize/pareto.h"
#include "hone/optimize/report_html.h"
#include "hone/profile/model_profile.h"
#include "hone/run/run_dir.h"
#include "hone/runtime/target.h"

namespace hone::optimize {
namespace fs = std::filesystem;

namespace {

constexpr const char* kStateFormat = "hone-optimize-state/1";
constexpr const char* kReportFormat = "hone-optimize/1";
constexpr std::int64_t kShortRungSteps = 50;  ///< steps per training pass on the short rung

nlohmann::json latency_object(const std::vector<std::pair<std::int64_t, double>>& latency) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [batch, ms] : latency) j[std::to_string(batch)] = ms;
  return j;
}

std::vector<std::pair<std::int64_t, double>> latency_from(const nlohmann::json& j) {
  std::vector<std::pair<std::int64_t, double>> out;
  for (const auto& item : j.items()) out.emplace_back(std::stoll(item.key()), item.value().get<double>());
  std::sort(out.begin(), out.end());
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string utc_now() {
  const auto t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

}  // namespace

// ---- serialization ---------------------------------------------------------------------------

nlohmann::json ModelMeasure::to_json() const {
  return {{"file_bytes", file_bytes},
          {"memory_bytes", memory_bytes},
          {"latency_ms", latency_object(latency_ms)},
          {"validation", validation},
          {"test", test ? nlohmann::json(*test) : nlohmann::json(nullptr)}};
}

ModelMeasure ModelMeasure::from_json(const nlohmann::json& j) {
  ModelMeasure m;
  m.file_bytes = j.at("file_bytes").get<std::int64_t>();
  m.memory_bytes = j.at("memory_bytes").get<std::int64_t>();
  m.latency_ms = latency_from(j.at("latency_ms"));
  m.validation = j.at("validation").get<double>();
  if (j.contains("test") && !j["test"].is_null()) m.test = j["test"].get<double>();
  return m;
}

nlohmann::json CandidateResult::to_json() const {
  nlohmann::json j = {{"id", id},           {"label", label},   {"stage", stage},
                      {"status", status},   {"recipe", recipe}, {"rung", rung},
                      {"seconds", seconds}, {"pareto", pareto}, {"pass_details", pass_details}};
  if (!error.empty()) j[status == "failed" ? "error" : "reason"] = error;
  if (measure) {
    const auto m = measure->to_json();
    for (const auto& item : m.items()) j[item.key()] = item.value();
    const auto v = verdict.to_json();
    for (const auto& item : v.items()) j[item.key()] = item.value();
  }
  return j;
}

CandidateResult CandidateResult::from_json(const nlohmann::json& j) {
  CandidateResult c;
  c.id = j.at("id").get<std::string>();
  c.label = j.at("label").get<std::string>();
  c.stage = j.at("stage").get<std::string>();
  c.status = j.at("status").get<std::string>();
  c.recipe = j.at("recipe");
  c.rung = j.value("rung", std::string());
  c.seconds = j.value("seconds", 0.0);
  c.error = j.contains("error") ? j["error"].get<std::string>() : j.value("reason", std::string());
  c.pass_details = j.value("pass_details", nlohmann::json::array());
  if (j.contains("file_bytes")) c.measure = ModelMeasure::from_json(j);
  return c;
}

// ---- presets ---------------------------------------------------------------------------------

void apply_preset(OptimizeOptions& options) {
  if (options.preset.empty()) return;
  if (options.preset == "edge-cpu") {
    options.device = "cpu";
    options.targets.batches = {1};
  } else if (options.preset == "gpu-latency") {
    options.device = "cuda";
    options.targets.batches = {1};
  } else if (options.preset == "gpu-throughput") {
    options.device = "cuda";
    options.targets.batches = {256};
  } else {
    fail_usage_option("preset", "unknown optimize preset '{}'; valid: edge-cpu, gpu-latency, gpu-throughput",
                      options.preset);
  }
}

namespace {

/// Everything the search shares.
struct Search {
  const OptimizeOptions& options;
  fs::path out;
  run::RunConfig config;
  data::LoadedData data;
  data::LoadedData validation;  ///< `data` with the validation split where measure_model scores
  data::DatasetInfo info;
  bool higher_is_better = true;
  compress::VerdictSettings settings;
  ModelMeasure baseline;
  double spent = 0;  ///< seconds of candidate work so far, resumed ones included
};

ModelMeasure measure(Search& s, models::Model& model, std::int64_t file_bytes, bool test_split) {
  const auto m = compress::measure_model(model, file_bytes, test_split ? &s.data : &s.validation, s.info, s.settings);
  ModelMeasure out;
  out.file_bytes = m.file_bytes;
  out.memory_bytes = m.memory_bytes;
  out.latency_ms = m.latency_ms;
  const double score = m.accuracy ? *m.accuracy : m.rmse.value_or(0.0);
  if (test_split) {
    out.test = score;
  } else {
    out.validation = score;
  }
  return out;
}

void check_state(const OptimizeOptions& options, const fs::path& out, const nlohmann::json& state) {
  std::error_code ec;
  const auto path = out / "state.json";
  if (fs::exists(path, ec)) {
    const auto previous = run::read_json_file(path);
    const auto identity = [](const nlohmann::json& j) {
      nlohmann::json key = nlohmann::json::object();
      for (const char* field : {"format", "source", "device", "targets", "max_train_steps"}) {
        key[field] = j.contains(field) ? j[field] : nlohmann::json();
      }
      return key;
    };
    const bool same = identity(previous) == identity(state);
    if (same) {
      log_info("resuming the optimize in {}: measured candidates are kept", out.string());
      return;
    }
    if (!options.force) {
      fail_option("force",
                  "output '{}' holds an optimize of another source, device or targets ({}); choose another output "
                  "directory or start it over",
                  out.string(), path.string());
    }
    remove_tree(out);
  } else if (fs::exists(out, ec) && !(fs::is_directory(out, ec) && fs::is_empty(out, ec))) {
    if (!options.force) {
      fail_option("force", "output '{}' exists and is not an optimize directory; choose another one or replace it",
                  out.string());
    }
    remove_tree(out);
  }
  fs::create_directories(out);
  write_file_atomic(path, state.dump(2) + "\n");
}

/// Seconds measuring the baseline will take, from two forwards per batch size.
double estimate_baseline_seconds(Search& s, models::Model& model) {
  compress::VerdictSettings quick = s.settings;
  quick.warmup = 1;
  quick.iterations = 2;
  const auto m = compress::measure_model(model, 1, nullptr, s.info, quick);
  double seconds = 0;
  double per_sample_ms = 0;
  for (const auto& [batch, ms] : m.latency_ms) {
    seconds += ms * (s.settings.warmup + s.settings.iterations) / 1000.0;
    per_sample_ms = std::max(per_sample_ms, ms / static_cast<double>(batch));
  }
  return seconds +
         per_sample_ms * static_cast<double>(s.data.val.dataset.count() + s.data.test.dataset.count()) / 1000.0;
}

nlohmann::json hot_spots(const std::string& target, const Search& s, std::vector<std::string>& notes) {
  nlohmann::json rows = nlohmann::json::array();
  try {
    profile::ProfileOptions p;
    p.device = s.options.device;
    p.batch = s.options.targets.batches.front();
    p.warmup = 2;
    p.steps = 5;
    p.top = 8;
    p.roofline = false;
    const auto report = profile::profile_model(target, p);
    for (const auto& op : report.ops) {
      const double us = report.cuda ? op.self_device_us : op.self_cpu_us;
      rows.push_back({{"op", op.name}, {"ms", us / 1000.0}, {"percent", op.percent}});
    }
  } catch (const std::exception& e) {
    notes.push_back(fmt::format("profiling {} failed: {}", target, e.what()));
  }
  return rows;
}

/// A candidate's identity, before anything is known about it.
CandidateResult new_result(const CandidatePlan& plan, const std::string& id, const nlohmann::json& recipe,
                           const std::string& rung) {
  CandidateResult c;
  c.id = id;
  c.label = plan.label;
  c.stage = plan.stage;
  c.recipe = recipe;
  c.rung = rung;
  return c;
}

CandidateResult run_candidate(Search& s, const CandidatePlan& plan, const std::string& id, const nlohmann::json& recipe,
                              const std::string& rung) {
  const auto dir = s.out / "candidates" / id;
  const auto result_path = dir / "result.json";
  std::error_code ec;
  if (fs::exists(result_path, ec)) {
    auto cached = CandidateResult::from_json(run::read_json_file(result_path));
    s.spent += cached.seconds;
    return cached;
  }
  CandidateResult result = new_result(plan, id, recipe, rung);
  const auto start = std::chrono::steady_clock::now();
  if (fs::exists(dir, ec)) remove_tree(dir);  // an interrupted attempt
  fs::create_directories(dir);
  try {
    compress::CompressOptions c;
    c.source = s.options.source;
    c.recipe = compress::parse_recipe(recipe, "candidate " + id);
    c.output = dir / "model";
    c.force = true;
    c.device = s.options.device;
    c.measure = false;
    const auto report = compress::compress_model(c);
    bool changed = false;
    std::vector<std::string> skipped;
    for (const auto& p : report.passes) {
      changed |= !p.changed.empty();
      for (const auto& line : p.skipped) skipped.push_back(line);
      result.pass_details.push_back(
          {{"pass", p.pass}, {"changed", p.changed.size()}, {"skipped", p.skipped.size()}, {"details", p.details}});
    }
    if (!changed) {
      result.status = "no-effect";
      result.error = fmt::format(
          "no pass changed a layer ({})",
          skipped.empty()
              ? std::string("nothing to change")
              : fmt::format("{}", fmt::join(skipped.begin(), skipped.begin() + std::min<std::size_t>(3, skipped.size()),
                                            "; ")));
    } else {
      auto model = run::load_run_model(dir / "model");
      const auto bytes = static_cast<std::int64_t>(fs::file_size(dir / "model" / "model.safetensors"));
      result.measure = measure(s, *model, bytes, /*test_split=*/false);
      result.status = "measured";
    }
  } catch (const std::exception& e) {
    result.status = "failed";
    result.error = e.what();
    remove_tree(dir / "model");
  }
  result.seconds = seconds_since(start);
  s.spent += result.seconds;
  write_file_atomic(result_path, result.to_json().dump(2) + "\n");
  return result;
}

/// Seconds a candidate's training passes spent in their epochs (their reports' per-epoch times).
double training_seconds(const CandidateResult& c) {
  double seconds = 0;
  for (const auto& p : c.pass_details) {
    const auto& details = p.value("details", nlohmann::json::object());
    if (!details.contains("training") || !details["training"].contains("epochs")) continue;
    for (const auto& epoch : details["training"]["epochs"]) seconds += epoch.value("seconds", 0.0);
  }
  return std::min(seconds, c.seconds);
}

void judge_candidate(const Search& s, CandidateResult& c) {
  if (!c.measure) return;
  c.verdict = judge(s.baseline.latency_ms, s.baseline.file_bytes, s.baseline.validation, c.measure->latency_ms,
                    c.measure->file_bytes, c.measure->validation, s.higher_is_better, s.options.targets);
}

/// Copies a run directory's files (flat) to `to`, atomically (temporary sibling, then rename).
void copy_run(const fs::path& from, const fs::path& to) {
  const auto temp = to.parent_path() / ("." + to.filename().string() + ".tmp");
  remove_tree(temp);
  fs::create_directories(temp);
  for (const auto& entry : fs::directory_iterator(from)) {
    if (!entry.is_regular_file()) continue;
    write_file_atomic(temp / entry.path().filename(), read_file(entry.path()));
  }
  remove_tree(to);
  fs::rename(temp, to);
}

std::string closest_miss(const std::vector<CandidateResult>& candidates, const Targets& targets) {
  // Which targets each measured plan met, so a person sees what is out of reach.
  std::vector<std::string> speed, size, accuracy;
  for (const auto& c : candidates) {
    if (!c.measure) continue;
    if (c.verdict.meets_speedup) speed.push_back(c.id);
    if (c.verdict.meets_size) size.push_back(c.id);
    if (c.verdict.meets_accuracy) accuracy.push_back(c.id);
  }
  const auto list = [](const std::vector<std::string>& ids) {
    return ids.empty() ? std::string("none") : fmt::format("{}", fmt::join(ids, ", "));
  };
  return fmt::format(
      "no plan meets every target on this device. speed-up >= {:g}x at every batch: {}; size >= {:g}x: {}; "
      "accuracy within {:g}: {}. The Pareto front is the best that was measured",
      targets.speedup, list(speed), targets.size, list(size), targets.max_accuracy_drop, list(accuracy));
}

}  // namespace

// ---- the strategy ----------------------------------------------------------------------------

OptimizeReport optimize_run(const OptimizeOptions& options) {
  const auto total_start = std::chrono::steady_clock::now();
  validate_targets(options.targets);
  if (!std::isfinite(options.budget_minutes) || options.budget_minutes <= 0) {
    fail_usage_option("budget_minutes", "the search budget must be a positive number of minutes, got {}",
                      options.budget_minutes);
  }
  if (options.output.empty()) fail_usage_option("output", "optimize: no output directory given");
  if (options.iterations <= 0) fail_usage_option("iterations", "iterations must be >= 1, got {}", options.iterations);
  if (options.warmup < 0) fail_usage_option("warmup", "warmup must be >= 0, got {}", options.warmup);
  std::error_code ec;
  if (!fs::is_directory(options.source, ec)) {
    fail_usage_option("target",
                      "optimize needs a trained run directory with a dataset (to score accuracy on its validation "
                      "split); '{}' is not one (train one with hone train -m MODEL -d DATASET -o DIR)",
                      options.source);
  }
  const fs::path out = fs::absolute(options.output);
  if (fs::exists(out, ec) && fs::equivalent(out, options.source, ec)) {
    fail_usage_option("output", "output '{}' is the source run itself; write somewhere else", out.string());
  }
  const c10::Device device(options.device);
  if (device.is_cuda() && !torch::cuda::is_available()) {
    fail_usage_option("device", "device '{}' was asked for but no CUDA GPU is available here", options.device);
  }

  Search s{options, out, run::load_run_config(options.source), {}, {}, {}, true, {}, {}, 0};
  if (s.config.dataset.empty()) {
    fail_usage_option("target", "run '{}' records no dataset: optimize cannot score accuracy", options.source);
  }
  auto target = runtime::load_target(options.source);
  s.info = target.info;
  s.data = data::load_dataset(s.config.dataset, s.config.data_options);
  if (s.data.val.dataset.count() == 0) {
    fail_usage_option("target", "dataset '{}' of run '{}' has no validation split to choose plans on", s.config.dataset,
                      options.source);
  }
  s.validation = s.data;
  s.validation.test = s.data.val;
  s.higher_is_better = s.data.info.task == data::TaskKind::kClassification;
  s.settings = compress::VerdictSettings{device, options.targets.batches, options.warmup, options.iterations, 0};

  // A budget too small for even the baseline is refused before anything is written.
  const double baseline_seconds = estimate_baseline_seconds(s, *target.model);
  if (baseline_seconds > options.budget_minutes * 60.0) {
    fail_usage_option("budget_minutes",
                      "a budget of {:g} minutes is less than measuring the baseline alone takes here (about {:.0f} s "
                      "for latency at batch {} and the validation and test splits); give more minutes",
                      options.budget_minutes, baseline_seconds, fmt::join(options.targets.batches, ","));
  }

  const nlohmann::json state = {{"format", kStateFormat},
                                {"source", fs::absolute(options.source).lexically_normal().string()},
                                {"device", device.str()},
                                {"targets", options.targets.to_json()},
                                {"max_train_steps", options.max_train_steps},
                                {"started", utc_now()}};
  check_state(options, out, state);

  OptimizeReport report;
  report.source = options.source;
  report.output = out.string();
  report.architecture = s.config.architecture;
  report.dataset = s.config.dataset;
  report.device = device.str();
  report.targets = options.targets;
  report.metric = s.higher_is_better ? "accuracy" : "rmse";
  report.date = utc_now();
  const auto system = collect_system_info();
  report.machine = device.is_cuda() && !system.gpus.empty()
                       ? system.gpus.front().name
                       : fmt::format("{} ({} threads)", system.cpu_model, system.torch_threads);

  // 1. Baseline.
  const auto baseline_path = out / "baseline.json";
  if (fs::exists(baseline_path, ec)) {
    const auto j = run::read_json_file(baseline_path);
    s.baseline = ModelMeasure::from_json(j.at("measure"));
    report.baseline_hot_spots = j.value("hot_spots", nlohmann::json::array());
  } else {
    log_info("baseline: measuring {} on {}", options.source, device.str());
    s.baseline = measure(s, *target.model, target.file_bytes, /*test_split=*/false);
    report.baseline_hot_spots = hot_spots(options.source, s, report.notes);
    write_file_atomic(
        baseline_path,
        nlohmann::json{{"measure", s.baseline.to_json()}, {"hot_spots", report.baseline_hot_spots}}.dump(2) + "\n");
  }
  report.baseline = s.baseline;

  // 2. Candidates for what this model holds, on this device.
  const auto traits = describe_model(*target.model);
  target.model.reset();
  DeviceTraits device_traits;
  device_traits.cuda = device.is_cuda();
  device_traits.native_bf16 = device.is_cuda() || cpu_has_native_bf16();
  const auto plans = propose_candidates(traits, device_traits, options.targets);
  if (!device_traits.native_bf16) {
    report.notes.push_back("this CPU has no native bf16 (AVX512-BF16/AMX): bf16 plans were not tried");
  }
  const double budget = options.budget_minutes * 60.0;
  const auto over_budget = [&] { return s.spent >= budget; };
  const auto finish = [&](CandidateResult c) {
    judge_candidate(s, c);
    report.candidates.push_back(std::move(c));
  };
  const auto dropped = [&](const CandidatePlan& plan, const std::string& id, const nlohmann::json& recipe,
                           const std::string& rung, std::string why) {
    CandidateResult c = new_result(plan, id, recipe, rung);
    c.status = "dropped";
    c.error = std::move(why);
    report.candidates.push_back(std::move(c));
  };

  // 3a. Post-training plans: all of them while the budget lasts.
  std::vector<const CandidatePlan*> post, training;
  for (const auto& plan : plans) (plan.stage == "training" ? training : post).push_back(&plan);
  {
    ProgressBar bar(static_cast<std::int64_t>(post.size()), "post-training plans", options.progress);
    for (const auto* plan : post) {
      if (over_budget()) {
        dropped(*plan, plan->id, plan->recipe, "", "the budget was spent before it could run");
      } else {
        finish(run_candidate(s, *plan, plan->id, plan->recipe, ""));
      }
      bar.advance(1, plan->label);
    }
    bar.finish();
  }

  // 3b. Training plans, successive halving: a short rung for all, then full training for those
  // whose structure meets the speed and size targets, best short score first, while the budget lasts.
  const auto train_samples = s.data.train.dataset.count();
  const std::int64_t short_steps =
      options.max_train_steps > 0 ? std::min(options.max_train_steps, kShortRungSteps) : kShortRungSteps;
  std::vector<std::pair<const CandidatePlan*, std::size_t>> shorts;  // plan, index in report.candidates
  {
    ProgressBar bar(static_cast<std::int64_t>(training.size()), "training plans (short rung)", options.progress);
    for (const auto* plan : training) {
      const auto recipe = shorten_recipe(plan->recipe, short_steps);
      if (over_budget()) {
        dropped(*plan, plan->id + "s", recipe, "short", "the budget was spent before it could run");
      } else {
        finish(run_candidate(s, *plan, plan->id + "s", recipe, "short"));
        shorts.emplace_back(plan, report.candidates.size() - 1);
      }
      bar.advance(1, plan->label);
    }
    bar.finish();
  }
  std::vector<std::pair<const CandidatePlan*, std::size_t>> promising;
  for (const auto& entry : shorts) {
    const auto& c = report.candidates[entry.second];
    if (c.status != "measured") continue;
    if (c.verdict.meets_speedup && c.verdict.meets_size && c.verdict.meets_latency) {
      promising.push_back(entry);
    } else {
      std::vector<std::string> structural;  // training can move accuracy, not latency or size
      for (const auto& line : c.verdict.missed) {
        if (line.rfind("accuracy", 0) != 0 && line.rfind("RMSE", 0) != 0) structural.push_back(line);
      }
      report.notes.push_back(
          fmt::format("{} not trained fully: its structure misses {}", c.id, fmt::join(structural, "; ")));
    }
  }
  std::stable_sort(promising.begin(), promising.end(), [&](const auto& a, const auto& b) {
    const double x = report.candidates[a.second].measure->validation;
    const double y = report.candidates[b.second].measure->validation;
    return s.higher_is_better ? x > y : x < y;
  });
  {
    ProgressBar bar(static_cast<std::int64_t>(promising.size()), "training plans (full)", options.progress);
    for (const auto& [plan, index] : promising) {
      const auto recipe =
          options.max_train_steps > 0 ? cap_recipe_steps(plan->recipe, options.max_train_steps) : plan->recipe;
      const auto short_steps_taken =
          std::max<std::int64_t>(1, training_steps(report.candidates[index].recipe, train_samples));
      // Training time scales with the steps; the rest (teacher outputs cached, calibration,
      // measuring) does not.
      const auto& short_run = report.candidates[index];
      const double trained = training_seconds(short_run);
      const double estimate =
          (short_run.seconds - trained) +
          trained * static_cast<double>(training_steps(recipe, train_samples)) / static_cast<double>(short_steps_taken);
      const bool cached = fs::exists(out / "candidates" / plan->id / "result.json", ec);
      if (!cached && s.spent + estimate > budget * 1.1) {
        dropped(*plan, plan->id, recipe, "full",
                fmt::format("budget: full training needs about {}, {} of the budget is left (its short rung scored "
                            "{:.4f})",
                            format_duration(estimate), format_duration(std::max(0.0, budget - s.spent)),
                            report.candidates[index].measure->validation));
      } else {
        finish(run_candidate(s, *plan, plan->id, recipe, "full"));
      }
      bar.advance(1, plan->label);
    }
    bar.finish();
  }

  // 4. The Pareto front and the choice, on validation scores.
  std::vector<std::size_t> measured;
  std::vector<ParetoPoint> points;
  std::vector<bool> eligible;
  for (std::size_t i = 0; i < report.candidates.size(); ++i) {
    const auto& c = report.candidates[i];
    if (c.status != "measured" || !c.measure) continue;
    measured.push_back(i);
    const double latency = c.measure->latency_ms.empty() ? 0.0 : c.measure->latency_ms.front().second;
    points.push_back({latency, s.higher_is_better ? c.measure->validation : -c.measure->validation,
                      static_cast<double>(c.measure->file_bytes)});
    eligible.push_back(c.verdict.meets_all());
  }
  const auto front = pareto_front(points);
  for (std::size_t k = 0; k < measured.size(); ++k) report.candidates[measured[k]].pareto = front[k];
  const auto best = choose_best(points, eligible);

  if (!best) {
    report.reason = closest_miss(report.candidates, options.targets);
    remove_tree(out / "model");
  } else {
    // 5. The chosen plan: written out, scored once on the test split beside the baseline, exported.
    auto& chosen = report.candidates[measured[*best]];
    report.chosen = chosen.id;
    log_info("chosen: {} ({})", chosen.id, chosen.label);
    copy_run(out / "candidates" / chosen.id / "model", out / "model");
    write_file_atomic(out / "recipe.json", chosen.recipe.dump(2) + "\n");
    auto baseline_model = run::load_run_model(options.source);
    const auto base_test = measure(s, *baseline_model, s.baseline.file_bytes, /*test_split=*/true);
    baseline_model.reset();
    auto chosen_model = run::load_run_model(out / "model");
    const auto chosen_test = measure(s, *chosen_model, chosen.measure->file_bytes, /*test_split=*/true);
    chosen_model.reset();
    report.baseline.test = base_test.test;
    chosen.measure->test = chosen_test.test;
    nlohmann::json latency = nlohmann::json::object();
    for (std::size_t i = 0; i < base_test.latency_ms.size() && i < chosen_test.latency_ms.size(); ++i) {
      latency[std::to_string(base_test.latency_ms[i].first)] = {base_test.latency_ms[i].second,
                                                                chosen_test.latency_ms[i].second};
    }
    const auto final_verdict =
        judge(base_test.latency_ms, base_test.file_bytes, *base_test.test, chosen_test.latency_ms,
              chosen_test.file_bytes, *chosen_test.test, s.higher_is_better, options.targets);
    report.chosen_details = {{"id", chosen.id},
                             {"label", chosen.label},
                             {"test", *chosen_test.test},
                             {"test_baseline", *base_test.test},
                             {"recipe", chosen.recipe},
                             {"verdict",
                              {{"file_bytes", {base_test.file_bytes, chosen_test.file_bytes}},
                               {"latency_ms", latency},
                               {"judged", final_verdict.to_json()}}}};
    if (!final_verdict.meets_all()) {
      report.notes.push_back(fmt::format("measured again beside the baseline with the test split, {} misses: {}",
                                         chosen.id, fmt::join(final_verdict.missed, "; ")));
    }
    if (options.export_onnx) {
      nlohmann::json exported;
      try {
        onnx::ExportOptions e;
        e.target = (out / "model").string();
        e.output = out / "model.onnx";
        e.python = options.python;
        const auto r = onnx::export_model(e);
        double max_rel = 0;
        for (const auto& check : r.checks) max_rel = std::max(max_rel, check.max_rel_error);
        exported = {
            {"path", "model.onnx"}, {"verified", r.verified && r.passed}, {"max_relative_error", max_rel},
            {"metric", r.metric},   {"metric_hone", r.metric_hone},       {"metric_onnxruntime", r.metric_onnxruntime},
            {"notes", r.notes}};
        if (!r.passed)
          exported["note"] = "onnxruntime disagreed with hone beyond the export tolerance: no file written";
      } catch (const std::exception& e) {
        exported = {{"path", nullptr}, {"verified", false}, {"note", e.what()}};
      }
      report.chosen_details["export"] = exported;
    }
    report.chosen_details["op_time_after"] = hot_spots((out / "model").string(), s, report.notes);
  }
  report.seconds = seconds_since(total_start);
  const auto j = report.to_json();
  write_file_atomic(out / "report.html", render_report_html(j));
  write_file_atomic(out / "report.json", j.dump(2) + "\n");  // last: its presence means finished
  return report;
}

// ---- the report ------------------------------------------------------------------------------

nlohmann::json OptimizeReport::to_json() const {
  const bool accuracy = metric == "accuracy";
  nlohmann::json candidates_json = nlohmann::json::array();
  nlohmann::json front = nlohmann::json::array();
  nlohmann::json sensitivity = nlohmann::json::array();
  for (const auto& c : candidates) {
    candidates_json.push_back(c.to_json());
    if (c.pareto) front.push_back(c.id);
    if (!sensitivity.empty()) continue;
    for (const auto& p : c.pass_details) {
      const auto& d = p.value("details", nlohmann::json::object());
      if (!d.contains("sensitivity")) continue;
      for (const auto& row : d["sensitivity"]) {
        sensitivity.push_back({{"layer", row.value("path", "")},
                               {"drop", row.value("drop", 0.0)},
                               {"int8", row.value("int8", false)},
                               {"pass", p.value("pass", "")}});
      }
    }
  }
  nlohmann::json base = baseline.to_json();
  base["hot_spots"] = baseline_hot_spots;
  nlohmann::json j = {{"format", kReportFormat},
                      {"source", source},
                      {"output", output},
                      {"architecture", architecture},
                      {"dataset", dataset},
                      {"device", device},
                      {"machine", machine},
                      {"date", date},
                      {"seconds", seconds},
                      {"metric",
                       {{"name", metric},
                        {"split", "validation"},
                        {"higher_is_better", accuracy},
                        {"scale", accuracy ? 100 : 1},
                        {"unit", accuracy ? "%" : ""}}},
                      {"targets", targets.to_json()},
                      {"baseline", base},
                      {"candidates", candidates_json},
                      {"pareto_front", front},
                      {"chosen", chosen ? chosen_details : nlohmann::json(nullptr)},
                      {"layer_sensitivity", sensitivity},
                      {"notes", notes}};
  if (!chosen) j["reason"] = reason;
  return j;
}

std::string OptimizeReport::to_text() const {
  const bool accuracy = metric == "accuracy";
  const auto score = [&](double v) { return accuracy ? fmt::format("{:.2f} %", v * 100) : fmt::format("{:.4f}", v); };
  std::string text =
      fmt::format("hone optimize {} ({} on {}) on {} [{}]\n", source, architecture, dataset, device, machine);
  text += fmt::format("targets: {:g}x faster at batch {}, {:g}x smaller, at most {:g} {} worse\n", targets.speedup,
                      fmt::join(targets.batches, ","), targets.size, targets.max_accuracy_drop,
                      accuracy ? "points" : "% RMSE");
  std::string base_latency;
  for (const auto& [batch, ms] : baseline.latency_ms) base_latency += fmt::format(" b{} {:.3f} ms", batch, ms);
  text += fmt::format("baseline: {} bytes,{}, validation {}\n\n", baseline.file_bytes, base_latency,
                      score(baseline.validation));
  text += fmt::format("{:<5} {:<58} {:<9} {:>18} {:>7} {:>8}  {}\n", "id", "plan", "status", "speed-up", "smaller",
                      accuracy ? "drop pt" : "RMSE +%", "");
  for (const auto& c : candidates) {
    std::string speed, size, drop, mark;
    if (c.measure) {
      for (const auto& [batch, ratio] : c.verdict.speedup) speed += fmt::format(" {:.2f}x", ratio);
      size = fmt::format("{:.2f}x", c.verdict.size_ratio);
      drop = fmt::format("{:+.2f}", c.verdict.accuracy_drop);
      mark = c.verdict.meets_all() ? "meets all" : "";
      if (chosen && *chosen == c.id) mark = "<- chosen";
      if (c.pareto && mark.empty()) mark = "pareto";
    } else {
      mark = c.error.substr(0, 90);
    }
    text += fmt::format("{:<5} {:<58} {:<9} {:>18} {:>7} {:>8}  {}\n", c.id, c.label.substr(0, 58), c.status, speed,
                        size, drop, mark);
  }
  text += "\n";
  if (chosen) {
    const auto& d = chosen_details;
    text += fmt::format("chosen {}: {}\n  test {} -> {}", *chosen, d.value("label", ""),
                        score(d.value("test_baseline", 0.0)), score(d.value("test", 0.0)));
    const auto& fb = d["verdict"]["file_bytes"];
    text += fmt::format(", file {} -> {} bytes", fb[0].get<std::int64_t>(), fb[1].get<std::int64_t>());
    for (const auto& item : d["verdict"]["latency_ms"].items()) {
      text += fmt::format(", b{} {:.3f} -> {:.3f} ms", item.key(), item.value()[0].get<double>(),
                          item.value()[1].get<double>());
    }
    text += "\n";
    if (d.contains("export")) {
      const auto& e = d["export"];
      text += e.value("verified", false)
                  ? fmt::format("  exported to {}/model.onnx, verified by onnxruntime ({} {:.4f} vs {:.4f})\n", output,
                                e.value("metric", ""), e.value("metric_hone", 0.0), e.value("metric_onnxruntime", 0.0))
                  : fmt::format("  not exported: {}\n", e.value("note", ""));
    }
    text += fmt::format("  the run: {}/model   replay: hone compress {} --recipe {}/recipe.json -o DIR\n", output,
                        source, output);
  } else {
    text += "nothing chosen: " + reason + "\n";
  }
  for (const auto& note : notes) text += "note: " + note + "\n";
  text += fmt::format("report: {}/report.html ({} in all)\n", output, format_duration(seconds));
  return text;
}

}  // namespace hone::optimize
