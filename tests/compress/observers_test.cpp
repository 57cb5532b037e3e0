// Observers against hand-computed qparams; percentile and entropy clip an outlier, min-max does not.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../../src/compress/quant/observers.h"
#include "hone/core/error.h"

namespace hone::compress {
namespace {

TEST(QuantObserverTest, AffineQparamsMatchHandComputedValues) {
  // [-1, 3] over 255 steps: scale 4/255, zero point round(1 / (4/255)) = round(63.75) = 64.
  const auto q = affine_qparams(-1.0, 3.0);
  EXPECT_DOUBLE_EQ(q.scale, 4.0 / 255.0);
  EXPECT_EQ(q.zero_point, 64);
  // One-sided ranges are widened to include zero, so zero is exact.
  const auto positive = affine_qparams(0.5, 2.55);
  EXPECT_DOUBLE_EQ(positive.scale, 0.01);
  EXPECT_EQ(positive.zero_point, 0);
  const auto negative = affine_qparams(-2.55, -1.0);
  EXPECT_DOUBLE_EQ(negative.scale, 0.01);
  EXPECT_EQ(negative.zero_point, 255);
  const auto reduced = affine_qparams(-1.0, 3.0, {0, 127});
  EXPECT_DOUBLE_EQ(reduced.scale, 4.0 / 127.0);
  EXPECT_EQ(reduced.zero_point, 32);  // round(31.75)
  EXPECT_GT(affine_qparams(0.0, 0.0).scale, 0.0);
}

TEST(QuantObserverTest, MinMaxTracksTheRangeOverBatches) {
  MinMaxObserver observer(QuantRange{});
  EXPECT_THROW(observer.qparams(), Error);
  observer.observe(torch::tensor({0.5f, 2.0f}));
  observer.observe(torch::tensor({-1.0f, 3.0f}).reshape({1, 2}));
  EXPECT_DOUBLE_EQ(observer.min(), -1.0);
  EXPECT_DOUBLE_EQ(observer.max(), 3.0);
  EXPECT_EQ(observer.qparams().zero_point, 64);
}

TEST(QuantObserverTest, HistogramMergesBinsExactlyWhenTheRangeGrows) {
  HistogramObserver observer(QuantRange{}, 8);
  observer.observe(torch::tensor({0.1f, 0.6f, 1.0f}));  // M = 1, width 0.125: bins 0, 4, 7
  observer.observe(torch::tensor({-3.5f}));             // M = 4 (two doublings), width 0.5
  // Merged pairwise twice: [0, 0.5) holds 0.1, [0.5, 1] holds 0.6 and 1.0; 3.5 lands in [3.5, 4].
  const std::vector<double> expected{1, 2, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(observer.counts(), expected);
  EXPECT_DOUBLE_EQ(observer.bin_width(), 0.5);
}

TEST(QuantObserverTest, PercentileClipsAtTheHandComputedBin) {
  // 1, 2, ..., 1000 plus one value of 2048 (and zeros, which do not count): 2048 bins of width 1,
  // value v in bin v. 99.9 % of 1001 values is 999.999, first reached in bin 1000, whose upper
  // edge is 1001.
  PercentileObserver observer(QuantRange{}, 99.9);
  observer.observe(torch::cat({torch::zeros({500}), torch::arange(1, 1001, torch::kFloat), torch::tensor({2048.0f})}));
  const auto [lo, hi] = observer.clip_range();
  EXPECT_DOUBLE_EQ(lo, 0.0);
  EXPECT_DOUBLE_EQ(hi, 1001.0);
}

TEST(QuantObserverTest, PercentileAndEntropyClipAnOutlierWhileMinMaxKeepsIt) {
  torch::manual_seed(0);
  const auto x = torch::cat({torch::randn({200000}), torch::tensor({100.0f})});
  std::map<std::string, std::pair<double, double>> ranges;
  for (const std::string kind : {"minmax", "percentile", "entropy"}) {
    auto observer = make_observer(kind, 99.99, {});
    observer->observe(x.slice(0, 0, 100000));
    observer->observe(x.slice(0, 100000));
    ranges[kind] = observer->clip_range();
  }
  EXPECT_DOUBLE_EQ(ranges["minmax"].second, 100.0);
  // N(0, 1): |x| exceeds 3.9 with probability 1e-4.
  EXPECT_GT(ranges["percentile"].second, 3.5);
  EXPECT_LT(ranges["percentile"].second, 4.5);
  // KL keeps the bulk of the distribution: several sigmas, far below the outlier.
  EXPECT_GT(ranges["entropy"].second, 2.5);
  EXPECT_LT(ranges["entropy"].second, 20.0);
  EXPECT_LT(ranges["entropy"].first, -2.5);
  EXPECT_THROW(make_observer("median", 99.0, {}), Error);
}

TEST(QuantObserverTest, EntropyKeepsMostOfAUniformRange) {
  // Without tails, clipping only loses information: the best threshold is near the maximum.
  torch::manual_seed(1);
  EntropyObserver observer(QuantRange{});
  observer.observe(torch::rand({100000}));
  EXPECT_GT(observer.clip_range().second, 0.9);
  EXPECT_DOUBLE_EQ(observer.clip_range().first, observer.min());  // one-sided: nothing below
}

}  // namespace
}  // namespace hone::compress
