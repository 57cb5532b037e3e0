#pragma once
/// @file The accuracy-latency Pareto front of measured plans, and the choice among them.
#include <cstddef>
#include <optional>
#include <vector>

namespace hone::optimize {

/// A measured plan: lower latency is better; `score` is oriented so that higher is better (the
/// caller negates an RMSE); `size` lower is better.
struct ParetoPoint {
  double latency_ms = 0;
  double score = 0;
  double file_bytes = 0;
};

/// For each point, whether no other point is at least as good in latency, score and size and
/// strictly better in one of them (ties on all three keep both).
std::vector<bool> pareto_front(const std::vector<ParetoPoint>& points);

/// Among the points whose `eligible` flag is set: the highest score, then the lowest latency,
/// then the smallest file. Empty when none is eligible.
std::optional<std::size_t> choose_best(const std::vector<ParetoPoint>& points, const std::vector<bool>& eligible);

}  // namespace hone::optimize
