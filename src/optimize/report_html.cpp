// The HTML page of an optimize report (schema hone-optimize/1), built as a plain string. Every
// string taken from the report goes through escape(); every number through a finite check, so a
// report with odd or missing fields still gives a valid page (and never NaN in an SVG attribute).
#include "hone/optimize/report_html.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hone::optimize {
namespace {

using nlohmann::json;

std::string escape(const std::string& text) {
  static const char* const kEntities[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;"};
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto special = std::string_view("&<>\"'").find(c);
    special == std::string_view::npos ? out += c : out += kEntities[special];
  }
  return out;
}

std::string dump(const json& value, int indent = -1) {
  return value.dump(indent, ' ', false, json::error_handler_t::replace);
}

std::string as_text(const json& value) { return value.is_string() ? value.get<std::string>() : dump(value); }

// `object[key]`, or nullptr when `object` is not an object or the member is absent or null.
const json* member(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

const json& typed_member(const json& object, const char* key, bool array) {
  static const json kObject = json::object(), kArray = json::array();
  const json* value = member(object, key);
  if (value && (array ? value->is_array() : value->is_object())) return *value;
  return array ? kArray : kObject;
}
const json& object_member(const json& object, const char* key) { return typed_member(object, key, false); }
const json& array_member(const json& object, const char* key) { return typed_member(object, key, true); }

std::optional<double> number(const json& object, const char* key) {
  const json* value = member(object, key);
  if (!value || !value->is_number() || !std::isfinite(value->get<double>())) return std::nullopt;
  return value->get<double>();
}

std::string text(const json& object, const char* key) {
  const json* value = member(object, key);
  return value ? as_text(*value) : "";
}

// format(object[key]) when that is a finite number, else "".
template <class Format>
std::string if_number(const json& object, const char* key, Format format) {
  const auto value = number(object, key);
  return value ? std::string(format(*value)) : std::string();
}

std::string printf_text(const char* format, int decimals, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, decimals, value);
  return buffer;
}

// `significant` digits, but never an exponent: 91.66, 0.9166, 12345.
std::string format_number(double value, int significant) {
  if (value == 0) return "0";
  const int magnitude = static_cast<int>(std::floor(std::log10(std::fabs(value))));
  return printf_text("%.*f", std::clamp(significant - 1 - magnitude, 0, 6), value);
}

std::string format_trimmed(double value, int significant) {
  std::string out = format_number(value, significant);
  if (out.find('.') == std::string::npos) return out;
  while (out.back() == '0') out.pop_back();
  if (out.back() == '.') out.pop_back();
  return out;
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  int unit = 0;
  for (; std::fabs(bytes) >= 1000 && unit < 4; ++unit) bytes /= 1000;
  return (unit == 0 ? format_trimmed(bytes, 4) : format_number(bytes, 3)) + " " + units[unit];
}

std::string format_seconds(double seconds) {
  if (seconds < 60) return format_trimmed(seconds, 3) + " s";
  const long total = std::lround(seconds);
  if (total < 3600) return std::to_string(total / 60) + " min " + std::to_string(total % 60) + " s";
  return std::to_string(total / 3600) + " h " + std::to_string(total / 60 % 60) + " min";
}

std::string format_ms(double ms) { return format_number(ms, 3) + " ms"; }
std::string format_ratio(double ratio) { return format_number(ratio, 3) + "&times;"; }
std::string format_ratio_below(double ratio) { return "<br>" + format_ratio(ratio); }

// At most `limit` bytes, cut before a UTF-8 continuation byte, with an ellipsis when cut.
std::string shorten(const std::string& text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t end = limit;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end) + "\u2026";
}

struct Metric {
  std::string name = "score", split = "validation", unit;
  bool higher_is_better = true;
  double scale = 1;

  std::string value(double fraction) const {
    const std::string digits = format_number(fraction * scale, 4);
    return unit.empty() ? digits : unit == "%" ? digits + "%" : digits + " " + unit;
  }
  std::string drop(double points) const {
    const std::string digits = format_trimmed(points, 3);
    return digits + (unit == "%" ? (digits == "1" ? " point" : " points") : unit.empty() ? "" : " " + unit);
  }
  std::string title() const {
    return split + " " + name + " (" + (higher_is_better ? "higher" : "lower") + " is better)";
  }
};

struct Page {
  const json& report;
  const json& baseline;
  const json& candidates;
  const json& targets;
  Metric metric;
  std::vector<std::string> batches;  // latency_ms keys, the first target batch first
  const json* chosen = nullptr;      // an object, or nullptr
  std::string chosen_id;
  std::set<std::string> front;
};

// The baseline or one measured candidate, as the plots see it.
struct Entry {
  std::string id, label;
  const json* model;
  bool baseline, chosen, front;
};

