#include "hone/serve/serve_bench.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "hone/core/error.h"
#include "hone/core/log.h"
#include "hone/run/run_dir.h"
#include "hone/serve/http_server.h"
#include "hone/serve/serve_target.h"

namespace hone::serve {
namespace fs = std::filesystem;
namespace {

nlohmann::json step_json(const RateStep& step) {
  nlohmann::json out = step.result.to_json();
  out["rate"] = step.rate;
  out["passed"] = step.passed;
  out["why"] = step.why;
  return out;
}

/// The source a compressed run was made from (compress.json), or "" for any other target.
std::string baseline_of(const std::string& target) {
  std::error_code ec;
  if (!fs::is_directory(target, ec) || !run::is_compressed_run(target)) return {};
  return run::load_compress_manifest(target).value("source", std::string());
}

KneeResult sweep(const std::string& target, const std::string& role, const ServeBenchOptions& options) {
  KneeResult out;
  out.target = target;
  out.role = role;
  ModelServiceOptions service_options = options.service;
  ServeTarget loaded = load_serve_target(
      target, {.device = service_options.device, .dtype = service_options.dtype, .seq_len = service_options.seq_len});
  if (options.plan_from_budget) {
    BudgetOptions budget = options.budget;
    budget.p99_budget_ms = options.p99_budget_ms;
    out.plan = plan_batching(loaded.model, service_options.device, service_options.dtype, budget);
    apply_batching_plan(out.plan, service_options, options.keep_max_batch_tokens);
    log_info("{} ({}): {}", target, role, out.plan.to_text());
  }
  out.max_batch = service_options.max_batch_size;
  out.max_queue_delay = service_options.max_queue_delay;
  ModelService service(std::move(loaded), service_options);
  HttpServerOptions server_options;
  server_options.host = "127.0.0.1";  // loopback only: the bench never listens beyond this machine
  server_options.port = 0;
  server_options.threads =
      options.http_threads > 0 ? options.http_threads : static_cast<std::size_t>(options.connections) + 4;
  HttpServer server(server_options, service.handlers());
  service.observe_with(server.metrics(), server.metrics_registry());
  const int port = server.start();
  out.verification = service.warm_up_and_verify();
  server.set_ready(true);
  const RequestBodies bodies = make_request_bodies(service, options.bodies);
  out.bodies_source = bodies.source;
  out.bodies_path = bodies.path;
  out.items_per_body = bodies.items_per_body;
  LoadOptions load;
  load.url = "http://127.0.0.1:" + std::to_string(port) + bodies.path;
  load.connections = options.connections;
  load.duration = options.duration_per_rate;
  load.bodies = bodies.bodies;
  load.timeout = std::chrono::milliseconds(
      std::max<std::int64_t>(1000, 2 * static_cast<std::int64_t>(service_options.timeout.count())));
  for (int i = 0; i < options.max_rates; ++i) {
    const double rate = next_rate(out.steps, options.start_rate);
    if (rate <= 0) break;
    load.rate = rate;
    RateStep step;
    step.rate = rate;
    step.result = run_load(load);
    step.passed = meets_budget(step.result, options.p99_budget_ms, &step.why);
    log_info("{}: {:.1f} req/s -> p99 {:.2f} ms, {:.1f} responses/s: {}", target, rate, step.result.latency_ms.p99,
             step.result.throughput, step.passed ? "meets the budget" : step.why);
    out.steps.push_back(std::move(step));
  }
  if (const RateStep* knee = out.knee()) out.knee_rate = knee->rate;
  server.stop();
  service.drain();
  return out;
}

std::string knee_line(const KneeResult& k, double budget_ms) {
  const RateStep* knee = k.knee();
  if (knee == nullptr) return fmt::format("{:<28} no rate met p99 <= {} ms", k.target, budget_ms);
  const LoadResult& r = knee->result;
  return fmt::format("{:<28} {:>9.1f} {:>11.1f} {:>11.1f} {:>8.2f} {:>8.2f} {:>8.2f} {:>6} {:>8}", k.target, knee->rate,
                     r.throughput, r.throughput * static_cast<double>(k.items_per_body), r.latency_ms.p50,
                     r.latency_ms.p99, r.latency_ms.p999, k.max_batch, k.max_queue_delay.count());
}

}  // namespace

bool meets_budget(const LoadResult& result, double p99_budget_ms, std::string* why) {
  std::string reason;
  std::int64_t not_ok = 0;
  for (const auto& [code, count] : result.status_counts) {
    if (code != 200) {
      not_ok += count;
      reason += fmt::format("{}status {} x{}", reason.empty() ? "" : ", ", code, count);
    }
  }
  if (result.errors > 0) reason += fmt::format("{}{} transport errors", reason.empty() ? "" : ", ", result.errors);
  if (result.unsent > 0) reason += fmt::format("{}{} unsent", reason.empty() ? "" : ", ", result.unsent);
  if (result.sent == 0) reason += fmt::format("{}nothing sent", reason.empty() ? "" : ", ");
  if (result.sent > 0 && result.latency_ms.p99 > p99_budget_ms) {
    reason += fmt::format("{}p99 {:.2f} ms > {} ms", reason.empty() ? "" : ", ", result.latency_ms.p99, p99_budget_ms);
  }
  if (why != nullptr) *why = reason;
  return reason.empty() && not_ok == 0;
}

double next_rate(const std::vector<RateStep>& steps, double start_rate) {
  if (steps.empty()) return start_rate;
  double best_pass = 0;
  double lowest_fail = std::numeric_limits<double>::infinity();
  for (const RateStep& s : steps) {
    if (s.passed) best_pass = std::max(best_pass, s.rate);
  }
  for (const RateStep& s : steps) {
    if (!s.passed && s.rate > best_pass) lowest_fail = std::min(lowest_fail, s.rate);
  }
  if (std::isinf(lowest_fail)) return best_pass * 2;  // every step passed: double
  if (best_pass == 0) {
    // Every step failed: halve, down to one request per second.
    const double lower = lowest_fail / 2;
    return lower >= 1 ? lower : 0;
  }
  if (lowest_fail / best_pass <= 1.1) return 0;  // bracketed within 10 %: done
  return std::sqrt(best_pass * lowest_fail);
}

const RateStep* KneeResult::knee() const {
  const RateStep* best = nullptr;
  for (const RateStep& s : steps) {
    if (s.passed && (best == nullptr || s.rate > best->rate)) best = &s;
  }
  return best;
}

nlohmann::json KneeResult::to_json() const {
  nlohmann::json sweep = nlohmann::json::array();
  for (const RateStep& s : steps) sweep.push_back(step_json(s));
  nlohmann::json out{{"target", target},
                     {"role", role},
                     {"bodies", {{"source", bodies_source}, {"path", bodies_path}, {"items_per_body", items_per_body}}},
                     {"max_batch", max_batch},
                     {"max_queue_delay_us", max_queue_delay.count()},
                     {"verification", verification.to_json()},
                     {"sweep", sweep},
                     {"knee_rate", knee_rate}};
  if (!plan.curve.empty()) out["plan"] = plan.to_json();
  if (const RateStep* k = knee()) {
    out["knee"] = step_json(*k);
    out["knee_items_per_second"] = k->result.throughput * static_cast<double>(items_per_body);
  } else {
    out["knee"] = nullptr;
  }
  return out;
}

nlohmann::json ServeBenchReport::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const KneeResult& k : models) list.push_back(k.to_json());
  nlohmann::json out{{"schema", "hone-serve-bench/1"},
                     {"p99_budget_ms", p99_budget_ms},
                     {"device", device},
                     {"dtype", dtype},
                     {"models", list}};
  if (models.size() == 2 && models[0].knee_rate > 0 && models[1].knee_rate > 0) {
    out["knee_ratio_run_over_baseline"] = models[0].knee_rate / models[1].knee_rate;
  }
  return out;
}

