#pragma once
/// @file Observers: watch a layer's activations during calibration and turn them into quint8
/// (affine) quantization parameters.
///
///   minmax      the observed range: nothing is clipped, one outlier widens every step;
///   percentile  clips |x| at a percentile (e.g. 99.99) of a histogram of |x|;
///   entropy     TensorRT-style calibration: the clipping threshold whose quantized histogram is
///               closest (KL divergence) to the observed one.
/// The histogram observers clip magnitudes: the range is [max(min, -T), min(max, T)], so one-sided
/// (post-ReLU) activations use all levels on [0, T].
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hone/nn/quantized_weight.h"

namespace hone::compress {

/// The integer range of the quantized activations: [0, 255], or [0, 127] ("reduce range") on CPUs
/// whose int8 GEMM sums u8 x s8 pairs in saturating int16 (x86 without VNNI).
struct QuantRange {
  std::int64_t min = 0;
  std::int64_t max = 255;
};

/// Affine qparams mapping [lo, hi] (widened to include 0, so zero is exact) onto `range`:
/// scale = (hi - lo) / (max - min), zero point = min - round(lo / scale).
nn::ActivationQParams affine_qparams(double lo, double hi, QuantRange range = {});

class Observer {
 public:
  explicit Observer(QuantRange range) : range_(range) {}
  virtual ~Observer() = default;
  /// Records a batch of activations (any shape, any float dtype; quantized tensors are dequantized).
  void observe(const at::Tensor& x);
  /// The range to quantize; min-max unless the observer clips. Throws hone::Error before any data.
  virtual std::pair<double, double> clip_range() const;
  nn::ActivationQParams qparams() const;

  bool empty() const { return !seen_; }
  double min() const { return min_; }
  double max() const { return max_; }

 protected:
  virtual void record(const at::Tensor& /*values*/) {}
  QuantRange range_;

 private:
  bool seen_ = false;
  double min_ = 0, max_ = 0;
};

class MinMaxObserver : public Observer {
 public:
  using Observer::Observer;
};

/// A histogram of the non-zero |x| over [0, M] in `bins` bins (zeros are exact at any scale). When a larger value
/// arrives M doubles and neighbouring bins merge pairwise: bin edges stay aligned, so no counts are smeared by
/// interpolation (only a value exactly at the old M may sit one bin low).
class HistogramObserver : public Observer {
 public:
  explicit HistogramObserver(QuantRange range, std::int64_t bins = 2048);
  const std::vector<double>& counts() const { return counts_; }
  double bin_width() const { return upper_ / static_cast<double>(counts_.size()); }

 protected:
  void record(const at::Tensor& values) override;
  /// [max(min, -T), min(max, T)].
  std::pair<double, double> clip_at(double threshold) const;

 private:
  std::vector<double> counts_;
  double upper_ = 0;  ///< M; 0 before the first non-zero value
};

class PercentileObserver : public HistogramObserver {
 public:
  PercentileObserver(QuantRange range, double percentile);
  /// T = the upper edge of the bin where the cumulative count of |x| reaches `percentile` %.
  std::pair<double, double> clip_range() const override;

 private:
  double percentile_;
};

class EntropyObserver : public HistogramObserver {
 public:
  using HistogramObserver::HistogramObserver;
  /// TensorRT's search: for each candidate i >= levels bins, P = the first i bins with the outliers
  /// added to the last, Q = those i bins merged into `levels` levels and spread back over the
  /// non-empty bins; T = i * bin width for the i with the least KL(P || Q). `levels` is the number of
  /// quantized steps on one side of zero (all of them when the data is one-sided).
  std::pair<double, double> clip_range() const override;
};

/// "minmax", "percentile" or "entropy"; throws hone::Error for any other name.
std::unique_ptr<Observer> make_observer(const std::string& kind, double percentile, QuantRange range);

}  // namespace hone::compress
