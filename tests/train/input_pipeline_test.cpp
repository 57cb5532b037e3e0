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