std::vector<Entry> entries(const Page& page) {
  std::vector<Entry> out;
  if (!page.baseline.empty()) out.push_back({"baseline", "baseline", &page.baseline, true, false, false});
  for (const json& c : page.candidates) {
    const std::string id = text(c, "id"), status = text(c, "status");
    if (c.is_object() && (status.empty() || status == "measured"))
      out.push_back({id, text(c, "label"), &c, false, !id.empty() && id == page.chosen_id, page.front.count(id) > 0});
  }
  return out;
}

const json* find_candidate(const Page& page, const std::string& id) {
  for (const json& candidate : page.candidates)
    if (candidate.is_object() && text(candidate, "id") == id) return &candidate;
  return nullptr;
}

// One axis of a plot: data values to SVG coordinates, linear or log10.
struct Axis {
  double lo, hi, pixel_lo, pixel_hi;
  bool log;
  double at(double v) const {
    const double t = log ? std::log10(v / lo) / std::log10(hi / lo) : (v - lo) / (hi - lo);
    return pixel_lo + t * (pixel_hi - pixel_lo);
  }
};

// The domain of `values`, widened when flat and padded by 8% each side (in log10 for a log axis).
Axis make_axis(std::vector<double> values, double pixel_lo, double pixel_hi, bool log) {
  if (log) std::transform(values.begin(), values.end(), values.begin(), [](double v) { return std::log10(v); });
  double lo = *std::min_element(values.begin(), values.end()), hi = *std::max_element(values.begin(), values.end());
  const double flat = hi - lo < 1e-9 ? (log ? 0.15 : std::max(std::fabs(lo) * 0.02, 1e-3)) : 0;
  const double pad = (hi - lo + 2 * flat) * 0.08 + flat;
  lo -= pad, hi += pad;
  return log ? Axis{std::pow(10.0, lo), std::pow(10.0, hi), pixel_lo, pixel_hi, true}
             : Axis{lo, hi, pixel_lo, pixel_hi, false};
}

std::vector<double> linear_ticks(double lo, double hi) {
  const double raw = (hi - lo) / 6, base = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * base;
  for (double m : {5.0, 2.5, 2.0, 1.0})
    if (m * base >= raw) step = m * base;
  std::vector<double> ticks;  // by index, so that a step below the values' precision still ends
  const double first = std::ceil(lo / step);
  for (int i = 0; i < 12 && (first + i) * step <= hi + step * 1e-9; ++i)
    ticks.push_back(std::fabs(first + i) < 1e-9 ? 0 : (first + i) * step);
  return ticks;
}

std::vector<double> log_ticks(double lo, double hi) {
  for (const auto& mantissas : {std::vector<double>{1, 2, 5}, std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9}}) {
    std::vector<double> ticks;
    for (int k = static_cast<int>(std::floor(std::log10(lo))); k <= static_cast<int>(std::ceil(std::log10(hi))); ++k)
      for (double m : mantissas)
        if (const double v = m * std::pow(10.0, k); v >= lo && v <= hi) ticks.push_back(v);
    if (ticks.size() >= 4) return ticks;
  }
  return linear_ticks(lo, hi);  // a range narrower than a few steps of 1..9
}

std::string xy(double value) { return printf_text("%.*f", 1, value); }

std::string svg_line(double x1, double y1, double x2, double y2, const char* css) {
  return "<line class=\"" + std::string(css) + "\" x1=\"" + xy(x1) + "\" y1=\"" + xy(y1) + "\" x2=\"" + xy(x2) +
         "\" y2=\"" + xy(y2) + "\"/>";
}

std::string svg_text(double x, double y, const char* css, const std::string& content) {
  return "<text class=\"" + std::string(css) + "\" x=\"" + xy(x) + "\" y=\"" + xy(y) + "\">" + escape(content) +
         "</text>\n";
}

std::string svg_open(const char* id, int width, int height, std::size_t marks, const std::string& label) {
  return "<svg id=\"" + std::string(id) + "\" class=\"plot\" viewBox=\"0 0 " + std::to_string(width) + " " +
         std::to_string(height) + "\" role=\"img\" aria-label=\"" + escape(label) + "\" data-expected-marks=\"" +
         std::to_string(marks) + "\" xmlns=\"http://www.w3.org/2000/svg\">\n";
}

// The tooltip of one model: its label and every number the plots use.
std::string tooltip(const Page& page, const Entry& entry) {
  std::string tip = entry.baseline ? "baseline" : entry.id + " " + entry.label;
  tip += if_number(*entry.model, page.metric.split.c_str(), [&](double v) {
    return "\n" + page.metric.split + " " + page.metric.name + " " + page.metric.value(v);
  });
  for (const std::string& batch : page.batches) {
    tip += if_number(object_member(*entry.model, "latency_ms"), batch.c_str(),
                     [&](double ms) { return "\nbatch " + batch + ": " + format_ms(ms); });
    tip += if_number(object_member(*entry.model, "speedup"), batch.c_str(),
                     [](double x) { return " (" + format_number(x, 3) + "x faster)"; });
  }
  tip += if_number(*entry.model, "file_bytes", [](double b) { return "\nfile " + format_bytes(b); });
  tip += if_number(*entry.model, "size_ratio", [](double x) { return " (" + format_number(x, 3) + "x smaller)"; });
  return tip + (entry.chosen ? "\nthe chosen plan" : "");
}

