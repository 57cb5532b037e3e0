#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>

#include "hone/core/error.h"
#include "hone/data/tensor_dataset.h"

namespace hone::data {
namespace {

TensorDataset numbered(std::int64_t n) {
  const torch::Tensor ids = torch::arange(n, torch::kLong);
  return TensorDataset(ids.to(torch::kFloat).unsqueeze(1).repeat({1, 3}), ids);
}

std::vector<std::int64_t> order_of(const TensorDataset& ds, const LoaderOptions& options) {
  std::vector<std::int64_t> seen;
  for_each_batch(ds, options, [&](torch::data::Example<>& batch) {
    EXPECT_EQ(batch.data.size(0), batch.target.size(0));
    EXPECT_TRUE(torch::equal(batch.data.select(1, 2).to(torch::kLong), batch.target)) << "rows stay paired";
    for (std::int64_t i = 0; i < batch.target.size(0); ++i) seen.push_back(batch.target[i].item<std::int64_t>());
  });
  return seen;
}

TEST(LoaderTest, ShuffledLoadingWithWorkersVisitsEverySampleOnce) {
  const TensorDataset ds = numbered(1001);
  LoaderOptions options;
  options.batch_size = 64;
  options.shuffle = true;
  options.workers = 2;
  torch::manual_seed(7);
  std::vector<std::int64_t> seen = order_of(ds, options);
  ASSERT_EQ(seen.size(), 1001u);
  std::vector<std::int64_t> sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  for (std::int64_t i = 0; i < 1001; ++i) ASSERT_EQ(sorted[static_cast<std::size_t>(i)], i);
  EXPECT_FALSE(std::is_sorted(seen.begin(), seen.end()));
  torch::manual_seed(7);
  EXPECT_EQ(order_of(ds, options), seen) << "same seed, same order, even with worker threads";
}

TEST(LoaderTest, SequentialKeepsOrderAndDropLastAndMaxBatchesCut) {
  const TensorDataset ds = numbered(10);
  LoaderOptions options;
  options.batch_size = 4;
  std::vector<std::int64_t> seen = order_of(ds, options);
  EXPECT_EQ(seen, (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  options.drop_last = true;
  EXPECT_EQ(order_of(ds, options).size(), 8u);
  options.drop_last = false;
  options.max_batches = 1;
  EXPECT_EQ(order_of(ds, options).size(), 4u);
}

TEST(LoaderTest, RejectsMismatchedTensorsAndBadOptions) {
  EXPECT_THROW(TensorDataset(torch::ones({3, 2}), torch::ones({4})), Error);
  LoaderOptions options;
  options.batch_size = 0;
  EXPECT_THROW(for_each_batch(numbered(3), options, [](torch::data::Example<>&) {}), Error);
}

}  // namespace
}  // namespace hone::data
