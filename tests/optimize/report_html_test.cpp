// The optimize report's HTML page: escaping, one plot mark per measured model, the chosen plan
// marked, and reports with no candidates, no chosen plan, missing or odd fields. What a browser
// makes of the page is tests/optimize/report_page_test.py's job.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "hone/optimize/report_html.h"

namespace {

using hone::optimize::render_report_html;
using nlohmann::json;

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

// The <svg id="ID">...</svg> element of `page`, or "" when there is none.
std::string plot(const std::string& page, const std::string& id) {
  const auto begin = page.find("<svg id=\"" + id + "\"");
  if (begin == std::string::npos) return "";
  return page.substr(begin, page.find("</svg>", begin) + 6 - begin);
}

// The start tag of the element whose data-name is `name` in `svg`, or "".
std::string mark_tag(const std::string& svg, const std::string& name) {
  const auto at = svg.find("data-name=\"" + name + "\"");
  if (at == std::string::npos) return "";
  const auto begin = svg.rfind('<', at);
  return svg.substr(begin, svg.find('>', at) + 1 - begin);
}

json measured(const std::string& id, double latency_ms, double validation, double file_bytes) {
  return {{"id", id},
          {"label", "plan " + id},
          {"stage", "post-training"},
          {"status", "measured"},
          {"recipe", {{"passes", json::array({{{"pass", "quant_float"}, {"dtype", "bf16"}}})}}},
          {"file_bytes", file_bytes},
          {"latency_ms", {{"1", latency_ms}, {"64", latency_ms * 30}}},
          {"validation", validation},
          {"speedup", {{"1", 1.7 / latency_ms}, {"64", 1.7 / latency_ms}}},
          {"size_ratio", 1242856 / file_bytes},
          {"accuracy_drop", (0.9166 - validation) * 100},
          {"meets", {{"speedup", 1.7 / latency_ms >= 3}, {"size", 1242856 / file_bytes >= 5}, {"accuracy", true}}},
          {"missed", json::array()},
          {"seconds", 10.5}};
}

// Baseline, four measured candidates (c01, c02, c04, c05), one failed (c03) and one dropped (c06);
// c02 is chosen; the front is c01, c02. The dropped one has numbers from its short budget.
json sample_report() {
  json report = {
      {"format", "hone-optimize/1"},
      {"architecture", "cnn"},
      {"dataset", "fashion-mnist"},
      {"device", "cpu"},
      {"metric",
       {{"name", "accuracy"}, {"split", "validation"}, {"higher_is_better", true}, {"scale", 100}, {"unit", "%"}}},
      {"targets",
       {{"speedup", 3.0}, {"size", 5.0}, {"max_accuracy_drop", 1.0}, {"latency_ms", nullptr}, {"batches", {1, 64}}}},
      {"baseline",
       {{"file_bytes", 1242856},
        {"memory_bytes", 1240000},
        {"latency_ms", {{"1", 1.7}, {"64", 59.9}}},
        {"validation", 0.9166},
        {"test", 0.9165},
        {"hot_spots",
         {{{"op", "aten::mkldnn_convolution"}, {"ms", 1.1}, {"percent", 64.0}},
          {{"op", "aten::addmm"}, {"ms", 0.2}, {"percent", 12.0}}}}}},
      {"pareto_front", {"c01", "c02"}},
      {"chosen",
       {{"id", "c02"},
        {"test", 0.9091},
        {"test_baseline", 0.9165},
        {"recipe", {{"passes", json::array({{{"pass", "quant_int8_static"}}})}}},
        {"verdict", {{"file_bytes", {1242856, 93168}}, {"latency_ms", {{"1", {1.705, 0.328}}, {"64", {59.9, 4.29}}}}}},
        {"export", {{"path", "model.onnx"}, {"verified", true}, {"max_relative_error", 1e-3}}},
        {"op_time_after", {{{"op", "quantized::conv2d"}, {"ms", 0.2}, {"percent", 60.0}}}}}},
      {"layer_sensitivity", {{{"layer", "features.0.conv"}, {"drop", 0.4}, {"pass", "quant_int8_static"}}}},
      {"notes", {"latency: median of 30 runs"}}};
  json candidates = json::array({measured("c01", 1.2, 0.9160, 621000), measured("c02", 0.328, 0.9102, 93168)});
  candidates.push_back({{"id", "c03"},
                        {"label", "distill"},
                        {"stage", "training"},
                        {"status", "failed"},
                        {"error", "distill: the loss became NaN"},
                        {"seconds", 3.0}});
  candidates.push_back(measured("c04", 1.5, 0.9000, 510000));
  candidates.push_back(measured("c05", 1.9, 0.9150, 700000));
  candidates.push_back({{"id", "c06"},
                        {"label", "gradual prune"},
                        {"stage", "training"},
                        {"status", "dropped"},
                        {"reason", "successive halving: not promising after the short budget"},
                        {"latency_ms", {{"1", 0.9}}},
                        {"validation", 0.871},
                        {"file_bytes", 400000}});
  report["candidates"] = candidates;
  return report;
}

TEST(ReportHtml, EscapesEveryStringFromTheReport) {
  json report = sample_report();
  report["candidates"][0]["label"] = "<script>alert(1)</script>";
  report["candidates"][1]["id"] = "c\" onmouseover=\"alert(2)";
  report["chosen"]["id"] = "c\" onmouseover=\"alert(2)";
  report["notes"] = {"a & b 'quoted'"};
  const std::string page = render_report_html(report);
  EXPECT_EQ(page.find("<script>alert(1)"), std::string::npos);
  EXPECT_NE(page.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(page.find("\" onmouseover=\""), std::string::npos);
  EXPECT_NE(page.find("c&quot; onmouseover=&quot;alert(2)"), std::string::npos);
  EXPECT_NE(page.find("a &amp; b &#39;quoted&#39;"), std::string::npos);
  EXPECT_EQ(count(page, "<script"), 1u) << "only the page's own check script";
}

TEST(ReportHtml, ParetoPlotHasOneCirclePerMeasuredCandidateAndTheBaseline) {
  const std::string page = render_report_html(sample_report());
  const std::string pareto = plot(page, "pareto");
  ASSERT_FALSE(pareto.empty());
  EXPECT_EQ(count(pareto, "<circle"), 5u);  // baseline + c01, c02, c04, c05; not failed c03 or dropped c06
  EXPECT_NE(pareto.find("data-expected-marks=\"5\""), std::string::npos);
  EXPECT_NE(mark_tag(pareto, "baseline").find("baseline"), std::string::npos);
  EXPECT_EQ(mark_tag(pareto, "c03"), "");
  EXPECT_EQ(count(pareto, "<title>"), 5u) << "each point has a tooltip";
  EXPECT_NE(pareto.find("<title>c01 plan c01\nvalidation accuracy 91.60%"), std::string::npos);
  EXPECT_EQ(count(pareto, "<polyline class=\"front-line\""), 1u);
  EXPECT_NE(pareto.find("latency at batch 1 (ms, log scale"), std::string::npos);
  EXPECT_EQ(page.find("nan"), std::string::npos);
}

TEST(ReportHtml, SizeAndOperatorBarsCountTheirModels) {
  const std::string page = render_report_html(sample_report());
  EXPECT_EQ(count(plot(page, "sizes"), "<rect class=\"mark"), 5u);
  EXPECT_EQ(count(plot(page, "optime"), "<rect class=\"mark"), 3u);  // 2 hot spots before, 1 op after
  EXPECT_NE(page.find("93.2 kB (13.3\u00d7 smaller)"), std::string::npos);
}

TEST(ReportHtml, MarksTheChosenCandidate) {
  const std::string page = render_report_html(sample_report());
  const std::string pareto = plot(page, "pareto");
  EXPECT_NE(mark_tag(pareto, "c02").find(" chosen\""), std::string::npos) << mark_tag(pareto, "c02");
  EXPECT_EQ(mark_tag(pareto, "c01").find("chosen"), std::string::npos);
  EXPECT_EQ(count(pareto, " chosen\""), 1u);
  EXPECT_NE(page.find("<section class=\"verdict ok\"><h2>Chosen plan: c02"), std::string::npos);
  EXPECT_NE(page.find("<tr id=\"candidate-c02\" class=\"status-measured front chosen\">"), std::string::npos);
  EXPECT_NE(page.find("91.65%"), std::string::npos) << "test score before";
  EXPECT_NE(page.find("90.91%"), std::string::npos) << "test score after";
  EXPECT_NE(page.find("13.3&times; smaller"), std::string::npos);
  EXPECT_NE(page.find("5.20&times; faster"), std::string::npos);
  EXPECT_NE(page.find("<pre id=\"recipe\">"), std::string::npos);
}

TEST(ReportHtml, EmptyCandidateListRenders) {
  json report = sample_report();
  report["candidates"] = json::array();
  report["pareto_front"] = json::array();
  report["chosen"] = nullptr;
  report["reason"] = "no candidate was tried";
  const std::string page = render_report_html(report);
  EXPECT_EQ(count(plot(page, "pareto"), "<circle"), 1u) << "the baseline alone";
  EXPECT_NE(page.find("No candidates were tried."), std::string::npos);
  EXPECT_NE(page.find("no candidate was tried"), std::string::npos);
}

TEST(ReportHtml, NoChosenPlanShowsTheReasonAndTheParetoFront) {
  json report = sample_report();
  report["chosen"] = nullptr;
  report["reason"] = "no plan meets every target: speed-up at batch 1: 2.1x < 3x";
  const std::string page = render_report_html(report);
  EXPECT_NE(page.find("<section class=\"verdict none\"><h2>No plan chosen</h2>"), std::string::npos);
  EXPECT_NE(page.find("no plan meets every target: speed-up at batch 1: 2.1x &lt; 3x"), std::string::npos);
  EXPECT_NE(page.find("<a href=\"#candidate-c01\">c01</a> (plan c01)"), std::string::npos);
  EXPECT_NE(page.find("<a href=\"#candidate-c02\">c02</a>"), std::string::npos);
  EXPECT_EQ(page.find("Chosen plan"), std::string::npos);
  EXPECT_EQ(count(plot(page, "pareto"), " chosen\""), 0u);
  EXPECT_EQ(count(plot(page, "pareto"), "<polyline class=\"front-line\""), 1u);
  EXPECT_EQ(count(plot(page, "optime"), "<rect class=\"mark"), 2u) << "before only";
}

TEST(ReportHtml, MissingOptionalFieldsRender) {
  const std::string bare = render_report_html({{"format", "hone-optimize/1"}});
  EXPECT_NE(bare.find("</html>"), std::string::npos);
  EXPECT_EQ(plot(bare, "pareto"), "");
  EXPECT_NE(bare.find("No plan chosen"), std::string::npos);

  json report = sample_report();
  for (const char* key : {"targets", "metric", "layer_sensitivity", "notes", "pareto_front", "reason"})
    report.erase(key);
  report["baseline"].erase("hot_spots");
  report["chosen"].erase("verdict");
  report["chosen"].erase("export");
  report["candidates"][0].erase("latency_ms");  // measured, but nothing to place it by
  report["candidates"][1]["label"] = nullptr;
  const std::string page = render_report_html(report);
  EXPECT_EQ(count(plot(page, "pareto"), "<circle"), 4u);
  EXPECT_NE(page.find("validation score"), std::string::npos) << "the default metric";
  EXPECT_NE(page.find("Chosen plan: c02"), std::string::npos);
}

TEST(ReportHtml, OddValuesNeitherThrowNorReachTheSvg) {
  json report = sample_report();
  report["candidates"][0]["latency_ms"]["1"] = std::numeric_limits<double>::quiet_NaN();
  report["candidates"][1]["latency_ms"] = "fast";
  report["candidates"][3]["label"] = 42;
  report["candidates"].push_back("not an object");
  report["chosen"]["verdict"]["file_bytes"] = {1};
  report["baseline"]["hot_spots"] = {{{"op", "aten::relu"}, {"ms", -1}}};
  const std::string page = render_report_html(report);
  EXPECT_EQ(count(plot(page, "pareto"), "<circle"), 3u);  // baseline, c04, c05
  EXPECT_EQ(page.find("nan"), std::string::npos);
  EXPECT_EQ(page.find("inf\""), std::string::npos);
  EXPECT_NE(page.find("42"), std::string::npos);
}

TEST(ReportHtml, FlatAndExtremeRangesGiveFiniteAxes) {
  json report = sample_report();
  for (json& candidate : report["candidates"]) candidate["latency_ms"] = report["baseline"]["latency_ms"];
  for (json& candidate : report["candidates"]) candidate["validation"] = 0.9166;
  std::string pareto = plot(render_report_html(report), "pareto");
  EXPECT_EQ(count(pareto, "<circle"), 5u);
  EXPECT_EQ(pareto.find("nan"), std::string::npos);
  EXPECT_EQ(pareto.find("inf"), std::string::npos);

  report["baseline"]["validation"] = 1e9;  // a spread far below the values' precision
  report["candidates"][0]["validation"] = std::nextafter(1e9, 2e9);
  report["candidates"][0]["latency_ms"]["1"] = 1e-9;
  pareto = plot(render_report_html(report), "pareto");
  EXPECT_EQ(count(pareto, "<circle"), 5u);
  EXPECT_EQ(pareto.find("nan"), std::string::npos);
  EXPECT_EQ(pareto.find("inf"), std::string::npos);
  EXPECT_LE(count(pareto, "class=\"grid\""), 40u);
}

TEST(ReportHtml, ScoresUseTheMetricScaleAndDirection) {
  json report = sample_report();
  report["metric"] = {
      {"name", "rmse"}, {"split", "validation"}, {"higher_is_better", false}, {"scale", 1}, {"unit", ""}};
  report["baseline"]["validation"] = 0.0123;
  const std::string page = render_report_html(report);
  EXPECT_NE(page.find("validation rmse (lower is better)"), std::string::npos);
  EXPECT_NE(page.find(">0.01230<"), std::string::npos);
  EXPECT_EQ(page.find("1.23%"), std::string::npos);
}

TEST(ReportHtml, WrongFormatThrows) {
  EXPECT_THROW(render_report_html(json::array()), std::invalid_argument);
  EXPECT_THROW(render_report_html(json::object()), std::invalid_argument);
  json report = sample_report();
  report["format"] = "hone-compress/1";
  try {
    render_report_html(report);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("hone-optimize/1"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("hone-compress/1"), std::string::npos) << error.what();
  }
}

}  // namespace
