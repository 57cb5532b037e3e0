#pragma once
/// @file The HTML page of `hone optimize`: the report (schema hone-optimize/1) as one self-contained
/// page — inline CSS and SVG plots, one small inline script that checks its own plots were drawn, no
/// network and no external files, so it opens offline from the run directory. Torch-free: it reads
/// only the report's JSON, so it compiles in seconds and its tests need no model.
///
///   std::ofstream(out / "report.html") << hone::optimize::render_report_html(report);
#include <nlohmann/json.hpp>

#include <string>

namespace hone::optimize {

/// One self-contained HTML page (inline CSS + inline SVG, no network, no external scripts) from an
/// optimize report (schema hone-optimize/1): the verdict (the chosen plan, or the reason none met
/// the targets), the targets, the accuracy-vs-latency Pareto plot, file sizes, per-op times before
/// and after, layer sensitivity, the chosen recipe and a table of every candidate. Optional fields
/// that are null or absent are left out; every string from the report is HTML-escaped.
/// Throws std::invalid_argument when `report` is not an object whose "format" is "hone-optimize/1".
std::string render_report_html(const nlohmann::json& report);

}  // namespace hone::optimize
