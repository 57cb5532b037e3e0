#include "hone/optimize/pareto.h"

namespace hone::optimize {

std::vector<bool> pareto_front(const std::vector<ParetoPoint>& points) {
  std::vector<bool> front(points.size(), true);
  for (std::size_t i = 0; i < points.size(); ++i) {
    for (std::size_t j = 0; j < points.size() && front[i]; ++j) {
      if (i == j) continue;
      const auto& a = points[j];
      const auto& b = points[i];
      const bool no_worse = a.latency_ms <= b.latency_ms && a.score >= b.score && a.file_bytes <= b.file_bytes;
      const bool better = a.latency_ms < b.latency_ms || a.score > b.score || a.file_bytes < b.file_bytes;
      if (no_worse && better) front[i] = false;
    }
  }
  return front;
}

std::optional<std::size_t> choose_best(const std::vector<ParetoPoint>& points, const std::vector<bool>& eligible) {
  std::optional<std::size_t> best;
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (i >= eligible.size() || !eligible[i]) continue;
    if (!best) {
      best = i;
      continue;
    }
    const auto& a = points[i];
    const auto& b = points[*best];
    if (a.score != b.score
            ? a.score > b.score
            : (a.latency_ms != b.latency_ms ? a.latency_ms < b.latency_ms : a.file_bytes < b.file_bytes)) {
      best = i;
    }
  }
  return best;
}

}  // namespace hone::optimize
