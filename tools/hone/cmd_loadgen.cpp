// hone loadgen: an open-loop HTTP load generator (latency from each request's intended send time).
#include <fstream>
#include <iostream>

#include "commands.h"
#include "flags.h"
#include "hone/core/error.h"
#if HONE_SERVE
#include "hone/serve/load_generator.h"
#endif

namespace hone::cli {
namespace {

struct LoadgenCommand {
  std::string url;
  double rate = 100;
  double duration = 5;
  int connections = 8;
  std::string body;
  std::int64_t timeout_ms = 5000;
  bool json = false;
};

/// One body per non-empty line.
std::vector<std::string> read_bodies(const std::string& path) {
  std::ifstream file(path);
  if (!file.good()) fail_usage_option("body", "cannot read request bodies from {}: no such file or not readable", path);
  std::vector<std::string> bodies;
  for (std::string line; std::getline(file, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) bodies.push_back(std::move(line));
  }
  if (bodies.empty()) fail_usage_option("body", "{} holds no request bodies (one per line)", path);
  return bodies;
}

#if HONE_SERVE
std::string to_text(const serve::LoadResult& r) {
  std::string codes;
  for (const auto& [code, count] : r.status_counts)
    codes += fmt::format("{}{}: {}", codes.empty() ? "" : ", ", code, count);
  std::string errors;
  for (const auto& [name, count] : r.error_counts)
    errors += fmt::format("{}{}: {}", errors.empty() ? "" : ", ", name, count);
  const auto& l = r.latency_ms;
  return fmt::format(
      "target rate  {:.1f} req/s   scheduled {}   sent {}   unsent {}   transport errors {}{}\n"
      "throughput   {:.1f} responses/s over {:.2f} s\n"
      "latency ms   p50 {:.2f}   p90 {:.2f}   p99 {:.2f}   p99.9 {:.2f}   max {:.2f}   mean {:.2f}  (from intended "
      "send)\n"
      "2xx ms       p50 {:.2f}   p99 {:.2f}\n"
      "status codes {}\n",
      r.target_rate, r.scheduled, r.sent, r.unsent, r.errors, errors.empty() ? "" : " (" + errors + ")", r.throughput,
      r.elapsed_seconds, l.p50, l.p90, l.p99, l.p999, l.max, l.mean, r.latency_ok_ms.p50, r.latency_ok_ms.p99,
      codes.empty() ? "none" : codes);
}
#endif

void run_loadgen(LoadgenCommand& cmd) {
#if HONE_SERVE
  if (!(cmd.duration > 0)) fail_usage_option("duration", "duration must be > 0 seconds, got {}", cmd.duration);
  if (cmd.timeout_ms < 1) fail_usage_option("timeout", "timeout must be >= 1 ms");
  serve::LoadOptions options;
  options.url = cmd.url;
  options.rate = cmd.rate;
  options.connections = cmd.connections;
  options.duration = std::chrono::milliseconds(static_cast<std::int64_t>(cmd.duration * 1000));
  options.timeout = std::chrono::milliseconds(cmd.timeout_ms);
  if (cmd.body.empty()) {
    options.method = "GET";
  } else {
    options.bodies = read_bodies(cmd.body);
  }
  serve::LoadResult result;
  try {
    result = serve::run_load(options);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (cmd.json) {
    nlohmann::json out = result.to_json();
    out["schema"] = "hone-loadgen/1";
    out["url"] = cmd.url;
    out["connections"] = cmd.connections;
    out["bodies"] = options.bodies.size();
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << to_text(result);
  }
#else
  (void)cmd;
  fail("hone was built without cpp-httplib (Debian libcpp-httplib-dev): the load generator is not available");
#endif
}

}  // namespace

void register_loadgen(CLI::App& root) {
  auto cmd = std::make_shared<LoadgenCommand>();
  CLI::App* app = root.add_subcommand("loadgen", "Open-loop HTTP load: latency percentiles, throughput, status codes");
  app->footer(
      "Requests are sent on a fixed schedule (--rate) whatever the server does; each latency counts from\n"
      "its intended send time, so queueing behind a slow server is measured, not hidden. Bodies are cycled\n"
      "from --body (one per line); without --body, GETs. Requests not sent by the end of the window (plus\n"
      "1 s) are reported as unsent. --json schema: hone-loadgen/1 (docs/serve.md).\n"
      "Examples:\n"
      "  hone serve runs/cnn --write-requests bodies.jsonl\n"
      "  hone loadgen http://127.0.0.1:8080/v2/models/cnn/infer --body bodies.jsonl --rate 400 --duration 10\n"
      "  hone loadgen http://127.0.0.1:8080/v2/health/live --rate 50 --duration 2 --json\n");
  add_flag(*app, flags::kUrl, cmd->url)->required();
  add_flag(*app, flags::kRate, cmd->rate);
  add_flag(*app, flags::kDuration, cmd->duration);
  add_flag(*app, flags::kConnections, cmd->connections);
  add_flag(*app, flags::kBody, cmd->body);
  add_flag(*app, flags::kTimeoutMs, cmd->timeout_ms);
  add_flag(*app, flags::kJson, cmd->json);
  app->callback([cmd] { run_loadgen(*cmd); });
}

}  // namespace hone::cli
