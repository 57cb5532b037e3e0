#include "hone/serve/load_generator.h"

#include "hone/runtime/statistics.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <thread>

namespace hone::serve {
namespace {

using Clock = std::chrono::steady_clock;

struct ParsedUrl {
  std::string host;
  int port = 80;
  std::string path;
};

ParsedUrl parse_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) {
    throw std::invalid_argument("loadgen url '" + url + "': must start with http:// (no TLS)");
  }
  const std::string rest = url.substr(scheme.size());
  const auto slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  ParsedUrl parsed;
  parsed.path = slash == std::string::npos ? "/" : rest.substr(slash);
  const auto colon = authority.rfind(':');
  parsed.host = authority.substr(0, colon);
  if (colon != std::string::npos) {
    const std::string port = authority.substr(colon + 1);
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) || std::stoi(port) == 0 ||
        std::stoi(port) > 65535) {
      throw std::invalid_argument("loadgen url '" + url + "': port must be 1..65535");
    }
    parsed.port = std::stoi(port);
  }
  if (parsed.host.empty()) throw std::invalid_argument("loadgen url '" + url + "': no host");
  return parsed;
}

LatencySummary summarize(const std::vector<double>& samples) {
  LatencySummary summary;
  if (samples.empty()) return summary;
  summary.p50 = runtime::percentile(samples, 50);
  summary.p90 = runtime::percentile(samples, 90);
  summary.p99 = runtime::percentile(samples, 99);
  summary.p999 = runtime::percentile(samples, 99.9);
  summary.max = *std::max_element(samples.begin(), samples.end());
  summary.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(samples.size());
  return summary;
}

nlohmann::json summary_json(const LatencySummary& summary) {
  return {{"p50", summary.p50},    {"p90", summary.p90}, {"p99", summary.p99},
          {"p99.9", summary.p999}, {"max", summary.max}, {"mean", summary.mean}};
}

// What one sender thread saw; merged at the end so the hot path takes no lock.
struct SenderLog {
  std::vector<double> latencies_ms;
  std::vector<double> ok_latencies_ms;
  std::map<int, std::int64_t> status_counts;
  std::map<std::string, std::int64_t> error_counts;
  std::int64_t sent = 0;
  std::int64_t errors = 0;
  Clock::time_point last_done{};
};

}  // namespace

nlohmann::json LoadResult::to_json() const {
  nlohmann::json codes = nlohmann::json::object();
  for (const auto& [code, count] : status_counts) codes[std::to_string(code)] = count;
  return {{"scheduled", scheduled},
          {"sent", sent},
          {"unsent", unsent},
          {"errors", errors},
          {"elapsed_seconds", elapsed_seconds},
          {"throughput_per_second", throughput},
          {"target_rate_per_second", target_rate},
          {"latency_ms", summary_json(latency_ms)},
          {"latency_ok_ms", summary_json(latency_ok_ms)},
          {"status_counts", codes},
          {"error_counts", error_counts}};
}

LoadResult run_load(const LoadOptions& options) {
  const ParsedUrl url = parse_url(options.url);
  if (!(options.rate > 0) || !std::isfinite(options.rate)) throw std::invalid_argument("loadgen rate: must be > 0");
  if (options.connections < 1 || options.connections > 1024) {
    throw std::invalid_argument("loadgen connections: must be 1..1024");
  }
  if (options.method != "POST" && options.method != "GET") throw std::invalid_argument("loadgen method: POST or GET");
  if (options.duration.count() <= 0) throw std::invalid_argument("loadgen duration: must be > 0");

  std::int64_t scheduled =
      static_cast<std::int64_t>(std::floor(options.rate * static_cast<double>(options.duration.count()) / 1000.0));
  if (options.max_requests > 0) scheduled = std::min(scheduled, options.max_requests);
  scheduled = std::max<std::int64_t>(scheduled, 1);
  const std::chrono::nanoseconds interval(static_cast<std::int64_t>(1e9 / options.rate));

  // Start slightly in the future so every thread has its connection object before request 0.
  const Clock::time_point start = Clock::now() + std::chrono::milliseconds(20);
  const Clock::time_point stop_taking = start + options.duration + options.grace;
  std::atomic<std::int64_t> next{0};
  std::vector<SenderLog> logs(static_cast<std::size_t>(options.connections));

  const auto sender = [&](SenderLog& log) {
    httplib::Client client(url.host, url.port);
    client.set_keep_alive(true);
    client.set_tcp_nodelay(true);  // headers and body go out as two writes: no Nagle wait between them
    const auto timeout_s = static_cast<time_t>(options.timeout.count() / 1000);
    const auto timeout_us = static_cast<time_t>((options.timeout.count() % 1000) * 1000);
    client.set_connection_timeout(timeout_s, timeout_us);
    client.set_read_timeout(timeout_s, timeout_us);
    client.set_write_timeout(timeout_s, timeout_us);
    for (;;) {
      // Whichever connection is free takes the next request in the schedule.
      const std::int64_t index = next.fetch_add(1);
      if (index >= scheduled) return;
      const Clock::time_point intended = start + interval * index;
      if (Clock::now() > stop_taking) {
        next.store(scheduled);  // the others stop too; the remainder is counted as unsent
        return;
      }
      std::this_thread::sleep_until(intended);
      const std::string& body = options.bodies.empty()
                                    ? std::string()
                                    : options.bodies[static_cast<std::size_t>(index) % options.bodies.size()];
      httplib::Result result = options.method == "GET"
                                   ? client.Get(url.path.c_str())
                                   : client.Post(url.path.c_str(), body, options.content_type.c_str());
      const Clock::time_point done = Clock::now();
      ++log.sent;
      log.last_done = std::max(log.last_done, done);
      if (!result) {
        ++log.errors;
        ++log.error_counts[httplib::to_string(result.error())];
        continue;
      }
      const double latency = std::chrono::duration<double, std::milli>(done - intended).count();
      log.latencies_ms.push_back(latency);
      if (result->status >= 200 && result->status < 300) log.ok_latencies_ms.push_back(latency);
      ++log.status_counts[result->status];
    }
  };

  std::vector<std::thread> threads;
  for (SenderLog& log : logs) threads.emplace_back(sender, std::ref(log));
  for (std::thread& thread : threads) thread.join();

  LoadResult result;
  result.scheduled = scheduled;
  result.target_rate = options.rate;
  std::vector<double> latencies;
  std::vector<double> ok_latencies;
  Clock::time_point last = start;
  for (const SenderLog& log : logs) {
    result.sent += log.sent;
    result.errors += log.errors;
    latencies.insert(latencies.end(), log.latencies_ms.begin(), log.latencies_ms.end());
    ok_latencies.insert(ok_latencies.end(), log.ok_latencies_ms.begin(), log.ok_latencies_ms.end());
    for (const auto& [code, count] : log.status_counts) result.status_counts[code] += count;
    for (const auto& [name, count] : log.error_counts) result.error_counts[name] += count;
    last = std::max(last, log.last_done);
  }
  result.unsent = scheduled - result.sent;
  result.elapsed_seconds = std::chrono::duration<double>(last - start).count();
  const auto responses = static_cast<double>(latencies.size());
  result.throughput = result.elapsed_seconds > 0 ? responses / result.elapsed_seconds : 0;
  result.latency_ms = summarize(latencies);
  result.latency_ok_ms = summarize(ok_latencies);
  return result;
}

}  // namespace hone::serve