std::string ServeBenchReport::to_text() const {
  std::string text;
  for (const KneeResult& k : models) {
    text += fmt::format("{} ({}): max batch {}, queue delay {} us; bodies: {} -> POST {}\n", k.target, k.role,
                        k.max_batch, k.max_queue_delay.count(), k.bodies_source, k.bodies_path);
    text += "     rate/s  responses/s    p50 ms    p99 ms  p99.9 ms  result\n";
    for (const RateStep& s : k.steps) {
      text += fmt::format("  {:>9.1f} {:>12.1f} {:>9.2f} {:>9.2f} {:>9.2f}  {}\n", s.rate, s.result.throughput,
                          s.result.latency_ms.p50, s.result.latency_ms.p99, s.result.latency_ms.p999,
                          s.passed ? "ok" : s.why);
    }
  }
  text += fmt::format("knee (highest rate with p99 <= {} ms and every answer 200), {} {}, loopback HTTP:\n",
                      p99_budget_ms, device, dtype);
  text += fmt::format("{:<28} {:>9} {:>11} {:>11} {:>8} {:>8} {:>8} {:>6} {:>8}\n", "model", "rate/s", "responses/s",
                      "items/s", "p50 ms", "p99 ms", "p99.9", "batch", "delay us");
  for (const KneeResult& k : models) text += knee_line(k, p99_budget_ms) + "\n";
  if (models.size() == 2 && models[0].knee_rate > 0 && models[1].knee_rate > 0) {
    text += fmt::format("run / baseline knee: {:.2f}x\n", models[0].knee_rate / models[1].knee_rate);
  }
  return text;
}

ServeBenchReport bench_serving(const std::string& target, const ServeBenchOptions& options) {
  if (!(options.p99_budget_ms > 0)) {
    fail_option("p99_budget_ms", "the bench needs a p99 budget > 0 ms, got {}", options.p99_budget_ms);
  }
  if (!(options.start_rate > 0)) fail_option("start_rate", "start rate must be > 0, got {}", options.start_rate);
  if (options.max_rates < 1) fail_option("max_rates", "rate steps must be >= 1, got {}", options.max_rates);
  if (options.connections < 1) fail_option("connections", "connections must be >= 1, got {}", options.connections);
  if (options.duration_per_rate.count() < 100) {
    fail_option("duration_per_rate", "each rate must run >= 0.1 s, got {} ms", options.duration_per_rate.count());
  }
  ServeBenchReport report;
  report.p99_budget_ms = options.p99_budget_ms;
  report.device = options.service.device;
  report.dtype = options.service.dtype;
  report.models.push_back(sweep(target, "run", options));
  const std::string source = options.baseline ? baseline_of(target) : std::string();
  if (!source.empty()) report.models.push_back(sweep(source, "baseline (compress.json's source)", options));
  return report;
}

}  // namespace hone::serve
