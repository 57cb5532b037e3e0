#include "hone/serve/http_server.h"

#include <httplib.h>

#include <sys/socket.h>
#include <atomic>
#include <csignal>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>

namespace hone::serve {
namespace {

using nlohmann::json;

constexpr const char* kJson = "application/json";

// Route patterns as metric labels: a raw path would let clients create any number of series.
std::string endpoint_label(const std::string& path) {
  static const char* const kExact[] = {"/v2/health/live", "/v2/health/ready", "/metrics",
                                       "/embed",          "/predict",         "/hone/verdict"};
  for (const char* exact : kExact) {
    if (path == exact) return exact;
  }
  const std::string models = "/v2/models/";
  if (path.rfind(models, 0) == 0) {
    const std::string infer = "/infer";
    if (path.size() > infer.size() && path.compare(path.size() - infer.size(), infer.size(), infer) == 0) {
      return "/v2/models/{name}/infer";
    }
    return "/v2/models/{name}";
  }
  return "other";
}

std::string dump(const json& body) { return body.dump(-1, ' ', false, json::error_handler_t::replace); }

void set_json(httplib::Response& response, int status, const json& body) {
  response.status = status;
  response.set_content(dump(body), kJson);
}

void set_error(httplib::Response& response, int status, std::string_view message) {
  set_json(response, status, make_error_body(message));
}

}  // namespace

HandlerReply HandlerReply::success(nlohmann::json body, std::optional<RequestTiming> timing) {
  HandlerReply reply;
  reply.body = std::move(body);
  reply.timing = timing;
  return reply;
}

HandlerReply HandlerReply::failure(RequestStatus status, std::string error, std::optional<RequestTiming> timing) {
  HandlerReply reply;
  reply.status = status;
  reply.error = std::move(error);
  reply.timing = timing;
  return reply;
}

struct HttpServer::Impl {
  Impl(HttpServerOptions options_in, ServeHandlers handlers_in)
      : options(std::move(options_in)), handlers(std::move(handlers_in)), metrics(registry) {}

  HttpServerOptions options;
  ServeHandlers handlers;
  MetricsRegistry registry;
  ServeMetrics metrics;
  httplib::Server server;
  std::thread listener;
  std::atomic<bool> ready{false};
  std::atomic<bool> draining{false};
  std::atomic<std::size_t> in_flight{0};
  std::atomic<int> port{0};
  std::atomic<int> listen_socket{-1};
  std::once_flag stop_once;

  // Counts a request as in flight while a handler runs; stop() relies on httplib joining them.
  struct InFlight {
    explicit InFlight(std::atomic<std::size_t>& count) : count_(count) { ++count_; }
    ~InFlight() { --count_; }
    std::atomic<std::size_t>& count_;
  };

  bool accepting() const { return ready.load() && !draining.load(); }

  void send_reply(httplib::Response& response, HandlerReply reply) {
    if (reply.timing) {
      response.set_header("x-queue-time", std::to_string(reply.timing->queue_time.count()));
      response.set_header("x-inference-time", std::to_string(reply.timing->compute_time.count()));
      if (reply.status == RequestStatus::ok) metrics.observe_timing(*reply.timing);
    }
    metrics.observe_rejection(reply.status);
    if (reply.status == RequestStatus::rejected_queue_full) {
      response.set_header("Retry-After", std::to_string(options.retry_after_seconds));
    }
    if (reply.status == RequestStatus::ok) {
      set_json(response, 200, reply.body);
    } else {
      set_error(response, http_status_code(reply.status),
                reply.error.empty() ? std::string(to_string(reply.status)) : reply.error);
    }
  }

  // The common frame of the three inference endpoints: readiness, body parse, handler errors.
  template <typename Body>
  void guarded(httplib::Response& response, Body&& body) {
    InFlight guard(in_flight);
    if (!accepting()) {
      metrics.observe_rejection(RequestStatus::unavailable);
      response.set_header("Retry-After", std::to_string(options.retry_after_seconds));
      set_error(response, 503,
                draining.load() ? "server is draining: not accepting new requests" : "server is not ready");
      return;
    }
    try {
      body();
    } catch (const ProtocolError& e) {
      set_error(response, 400, e.what());
    } catch (const std::exception& e) {
      set_error(response, 500, std::string("internal error: ") + e.what());
    }
  }

