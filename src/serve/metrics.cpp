#include "hone/serve/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace hone::serve {
namespace {

bool is_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    const bool digit = c >= '0' && c <= '9';
    if (!(letter || (i > 0 && digit))) return false;
  }
  return true;
}

bool is_label_name(std::string_view name) {
  if (name.empty() || name.find(':') != std::string_view::npos) return false;
  if (name.substr(0, 2) == "__") return false;  // reserved for Prometheus' own labels
  return is_metric_name(name);
}

void check_names(const std::string& name, const std::vector<std::string>& label_names) {
  if (!is_metric_name(name)) {
    throw std::invalid_argument("metric name '" + name + "': must match [a-zA-Z_:][a-zA-Z0-9_:]*");
  }
  for (const std::string& label : label_names) {
    if (!is_label_name(label)) {
      throw std::invalid_argument("metric " + name + ": label name '" + label +
                                  "' must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __");
    }
    if (std::count(label_names.begin(), label_names.end(), label) > 1) {
      throw std::invalid_argument("metric " + name + ": label name '" + label + "' given twice");
    }
  }
}

}  // namespace

std::string format_metric_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  if (error != std::errc()) return "NaN";
  return std::string(buffer, end);
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<double> exponential_buckets(double start, double factor, std::size_t count) {
  if (!(start > 0) || !(factor > 1)) throw std::invalid_argument("exponential_buckets: needs start > 0, factor > 1");
  std::vector<double> bounds;
  double bound = start;
  for (std::size_t i = 0; i < count; ++i, bound *= factor) bounds.push_back(bound);
  return bounds;
}

std::vector<double> linear_buckets(double start, double width, std::size_t count) {
  if (!(width > 0)) throw std::invalid_argument("linear_buckets: needs width > 0");
  std::vector<double> bounds;
  for (std::size_t i = 0; i < count; ++i) bounds.push_back(start + width * static_cast<double>(i));
  return bounds;
}

MetricFamily::MetricFamily(std::string name, std::string help, std::string type, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), type_(std::move(type)), label_names_(std::move(label_names)) {
  check_names(name_, label_names_);
}

void MetricFamily::render(std::string& out) const {
  out += "# HELP " + name_ + " " + escape_help(help_) + "\n";
  out += "# TYPE " + name_ + " " + type_ + "\n";
  std::lock_guard<std::mutex> lock(mutex_);
  render_samples(out);
}

void MetricFamily::check_labels(const LabelValues& values) const {
  if (values.size() != label_names_.size()) {
    throw std::invalid_argument("metric " + name_ + ": " + std::to_string(values.size()) + " label values given, " +
                                std::to_string(label_names_.size()) + " label names declared");
  }
}

std::string MetricFamily::series(std::string_view suffix, const LabelValues& values, std::string_view extra_name,
                                 std::string_view extra_value) const {
  std::string out = name_;
  out += suffix;
  if (values.empty() && extra_name.empty()) return out;
  out += '{';
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += label_names_[i] + "=\"" + escape_label_value(values[i]) + "\"";
  }
  if (!extra_name.empty()) {
    if (!values.empty()) out += ',';
    out += std::string(extra_name) + "=\"" + escape_label_value(extra_value) + "\"";
  }
  out += '}';
  return out;
}

CounterFamily::CounterFamily(std::string name, std::string help, std::vector<std::string> label_names)
    : MetricFamily(std::move(name), std::move(help), "counter", std::move(label_names)) {
  if (label_names_.empty()) values_[{}] = 0;  // a label-less series exists from the start, at 0
}

void CounterFamily::increment(const LabelValues& values, double amount) {
  check_labels(values);
  if (!(amount >= 0)) throw std::invalid_argument("counter " + name_ + ": increment must be >= 0");
  std::lock_guard<std::mutex> lock(mutex_);
  values_[values] += amount;
}

double CounterFamily::value(const LabelValues& values) const {
  check_labels(values);
  std::lock_guard<std::mutex> lock(mutex_);
  const auto found = values_.find(values);
  return found == values_.end() ? 0 : found->second;
}

void CounterFamily::render_samples(std::string& out) const {
  for (const auto& [labels, value] : values_) out += series("", labels) + " " + format_metric_value(value) + "\n";
}

GaugeFamily::GaugeFamily(std::string name, std::string help, std::vector<std::string> label_names)
    : MetricFamily(std::move(name), std::move(help), "gauge", std::move(label_names)) {
  if (label_names_.empty()) values_[{}] = 0;
}

void GaugeFamily::set(const LabelValues& values, double value) {
  check_labels(values);
  std::lock_guard<std::mutex> lock(mutex_);
  values_[values] = value;
}

