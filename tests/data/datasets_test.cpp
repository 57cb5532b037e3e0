#include "hone/data/datasets.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>

#include "hone/core/error.h"
#include "support/temp_dir.h"

namespace hone::data {
namespace {

using ::testing::HasSubstr;

TEST(DatasetsTest, FashionMnistHasTheOfficialSplitSizesAndBalancedTestLabels) {
  const LoadedData d = load_dataset("fashion-mnist");
  EXPECT_EQ(d.info.task, TaskKind::kClassification);
  EXPECT_EQ(d.info.input_shape, (std::vector<std::int64_t>{1, 28, 28}));
  EXPECT_EQ(d.train.dataset.count(), 54000);
  EXPECT_EQ(d.val.dataset.count(), 6000);
  EXPECT_EQ(d.test.dataset.count(), 10000);
  EXPECT_EQ(d.test.dataset.inputs().sizes(), (std::vector<std::int64_t>{10000, 1, 28, 28}));
  const torch::Tensor counts = torch::bincount(d.test.dataset.targets(), {}, 10);
  EXPECT_TRUE(torch::equal(counts, torch::full({10}, 1000, torch::kLong))) << counts;
  // Normalization is fitted on the training split only.
  EXPECT_NEAR(d.train.dataset.inputs().mean().item<double>(), 0.0, 1e-4);
  EXPECT_NEAR(d.train.dataset.inputs().std().item<double>(), 1.0, 1e-3);
  EXPECT_GT(std::abs(d.test.dataset.inputs().mean().item<double>()), 1e-4);
}

TEST(DatasetsTest, LimitCapsEverySplit) {
  DataOptions options;
  options.limit = 100;
  const LoadedData d = load_dataset("fashion-mnist", options);
  EXPECT_EQ(d.train.dataset.count(), 100);
  EXPECT_EQ(d.val.dataset.count(), 100);
  EXPECT_EQ(d.test.dataset.count(), 100);
}

TEST(DatasetsTest, DigitsSplitIsCompleteAndRepeatable) {
  const LoadedData a = load_dataset("digits");
  const LoadedData b = load_dataset("digits");
  EXPECT_EQ(a.train.dataset.count() + a.val.dataset.count() + a.test.dataset.count(), 1797);
  EXPECT_EQ(a.train.dataset.inputs().sizes(), (std::vector<std::int64_t>{a.train.dataset.count(), 1, 8, 8}));
  EXPECT_TRUE(torch::equal(a.test.dataset.inputs(), b.test.dataset.inputs()));
  EXPECT_EQ(std::get<0>(torch::_unique(a.train.dataset.targets())).size(0), 10);
  EXPECT_GE(a.train.dataset.inputs().min().item<double>(), 0.0);
  EXPECT_LE(a.train.dataset.inputs().max().item<double>(), 1.0);
}

TEST(DatasetsTest, GoldSilverIsChronologicalWithWindowsAlignedToTheirTargets) {
  DataOptions options;
  options.window = 30;
  const LoadedData d = load_dataset("goldsilver", options);
  EXPECT_EQ(d.info.task, TaskKind::kForecasting);
  EXPECT_EQ(d.info.input_shape, (std::vector<std::int64_t>{30, 2}));
  const std::int64_t total = d.train.dataset.count() + d.val.dataset.count() + d.test.dataset.count();
  EXPECT_EQ(total, 9132 - 1 - 30);
  // Each target, de-normalized, is the log-return from the window's last price to the true price.
  for (const DataSplit* split : {&d.train, &d.val, &d.test}) {
    const auto& ref = *split->forecast;
    const torch::Tensor price = ref.to_price(split->dataset.targets());
    EXPECT_TRUE(torch::allclose(price, ref.true_value, 1e-6, 1e-6));
  }
  // Chronology: val starts the day after train ends; test the day after val ends.
  EXPECT_DOUBLE_EQ(d.train.forecast->true_value[-1].item<double>(), d.val.forecast->last_value[0].item<double>());
  EXPECT_DOUBLE_EQ(d.val.forecast->true_value[-1].item<double>(), d.test.forecast->last_value[0].item<double>());
}

TEST(DatasetsTest, ForecastNormalizationIgnoresTheFuture) {
  torch::manual_seed(3);
  const torch::Tensor prices = 100 * torch::exp(torch::cumsum(0.01 * torch::randn({400, 2}, torch::kDouble), 0));
  DataOptions options;
  options.window = 10;
  const LoadedData a = make_forecasting_data("synthetic-walk", prices, {"a", "b"}, options);
  torch::Tensor changed = prices.clone();
  changed.narrow(0, 350, 50).mul_(3.0);  // only the test period moves
  const LoadedData b = make_forecasting_data("synthetic-walk", changed, {"a", "b"}, options);
  EXPECT_TRUE(torch::equal(a.train.dataset.inputs(), b.train.dataset.inputs()));
  EXPECT_TRUE(torch::equal(a.train.dataset.targets(), b.train.dataset.targets()));
  EXPECT_EQ(a.provenance["normalization"], b.provenance["normalization"]);
  EXPECT_FALSE(torch::equal(a.test.dataset.inputs(), b.test.dataset.inputs()));
}

TEST(DatasetsTest, BadPricesAndShortSeriesAreRejected) {
  DataOptions options;
  options.window = 10;
  torch::Tensor prices = torch::ones({100, 1}, torch::kDouble);
  prices[5][0] = -1;
  EXPECT_THROW(make_forecasting_data("neg", prices, {"a"}, options), Error);
  EXPECT_THROW(make_forecasting_data("short", torch::ones({20, 1}, torch::kDouble), {"a"}, options), Error);
}

TEST(DatasetsTest, UnknownDatasetListsTheValidOnes) {
  try {
    load_dataset("imagenet");
    FAIL() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("fashion-mnist"));
    EXPECT_THAT(e.what(), HasSubstr("imagenet"));
  }
}

TEST(DatasetsTest, MissingFilesNameThePackage) {
  testing::TempDir empty;
  ::setenv("HONE_FASHION_MNIST_DIR", empty.path().c_str(), 1);
  try {
    load_dataset("fashion-mnist");
    ::unsetenv("HONE_FASHION_MNIST_DIR");
    FAIL() << "expected hone::Error";
  } catch (const Error& e) {
    ::unsetenv("HONE_FASHION_MNIST_DIR");
    EXPECT_THAT(e.what(), HasSubstr("dataset-fashion-mnist"));
  }
}

}  // namespace
}  // namespace hone::data