  void handle_infer(const httplib::Request& request, httplib::Response& response) {
    guarded(response, [&] {
      const std::string name = request.matches[1];
      if (!handlers.infer) return set_error(response, 404, "inference is not served here");
      std::optional<ModelMetadata> model = handlers.find_model ? handlers.find_model(name) : std::nullopt;
      if (!model) return set_error(response, 404, "model '" + name + "' not found");
      InferRequest parsed = parse_infer_request(parse_json_body(request.body, options.limits), options.limits);
      validate_infer_request(parsed, *model);
      send_reply(response, handlers.infer(*model, std::move(parsed)));
    });
  }

  void handle_embed(const httplib::Request& request, httplib::Response& response) {
    guarded(response, [&] {
      if (!handlers.embed) return set_error(response, 404, "/embed is not served by this model");
      EmbedRequest parsed = parse_embed_request(parse_json_body(request.body, options.limits), options.limits);
      send_reply(response, handlers.embed(std::move(parsed)));
    });
  }

  void handle_predict(const httplib::Request& request, httplib::Response& response) {
    guarded(response, [&] {
      if (!handlers.predict) return set_error(response, 404, "/predict is not served by this model");
      PredictRequest parsed = parse_predict_request(parse_json_body(request.body, options.limits), options.limits);
      send_reply(response, handlers.predict(std::move(parsed)));
    });
  }

  void handle_metadata(const httplib::Request& request, httplib::Response& response) {
    const std::string name = request.matches[1];
    std::optional<ModelMetadata> model = handlers.find_model ? handlers.find_model(name) : std::nullopt;
    if (!model) return set_error(response, 404, "model '" + name + "' not found");
    set_json(response, 200, make_model_metadata(*model));
  }

  void register_routes() {
    server.Get("/v2/health/live", [](const httplib::Request&, httplib::Response& response) {
      set_json(response, 200, {{"live", true}});
    });
    server.Get("/v2/health/ready", [this](const httplib::Request&, httplib::Response& response) {
      const bool is_ready = accepting();
      set_json(response, is_ready ? 200 : 503, {{"ready", is_ready}});
    });
    server.Get("/v2/models/([^/]+)", [this](const httplib::Request& request, httplib::Response& response) {
      handle_metadata(request, response);
    });
    server.Post(
        "/v2/models/([^/]+)(?:/versions/[^/]+)?/infer",
        [this](const httplib::Request& request, httplib::Response& response) { handle_infer(request, response); });
    server.Post("/embed", [this](const httplib::Request& request, httplib::Response& response) {
      handle_embed(request, response);
    });
    server.Post("/predict", [this](const httplib::Request& request, httplib::Response& response) {
      handle_predict(request, response);
    });
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
      metrics.ready.set({}, accepting() ? 1 : 0);
      response.status = 200;
      response.set_content(registry.render(), std::string(kPrometheusContentType).c_str());
    });
    server.Get("/hone/verdict", [this](const httplib::Request&, httplib::Response& response) {
      if (!handlers.verdict) return set_error(response, 404, "no compression verdict for this model");
      try {
        set_json(response, 200, handlers.verdict());
      } catch (const std::exception& e) {
        set_error(response, 500, std::string("internal error: ") + e.what());
      }
    });

