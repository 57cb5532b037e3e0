#pragma once
/// @file hone's HTTP front end: routes the Open Inference Protocol v2, TEI /embed, /predict,
/// health, metrics and the compression verdict to handlers its owner supplies, and does
/// everything that does not depend on the model: body limits (413), JSON and protocol checks (400
/// naming the field), unknown models (404), readiness and draining (503), overload (429 +
/// Retry-After), timing headers, status counting, graceful stop.
///
/// Why handlers: the server knows no model and no tensor library; the owner (the `hone serve`
/// command) plugs a model in as a handler that submits to a DynamicBatcher and converts its
/// outcome into a HandlerReply:
///
///     HttpServer server({.port = 8080}, {
///         .find_model = [&](const std::string& name) -> std::optional<ModelMetadata> {
///           if (name == metadata.name) return metadata;
///           return std::nullopt;                       // -> 404
///         },
///         .infer = [&](const ModelMetadata& model, InferRequest request) {
///           BatchOutcome<InferTensor> outcome = batcher.run(std::move(request.inputs[0]), {.deadline = ...});
///           return reply_from(outcome, [&](InferTensor& out) {
///             return make_infer_response(model.name, request.id, {out}); });
///         }});
///     server.start();                                  // binds; returns the port (0 = ephemeral)
///     server.set_ready(true);                          // /v2/health/ready -> 200
///     wait_for_stop_signal();                          // SIGTERM / SIGINT
///     server.stop();                                   // 503 to new requests, finish in-flight ones
///     batcher.drain();
///
/// cpp-httplib (0.11) serves each connection on one pool thread for as long as it stays alive
/// and queues accepted connections without bound, so the bound on waiting work is the batcher's
/// queue, not the server's.
#include "hone/serve/inference_protocol.h"
#include "hone/serve/metrics.h"
#include "hone/serve/request_status.h"
#include "hone/serve/serve_metrics.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace hone::serve {

/// What a handler answers: a status (mapped by http_status_code), the JSON body when ok, the
/// error message otherwise, and the batcher's timing when the request reached it.
struct HandlerReply {
  RequestStatus status = RequestStatus::ok;
  std::string error;
  nlohmann::json body;
  std::optional<RequestTiming> timing;

  static HandlerReply success(nlohmann::json body, std::optional<RequestTiming> timing = std::nullopt);
  static HandlerReply failure(RequestStatus status, std::string error,
                              std::optional<RequestTiming> timing = std::nullopt);
};

/// Turns a batcher outcome into a reply; `make_body` builds the JSON from the result when ok.
template <typename Result, typename MakeBody>
HandlerReply reply_from(BatchOutcome<Result>& outcome, MakeBody&& make_body) {
  if (!outcome.ok()) return HandlerReply::failure(outcome.status, outcome.error, outcome.timing);
  return HandlerReply::success(make_body(*outcome.result), outcome.timing);
}

/// The owner's side. An unset handler makes its endpoint answer 404 ("not served").
struct ServeHandlers {
  /// The model named in a /v2/models/{name} path, or nullopt (404).
  std::function<std::optional<ModelMetadata>(const std::string& name)> find_model;
  /// A request already parsed and validated against the model.
  std::function<HandlerReply(const ModelMetadata& model, InferRequest request)> infer;
  std::function<HandlerReply(EmbedRequest request)> embed;
  std::function<HandlerReply(PredictRequest request)> predict;
  /// The compression verdict (hone compress's before/after) as JSON, for GET /hone/verdict.
  std::function<nlohmann::json()> verdict;
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;                                ///< 0: an ephemeral port (see HttpServer::port)
  std::size_t max_body_bytes = 4u << 20;       ///< larger bodies get 413
  std::size_t threads = 8;                     ///< connection threads (one per live connection)
  int listen_backlog = 512;                    ///< pending connects the kernel holds before accept
  int retry_after_seconds = 1;                 ///< Retry-After of a 429
  std::chrono::seconds keep_alive_timeout{2};  ///< also bounds how long stop() waits for idle connections
  std::chrono::seconds read_timeout{5};
  std::chrono::seconds write_timeout{5};
  ProtocolLimits limits;
};

class HttpServer {
 public:
  /// Registers the routes; throws std::invalid_argument on bad options (threads 0, body limit 0).
  HttpServer(HttpServerOptions options, ServeHandlers handlers);
  ~HttpServer();  ///< stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds and starts serving on a background thread; returns the bound port. Throws
  /// std::runtime_error naming host and port when binding fails. Not ready until set_ready(true).
  int start();
  /// Readiness for /v2/health/ready and the inference endpoints (503 while false).
  void set_ready(bool ready);
  bool ready() const;
  /// Graceful stop: new requests get 503, the listening socket closes, in-flight requests finish
  /// and are answered, then the threads are joined. Idempotent; call from any thread but not
  /// from a signal handler (use wait_for_stop_signal on a thread instead).
  void stop();
  int port() const;
  /// Requests inside a handler right now.
  std::size_t in_flight() const;

  /// The registry /metrics renders; add your own families or collect hooks to it.
  MetricsRegistry& metrics_registry();
  ServeMetrics& metrics();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Blocks SIGINT and SIGTERM in the calling thread and the threads it starts afterwards; call
/// first in main(), before any thread exists, then wait_for_stop_signal() where convenient.
void block_stop_signals();
/// Waits for SIGINT or SIGTERM (blocked by block_stop_signals) and returns its number.
int wait_for_stop_signal();

}  // namespace hone::serve