std::string mark_attributes(const char* kind, const Entry& entry) {
  return std::string(" class=\"mark ") + kind + (entry.baseline ? " baseline" : "") + (entry.front ? " front" : "") +
         (entry.chosen ? " chosen" : "") + "\" data-name=\"" + escape(entry.id) + "\"";
}

void write_pareto_plot(const Page& page, std::string& out) {
  const std::string batch = page.batches.empty() ? "" : page.batches.front();
  struct Point {
    Entry entry;
    double latency, score;
  };
  std::vector<Point> points;
  for (const Entry& entry : entries(page)) {
    const auto latency = number(object_member(*entry.model, "latency_ms"), batch.c_str());
    const auto score = number(*entry.model, page.metric.split.c_str());
    if (latency && score && *latency > 0) points.push_back({entry, *latency, *score * page.metric.scale});
  }
  out += "<h2>Pareto plot: " + escape(page.metric.name) + " against latency</h2>\n";
  if (points.empty()) {
    out += "<p class=\"empty\">No model has both a latency and a " + escape(page.metric.split) + " score.</p>\n";
    return;
  }
  // The targets as dashed lines: the score floor (or ceiling) and the latency the speed-up asks for.
  std::optional<double> score_limit, latency_limit;
  if (const Point* base = points.front().entry.baseline ? &points.front() : nullptr) {
    if (const auto drop = number(page.targets, "max_accuracy_drop"))
      score_limit = page.metric.higher_is_better ? base->score - *drop : base->score + *drop;
    if (const auto speedup = number(page.targets, "speedup"); speedup && *speedup > 0)
      latency_limit = base->latency / *speedup;
  }
  if (const auto ms = number(page.targets, "latency_ms"); ms && *ms > 0)
    latency_limit = std::min(latency_limit.value_or(*ms), *ms);

  const int width = 760, height = 440, left = 72, right = 24, top = 20, bottom = 56;
  std::vector<double> xs, ys;
  for (const Point& p : points) xs.push_back(p.latency), ys.push_back(p.score);
  if (latency_limit) xs.push_back(*latency_limit);
  if (score_limit) ys.push_back(*score_limit);
  const Axis x = make_axis(xs, left, width - right, true), y = make_axis(ys, height - bottom, top, false);

  out += svg_open("pareto", width, height, points.size(), page.metric.name + " against latency");
  out += "<rect class=\"frame\" x=\"" + xy(left) + "\" y=\"" + xy(top) + "\" width=\"" + xy(width - left - right) +
         "\" height=\"" + xy(height - top - bottom) + "\"/>\n";
  for (double v : log_ticks(x.lo, x.hi))
    out += svg_line(x.at(v), top, x.at(v), height - bottom, "grid") +
           svg_text(x.at(v), height - bottom + 18, "tick middle", format_trimmed(v, 3));
  for (double v : linear_ticks(y.lo, y.hi))
    out += svg_line(left, y.at(v), width - right, y.at(v), "grid") +
           svg_text(left - 6, y.at(v) + 4, "tick end", format_trimmed(v, 4));
  out += svg_text((left + width - right) / 2.0, height - 12, "axis middle",
                  "latency at batch " + batch + " (ms, log scale; left is faster)");
  out += "<text class=\"axis middle\" transform=\"translate(18 " + xy((top + height - bottom) / 2.0) +
         ") rotate(-90)\">" + escape(page.metric.title() + (page.metric.unit.empty() ? "" : ", " + page.metric.unit)) +
         "</text>\n";
  if (score_limit)
    out += svg_line(left, y.at(*score_limit), width - right, y.at(*score_limit), "target") +
           svg_text(width - right - 4, y.at(*score_limit) - 4, "target-label end", page.metric.name + " target");
  if (latency_limit)
    out += svg_line(x.at(*latency_limit), top, x.at(*latency_limit), height - bottom, "target") +
           svg_text(x.at(*latency_limit) + 4, top + 14, "target-label", "latency target");
  std::vector<const Point*> front;
  for (const Point& p : points)
    if (p.entry.front) front.push_back(&p);
  std::sort(front.begin(), front.end(), [](const Point* a, const Point* b) { return a->latency < b->latency; });
  if (front.size() > 1) {
    out += "<polyline class=\"front-line\" points=\"";
    for (const Point* p : front) out += xy(x.at(p->latency)) + "," + xy(y.at(p->score)) + " ";
    out += "\"/>\n";
  }
  for (const Point& p : points) {
    const double cx = x.at(p.latency), cy = y.at(p.score);
    const bool big = p.entry.chosen || p.entry.baseline;
    out += "<circle" + mark_attributes("point", p.entry) + " cx=\"" + xy(cx) + "\" cy=\"" + xy(cy) + "\" r=\"" +
           (big ? "7" : "5") + "\"><title>" + escape(tooltip(page, p.entry)) + "</title></circle>";
    if (p.entry.baseline)  // below its point: candidates cluster beside it
      out += svg_text(cx, cy + 21, "point-label strong-baseline middle", "baseline");
    else
      out += svg_text(cx + 9, cy - 6, p.entry.chosen ? "point-label strong" : "point-label",
                      p.entry.chosen ? p.entry.id + " (chosen)" : p.entry.id);
  }
  out +=
      "</svg>\n<p class=\"legend\"><span class=\"key baseline\"></span>baseline <span class=\"key point\"></span>"
      "candidate <span class=\"key front\"></span>Pareto front <span class=\"key chosen\"></span>chosen "
      "<span class=\"key target\"></span>target. Hover a point for its numbers.</p>\n";
}

