#include "observers.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "hone/core/error.h"

namespace hone::compress {

nn::ActivationQParams affine_qparams(double lo, double hi, QuantRange range) {
  HONE_CHECK(range.max > range.min, "affine_qparams: empty integer range [{}, {}]", range.min, range.max);
  HONE_CHECK(std::isfinite(lo) && std::isfinite(hi), "affine_qparams: non-finite range [{}, {}]", lo, hi);
  lo = std::min(lo, 0.0);
  hi = std::max(hi, 0.0);
  const auto levels = static_cast<double>(range.max - range.min);
  // As PyTorch's observers: a constant-zero activation gets the smallest float32 step.
  const double scale = std::max((hi - lo) / levels, static_cast<double>(std::numeric_limits<float>::epsilon()));
  const auto zero_point = range.min - static_cast<std::int64_t>(std::nearbyint(lo / scale));
  return {scale, std::clamp(zero_point, range.min, range.max)};
}

void Observer::observe(const at::Tensor& x) {
  if (x.numel() == 0) return;
  const auto values = (x.is_quantized() ? x.dequantize() : x).detach().to(at::kFloat).reshape({-1});
  const auto extrema = at::aminmax(values);
  const auto lo = std::get<0>(extrema).item<double>();
  const auto hi = std::get<1>(extrema).item<double>();
  HONE_CHECK(std::isfinite(lo) && std::isfinite(hi), "observer: activations contain NaN or infinity");
  min_ = seen_ ? std::min(min_, lo) : lo;
  max_ = seen_ ? std::max(max_, hi) : hi;
  seen_ = true;
  record(values);
}

std::pair<double, double> Observer::clip_range() const {
  HONE_CHECK(seen_, "observer: no activations were observed (did calibration run this layer?)");
  return {min_, max_};
}

nn::ActivationQParams Observer::qparams() const {
  const auto [lo, hi] = clip_range();
  return affine_qparams(lo, hi, range_);
}

HistogramObserver::HistogramObserver(QuantRange range, std::int64_t bins)
    : Observer(range), counts_(static_cast<std::size_t>(bins), 0.0) {
  HONE_CHECK(bins >= 2 && bins % 2 == 0, "histogram observer: bins must be even and >= 2, got {}", bins);
}

void HistogramObserver::record(const at::Tensor& values) {
  // Exact zeros (a ReLU's output is half zeros) are exact at any scale, so they do not vote: a
  // spike in the first bin would otherwise make the entropy search prefer ranges of few bins.
  const auto magnitude = values.abs();
  const auto nonzero = magnitude.masked_select(magnitude > 0);
  if (nonzero.numel() == 0) return;
  const auto largest = nonzero.max().item<double>();
  const auto bins = static_cast<std::int64_t>(counts_.size());
  if (upper_ == 0) upper_ = largest;
  while (largest > upper_) {
    for (std::int64_t i = 0; i < bins / 2; ++i) counts_[i] = counts_[2 * i] + counts_[2 * i + 1];
    std::fill(counts_.begin() + bins / 2, counts_.end(), 0.0);
    upper_ *= 2;
  }
  const auto histogram = at::histc(nonzero, bins, 0, upper_).to(at::kDouble).contiguous();
  const auto* data = histogram.data_ptr<double>();
  for (std::int64_t i = 0; i < bins; ++i) counts_[i] += data[i];
}

std::pair<double, double> HistogramObserver::clip_at(double threshold) const {
  return {std::max(min(), -threshold), std::min(max(), threshold)};
}

PercentileObserver::PercentileObserver(QuantRange range, double percentile)
    : HistogramObserver(range), percentile_(percentile) {
  HONE_CHECK(percentile > 0 && percentile <= 100, "percentile observer: percentile must be in (0, 100], got {}",
             percentile);
}

std::pair<double, double> PercentileObserver::clip_range() const {
  const auto full = Observer::clip_range();
  const auto& counts = this->counts();
  const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
  const double target = percentile_ / 100.0 * total;
  double cumulative = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    if (cumulative >= target && cumulative > 0) return clip_at(static_cast<double>(i + 1) * bin_width());
  }
  return full;
}

std::pair<double, double> EntropyObserver::clip_range() const {
  const auto full = Observer::clip_range();
  const auto& counts = this->counts();
  const auto bins = static_cast<std::int64_t>(counts.size());
  const bool one_sided = min() >= 0 || max() <= 0;
  const auto steps = range_.max - range_.min + 1;
  const std::int64_t levels = one_sided ? steps : steps / 2;
  std::int64_t used = bins;  // bins up to the last non-empty one
  while (used > 0 && counts[used - 1] == 0) --used;
  if (used <= levels) return full;  // no threshold below the maximum loses less

  const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
  std::vector<double> q(static_cast<std::size_t>(bins));
  double best_divergence = std::numeric_limits<double>::infinity();
  std::int64_t best = used;
  for (std::int64_t i = levels; i <= used; ++i) {
    // P: the first i bins, with everything beyond clipped into the last; it sums to `total`.
    // Q: each of `levels` chunks of those i bins gets its (unclipped) sum spread evenly over its
    // non-empty bins.
    double q_total = 0;
    for (std::int64_t level = 0; level < levels; ++level) {
      const auto begin = level * i / levels;
      const auto end = (level + 1) * i / levels;
      double sum = 0;
      std::int64_t nonzero = 0;
      for (auto b = begin; b < end; ++b) {
        sum += counts[b];
        nonzero += counts[b] > 0 ? 1 : 0;
      }
      for (auto b = begin; b < end; ++b) q[b] = counts[b] > 0 ? sum / static_cast<double>(nonzero) : 0.0;
      q_total += sum;
    }
    double clipped = 0;
    for (auto b = i; b < bins; ++b) clipped += counts[b];
    double divergence = 0;
    for (std::int64_t b = 0; b < i; ++b) {
      const double p = (counts[b] + (b == i - 1 ? clipped : 0.0)) / total;
      if (p == 0) continue;
      // A bin P has and Q lacks (the clipped mass landing in an empty last bin) costs as if Q
      // had a tiny share there.
      const double qb = q[b] > 0 ? q[b] / q_total : 1e-12;
      divergence += p * std::log(p / qb);
    }
    if (divergence < best_divergence) {
      best_divergence = divergence;
      best = i;
    }
  }
  return clip_at(static_cast<double>(best) * bin_width());
}

std::unique_ptr<Observer> make_observer(const std::string& kind, double percentile, QuantRange range) {
  if (kind == "minmax") return std::make_unique<MinMaxObserver>(range);
  if (kind == "percentile") return std::make_unique<PercentileObserver>(range, percentile);
  if (kind == "entropy") return std::make_unique<EntropyObserver>(range);
  fail("unknown observer '{}' (expected minmax, percentile or entropy)", kind);
}

}  // namespace hone::compress
