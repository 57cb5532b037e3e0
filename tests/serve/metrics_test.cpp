#include "hone/serve/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace hone::serve {
namespace {

// One parsed sample line of the text format.
struct Sample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // unescaped values, in order
  std::string value;
};

// Parses `name{a="x",b="y"} value` strictly (fails the test on anything else) and undoes escaping.
Sample parse_sample(const std::string& line) {
  Sample sample;
  std::size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') sample.name += line[i++];
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      std::string label;
      while (i < line.size() && line[i] != '=') label += line[i++];
      EXPECT_EQ(line.substr(i, 2), "=\"") << line;
      i += 2;
      std::string value;
      while (i < line.size() && line[i] != '"') {
        if (line[i] == '\\') {
          ++i;
          EXPECT_TRUE(line[i] == '\\' || line[i] == '"' || line[i] == 'n') << "bad escape in " << line;
          value += line[i] == 'n' ? '\n' : line[i];
        } else {
          value += line[i];
        }
        ++i;
      }
      ++i;  // closing quote
      sample.labels.emplace_back(label, value);
      if (line[i] == ',') ++i;
    }
    ++i;  // '}'
  }
  EXPECT_EQ(line[i], ' ') << line;
  sample.value = line.substr(i + 1);
  EXPECT_FALSE(sample.value.empty()) << line;
  EXPECT_EQ(sample.value.find(' '), std::string::npos) << "no timestamps expected: " << line;
  return sample;
}

std::string family_of(const std::string& sample_name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (sample_name.size() > s.size() && sample_name.compare(sample_name.size() - s.size(), s.size(), s) == 0) {
      const std::string base = sample_name.substr(0, sample_name.size() - s.size());
      if (types.count(base) && types.at(base) == "histogram") return base;
    }
  }
  return sample_name;
}

// Checks the format rules on a whole exposition; returns the samples for further checks.
std::vector<Sample> check_exposition(const std::string& text) {
  EXPECT_TRUE(text.empty() || text.back() == '\n');
  std::map<std::string, std::string> types;
  std::set<std::string> helps;
  std::vector<Sample> samples;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      const std::string rest = line.substr(7);
      const std::string name = rest.substr(0, rest.find(' '));
      EXPECT_TRUE(helps.insert(name).second) << "HELP twice for " << name;
      EXPECT_EQ(rest.find('\n'), std::string::npos);
    } else if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name, type;
      words >> name >> type;
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << line;
      EXPECT_TRUE(helps.count(name)) << "TYPE before HELP for " << name;
      EXPECT_TRUE(types.emplace(name, type).second) << "TYPE twice for " << name;
    } else {
      EXPECT_FALSE(line.empty());
      EXPECT_NE(line[0], '#') << line;
      Sample sample = parse_sample(line);
      const std::string family = family_of(sample.name, types);
      EXPECT_TRUE(types.count(family)) << "sample before (or without) its TYPE: " << line;
      EXPECT_TRUE(helps.count(family)) << "sample without HELP: " << line;
      samples.push_back(std::move(sample));
    }
  }
  // Histograms: per label set, le increasing, counts cumulative, last bucket +Inf == _count.
  std::map<std::string, std::vector<std::pair<double, double>>> buckets;  // key: family + labels
  std::map<std::string, double> counts;
  for (const Sample& sample : samples) {
    const std::string family = family_of(sample.name, types);
    if (types[family] != "histogram") continue;
    std::string key = family;
    double le = 0;
    bool has_le = false;
    for (const auto& [label, value] : sample.labels) {
      if (label == "le") {
        has_le = true;
        le = value == "+Inf" ? std::numeric_limits<double>::infinity() : std::stod(value);
      } else {
        key += "," + label + "=" + value;
      }
    }
    if (sample.name == family + "_bucket") {
      EXPECT_TRUE(has_le) << sample.name;
      buckets[key].emplace_back(le, std::stod(sample.value));
    } else if (sample.name == family + "_count") {
      counts[key] = std::stod(sample.value);
    }
  }
  for (const auto& [key, series] : buckets) {
    EXPECT_FALSE(series.empty());
    if (series.empty()) continue;
    for (std::size_t i = 1; i < series.size(); ++i) {
      EXPECT_LT(series[i - 1].first, series[i].first) << key;
      EXPECT_LE(series[i - 1].second, series[i].second) << key << " not cumulative";
    }
    EXPECT_TRUE(std::isinf(series.back().first)) << key << " does not end at +Inf";
    EXPECT_TRUE(counts.count(key)) << key << " has no _count";
    EXPECT_EQ(series.back().second, counts[key]) << key;
  }
  return samples;
}