// Horizontal bars on one scale: a heading row has no bar; `limit` draws a dashed target line.
struct Bar {
  std::string name, label, value_text, tip, css;
  double value = 0;
  bool heading = false;
};

void write_bars(const char* id, const std::string& aria, const std::vector<Bar>& rows, std::optional<double> limit,
                const std::string& limit_label, std::string& out) {
  const int width = 760, label_width = 270, bar_width = 340, row = 24, top = 8;
  double most = limit.value_or(0);
  std::size_t marks = 0;
  for (const Bar& bar : rows)
    if (!bar.heading) most = std::max(most, bar.value), ++marks;
  if (most <= 0) most = 1;
  const int height = top + static_cast<int>(rows.size()) * row + (limit ? 22 : 8);
  out += svg_open(id, width, height, marks, aria);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Bar& bar = rows[i];
    const double y = top + static_cast<double>(i) * row, length = std::max(1.0, bar.value / most * bar_width);
    if (bar.heading) {
      out += svg_text(4, y + 16, "heading", bar.label);
      continue;
    }
    out += svg_text(label_width - 8, y + 15, "tick end", shorten(bar.label, 40));
    out += "<rect class=\"mark bar " + bar.css + "\" data-name=\"" + escape(bar.name) + "\" x=\"" + xy(label_width) +
           "\" y=\"" + xy(y + 3) + "\" width=\"" + xy(length) + "\" height=\"17\"><title>" + escape(bar.tip) +
           "</title></rect>";
    out += svg_text(label_width + length + 6, y + 16, "value", bar.value_text);
  }
  if (limit) {
    const double lx = label_width + *limit / most * bar_width;
    out += svg_line(lx, top, lx, height - 16, "target") + svg_text(lx, height - 4, "target-label middle", limit_label);
  }
  out += "</svg>\n";
}

void write_size_plot(const Page& page, std::string& out) {
  std::vector<Bar> rows;
  const auto base = number(page.baseline, "file_bytes");
  for (const Entry& entry : entries(page)) {
    const auto bytes = number(*entry.model, "file_bytes");
    if (!bytes || *bytes < 0) continue;
    std::string value = format_bytes(*bytes);
    if (base && *bytes > 0 && !entry.baseline) value += " (" + format_number(*base / *bytes, 3) + "\u00d7 smaller)";
    const char* css = entry.baseline ? "baseline" : entry.chosen ? "chosen" : "";
    rows.push_back({entry.id, entry.baseline ? "baseline" : entry.id + " " + entry.label, value, tooltip(page, entry),
                    css, *bytes});
  }
  out += "<h2>File size</h2>\n";
  if (rows.empty()) {
    out += "<p class=\"empty\">No file sizes in the report.</p>\n";
    return;
  }
  const auto size = number(page.targets, "size");
  const std::optional<double> limit = size && *size > 0 && base ? std::optional<double>(*base / *size) : std::nullopt;
  write_bars("sizes", "file size of each model", rows, limit,
             "size target (" + format_trimmed(size.value_or(0), 3) + "\u00d7 smaller)", out);
}

void add_op_rows(const json& ops, const std::string& heading, const std::string& css, std::vector<Bar>& rows) {
  if (ops.empty()) return;
  rows.push_back({"", heading, "", "", "", 0, true});
  for (const json& op : ops) {
    const auto ms = number(op, "ms");
    if (!ms || *ms < 0) continue;
    const std::string value = format_ms(*ms) + if_number(op, "percent", [](double percent) {
                                return " (" + format_trimmed(percent, 3) + "%)";
                              });
    rows.push_back({css + ":" + text(op, "op"), text(op, "op"), value, text(op, "op") + ": " + value, css, *ms});
  }
}

