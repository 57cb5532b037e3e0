#pragma once
/// @file The metric families every hone server exposes, created once on a registry, so the HTTP
/// layer, the batcher's batch observer and the queue-depth probe all write to the same series.
///
///     MetricsRegistry registry;
///     ServeMetrics metrics(registry);
///     BatcherOptions options;
///     options.on_batch = [&](const BatchReport& batch) { metrics.observe_batch(batch); };
///     registry.add_collect_hook([&] { metrics.queue_depth.set({}, batcher.queue_depth()); });
///
/// Names: hone_http_requests_total{endpoint,code}, hone_rejections_total{reason},
/// hone_queue_depth, hone_ready, hone_queue_time_seconds, hone_compute_time_seconds,
/// hone_batch_size. Times are in seconds (Prometheus' base unit).
#include "hone/serve/dynamic_batcher.h"
#include "hone/serve/metrics.h"
#include "hone/serve/request_status.h"

#include <string>

namespace hone::serve {

struct ServeMetrics {
  explicit ServeMetrics(MetricsRegistry& registry);

  /// One answered HTTP request: endpoint is a route pattern ("/v2/models/{name}/infer"), never a
  /// raw path, so hostile paths cannot grow the label set.
  void observe_request(const std::string& endpoint, int http_code);
  /// A request answered without compute because of load or shutdown (queue full, timed out,
  /// cancelled, draining); other statuses are ignored.
  void observe_rejection(RequestStatus status);
  /// A computed request's queue and compute time.
  void observe_timing(const RequestTiming& timing);
  /// One computed batch (wire to BatcherOptions::on_batch).
  void observe_batch(const BatchReport& batch);

  CounterFamily& requests;
  CounterFamily& rejections;
  GaugeFamily& queue_depth;
  GaugeFamily& ready;
  HistogramFamily& queue_time;
  HistogramFamily& compute_time;
  HistogramFamily& batch_size;
};

}  // namespace hone::serve
