// hone serve: a run directory or zoo model behind the HTTP server (OIP v2, /predict, /metrics),
// with dynamic batching; ready only once served outputs on real test inputs equal direct ones.
#include <fmt/ranges.h>

#include <iostream>

#include "commands.h"
#include "flags.h"
#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "hone/core/log.h"
#include "hone/runtime/target.h"
#if HONE_SERVE
#include "hone/serve/http_server.h"
#include "hone/serve/model_service.h"
#endif

namespace hone::cli {
namespace {

struct ServeCommand {
  std::string target;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string name;
  std::string device = "cpu";
  std::size_t max_batch = 32;
  std::int64_t max_queue_delay_us = 0;
  std::size_t max_queue = 256;
  std::int64_t timeout_ms = 1000;
  std::int64_t max_batch_tokens = 8192;
  std::int64_t seq_len = 128;
  std::size_t http_threads = 16;
  int threads = 0;
  std::string write_requests;
  std::int64_t requests = 256;
  bool json = false;
};

#if HONE_SERVE
void run_serve(ServeCommand& cmd) {
  // Before any thread exists: SIGTERM/SIGINT then wait for wait_for_stop_signal below.
  serve::block_stop_signals();
  apply_threads(cmd.threads);
  if (cmd.port < 0 || cmd.port > 65535) fail_usage_option("port", "port must be in [0, 65535], got {}", cmd.port);
  if (cmd.http_threads < 1) fail_usage_option("http_threads", "connection threads must be >= 1");
  if (cmd.requests < 1) fail_usage_option("requests", "request bodies to write must be >= 1");
  serve::ModelServiceOptions options;
  options.name = cmd.name;
  options.device = cmd.device;
  options.max_batch_size = cmd.max_batch;
  options.max_queue_size = cmd.max_queue;
  options.max_queue_delay = std::chrono::microseconds(cmd.max_queue_delay_us);
  options.timeout = std::chrono::milliseconds(cmd.timeout_ms);
  options.max_batch_tokens = cmd.max_batch_tokens;
  options.seq_len = cmd.seq_len;
  serve::ModelService service(runtime::load_target(cmd.target, cmd.seq_len), options);

  if (!cmd.write_requests.empty()) {
    std::string text;
    for (const std::string& body : serve::make_infer_bodies(service.target(), service.metadata(), cmd.requests)) {
      text += body + "\n";
    }
    write_file_atomic(cmd.write_requests, text);
    log_info("wrote {} infer bodies for /v2/models/{}/infer to {}", cmd.requests, service.metadata().name,
             cmd.write_requests);
    return;
  }

  serve::HttpServerOptions server_options;
  server_options.host = cmd.host;
  server_options.port = cmd.port;
  server_options.threads = cmd.http_threads;
  serve::HttpServer server(server_options, service.handlers());
  service.observe_with(server.metrics(), server.metrics_registry());
  const int port = server.start();
  const std::string url = fmt::format("http://{}:{}", cmd.host, port);
  log_info("listening on {} (live; not ready until warmed and verified)", url);
  const serve::VerifyReport report = service.warm_up_and_verify();
  log_info(
      "verified: {} requests on {} through the batcher (batches of {}) equal direct forwards "
      "(max relative error {:.2g}) in {:.1f} s",
      report.samples, report.inputs, fmt::join(report.batch_sizes_seen, ","), report.max_relative_error,
      report.seconds);
  server.set_ready(true);
  log_info("ready: POST {}/v2/models/{}/infer  (SIGTERM or Ctrl-C stops)", url, service.metadata().name);
  if (cmd.json) {
    std::cout << nlohmann::json{{"schema", "hone-serve/1"},
                                {"event", "ready"},
                                {"url", url},
                                {"model", serve::make_model_metadata(service.metadata())},
                                {"verification", report.to_json()}}
                     .dump()
              << std::endl;
  }
  const int signal_number = serve::wait_for_stop_signal();
  log_info("signal {}: draining (no new requests; finishing accepted ones)", signal_number);
  server.stop();
  service.drain();
  const serve::BatcherStats stats = service.stats();
  log_info("stopped: {} requests computed in {} batches, {} rejected (queue full), {} timed out", stats.completed,
           stats.batches, stats.rejected_queue_full, stats.timed_out);
  if (cmd.json) {
    std::cout << nlohmann::json{{"schema", "hone-serve/1"},
                                {"event", "stopped"},
                                {"completed", stats.completed},
                                {"batches", stats.batches},
                                {"rejected_queue_full", stats.rejected_queue_full},
                                {"timed_out", stats.timed_out},
                                {"failed", stats.failed}}
                     .dump()
              << std::endl;
  }
}
#else
void run_serve(ServeCommand&) {
  fail("hone was built without cpp-httplib (Debian libcpp-httplib-dev): serving is not available");
}
#endif

}  // namespace

void register_serve(CLI::App& root) {
  auto cmd = std::make_shared<ServeCommand>();
  CLI::App* app = root.add_subcommand("serve", "Serve a model over HTTP (KServe/Triton OIP v2) with dynamic batching");
  app->footer(
      "MODEL is a run directory from `hone train`/`hone compress` or a zoo name (random weights).\n"
      "Endpoints: GET /v2/health/live, /v2/health/ready, /v2/models/NAME; POST /v2/models/NAME/infer;\n"
      "POST /predict {\"instances\": [[...]]}; GET /metrics (Prometheus); GET /hone/verdict (compressed runs).\n"
      "Ready (200 on /v2/health/ready) only after every batch bucket is warmed and real test inputs\n"
      "served through the batcher equal direct forward passes. SIGTERM/SIGINT: stop accepting, finish\n"
      "accepted requests, exit 0. See docs/serve.md.\n"
      "Examples:\n"
      "  hone serve runs/cnn --port 8080 --max-batch 32\n"
      "  hone serve runs/cnn --write-requests bodies.jsonl --requests 512\n"
      "  hone loadgen http://127.0.0.1:8080/v2/models/cnn/infer --body bodies.jsonl --rate 500 --duration 10\n"
      "  hone serve cnn --name demo --max-queue-delay-us 2000 --timeout-ms 200\n");
  add_flag(*app, flags::kTarget, cmd->target)->required();
  add_flag(*app, flags::kHost, cmd->host);
  add_flag(*app, flags::kPort, cmd->port);
  add_flag(*app, flags::kName, cmd->name);
  add_flag(*app, flags::kDevice, cmd->device);
  add_flag(*app, flags::kMaxBatch, cmd->max_batch);
  add_flag(*app, flags::kMaxQueueDelayUs, cmd->max_queue_delay_us);
  add_flag(*app, flags::kMaxQueue, cmd->max_queue);
  add_flag(*app, flags::kTimeoutMs, cmd->timeout_ms);
  add_flag(*app, flags::kMaxBatchTokens, cmd->max_batch_tokens);
  add_flag(*app, flags::kSeqLen, cmd->seq_len);
  add_flag(*app, flags::kHttpThreads, cmd->http_threads);
  add_flag(*app, flags::kThreads, cmd->threads);
  add_flag(*app, flags::kWriteRequests, cmd->write_requests);
  add_flag(*app, flags::kRequests, cmd->requests);
  add_flag(*app, flags::kJson, cmd->json);
  app->callback([cmd] { run_serve(*cmd); });
}

}  // namespace hone::cli
