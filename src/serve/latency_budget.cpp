#include "hone/serve/latency_budget.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>

#include "hone/bench/model_bench.h"
#include "hone/core/error.h"
#include "hone/core/log.h"
#include "hone/runtime/device_probe.h"
#include "hone/runtime/settings.h"

namespace hone::serve {
namespace {

double worst_case_ms(const LatencyPoint& point) { return 2 * point.p99_ms; }

/// The curve's point for `batch`: itself, else the next larger measured one (an over-estimate),
/// else the largest measured.
const LatencyPoint& point_for(const std::vector<LatencyPoint>& curve, std::size_t batch) {
  for (const LatencyPoint& p : curve) {
    if (p.batch >= static_cast<std::int64_t>(batch)) return p;
  }
  return curve.back();
}

}  // namespace

nlohmann::json BatchingPlan::to_json() const {
  nlohmann::json points = nlohmann::json::array();
  for (const LatencyPoint& p : curve)
    points.push_back({{"batch", p.batch}, {"p50_ms", p.p50_ms}, {"p99_ms", p.p99_ms}});
  return {{"p99_budget_ms", p99_budget_ms},
          {"usable_ms", usable_ms},
          {"device", device},
          {"dtype", dtype},
          {"tokens_per_row", tokens_per_row},
          {"curve", points},
          {"max_batch", max_batch},
          {"max_queue_delay_us", max_queue_delay.count()},
          {"max_batch_tokens", max_batch_tokens},
          {"max_batch_explicit", max_batch_explicit},
          {"queue_delay_explicit", queue_delay_explicit},
          {"fits", fits},
          {"predicted_worst_ms", predicted_worst_ms},
          {"reason", reason}};
}

std::string BatchingPlan::to_text() const {
  std::string text =
      fmt::format("batch-size -> forward latency on {} {}{}:\n  batch     p50 ms     p99 ms   2xp99 ms\n", device,
                  dtype, tokens_per_row > 0 ? fmt::format(", {} tokens per row", tokens_per_row) : std::string());
  for (const LatencyPoint& p : curve) {
    text += fmt::format("  {:>5} {:>10.3f} {:>10.3f} {:>10.3f}{}\n", p.batch, p.p50_ms, p.p99_ms, worst_case_ms(p),
                        p.batch == static_cast<std::int64_t>(max_batch) ? "  <- max batch" : "");
  }
  text += fmt::format("budget p99 {:.1f} ms (usable {:.1f} ms): max batch {}{}, queue delay {} us{}{}; {}\n",
                      p99_budget_ms, usable_ms, max_batch, max_batch_explicit ? " (explicit)" : "",
                      max_queue_delay.count(), queue_delay_explicit ? " (explicit)" : "",
                      max_batch_tokens > 0 ? fmt::format(", max batch tokens {}", max_batch_tokens) : std::string(),
                      reason);
  return text;
}

BatchingPlan choose_batching(const std::vector<LatencyPoint>& curve, const BudgetOptions& options) {
  if (!(options.p99_budget_ms > 0)) {
    fail_option("p99_budget_ms", "the p99 budget must be > 0 ms, got {}", options.p99_budget_ms);
  }
  if (!(options.headroom > 0 && options.headroom <= 1)) {
    fail_option("headroom", "headroom must be in (0, 1], got {}", options.headroom);
  }
  HONE_CHECK(!curve.empty(), "latency budget: no measured batch sizes to choose from");
  BatchingPlan plan;
  plan.p99_budget_ms = options.p99_budget_ms;
  plan.usable_ms = options.p99_budget_ms * options.headroom;
  plan.curve = curve;
  std::sort(plan.curve.begin(), plan.curve.end(),
            [](const LatencyPoint& a, const LatencyPoint& b) { return a.batch < b.batch; });
  const LatencyPoint* chosen = nullptr;
  if (options.fixed_max_batch) {
    plan.max_batch = *options.fixed_max_batch;
    plan.max_batch_explicit = true;
    chosen = &point_for(plan.curve, plan.max_batch);
    plan.fits = worst_case_ms(*chosen) <= plan.usable_ms;
    plan.reason = fmt::format("max batch {} was given explicitly (it wins over the budget)", plan.max_batch);
  } else {
    for (const LatencyPoint& p : plan.curve) {
      if (worst_case_ms(p) <= plan.usable_ms) chosen = &p;
    }
    if (chosen == nullptr) {
      chosen = &plan.curve.front();
      plan.max_batch = static_cast<std::size_t>(chosen->batch);
      plan.fits = false;
      plan.reason = fmt::format(
          "even batch {} takes 2 x p99 = {:.2f} ms, over the usable {:.2f} ms: the budget cannot be met on this "
          "device",
          chosen->batch, worst_case_ms(*chosen), plan.usable_ms);
    } else {
      plan.max_batch = static_cast<std::size_t>(chosen->batch);
      plan.reason = fmt::format("the largest measured batch whose 2 x p99 ({:.2f} ms) fits the usable {:.2f} ms",
                                worst_case_ms(*chosen), plan.usable_ms);
    }
  }
  if (options.fixed_queue_delay) {
    plan.max_queue_delay = *options.fixed_queue_delay;
    plan.queue_delay_explicit = true;
  } else {
    const double slack_ms = std::max(0.0, plan.usable_ms - worst_case_ms(*chosen));
    const double delay_ms = std::min(slack_ms, chosen->p50_ms);
    plan.max_queue_delay = std::chrono::microseconds(static_cast<std::int64_t>(std::floor(delay_ms * 1000)));
  }
  if (options.tokens_per_row > 0) {
    plan.tokens_per_row = options.tokens_per_row;
    plan.max_batch_tokens = static_cast<std::int64_t>(plan.max_batch) * options.tokens_per_row;
  }
  plan.predicted_worst_ms = worst_case_ms(*chosen) + static_cast<double>(plan.max_queue_delay.count()) / 1000;
  return plan;
}

BatchingPlan plan_batching(runtime::ModelTarget& target, const std::string& device, const std::string& dtype,
                           const BudgetOptions& options) {
  if (!(options.p99_budget_ms > 0)) {
    fail_option("p99_budget_ms", "the p99 budget must be > 0 ms, got {}", options.p99_budget_ms);
  }
  if (options.max_batch_limit < 1) fail_option("max_batch_limit", "the curve's largest batch must be >= 1");
  const bool tokens = target.info.vocab_size > 0;
  const runtime::RunSettings settings =
      runtime::make_run_settings(device, dtype, false, false, tokens ? options.tokens_per_row : 128);
  runtime::prepare_model(*target.model, settings);
  data::DatasetInfo info = target.info;
  if (tokens) {
    if (options.tokens_per_row < 1 || options.tokens_per_row > info.input_shape.front()) {
      fail_option("tokens_per_row", "tokens per row {} is outside [1, {}] (the model's longest input)",
                  options.tokens_per_row, info.input_shape.front());
    }
    info.input_shape = {options.tokens_per_row};
  }
  std::vector<std::int64_t> batches;
  for (std::int64_t b = 1; b <= options.max_batch_limit; b *= 2) batches.push_back(b);
  if (options.fixed_max_batch) {
    const auto fixed = static_cast<std::int64_t>(*options.fixed_max_batch);
    if (std::find(batches.begin(), batches.end(), fixed) == batches.end()) batches.push_back(fixed);
    std::sort(batches.begin(), batches.end());
  }
  const double usable_ms = options.p99_budget_ms * options.headroom;
  std::vector<LatencyPoint> curve;
  c10::InferenceMode inference;
  for (const std::int64_t batch : batches) {
    LatencyPoint point;
    point.batch = batch;
    try {
      const at::Tensor input = runtime::make_random_input(info, batch, settings);
      const runtime::Summary summary =
          bench::time_forward_ms(*target.model, input, settings, options.warmup, options.iterations);
      point.p50_ms = summary.p50;
      point.p99_ms = summary.p99;
    } catch (const c10::OutOfMemoryError&) {
      log_info("latency curve: batch {} is out of device memory; the curve stops at {}", batch, batch / 2);
      runtime::synchronize(settings.device);
      break;
    }
    curve.push_back(point);
    const bool past_fixed = !options.fixed_max_batch || batch >= static_cast<std::int64_t>(*options.fixed_max_batch);
    if (worst_case_ms(point) > usable_ms && past_fixed) break;  // larger batches only take longer
  }
  BudgetOptions choice = options;
  if (!tokens) choice.tokens_per_row = 0;
  BatchingPlan plan = choose_batching(curve, choice);
  plan.device = settings.device.str();
  plan.dtype = dtype;
  // A batch must still hold one sequence of the longest length the model takes.
  if (tokens) plan.max_batch_tokens = std::max(plan.max_batch_tokens, target.info.input_shape.front());
  return plan;
}

void apply_batching_plan(const BatchingPlan& plan, ModelServiceOptions& options, bool keep_max_batch_tokens) {
  options.max_batch_size = plan.max_batch;
  options.max_queue_delay = plan.max_queue_delay;
  if (plan.max_batch_tokens > 0 && !keep_max_batch_tokens) options.max_batch_tokens = plan.max_batch_tokens;
}

}  // namespace hone::serve
