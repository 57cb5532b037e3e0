// hone serve: a run directory or zoo model behind the HTTP server (OIP v2, /predict, TEI /embed,
// /metrics), with dynamic batching; ready only once served outputs on real inputs equal direct ones.
// --p99-budget-ms chooses the batching from a measured latency curve; --bench finds the knee.
#include <fmt/ranges.h>

#include <iostream>
#include <optional>

#include "commands.h"
#include "flags.h"
#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "hone/core/log.h"
#include "hone/runtime/target.h"
#if HONE_SERVE
#include "hone/serve/http_server.h"
#include "hone/serve/latency_budget.h"
#include "hone/serve/model_service.h"
#include "hone/serve/request_bodies.h"
#include "hone/serve/serve_bench.h"
#include "hone/serve/serve_target.h"
#endif

namespace hone::cli {
namespace {

struct ServeCommand {
  std::string target;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string name;
  std::string device = "cpu";
  std::string dtype = "fp32";
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
  std::int64_t texts_per_request = 1;
  double p99_budget_ms = 0;
  bool bench = false;
  double rate = 50;
  double duration = 3;
  int connections = 32;
  int max_rates = 10;
  bool json = false;
  // Which of --max-batch, --max-queue-delay-us, --max-batch-tokens were given: they win over the budget.
  bool max_batch_given = false;
  bool queue_delay_given = false;
  bool max_batch_tokens_given = false;
};

#if HONE_SERVE
void run_serve(ServeCommand& cmd) {
  // Before any thread exists: SIGTERM/SIGINT then wait for wait_for_stop_signal below (the bench
  // stops by itself and keeps Ctrl-C's default).
  if (!cmd.bench) serve::block_stop_signals();
  apply_threads(cmd.threads);
  if (cmd.port < 0 || cmd.port > 65535) fail_usage_option("port", "port must be in [0, 65535], got {}", cmd.port);
  if (cmd.http_threads < 1) fail_usage_option("http_threads", "connection threads must be >= 1");
  if (cmd.requests < 1) fail_usage_option("requests", "request bodies to write must be >= 1");
  serve::ModelServiceOptions options;
  options.name = cmd.name;
  options.device = cmd.device;
  options.dtype = cmd.dtype;
  options.max_batch_size = cmd.max_batch;
  options.max_queue_size = cmd.max_queue;
  options.max_queue_delay = std::chrono::microseconds(cmd.max_queue_delay_us);
  options.timeout = std::chrono::milliseconds(cmd.timeout_ms);
  options.max_batch_tokens = cmd.max_batch_tokens;
  options.seq_len = cmd.seq_len;
  serve::BudgetOptions budget;
  budget.p99_budget_ms = cmd.p99_budget_ms;
  budget.tokens_per_row = cmd.seq_len;
  if (cmd.max_batch_given) budget.fixed_max_batch = options.max_batch_size;
  if (cmd.queue_delay_given) budget.fixed_queue_delay = options.max_queue_delay;
  const serve::RequestBodyOptions body_options{cmd.requests, cmd.texts_per_request, cmd.seq_len};

  if (cmd.bench) {
    if (!(cmd.p99_budget_ms > 0))
      fail_usage_option("p99_budget_ms", "the bench needs a p99 budget > 0 ms: the knee must meet it");
    serve::ServeBenchOptions bench;
    bench.p99_budget_ms = cmd.p99_budget_ms;
    bench.service = options;
    bench.budget = budget;
    bench.keep_max_batch_tokens = cmd.max_batch_tokens_given;
    bench.start_rate = cmd.rate;
    bench.duration_per_rate = std::chrono::milliseconds(static_cast<std::int64_t>(cmd.duration * 1000));
    bench.connections = cmd.connections;
    bench.max_rates = cmd.max_rates;
    bench.bodies = body_options;
    const serve::ServeBenchReport report = serve::bench_serving(cmd.target, bench);
    std::cout << (cmd.json ? report.to_json().dump(2) + "\n" : report.to_text()) << std::flush;
    return;
  }

  serve::ServeTarget target =
      serve::load_serve_target(cmd.target, {.device = cmd.device, .dtype = cmd.dtype, .seq_len = cmd.seq_len});
  std::optional<serve::BatchingPlan> plan;
  if (cmd.p99_budget_ms > 0 && cmd.write_requests.empty()) {
    plan = serve::plan_batching(target.model, cmd.device, cmd.dtype, budget);
    serve::apply_batching_plan(*plan, options, cmd.max_batch_tokens_given);
    log_info("p99 budget: {}", plan->to_text());
    if (!plan->fits)
      log_warn("the p99 budget of {} ms cannot be met on this device: {}", cmd.p99_budget_ms, plan->reason);
    if (cmd.json)
      std::cout << nlohmann::json{{"schema", "hone-serve/1"}, {"event", "plan"}, {"plan", plan->to_json()}}.dump()
                << std::endl;
  }
  serve::ModelService service(std::move(target), options);

  if (!cmd.write_requests.empty()) {
    const serve::RequestBodies bodies = serve::make_request_bodies(service, body_options);
    std::string text;
    for (const std::string& body : bodies.bodies) text += body + "\n";
    write_file_atomic(cmd.write_requests, text);
    log_info("wrote {} request bodies for POST {} to {}: {}", bodies.bodies.size(), bodies.path, cmd.write_requests,
             bodies.source);
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
  log_info("ready: POST {}/v2/models/{}/infer{}  (SIGTERM or Ctrl-C stops)", url, service.metadata().name,
           service.text_encoder() != nullptr ? fmt::format(", POST {}/embed", url) : std::string());
  if (cmd.json) {
    std::cout << nlohmann::json{{"schema", "hone-serve/1"},
                                {"event", "ready"},
                                {"url", url},
                                {"model", serve::make_model_metadata(service.metadata())},
                                {"embed", service.text_encoder() != nullptr},
                                {"batching",
                                 {{"max_batch", options.max_batch_size},
                                  {"max_queue_delay_us", options.max_queue_delay.count()},
                                  {"max_batch_tokens", options.max_batch_tokens}}},
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
      "MODEL is a run directory from `hone train`/`hone compress` or a zoo name (random weights; minilm is\n"
      "the pretrained all-MiniLM-L6-v2, with TEI's POST /embed {\"inputs\": [\"text\", ...]}).\n"
      "Endpoints: GET /v2/health/live, /v2/health/ready, /v2/models/NAME; POST /v2/models/NAME/infer;\n"
      "POST /predict {\"instances\": [[...]]}; GET /metrics (Prometheus); GET /hone/verdict (compressed runs).\n"
      "Ready (200 on /v2/health/ready) only after every batch bucket is warmed and real test inputs\n"
      "served through the batcher equal direct forward passes. SIGTERM/SIGINT: stop accepting, finish\n"
      "accepted requests, exit 0. See docs/serve.md.\n"
      "Examples:\n"
      "  hone serve runs/cnn --port 8080 --max-batch 32\n"
      "  hone serve runs/cnn --write-requests bodies.jsonl --requests 512\n"
      "  hone loadgen http://127.0.0.1:8080/v2/models/cnn/infer --body bodies.jsonl --rate 500 --duration 10\n"
      "  hone serve cnn --name demo --max-queue-delay-us 2000 --timeout-ms 200\n"
      "  hone serve minilm --device cuda --dtype bf16 --p99-budget-ms 50\n"
      "  hone serve minilm --write-requests reviews.jsonl --requests 4096 --seq-len 128\n"
      "  hone serve runs/cnn-int8 --bench --p99-budget-ms 20 --duration 5 --json\n");
  add_flag(*app, flags::kTarget, cmd->target)->required();
  add_flag(*app, flags::kHost, cmd->host);
  add_flag(*app, flags::kPort, cmd->port);
  add_flag(*app, flags::kName, cmd->name);
  add_flag(*app, flags::kDevice, cmd->device);
  add_flag(*app, flags::kDtype, cmd->dtype);
  CLI::Option* max_batch = add_flag(*app, flags::kMaxBatch, cmd->max_batch);
  CLI::Option* queue_delay = add_flag(*app, flags::kMaxQueueDelayUs, cmd->max_queue_delay_us);
  add_flag(*app, flags::kMaxQueue, cmd->max_queue);
  add_flag(*app, flags::kTimeoutMs, cmd->timeout_ms);
  CLI::Option* max_batch_tokens = add_flag(*app, flags::kMaxBatchTokens, cmd->max_batch_tokens);
  add_flag(*app, flags::kSeqLen, cmd->seq_len);
  add_flag(*app, flags::kHttpThreads, cmd->http_threads);
  add_flag(*app, flags::kThreads, cmd->threads);
  add_flag(*app, flags::kWriteRequests, cmd->write_requests);
  add_flag(*app, flags::kRequests, cmd->requests);
  add_flag(*app, flags::kTextsPerRequest, cmd->texts_per_request);
  add_flag(*app, flags::kP99BudgetMs, cmd->p99_budget_ms);
  add_flag(*app, flags::kBench, cmd->bench);
  add_flag(*app, flags::kRate, cmd->rate);
  add_flag(*app, flags::kDuration, cmd->duration);
  add_flag(*app, flags::kConnections, cmd->connections);
  add_flag(*app, flags::kMaxRates, cmd->max_rates);
  add_flag(*app, flags::kJson, cmd->json);
  app->callback([cmd, max_batch, queue_delay, max_batch_tokens] {
    cmd->max_batch_given = max_batch->count() > 0;
    cmd->queue_delay_given = queue_delay->count() > 0;
    cmd->max_batch_tokens_given = max_batch_tokens->count() > 0;
    run_serve(*cmd);
  });
}

}  // namespace hone::cli