void write_op_time_plot(const Page& page, std::string& out) {
  std::vector<Bar> rows;
  add_op_rows(array_member(page.baseline, "hot_spots"), "before: the baseline", "before", rows);
  if (page.chosen)
    add_op_rows(array_member(*page.chosen, "op_time_after"), "after: the chosen plan " + page.chosen_id, "after", rows);
  out += "<h2>Time per operator</h2>\n";
  if (rows.empty()) {
    out += "<p class=\"empty\">No per-operator times in the report.</p>\n";
    return;
  }
  write_bars("optime", "time per operator before and after", rows, std::nullopt, "", out);
}

std::string td(const std::string& html, bool numeric = false) {
  return (numeric ? "<td class=\"num\">" : "<td>") + html + "</td>";
}

std::string meets_text(const json& candidate) {
  std::string out;
  const json& meets = object_member(candidate, "meets");
  for (auto it = meets.begin(); it != meets.end(); ++it)
    if (it->is_boolean())
      out += std::string(it->get<bool>() ? "<span class=\"yes\">&#10003; " : "<span class=\"no\">&#10007; ") +
             escape(it.key()) + "</span> ";
  return out;
}

// One row of the candidate table; the baseline's leaves the candidate-only cells empty.
std::string model_row(const Page& page, const json& model) {
  const bool baseline = &model == &page.baseline;
  const std::string id = baseline ? "baseline" : text(model, "id"), status = text(model, "status");
  const bool front = page.front.count(id) > 0, chosen = !page.chosen_id.empty() && id == page.chosen_id;
  const std::string css =
      baseline ? "baseline" : "status-" + status + (front ? " front" : "") + (chosen ? " chosen" : "");
  std::string row = "<tr id=\"candidate-" + escape(id) + "\" class=\"" + escape(css) + "\">" + td(escape(id)) +
                    td(escape(text(model, "label"))) + td(escape(text(model, "stage"))) +
                    td(escape(status) + (front ? " <span class=\"tag\">Pareto</span>" : "") +
                       (chosen ? " <span class=\"tag\">chosen</span>" : ""));
  row += td(if_number(model, page.metric.split.c_str(), [&](double v) { return page.metric.value(v); }), true);
  row += td(escape(if_number(model, "accuracy_drop", [&](double v) { return page.metric.drop(v); })), true);
  for (const std::string& batch : page.batches)
    row += td(if_number(object_member(model, "latency_ms"), batch.c_str(), format_ms) +
                  if_number(object_member(model, "speedup"), batch.c_str(), format_ratio_below),
              true);
  row += td(if_number(model, "file_bytes", format_bytes) + if_number(model, "size_ratio", format_ratio_below), true) +
         td(if_number(model, "memory_bytes", format_bytes), true) + td(meets_text(model)) +
         td(if_number(model, "seconds", format_seconds), true) + "<td>";
  for (const json& missed : array_member(model, "missed"))
    row += "<div class=\"missed\">" + escape(as_text(missed)) + "</div>";
  if (member(model, "error")) row += "<div class=\"error\">" + escape(text(model, "error")) + "</div>";
  if (member(model, "reason")) row += "<div class=\"reason\">" + escape(text(model, "reason")) + "</div>";
  if (const json* recipe = member(model, "recipe"))
    row += "<details><summary>recipe</summary><pre>" + escape(dump(*recipe, 2)) + "</pre></details>";
  return row + "</td></tr>\n";
}

void write_candidate_table(const Page& page, std::string& out) {
  out += "<h2>Every candidate</h2>\n";
  if (page.candidates.empty()) out += "<p class=\"empty\">No candidates were tried.</p>\n";
  out += "<table class=\"candidates\"><thead><tr><th>id</th><th>plan</th><th>stage</th><th>status</th><th>" +
         escape(page.metric.split) + "</th><th>drop</th>";
  for (const std::string& batch : page.batches) out += "<th>batch " + escape(batch) + "</th>";
  out += "<th>file</th><th>memory</th><th>meets</th><th>time</th><th>details</th></tr></thead><tbody>\n";
  if (!page.baseline.empty()) out += model_row(page, page.baseline);
  for (const json& candidate : page.candidates)
    if (candidate.is_object()) out += model_row(page, candidate);
  out += "</tbody></table>\n";
}

// A verdict row from a [before, after] pair; nothing when the pair is not two finite numbers.
std::string change_row(const std::string& name, const json& pair, std::string (*show)(double), const char* better,
                       const char* worse) {
  if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number() || !pair[1].is_number()) return "";
  const double before = pair[0].get<double>(), after = pair[1].get<double>();
  if (!std::isfinite(before) || !std::isfinite(after)) return "";
  std::string change;
  if (before > 0 && after > 0)
    change = before >= after ? format_ratio(before / after) + " " + better : format_ratio(after / before) + " " + worse;
  return "<tr><th>" + escape(name) + "</th>" + td(show(before), true) + td(show(after), true) + td(change) + "</tr>\n";
}

