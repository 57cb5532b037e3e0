#include "hone/data/tensor_dataset.h"

#include <torch/data/samplers/random.h>
#include <torch/data/samplers/sequential.h>

#include "hone/core/error.h"

namespace hone::data {

TensorDataset::TensorDataset(torch::Tensor inputs, torch::Tensor targets)
    : inputs_(std::move(inputs)), targets_(std::move(targets)) {
  HONE_CHECK(inputs_.defined() && targets_.defined(), "dataset tensors must be defined");
  HONE_CHECK(inputs_.dim() >= 1 && targets_.dim() >= 1 && inputs_.size(0) == targets_.size(0),
             "dataset inputs {} and targets {} disagree on the sample count", inputs_.sizes(), targets_.sizes());
}

torch::data::Example<> TensorDataset::get_batch(c10::ArrayRef<std::size_t> indices) {
  auto index = torch::empty({static_cast<std::int64_t>(indices.size())}, torch::kLong);
  auto* p = index.data_ptr<std::int64_t>();
  for (std::size_t i = 0; i < indices.size(); ++i) {
    HONE_CHECK(static_cast<std::int64_t>(indices[i]) < count(), "sample index {} out of range ({} samples)", indices[i],
               count());
    p[i] = static_cast<std::int64_t>(indices[i]);
  }
  return {inputs_.index_select(0, index), targets_.index_select(0, index)};
}

TensorDataset TensorDataset::slice(std::int64_t start, std::int64_t length) const {
  HONE_CHECK(start >= 0 && length >= 0 && start + length <= count(), "slice [{}, {}) outside {} samples", start,
             start + length, count());
  return {inputs_.narrow(0, start, length), targets_.narrow(0, start, length)};
}

namespace {

template <typename Sampler>
void drive(const TensorDataset& dataset, Sampler sampler, const LoaderOptions& options,
           const std::function<void(torch::data::Example<>&)>& fn) {
  auto loader = torch::data::make_data_loader(dataset, std::move(sampler),
                                              torch::data::DataLoaderOptions()
                                                  .batch_size(static_cast<std::size_t>(options.batch_size))
                                                  .workers(static_cast<std::size_t>(options.workers))
                                                  .drop_last(options.drop_last)
                                                  .enforce_ordering(true));
  std::int64_t served = 0;
  for (auto& batch : *loader) {
    fn(batch);
    if (options.max_batches > 0 && ++served >= options.max_batches) break;
  }
}

}  // namespace

at::Tensor shuffled_loader_order(std::int64_t n) {
  torch::data::samplers::RandomSampler sampler(n);  // draws once here...
  sampler.reset();                                  // ...and again where the data loader begins
  std::vector<std::int64_t> order;
  order.reserve(static_cast<std::size_t>(n));
  while (auto indices = sampler.next(static_cast<std::size_t>(std::max<std::int64_t>(n, 1)))) {
    for (std::size_t i : *indices) order.push_back(static_cast<std::int64_t>(i));
    if (order.size() >= static_cast<std::size_t>(n)) break;
  }
  return at::tensor(order, at::TensorOptions().dtype(at::kLong));
}

void for_each_batch(const TensorDataset& dataset, const LoaderOptions& options,
                    const std::function<void(torch::data::Example<>&)>& fn) {
  HONE_CHECK(options.batch_size > 0, "batch size must be positive, got {}", options.batch_size);
  HONE_CHECK(options.workers >= 0, "worker count must be >= 0, got {}", options.workers);
  if (dataset.count() == 0) return;
  const auto n = static_cast<std::size_t>(dataset.count());
  if (options.shuffle) {
    drive(dataset, torch::data::samplers::RandomSampler(n), options, fn);
  } else {
    drive(dataset, torch::data::samplers::SequentialSampler(n), options, fn);
  }
}

}  // namespace hone::data
