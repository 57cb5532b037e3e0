#pragma once
/// @file Prometheus metrics in the text exposition format 0.0.4, with no dependency beyond the
/// standard library: counters, gauges and histograms, each a family of series keyed by label
/// values, all thread-safe (the server's handler threads and the batcher's worker update them
/// while /metrics renders).
///
/// Why our own: the format is small and strict (HELP/TYPE before samples, escaped label values,
/// cumulative `_bucket{le=...}` ending at +Inf with `_count` equal to it), and prometheus-cpp is
/// not packaged with a text-only build; rendering it ourselves keeps hone_serve torch- and
/// network-library free.
///
///     MetricsRegistry registry;
///     CounterFamily& requests = registry.add_counter("hone_requests_total", "HTTP requests.", {"endpoint", "code"});
///     HistogramFamily& queue = registry.add_histogram("hone_queue_time_seconds", "Time in the queue.", {},
///                                                     exponential_buckets(1e-4, 2, 16));
///     requests.increment({"/v2/models/{name}/infer", "200"});
///     queue.observe({}, 0.0021);
///     std::string text = registry.render();   // serve with kPrometheusContentType
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace hone::serve {

/// The Content-Type of registry.render()'s output.
inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

/// One value per label name, in the family's label order.
using LabelValues = std::vector<std::string>;

/// Common part of a metric family: name, help, label names, and rendering of its samples.
class MetricFamily {
 public:
  MetricFamily(std::string name, std::string help, std::string type, std::vector<std::string> label_names);
  virtual ~MetricFamily() = default;
  MetricFamily(const MetricFamily&) = delete;
  MetricFamily& operator=(const MetricFamily&) = delete;

  const std::string& name() const { return name_; }
  /// Appends `# HELP`, `# TYPE` and every sample line.
  void render(std::string& out) const;

 protected:
  /// Throws std::invalid_argument naming the metric when the count of values is wrong.
  void check_labels(const LabelValues& values) const;
  /// `name{a="x",b="y"}` (with an extra label, e.g. le, appended when given).
  std::string series(std::string_view suffix, const LabelValues& values, std::string_view extra_name = {},
                     std::string_view extra_value = {}) const;
  virtual void render_samples(std::string& out) const = 0;

  std::string name_;
  std::string help_;
  std::string type_;
  std::vector<std::string> label_names_;
  mutable std::mutex mutex_;
};

/// A monotonically increasing count (requests, rejections).
class CounterFamily final : public MetricFamily {
 public:
  CounterFamily(std::string name, std::string help, std::vector<std::string> label_names);
  /// Adds `amount` (>= 0; a negative amount throws std::invalid_argument).
  void increment(const LabelValues& values, double amount = 1);
  /// The current value (0 for a series never incremented).
  double value(const LabelValues& values) const;

 private:
  void render_samples(std::string& out) const override;
  std::map<LabelValues, double> values_;
};

/// A value that goes up and down (queue depth, ready flag).
class GaugeFamily final : public MetricFamily {
 public:
  GaugeFamily(std::string name, std::string help, std::vector<std::string> label_names);
  void set(const LabelValues& values, double value);
  void add(const LabelValues& values, double amount);
  double value(const LabelValues& values) const;

 private:
  void render_samples(std::string& out) const override;
  std::map<LabelValues, double> values_;
};

/// A distribution over fixed upper bounds (queue time, compute time, batch size).
class HistogramFamily final : public MetricFamily {
 public:
  /// `upper_bounds` must be finite and strictly increasing; +Inf is added. The label name `le` is
  /// reserved. Throws std::invalid_argument naming the metric otherwise.
  HistogramFamily(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> upper_bounds);
  /// Counts `value` in the first bucket whose bound is >= value. NaN is ignored.
  void observe(const LabelValues& values, double value);
  /// Observations so far in this series.
  std::uint64_t count(const LabelValues& values) const;

 private:
  struct Series {
    std::vector<std::uint64_t> bucket_counts;  ///< per bucket, not cumulative; last is +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };
  void render_samples(std::string& out) const override;
  std::vector<double> upper_bounds_;
  std::map<LabelValues, Series> series_;
};

/// The set of families one /metrics endpoint exposes, rendered in registration order.
class MetricsRegistry {
 public:
  /// Each add_* throws std::invalid_argument when the name or a label name is not a valid
  /// Prometheus name, or the name is taken. The returned reference lives as long as the registry.
  CounterFamily& add_counter(std::string name, std::string help, std::vector<std::string> label_names = {});
  GaugeFamily& add_gauge(std::string name, std::string help, std::vector<std::string> label_names = {});
  HistogramFamily& add_histogram(std::string name, std::string help, std::vector<std::string> label_names,
                                 std::vector<double> upper_bounds);

  /// Runs before every render (e.g. to set a gauge from the batcher's queue depth).
  void add_collect_hook(std::function<void()> hook);

  /// The whole exposition, text format 0.0.4.
  std::string render() const;

 private:
  template <typename Family, typename... Args>
  Family& add(std::string name, Args&&... args);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<MetricFamily>> families_;
  std::vector<std::function<void()>> collect_hooks_;
};

/// `count` bounds start, start*factor, ... (start > 0, factor > 1).
std::vector<double> exponential_buckets(double start, double factor, std::size_t count);
/// `count` bounds start, start+width, ... (width > 0).
std::vector<double> linear_buckets(double start, double width, std::size_t count);

/// A sample value as the format writes it: shortest round-trip decimal, `+Inf`, `-Inf`, `NaN`.
std::string format_metric_value(double value);
/// Label value escaping: backslash, double quote and line feed become `\\`, `\"`, `\n`.
std::string escape_label_value(std::string_view value);
/// HELP text escaping: backslash and line feed become `\\` and `\n`.
std::string escape_help(std::string_view help);

}  // namespace hone::serve
