#pragma once
/// @file An open-loop HTTP load generator (`hone loadgen URL`): requests are scheduled at a fixed
/// rate whatever the server does, and each latency is measured from the request's *intended*
/// send time, not from when a busy connection got round to sending it.
///
/// Why: a closed-loop client (send, wait, send) slows down with the server and so never
/// measures the queueing a real stream of users meets ("coordinated omission"): a 1 s stall
/// shows up as one slow request instead of a second's worth. Here, a request that had to wait for
/// a free connection carries that wait in its latency, and requests not sent by the end of the
/// run window are reported as `unsent`, not dropped silently.
///
///     LoadOptions options;
///     options.url = "http://127.0.0.1:8080/v2/models/mlp/infer";
///     options.rate = 200;                      // requests per second
///     options.connections = 4;
///     options.duration = std::chrono::seconds(2);
///     options.bodies = {R"({"inputs":[...]})"};
///     LoadResult result = run_load(options);
///     std::cout << result.to_json().dump(2);   // p50/p90/p99/p99.9 ms, throughput, codes, errors
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hone::serve {

struct LoadOptions {
  std::string url;                           ///< http://host:port/path (plain HTTP only)
  double rate = 100;                         ///< intended requests per second (> 0)
  int connections = 4;                       ///< sender threads, one keep-alive connection each
  std::chrono::milliseconds duration{2000};  ///< schedule window: rate x duration requests
  std::int64_t max_requests = 0;             ///< > 0: at most this many in all
  std::string method = "POST";               ///< POST or GET
  std::string content_type = "application/json";
  std::vector<std::string> bodies;          ///< cycled in order; empty: empty bodies
  std::chrono::milliseconds timeout{5000};  ///< per request (connect, read, write)
  /// Senders stop taking new requests this long after the window ends; the rest are `unsent`.
  std::chrono::milliseconds grace{1000};
};

/// Latency percentiles in milliseconds (numpy's linear interpolation over the samples).
struct LatencySummary {
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
  double p999 = 0;
  double max = 0;
  double mean = 0;
};

struct LoadResult {
  std::int64_t scheduled = 0;  ///< requests in the schedule
  std::int64_t sent = 0;       ///< requests sent (answered or failed)
  std::int64_t unsent = 0;     ///< scheduled but not sent before the grace period ended
  std::int64_t errors = 0;     ///< sent, no HTTP response (connection refused, timeout...)
  double elapsed_seconds = 0;  ///< first intended send to last completion
  double throughput = 0;       ///< HTTP responses per second over elapsed_seconds
  double target_rate = 0;
  LatencySummary latency_ms;                         ///< over all HTTP responses, whatever their status
  LatencySummary latency_ok_ms;                      ///< over 2xx responses only
  std::map<int, std::int64_t> status_counts;         ///< HTTP status -> responses
  std::map<std::string, std::int64_t> error_counts;  ///< transport error name -> count

  nlohmann::json to_json() const;
};

/// Runs the load and blocks until it ends (about duration + the slowest request, at most
/// duration + grace + timeout). Throws std::invalid_argument naming the option for a bad URL,
/// rate, connection count or method.
LoadResult run_load(const LoadOptions& options);

}  // namespace hone::serve
