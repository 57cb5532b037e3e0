#include "hone/runtime/statistics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "hone/core/error.h"
#include "support/tolerances.h"

namespace hone::runtime {
namespace {

constexpr double kTolerance = testing::kFp64.absolute;

TEST(StatisticsTest, PercentilesInterpolateBetweenClosestRanks) {
  const std::vector<double> samples{1, 2, 3, 4};
  // Rank (n - 1) * p / 100 = 3p/100: p50 -> 1.5 -> 2 + 0.5 * (3 - 2); p90 -> 2.7; p25 -> 0.75.
  EXPECT_NEAR(percentile(samples, 50), 2.5, kTolerance);
  EXPECT_NEAR(percentile(samples, 90), 3.7, kTolerance);
  EXPECT_NEAR(percentile(samples, 25), 1.75, kTolerance);
  EXPECT_EQ(percentile(samples, 0), 1.0);
  EXPECT_EQ(percentile(samples, 100), 4.0);
}

TEST(StatisticsTest, PercentileSortsUnsortedInput) {
  const std::vector<double> samples{4, -1, 3, 2};
  EXPECT_NEAR(percentile(samples, 50), 2.5, kTolerance);
  EXPECT_NEAR(percentile(samples, 90), 3.7, kTolerance);
  EXPECT_EQ(percentile(samples, 0), -1.0);
  EXPECT_EQ(percentile(samples, 100), 4.0);
}

TEST(StatisticsTest, PercentileOfOneSampleIsThatSample) {
  for (double p : {0.0, 37.5, 50.0, 99.0, 100.0}) EXPECT_EQ(percentile({7.25}, p), 7.25) << "p = " << p;
}

TEST(StatisticsTest, PercentileOfZeroToHundredIsTheRank) {
  // 0, 1, ..., 100 shuffled: the value at rank p is p itself, and between ranks it interpolates.
  std::vector<double> samples(101);
  for (int i = 0; i <= 100; ++i) samples[i] = i;
  std::shuffle(samples.begin(), samples.end(), std::mt19937(17));
  for (double p : {0.0, 1.0, 12.5, 50.0, 63.3, 99.0, 99.9, 100.0})
    EXPECT_NEAR(percentile(samples, p), p, 1e-9) << "p = " << p;
}

TEST(StatisticsTest, PercentileRejectsEmptyInputAndBadPercent) {
  EXPECT_THROW(percentile({}, 50), Error);
  EXPECT_THROW(percentile({1, 2}, -0.1), Error);
  EXPECT_THROW(percentile({1, 2}, 100.5), Error);
  EXPECT_THROW(percentile({1, 2}, std::numeric_limits<double>::quiet_NaN()), Error);
  EXPECT_THROW(percentile({1, std::numeric_limits<double>::quiet_NaN()}, 50), Error);
}

TEST(StatisticsTest, SummarizesAKnownSample) {
  // Mean 40 / 8 = 5; squared deviations 9+1+1+1+0+0+4+16 = 32, sample variance 32 / 7.
  const std::vector<double> samples{9, 4, 2, 5, 4, 7, 4, 5};
  const Summary s = summarize(samples);
  EXPECT_EQ(s.count, 8);
  EXPECT_NEAR(s.mean, 5.0, kTolerance);
  EXPECT_NEAR(s.stddev, std::sqrt(32.0 / 7.0), kTolerance);
  EXPECT_EQ(s.min, 2.0);
  EXPECT_EQ(s.max, 9.0);
  // Sorted 2 4 4 4 5 5 7 9; ranks 7p/100: p50 -> 3.5, p90 -> 6.3, p99 -> 6.93.
  EXPECT_NEAR(s.p50, 4.5, kTolerance);
  EXPECT_NEAR(s.p90, 7.6, kTolerance);
  EXPECT_NEAR(s.p99, 8.86, kTolerance);
}

TEST(StatisticsTest, SummaryOfOneSampleHasZeroSpread) {
  const Summary s = summarize({3.5});
  EXPECT_EQ(s.count, 1);
  EXPECT_EQ(s.mean, 3.5);
  EXPECT_EQ(s.stddev, 0.0);
  EXPECT_EQ(s.min, 3.5);
  EXPECT_EQ(s.max, 3.5);
  EXPECT_EQ(s.p50, 3.5);
  EXPECT_EQ(s.p99, 3.5);
}

TEST(StatisticsTest, SummarizeRejectsEmptyAndNanInput) {
  EXPECT_THROW(summarize({}), Error);
  EXPECT_THROW(summarize({1, std::numeric_limits<double>::quiet_NaN()}), Error);
}

TEST(StatisticsTest, JsonHasEveryField) {
  const Summary s = summarize({1, 2, 3, 4});
  const nlohmann::json j = to_json(s);
  EXPECT_EQ(j.at("count").get<std::int64_t>(), 4);
  EXPECT_EQ(j.at("mean").get<double>(), s.mean);
  EXPECT_EQ(j.at("stddev").get<double>(), s.stddev);
  EXPECT_EQ(j.at("min").get<double>(), 1.0);
  EXPECT_EQ(j.at("max").get<double>(), 4.0);
  EXPECT_EQ(j.at("p50").get<double>(), s.p50);
  EXPECT_EQ(j.at("p90").get<double>(), s.p90);
  EXPECT_EQ(j.at("p99").get<double>(), s.p99);
  EXPECT_EQ(j.size(), 8u);
}

}  // namespace
}  // namespace hone::runtime
