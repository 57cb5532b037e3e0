// The input pipeline yields batches in the loader's order, whichever path serves them, and a
// seeded epoch repeats exactly.
#include "hone/train/input_pipeline.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

namespace hone::train {
namespace {

data::TensorDataset numbered(std::int64_t n) {
  return data::TensorDataset(torch::arange(n, torch::kFloat).unsqueeze(1), torch::arange(n, torch::kLong));
}

std::vector<std::int64_t> order_of(const std::function<void(const std::function<void(at::Tensor)>&)>& run) {
  std::vector<std::int64_t> ids;
  run([&](at::Tensor target) {
    for (std::int64_t i = 0; i < target.size(0); ++i) ids.push_back(target[i].item<std::int64_t>());
  });
  return ids;
}

TEST(InputPipelineTest, ThePrefetchThreadKeepsTheDrawnOrderWhileTheLoopDrawsToo) {
  const auto dataset = numbered(103);
  // The order is one randperm(n) drawn from the global generator on the calling thread.
  torch::manual_seed(9);
  const at::Tensor drawn = torch::randperm(103, torch::kLong);
  std::vector<std::int64_t> loader_order(drawn.data_ptr<std::int64_t>(), drawn.data_ptr<std::int64_t>() + 103);
  auto pipeline_order = order_of([&](const auto& sink) {
    torch::manual_seed(9);
    PipelineOptions o;
    o.batch_size = 10;
    o.force_prefetch_thread = true;
    InputPipeline pipeline(dataset, o);
    pipeline.for_each_epoch_batch([&](Batch& b) {
      EXPECT_TRUE(torch::equal(b.input.squeeze(1).to(torch::kLong), b.target)) << "inputs stay with their targets";
      // The training loop draws from the generator meanwhile (dropout): the order must not change.
      torch::rand({100});
      sink(b.target);
    });
  });
  ASSERT_EQ(pipeline_order.size(), 103u);
  EXPECT_EQ(pipeline_order, loader_order);
  std::vector<std::int64_t> sorted = pipeline_order;
  std::sort(sorted.begin(), sorted.end());
  for (std::int64_t i = 0; i < 103; ++i) EXPECT_EQ(sorted[static_cast<std::size_t>(i)], i) << "every sample once";
}

TEST(InputPipelineTest, TwoCpuRanksShardTheSingleProcessLoadersOrder) {
  const auto dataset = numbered(103);
  auto epoch = [&](int rank, int world) {
    return order_of([&](const auto& sink) {
      torch::manual_seed(4);
      PipelineOptions o;
      o.batch_size = 8;
      o.workers = 2;
      o.rank = rank;
      o.world_size = world;
      InputPipeline pipeline(dataset, o);
      pipeline.for_each_epoch_batch([&](Batch& b) { sink(b.target); });
    });
  };
  const auto single = epoch(0, 1);  // torch::data's loader
  ASSERT_EQ(single.size(), 103u);
  EXPECT_EQ(data::shuffled_loader_order(0).numel(), 0);
  // Two ranks of 8 rows take the loader's order 16 rows a step, rank 0 the first 8 of each.
  const auto rank0 = epoch(0, 2), rank1 = epoch(1, 2);
  std::vector<std::int64_t> interleaved;
  for (std::size_t step = 0, i0 = 0, i1 = 0; interleaved.size() < 103; ++step) {
    const std::size_t take0 = std::min<std::size_t>(8, rank0.size() - i0);
    interleaved.insert(interleaved.end(), rank0.begin() + i0, rank0.begin() + i0 + take0);
    i0 += take0;
    const std::size_t take1 = std::min<std::size_t>(8, rank1.size() - i1);
    interleaved.insert(interleaved.end(), rank1.begin() + i1, rank1.begin() + i1 + take1);
    i1 += take1;
    ASSERT_LT(step, 20u);
  }
  EXPECT_EQ(interleaved, single);
  EXPECT_EQ(rank0.size() + rank1.size(), 103u);
}

TEST(InputPipelineTest, MaxBatchesCutsTheEpochAndAnErrorInTheLoopStopsTheProducer) {
  const auto dataset = numbered(64);
  PipelineOptions o;
  o.batch_size = 4;
  o.max_batches = 5;
  o.force_prefetch_thread = true;
  InputPipeline pipeline(dataset, o);
  int seen = 0;
  pipeline.for_each_epoch_batch([&](Batch&) { ++seen; });
  EXPECT_EQ(seen, 5);
  o.max_batches = 0;
  InputPipeline failing(dataset, o);
  EXPECT_THROW(failing.for_each_epoch_batch([&](Batch&) { throw std::runtime_error("step failed"); }),
               std::runtime_error);
}

}  // namespace
}  // namespace hone::train