void write_verdict(const Page& page, std::string& out) {
  if (!page.chosen) {
    out += "<section class=\"verdict none\"><h2>No plan chosen</h2>\n<p>" +
           escape(member(page.report, "reason") ? text(page.report, "reason") : "The report gives no reason.") +
           "</p>\n<p>Pareto front (the best trade-offs measured):" + (page.front.empty() ? " none." : "");
    for (const std::string& id : page.front) {
      const json* candidate = find_candidate(page, id);
      out += " <a href=\"#candidate-" + escape(id) + "\">" + escape(id) + "</a>" +
             (candidate ? " (" + escape(text(*candidate, "label")) + ")" : "");
    }
    out += "</p></section>\n";
    return;
  }
  const json& chosen = *page.chosen;
  const json* candidate = find_candidate(page, page.chosen_id);
  out += "<section class=\"verdict ok\"><h2>Chosen plan: " + escape(page.chosen_id) +
         (candidate ? " &mdash; " + escape(text(*candidate, "label")) : "") + "</h2>\n";
  if (candidate && member(*candidate, "meets")) out += "<p>Targets: " + meets_text(*candidate) + "</p>\n";
  for (const json& missed : candidate ? array_member(*candidate, "missed") : json::array())
    out += "<p class=\"missed\">Missed: " + escape(as_text(missed)) + "</p>\n";
  out += "<table class=\"compact\"><tr><th></th><th>before</th><th>after</th><th>change</th></tr>\n";
  const auto test = number(chosen, "test");
  const auto before = number(chosen, "test_baseline") ? number(chosen, "test_baseline") : number(page.baseline, "test");
  if (test) {
    const double drop = before ? (page.metric.higher_is_better ? *before - *test : *test - *before) : 0;
    out += "<tr><th>test " + escape(page.metric.name) + "</th>" + td(before ? page.metric.value(*before) : "", true) +
           td(page.metric.value(*test), true) +
           td(before ? "drop of " + escape(page.metric.drop(drop * page.metric.scale)) : "") + "</tr>\n";
  }
  const json& verdict = object_member(chosen, "verdict");
  if (const json* bytes = member(verdict, "file_bytes"))
    out += change_row("file size", *bytes, format_bytes, "smaller", "larger");
  const json& latency = object_member(verdict, "latency_ms");
  for (auto it = latency.begin(); it != latency.end(); ++it)
    out += change_row("latency, batch " + it.key(), *it, format_ms, "faster", "slower");
  out += "</table>\n";
  if (const json& exported = object_member(chosen, "export"); !exported.empty()) {
    out += "<p>Export: <code>" + escape(text(exported, "path")) + "</code>";
    if (const json* verified = member(exported, "verified"); verified && verified->is_boolean())
      out +=
          verified->get<bool>() ? ", <span class=\"yes\">verified</span>" : ", <span class=\"no\">not verified</span>";
    out += if_number(exported, "max_relative_error",
                     [](double e) { return " (max relative error " + printf_text("%.*g", 2, e) + ")"; });
    out += (member(exported, "note") ? ". " + escape(text(exported, "note")) : "") + "</p>\n";
  }
  out += "</section>\n";
}

void write_targets(const Page& page, std::string& out) {
  std::string batches;
  for (const std::string& batch : page.batches) batches += (batches.empty() ? "" : ", ") + escape(batch);
  out += "<h2>Targets</h2>\n<ul class=\"targets\">";
  for (auto it = page.targets.begin(); it != page.targets.end(); ++it) {
    const std::string& key = it.key();
    const double value = it->is_number() ? it->get<double>() : 0;
    const std::string ratio = format_trimmed(value, 3) + "&times;";
    if (it->is_null() || key == "batches") continue;
    if (key == "speedup" && it->is_number())
      out += "<li>at least " + ratio + " faster at batch " + batches + "</li>";
    else if (key == "size" && it->is_number())
      out += "<li>a file at least " + ratio + " smaller</li>";
    else if (key == "max_accuracy_drop" && it->is_number())
      out += "<li>" + escape(page.metric.split + " " + page.metric.name + " at most " + page.metric.drop(value)) +
             " worse than the baseline</li>";
    else if (key == "latency_ms" && it->is_number())
      out += "<li>latency at most " + format_ms(value) + " at batch " + batches + "</li>";
    else
      out += "<li>" + escape(key) + ": " + escape(as_text(*it)) + "</li>";
  }
  if (!batches.empty()) out += "<li>latency measured at batch " + batches + "</li>";
  out += "</ul>\n";
}