TEST(Metrics, ExpositionFollowsTheTextFormat) {
  MetricsRegistry registry;
  CounterFamily& requests =
      registry.add_counter("hone_requests_total", "Requests.\nBy \\endpoint.", {"endpoint", "code"});
  GaugeFamily& depth = registry.add_gauge("hone_queue_depth", "Queue depth.");
  HistogramFamily& latency = registry.add_histogram("hone_latency_seconds", "Latency.", {"model"}, {0.001, 0.01, 0.1});
  const std::string hostile = "a\"b\\c\nd";
  requests.increment({"/v2/models/{name}/infer", "200"}, 3);
  requests.increment({hostile, "429"});
  depth.set({}, 7);
  for (double value : {0.0005, 0.001, 0.005, 0.05, 2.0, 5.0}) latency.observe({"mlp"}, value);
  latency.observe({"cnn"}, 0.02);

  const std::string text = registry.render();
  const std::vector<Sample> samples = check_exposition(text);
  EXPECT_NE(text.find("# HELP hone_requests_total Requests.\\nBy \\\\endpoint.\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE hone_latency_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("hone_requests_total{endpoint=\"/v2/models/{name}/infer\",code=\"200\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("hone_latency_seconds_bucket{model=\"mlp\",le=\"0.001\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("hone_latency_seconds_bucket{model=\"mlp\",le=\"+Inf\"} 6\n"), std::string::npos);
  EXPECT_NE(text.find("hone_latency_seconds_count{model=\"mlp\"} 6\n"), std::string::npos);
  EXPECT_NE(text.find("hone_queue_depth 7\n"), std::string::npos);
  bool found_hostile = false;
  for (const Sample& sample : samples) {
    for (const auto& [label, value] : sample.labels) found_hostile = found_hostile || value == hostile;
  }
  EXPECT_TRUE(found_hostile) << "escaped label value did not parse back";
}

TEST(Metrics, EmptyFamiliesStillRenderValidly) {
  MetricsRegistry registry;
  registry.add_counter("hone_a_total", "A.");
  registry.add_counter("hone_b_total", "B.", {"reason"});
  registry.add_histogram("hone_c", "C.", {}, {1, 2});
  const std::string text = registry.render();
  check_exposition(text);
  EXPECT_NE(text.find("hone_a_total 0\n"), std::string::npos);
  EXPECT_NE(text.find("hone_c_bucket{le=\"+Inf\"} 0\n"), std::string::npos);
}

TEST(Metrics, ValuesFormatAsPrometheusParsesThem) {
  EXPECT_EQ(format_metric_value(3), "3");
  EXPECT_EQ(format_metric_value(0.25), "0.25");
  EXPECT_EQ(format_metric_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_metric_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_metric_value(std::nan("")), "NaN");
  EXPECT_EQ(std::stod(format_metric_value(0.1 + 0.2)), 0.1 + 0.2);  // round-trips
}

TEST(Metrics, RejectsBadNamesLabelsAndUse) {
  MetricsRegistry registry;
  EXPECT_THROW(registry.add_counter("1bad", "x"), std::invalid_argument);
  EXPECT_THROW(registry.add_counter("bad-name", "x"), std::invalid_argument);
  EXPECT_THROW(registry.add_counter("ok_total", "x", {"__reserved"}), std::invalid_argument);
  EXPECT_THROW(registry.add_counter("ok2_total", "x", {"a", "a"}), std::invalid_argument);
  EXPECT_THROW(registry.add_histogram("h", "x", {"le"}, {1}), std::invalid_argument);
  EXPECT_THROW(registry.add_histogram("h2", "x", {}, {2, 1}), std::invalid_argument);
  EXPECT_THROW(registry.add_histogram("h3", "x", {}, {1, std::numeric_limits<double>::infinity()}),
               std::invalid_argument);
  CounterFamily& counter = registry.add_counter("c_total", "x", {"code"});
  EXPECT_THROW(registry.add_gauge("c_total", "again"), std::invalid_argument);
  EXPECT_THROW(counter.increment({}), std::invalid_argument);
  EXPECT_THROW(counter.increment({"200"}, -1), std::invalid_argument);
}

TEST(Metrics, ConcurrentUpdatesAreAllCounted) {
  MetricsRegistry registry;
  CounterFamily& counter = registry.add_counter("c_total", "x", {"thread"});
  HistogramFamily& histogram = registry.add_histogram("h", "x", {}, {0.5});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        counter.increment({std::to_string(t % 2)});
        histogram.observe({}, i % 2);
        if (i % 500 == 0) (void)registry.render();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(counter.value({"0"}) + counter.value({"1"}), 8000);
  EXPECT_EQ(histogram.count({}), 8000u);
  check_exposition(registry.render());
}

TEST(Metrics, CollectHooksRunBeforeRendering) {
  MetricsRegistry registry;
  GaugeFamily& depth = registry.add_gauge("depth", "x");
  int probe = 5;
  registry.add_collect_hook([&] { depth.set({}, probe); });
  EXPECT_NE(registry.render().find("depth 5\n"), std::string::npos);
  probe = 9;
  EXPECT_NE(registry.render().find("depth 9\n"), std::string::npos);
}

}  // namespace
}  // namespace hone::serve
