#include "hone/serve/serve_metrics.h"

namespace hone::serve {

ServeMetrics::ServeMetrics(MetricsRegistry& registry)
    : requests(registry.add_counter("hone_http_requests_total", "HTTP requests answered, by endpoint and status code.",
                                    {"endpoint", "code"})),
      rejections(registry.add_counter("hone_rejections_total",
                                      "Requests answered without compute: queue full, timed out, cancelled, draining.",
                                      {"reason"})),
      queue_depth(registry.add_gauge("hone_queue_depth", "Requests waiting in the batcher's queue.")),
      ready(registry.add_gauge("hone_ready", "1 when the server accepts inference requests, else 0.")),
      // 50 us .. ~3.3 s: a CPU forward is tens of us to seconds.
      queue_time(registry.add_histogram("hone_queue_time_seconds",
                                        "Time from submit to the start of the request's batch compute.", {},
                                        exponential_buckets(50e-6, 2, 17))),
      compute_time(registry.add_histogram("hone_compute_time_seconds", "Compute time of the request's batch.", {},
                                          exponential_buckets(50e-6, 2, 17))),
      batch_size(registry.add_histogram("hone_batch_size", "Requests per computed batch.", {},
                                        exponential_buckets(1, 2, 10))) {}

void ServeMetrics::observe_request(const std::string& endpoint, int http_code) {
  requests.increment({endpoint, std::to_string(http_code)});
}

void ServeMetrics::observe_rejection(RequestStatus status) {
  switch (status) {
    case RequestStatus::rejected_queue_full:
    case RequestStatus::timed_out:
    case RequestStatus::cancelled:
    case RequestStatus::unavailable:
      rejections.increment({std::string(to_string(status))});
      break;
    default:
      break;
  }
}

void ServeMetrics::observe_timing(const RequestTiming& timing) {
  queue_time.observe({}, static_cast<double>(timing.queue_time.count()) * 1e-6);
  compute_time.observe({}, static_cast<double>(timing.compute_time.count()) * 1e-6);
}

void ServeMetrics::observe_batch(const BatchReport& batch) {
  batch_size.observe({}, static_cast<double>(batch.batch_size));
}

}  // namespace hone::serve