    // Responses httplib makes by itself (no route, body over the limit, unparsable request) get
    // a JSON error body like ours.
    server.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& request,
                                                                         httplib::Response& response) {
      if (!response.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      if (response.status == 413) {
        set_error(response, 413, "body: larger than the limit of " + std::to_string(options.max_body_bytes) + " bytes");
      } else if (response.status == 404) {
        set_error(response, 404, "no route for " + request.method + " " + request.path);
      } else {
        set_error(response, response.status, "HTTP " + std::to_string(response.status));
      }
      return httplib::Server::HandlerResponse::Handled;
    }));
    server.set_exception_handler([](const httplib::Request&, httplib::Response& response, std::exception_ptr error) {
      std::string message = "internal error";
      try {
        if (error) std::rethrow_exception(error);
      } catch (const std::exception& e) {
        message += std::string(": ") + e.what();
      } catch (...) {
      }
      set_error(response, 500, message);
    });
    // Every response passes here before its first byte is written, httplib's own 404/413
    // included: a scrape that follows a reply counts it (set_logger runs only after the write,
    // so a client could see its answer before /metrics did).
    server.set_post_routing_handler([this](const httplib::Request& request, httplib::Response& response) {
      metrics.observe_request(endpoint_label(request.path), response.status);
    });
  }
};

HttpServer::HttpServer(HttpServerOptions options, ServeHandlers handlers) {
  if (options.threads == 0) throw std::invalid_argument("http server threads: must be at least 1");
  if (options.max_body_bytes == 0) throw std::invalid_argument("http server max_body_bytes: must be at least 1");
  impl_ = std::make_unique<Impl>(std::move(options), std::move(handlers));
  const std::size_t threads = impl_->options.threads;
  impl_->server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  impl_->server.set_payload_max_length(impl_->options.max_body_bytes);
  impl_->server.set_tcp_nodelay(true);  // small JSON replies: no 40 ms Nagle + delayed-ACK stalls
  impl_->server.set_keep_alive_timeout(impl_->options.keep_alive_timeout.count());
  impl_->server.set_read_timeout(impl_->options.read_timeout.count(), 0);
  impl_->server.set_write_timeout(impl_->options.write_timeout.count(), 0);
  // Remember the listening socket: Debian's libcpp-httplib listens with a backlog of 5, so a
  // burst of connects loses SYNs (a 1 s retransmit each); start() raises the backlog.
  Impl* impl = impl_.get();
  impl_->server.set_socket_options([impl](socket_t socket) {
    // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, with which a second server on a
    // port in use binds without error and silently takes half of the first one's connections.
    int yes = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    impl->listen_socket = static_cast<int>(socket);
  });
  impl_->register_routes();
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::start() {
  Impl& impl = *impl_;
  if (impl.listener.joinable()) throw std::runtime_error("http server: already started");
  const std::string& host = impl.options.host;
  int port = impl.options.port;
  if (port == 0) {
    port = impl.server.bind_to_any_port(host);
    if (port < 0) throw std::runtime_error("http server: cannot bind " + host + " to an ephemeral port");
  } else if (!impl.server.bind_to_port(host, port)) {
    throw std::runtime_error("http server: cannot bind " + host + ":" + std::to_string(port));
  }
  impl.port = port;
  if (impl.listen_socket >= 0) ::listen(impl.listen_socket, impl.options.listen_backlog);  // Linux: updates it
  impl.listener = std::thread([&impl] { impl.server.listen_after_bind(); });
  // httplib's stop() does nothing before its accept loop runs; wait for it so stop() cannot be lost.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!impl.server.is_running() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return port;
}

void HttpServer::set_ready(bool ready) {
  impl_->ready = ready;
  impl_->metrics.ready.set({}, ready && !impl_->draining ? 1 : 0);
}

bool HttpServer::ready() const { return impl_->accepting(); }

void HttpServer::stop() {
  Impl& impl = *impl_;
  std::call_once(impl.stop_once, [&impl] {
    impl.draining = true;
    impl.metrics.ready.set({}, 0);
    impl.server.stop();  // closes the listening socket; live connections end after their request
    if (impl.listener.joinable()) impl.listener.join();  // httplib joins its pool: in-flight done
  });
}

int HttpServer::port() const { return impl_->port; }

std::size_t HttpServer::in_flight() const { return impl_->in_flight; }

MetricsRegistry& HttpServer::metrics_registry() { return impl_->registry; }

ServeMetrics& HttpServer::metrics() { return impl_->metrics; }

void block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

int wait_for_stop_signal() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  return signal_number;
}

}  // namespace hone::serve
