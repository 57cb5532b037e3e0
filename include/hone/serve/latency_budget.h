#pragma once
/// @file A p99 latency budget turned into batching settings (`hone serve --p99-budget-ms B`): the
/// model's batch-size -> latency curve is measured on this device at warm-up (bench's timer), and
/// the largest batch whose worst case fits is chosen, with a queue delay from what is left.
///
/// The rule. A request that arrives just as a batch of B starts waits for it, then runs in the
/// next one: its compute-and-queueing worst case is about 2 x p99(B) (+ the queue delay D, which
/// only applies while the worker is idle waiting to fill a batch). So with
/// usable = headroom x budget (the rest is left for HTTP, JSON and tokenization):
///   max batch B = the largest measured batch with 2 x p99(B) <= usable (1 if none fits: said so);
///   delay D     = min(usable - 2 x p99(B), p50(B)): longer than one batch's compute gains little,
///                 since greedy batching would have started the next batch by then;
///   token models: max batch tokens = B x the curve's tokens per row, so longer texts fill a batch
///                 by tokens, not rows, and stay within the measured cost.
/// Settings given explicitly win over the budget's (as flags win over presets in `hone train`).
///
///     BudgetOptions budget{.p99_budget_ms = 50};
///     BatchingPlan plan = plan_batching(target.model, {.device = "cuda", .dtype = "bf16"}, budget);
///     options.max_batch_size = plan.max_batch;  options.max_queue_delay = plan.max_queue_delay;
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hone/runtime/target.h"
#include "hone/serve/model_service.h"

namespace hone::serve {

/// One measured batch size: the model's forward (no HTTP), milliseconds per call.
struct LatencyPoint {
  std::int64_t batch = 0;
  double p50_ms = 0;
  double p99_ms = 0;
};

struct BudgetOptions {
  double p99_budget_ms = 0;             ///< > 0
  double headroom = 0.8;                ///< share of the budget the model's compute and queueing may take
  std::int64_t max_batch_limit = 1024;  ///< the curve stops here (and at the first batch over budget)
  std::int64_t tokens_per_row = 128;    ///< token models: padded length the curve is measured at
  int warmup = 3;
  int iterations = 10;
  std::optional<std::size_t> fixed_max_batch;                  ///< given explicitly: kept
  std::optional<std::chrono::microseconds> fixed_queue_delay;  ///< given explicitly: kept
};

struct BatchingPlan {
  double p99_budget_ms = 0;
  double usable_ms = 0;  ///< headroom x budget
  std::string device;
  std::string dtype;
  std::int64_t tokens_per_row = 0;  ///< 0 for models that do not take tokens
  std::vector<LatencyPoint> curve;
  std::size_t max_batch = 1;
  std::chrono::microseconds max_queue_delay{0};
  std::int64_t max_batch_tokens = 0;  ///< token models: max_batch x tokens_per_row; 0 otherwise
  bool max_batch_explicit = false;
  bool queue_delay_explicit = false;
  bool fits = true;               ///< false: even batch 1 (or the explicit batch) exceeds the usable budget
  double predicted_worst_ms = 0;  ///< 2 x p99(max batch) + delay
  std::string reason;             ///< one sentence on why these numbers

  nlohmann::json to_json() const;
  std::string to_text() const;  ///< the curve as a small table, then the choice
};

/// The rule above on a measured curve (ascending batches). Throws hone::Error naming the option
/// p99_budget_ms or headroom when out of range, or when the curve is empty.
BatchingPlan choose_batching(const std::vector<LatencyPoint>& curve, const BudgetOptions& options);

/// Measures the curve (batches 1, 2, 4, ... up to max_batch_limit, stopping after the first over
/// budget or out of device memory) on `target`'s model, prepared for device and dtype (as the
/// server will run it; random inputs, timing only), then choose_batching.
BatchingPlan plan_batching(runtime::ModelTarget& target, const std::string& device, const std::string& dtype,
                           const BudgetOptions& options);

/// Sets the service's max batch, queue delay and (token models, unless kept) max batch tokens.
void apply_batching_plan(const BatchingPlan& plan, ModelServiceOptions& options, bool keep_max_batch_tokens = false);

}  // namespace hone::serve