void write_sensitivity(const Page& page, std::string& out) {
  const json& layers = array_member(page.report, "layer_sensitivity");
  if (layers.empty()) return;
  double most = 0;
  for (const json& layer : layers) most = std::max(most, std::fabs(number(layer, "drop").value_or(0)));
  out +=
      "<h2>Layer sensitivity</h2>\n<p>The drop when one layer alone gets the pass.</p>\n"
      "<table class=\"compact\"><tr><th>layer</th><th>pass</th><th>drop</th><th></th></tr>\n";
  for (const json& layer : layers) {
    const auto drop = number(layer, "drop");
    const double width = drop && most > 0 ? std::fabs(*drop) / most * 160 : 0;
    out += "<tr>" + td("<code>" + escape(text(layer, "layer")) + "</code>") + td(escape(text(layer, "pass"))) +
           td(drop ? escape(page.metric.drop(*drop)) : "", true) +
           td("<span class=\"spark\" style=\"width:" + xy(width) + "px\"></span>") + "</tr>\n";
  }
  out += "</table>\n";
}

constexpr const char* kStyle = R"css(
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#fff;margin:0}
main{max-width:1120px;margin:0 auto;padding:24px}h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
.meta{color:#556;margin:0 0 16px}.meta span{margin-right:14px;white-space:nowrap}
.verdict{border-radius:8px;padding:4px 18px 12px;margin:16px 0;border:2px solid}.verdict h2{border:0;margin-top:12px}
.verdict.ok{border-color:#2e8b57;background:#f0faf3}.verdict.none{border-color:#c98a00;background:#fff8e6}
table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid #dde2ea;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f4f6f9}td.num{text-align:right;white-space:nowrap}.compact th,.compact td{padding:3px 10px}
table.candidates{font-size:13px;width:100%}.candidates td:last-child{min-width:20em}
.candidates .yes,.candidates .no{white-space:nowrap}tr.baseline{background:#f4f6f9}tr.chosen{background:#e3f4e8}
tr.status-failed{background:#fdecec}tr.status-dropped{color:#777}
.tag{font-size:11px;background:#ffe3c2;border-radius:3px;padding:0 4px}
.yes{color:#1e7b45}.no,.error{color:#b3261e}.missed,.reason{color:#6a5d00}.empty{color:#777;font-style:italic}
pre{background:#f6f8fa;border:1px solid #dde2ea;border-radius:6px;padding:10px;overflow:auto;font-size:13px}
details pre{margin:4px 0;font-size:12px}svg.plot{display:block;width:100%;max-width:760px;height:auto;font-size:12px}
.frame{fill:#fbfcfe;stroke:#b8c0cc}.grid{stroke:#e6e9ef}.tick{fill:#556}.axis{fill:#1d2330;font-size:13px}
.middle{text-anchor:middle}.end{text-anchor:end}.heading{font-weight:600;fill:#1d2330}.value{fill:#334}
.target{stroke:#c0392b;stroke-dasharray:5 4;stroke-width:1.2}.target-label{fill:#c0392b;font-size:11px}
.front-line{fill:none;stroke:#e67e22;stroke-width:2}circle.point{fill:#4a78b5;stroke:#fff}circle.front{fill:#e67e22}
circle.baseline{fill:#fff;stroke:#1d2330;stroke-width:2.5}circle.chosen{fill:#2e8b57;stroke:#0b3d20;stroke-width:2.5}
.point-label{fill:#445;font-size:11px}.strong{font-weight:700;fill:#0b3d20}.strong-baseline{font-weight:700}
rect.bar{fill:#4a78b5}rect.baseline{fill:#6b7280}rect.chosen,rect.after{fill:#2e8b57}rect.before{fill:#8a94a6}
.legend{color:#556;font-size:13px}
.key{display:inline-block;width:11px;height:11px;border-radius:50%;margin:0 4px 0 10px;vertical-align:-1px}
.key.baseline{border:2px solid #1d2330;width:8px;height:8px}.key.point{background:#4a78b5}.key.front{background:#e67e22}
.key.chosen{background:#2e8b57}.key.target{border-radius:0;height:0;border-top:2px dashed #c0392b}
.spark{display:inline-block;height:10px;background:#c98a00;border-radius:2px}
)css";

// Runs in the browser after layout: every plot mark must have a non-empty box inside its plot, and
// each plot as many marks as the renderer drew. The result goes onto <body> for headless checks.
constexpr const char* kCheckScript = R"js(
(function () {
  var failures = [], body = document.body, plots = document.querySelectorAll('svg.plot');
  for (var i = 0; i < plots.length; i++) {
    var svg = plots[i], marks = svg.querySelectorAll('.mark'), view = svg.viewBox.baseVal;
    var expected = Number(svg.getAttribute('data-expected-marks')), outer = svg.getBoundingClientRect();
    if (marks.length !== expected) failures.push(svg.id + ': ' + marks.length + ' marks, expected ' + expected);
    if (!(outer.width > 0 && outer.height > 0)) failures.push(svg.id + ': not laid out');
    for (var j = 0; j < marks.length; j++) {
      var box = marks[j].getBBox(), name = svg.id + '/' + (marks[j].getAttribute('data-name') || j);
      if (!(box.width > 0 && box.height > 0)) failures.push(name + ': empty box');
      else if (box.x < view.x || box.y < view.y || box.x + box.width > view.x + view.width + 0.5 ||
               box.y + box.height > view.y + view.height + 0.5) failures.push(name + ': outside its plot');
    }
  }
  function count(selector) { return String(document.querySelectorAll(selector).length); }
  body.setAttribute('data-plots', String(plots.length));
  body.setAttribute('data-circles', count('#pareto circle.mark'));
  body.setAttribute('data-size-bars', count('#sizes rect.mark'));
  body.setAttribute('data-optime-bars', count('#optime rect.mark'));
  body.setAttribute('data-failures', failures.join('; '));
  body.setAttribute('data-render-check', failures.length ? 'failed' : 'ok');
})();
)js";

Metric read_metric(const json& metric) {
  Metric out;
  if (member(metric, "name")) out.name = text(metric, "name");
  if (member(metric, "split")) out.split = text(metric, "split");
  if (const json* higher = member(metric, "higher_is_better"); higher && higher->is_boolean())
    out.higher_is_better = higher->get<bool>();
  if (const auto scale = number(metric, "scale"); scale && *scale > 0) out.scale = *scale;
  out.unit = text(metric, "unit");
  return out;
}

}  // namespace

std::string render_report_html(const json& report) {
  if (!report.is_object())
    throw std::invalid_argument("optimize report: expected a JSON object, got " + std::string(report.type_name()));
  if (text(report, "format") != "hone-optimize/1")
    throw std::invalid_argument("optimize report: \"format\" is '" + text(report, "format") +
                                "', expected 'hone-optimize/1'");
  Page page{report,
            object_member(report, "baseline"),
            array_member(report, "candidates"),
            object_member(report, "targets"),
            read_metric(object_member(report, "metric")),
            {},
            nullptr,
            "",
            {}};
  for (const json& batch : array_member(page.targets, "batches"))
    if (batch.is_number_integer()) page.batches.push_back(std::to_string(batch.get<long long>()));
  if (page.batches.empty()) {  // no target batches: the baseline's, smallest first
    const json& latency = object_member(page.baseline, "latency_ms");
    for (auto it = latency.begin(); it != latency.end(); ++it) page.batches.push_back(it.key());
    std::sort(page.batches.begin(), page.batches.end(), [](const std::string& a, const std::string& b) {
      return std::strtod(a.c_str(), nullptr) < std::strtod(b.c_str(), nullptr);
    });
  }
  if (const json* chosen = member(report, "chosen"); chosen && chosen->is_object())
    page.chosen = chosen, page.chosen_id = text(*chosen, "id");
  if (const json* front = member(report, "pareto_front"); front && front->is_array()) {
    for (const json& id : *front)
      if (id.is_string()) page.front.insert(id.get<std::string>());
  } else {  // no front listed: the candidates that say they are on it
    for (const json& candidate : page.candidates)
      if (const json* on = member(candidate, "pareto"); on && on->is_boolean() && on->get<bool>())
        page.front.insert(text(candidate, "id"));
  }

  const std::string subject =
      text(report, "architecture") + " on " + text(report, "dataset") + " (" + text(report, "device") + ")";
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>hone optimize: " +
      escape(subject) + "</title>\n<style>" + kStyle +
      "</style></head>\n<body><main>\n<h1>hone optimize: " + escape(subject) + "</h1>\n<p class=\"meta\">";
  for (const char* key : {"source", "output", "machine", "date"})
    if (member(report, key)) out += "<span>" + std::string(key) + ": <b>" + escape(text(report, key)) + "</b></span> ";
  out += if_number(report, "seconds", [](double s) { return "<span>took <b>" + format_seconds(s) + "</b></span> "; });
  out += "<span>metric: <b>" + escape(page.metric.title()) + "</b></span></p>\n";

  write_verdict(page, out);
  write_targets(page, out);
  write_pareto_plot(page, out);
  write_size_plot(page, out);
  write_op_time_plot(page, out);
  write_sensitivity(page, out);
  if (page.chosen)
    out += "<h2>The chosen recipe</h2>\n<pre id=\"recipe\">" +
           (member(*page.chosen, "recipe") ? escape(dump(*member(*page.chosen, "recipe"), 2)) : "") + "</pre>\n";
  write_candidate_table(page, out);
  if (const json& notes = array_member(report, "notes"); !notes.empty()) {
    out += "<h2>Notes</h2>\n<ul class=\"notes\">";
    for (const json& note : notes) out += "<li>" + escape(as_text(note)) + "</li>";
    out += "</ul>\n";
  }
  return out + "</main>\n<script>" + kCheckScript + "</script>\n</body></html>\n";
}

}  // namespace hone::optimize