void GaugeFamily::add(const LabelValues& values, double amount) {
  check_labels(values);
  std::lock_guard<std::mutex> lock(mutex_);
  values_[values] += amount;
}

double GaugeFamily::value(const LabelValues& values) const {
  check_labels(values);
  std::lock_guard<std::mutex> lock(mutex_);
  const auto found = values_.find(values);
  return found == values_.end() ? 0 : found->second;
}

void GaugeFamily::render_samples(std::string& out) const {
  for (const auto& [labels, value] : values_) out += series("", labels) + " " + format_metric_value(value) + "\n";
}

HistogramFamily::HistogramFamily(std::string name, std::string help, std::vector<std::string> label_names,
                                 std::vector<double> upper_bounds)
    : MetricFamily(std::move(name), std::move(help), "histogram", std::move(label_names)),
      upper_bounds_(std::move(upper_bounds)) {
  if (std::find(label_names_.begin(), label_names_.end(), "le") != label_names_.end()) {
    throw std::invalid_argument("histogram " + name_ + ": label name 'le' is reserved for buckets");
  }
  for (std::size_t i = 0; i < upper_bounds_.size(); ++i) {
    if (!std::isfinite(upper_bounds_[i])) {
      throw std::invalid_argument("histogram " + name_ + ": bucket bound " + std::to_string(i) +
                                  " is not finite (+Inf is added by itself)");
    }
    if (i > 0 && !(upper_bounds_[i] > upper_bounds_[i - 1])) {
      throw std::invalid_argument("histogram " + name_ + ": bucket bounds must increase strictly, bound " +
                                  std::to_string(i) + " does not");
    }
  }
  if (label_names_.empty()) series_[{}].bucket_counts.assign(upper_bounds_.size() + 1, 0);
}

void HistogramFamily::observe(const LabelValues& values, double value) {
  check_labels(values);
  if (std::isnan(value)) return;
  const auto bucket = static_cast<std::size_t>(std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) -
                                               upper_bounds_.begin());
  std::lock_guard<std::mutex> lock(mutex_);
  Series& series = series_[values];
  if (series.bucket_counts.empty()) series.bucket_counts.assign(upper_bounds_.size() + 1, 0);
  ++series.bucket_counts[bucket];
  series.sum += value;
  ++series.count;
}

std::uint64_t HistogramFamily::count(const LabelValues& values) const {
  check_labels(values);
  std::lock_guard<std::mutex> lock(mutex_);
  const auto found = series_.find(values);
  return found == series_.end() ? 0 : found->second.count;
}

void HistogramFamily::render_samples(std::string& out) const {
  for (const auto& [labels, series_values] : series_) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= upper_bounds_.size(); ++i) {
      cumulative += series_values.bucket_counts[i];
      const std::string le = i < upper_bounds_.size() ? format_metric_value(upper_bounds_[i]) : "+Inf";
      out += series("_bucket", labels, "le", le) + " " + std::to_string(cumulative) + "\n";
    }
    out += series("_sum", labels) + " " + format_metric_value(series_values.sum) + "\n";
    out += series("_count", labels) + " " + std::to_string(series_values.count) + "\n";
  }
}

template <typename Family, typename... Args>
Family& MetricsRegistry::add(std::string name, Args&&... args) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& family : families_) {
    if (family->name() == name) throw std::invalid_argument("metric " + name + ": registered twice");
  }
  auto family = std::make_unique<Family>(std::move(name), std::forward<Args>(args)...);
  Family& ref = *family;
  families_.push_back(std::move(family));
  return ref;
}

CounterFamily& MetricsRegistry::add_counter(std::string name, std::string help, std::vector<std::string> label_names) {
  return add<CounterFamily>(std::move(name), std::move(help), std::move(label_names));
}

GaugeFamily& MetricsRegistry::add_gauge(std::string name, std::string help, std::vector<std::string> label_names) {
  return add<GaugeFamily>(std::move(name), std::move(help), std::move(label_names));
}

HistogramFamily& MetricsRegistry::add_histogram(std::string name, std::string help,
                                                std::vector<std::string> label_names,
                                                std::vector<double> upper_bounds) {
  return add<HistogramFamily>(std::move(name), std::move(help), std::move(label_names), std::move(upper_bounds));
}

void MetricsRegistry::add_collect_hook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mutex_);
  collect_hooks_.push_back(std::move(hook));
}

std::string MetricsRegistry::render() const {
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    hooks = collect_hooks_;
  }
  for (const auto& hook : hooks) hook();  // outside the lock: a hook may update our families
  std::string out;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& family : families_) family->render(out);
  return out;
}

}  // namespace hone::serve
