#include "hone/train/metrics.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/core/error.h"

namespace hone::train {
namespace {

TEST(MetricsTest, AccuracyCountsArgMaxHits) {
  const torch::Tensor logits = torch::tensor({{0.1, 2.0, -1.0}, {3.0, 0.0, 0.5}, {0.0, 0.2, 0.1}, {1.0, 1.5, 2.5}});
  const torch::Tensor labels = torch::tensor({1, 0, 2, 2}, torch::kLong);
  EXPECT_DOUBLE_EQ(accuracy(logits, labels), 0.75);
  EXPECT_THROW(accuracy(logits, torch::tensor({1, 0}, torch::kLong)), Error);
}

TEST(MetricsTest, RmseAndMaeMatchHandComputedValues) {
  const torch::Tensor predicted = torch::tensor({1.0, 2.0, 4.0, 7.0}, torch::kDouble);
  const torch::Tensor actual = torch::tensor({2.0, 2.0, 1.0, 8.0}, torch::kDouble);
  // errors -1, 0, 3, -1: squares 1, 0, 9, 1 -> mean 2.75
  EXPECT_DOUBLE_EQ(rmse(predicted, actual), std::sqrt(2.75));
  EXPECT_DOUBLE_EQ(mae(predicted, actual), 1.25);
  EXPECT_THROW(rmse(predicted, actual.narrow(0, 0, 3)), Error);
}

TEST(MetricsTest, ScorePrefersAccuracyThenLowerRmse) {
  EvalMetrics a;
  a.accuracy = 0.9;
  EXPECT_DOUBLE_EQ(a.score(), 0.9);
  EvalMetrics f;
  f.rmse = 2.0;
  f.mae = f.naive_mae = f.naive_rmse = 1.0;
  EXPECT_DOUBLE_EQ(f.score(), -2.0);
  EXPECT_DOUBLE_EQ(f.to_json()["rmse_vs_naive"].get<double>(), 2.0);
}

}  // namespace
}  // namespace hone::train
