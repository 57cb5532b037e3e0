#pragma once
/// @file `hone serve --bench RUN`: the highest request rate a served model sustains within a p99
/// budget (the knee), measured end to end over loopback HTTP on this machine — for the run and,
/// when it is a compressed run, for the uncompressed model compress.json names as its source.
///
/// For each model: load it as `hone serve` does (batching from the budget unless given), start
/// the server in-process on 127.0.0.1 with a free port, wait until it is verified, then run the
/// open-loop load generator at rising rates on real request bodies (request_bodies.h): doubling
/// from start_rate while a rate passes, then bisecting between the last pass and the first
/// failure. A rate passes when every scheduled request was sent and answered 200 and the p99
/// latency (from intended send times) is within the budget. Bounded: at most max_rates rates of
/// duration_per_rate each per model. Only loopback traffic.
///
///     ServeBenchOptions options;
///     options.p99_budget_ms = 20;
///     ServeBenchReport report = bench_serving("runs/cnn-int8", options);
///     std::cout << report.to_text();
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "hone/serve/latency_budget.h"
#include "hone/serve/load_generator.h"
#include "hone/serve/model_service.h"
#include "hone/serve/request_bodies.h"

namespace hone::serve {

struct ServeBenchOptions {
  double p99_budget_ms = 0;  ///< > 0: the knee's criterion (and the batching budget)
  /// The service's settings (device, dtype, queue, timeout...). Batching comes from the budget
  /// (latency_budget.h) except what budget.fixed_* keeps.
  ModelServiceOptions service;
  BudgetOptions budget;  ///< p99_budget_ms is taken from above
  bool plan_from_budget = true;
  bool keep_max_batch_tokens = false;  ///< service.max_batch_tokens was given explicitly: the plan keeps it
  std::size_t http_threads = 0;        ///< 0: connections + 4 (a thread per keep-alive connection)
  double start_rate = 50;              ///< requests per second of the first step
  std::chrono::milliseconds duration_per_rate{3000};
  int connections = 32;
  int max_rates = 10;  ///< rate steps per model, doubling and bisecting together
  RequestBodyOptions bodies;
  bool baseline = true;  ///< also the source of a compressed run
};

/// One rate of the sweep.
struct RateStep {
  double rate = 0;
  LoadResult result;
  bool passed = false;
  std::string why;  ///< why it failed ("p99 31.2 ms > 20 ms", "status 429 x12", "unsent 40")
};

/// One model's sweep.
struct KneeResult {
  std::string target;
  std::string role;  ///< "run" or "baseline (compress.json's source)"
  std::string bodies_source;
  std::string bodies_path;  ///< /embed or /v2/models/{name}/infer
  std::int64_t items_per_body = 1;
  BatchingPlan plan;  ///< when planned from the budget (plan.curve empty otherwise)
  std::size_t max_batch = 0;
  std::chrono::microseconds max_queue_delay{0};
  VerifyReport verification;
  std::vector<RateStep> steps;
  double knee_rate = 0;  ///< requests/s of the best passing step; 0: no rate passed
  const RateStep* knee() const;

  nlohmann::json to_json() const;
};

struct ServeBenchReport {
  double p99_budget_ms = 0;
  std::string device;
  std::string dtype;
  std::vector<KneeResult> models;  ///< the run first, then its baseline when there is one

  nlohmann::json to_json() const;  ///< schema hone-serve-bench/1
  std::string to_text() const;     ///< each sweep, then the knees side by side
};

/// Throws hone::Error naming the option (p99_budget_ms, start_rate, max_rates, connections,
/// duration_per_rate) when out of range, or what failed to load or verify.
ServeBenchReport bench_serving(const std::string& target, const ServeBenchOptions& options);

/// The knee search's next rate, given the steps so far (pure; exposed for tests): doubling while
/// every step passed, halving while every step failed, then the geometric mean of the highest
/// pass and the lowest failure above it; 0 when the bracket is within 10 % (done).
double next_rate(const std::vector<RateStep>& steps, double start_rate);

/// Whether a load result meets the budget: everything sent, every answer 200, p99 within it.
bool meets_budget(const LoadResult& result, double p99_budget_ms, std::string* why = nullptr);

}  // namespace hone::serve
