#pragma once
/// @file An in-memory dataset of (input, target) tensors served to torch::data loaders a batch at a
/// time (index_select per batch, no per-sample tensors), and the loop that drives the loader.
#include <torch/data/dataloader.h>
#include <torch/data/datasets/base.h>
#include <torch/data/example.h>

#include <cstdint>
#include <functional>
#include <optional>

namespace hone::data {

class TensorDataset : public torch::data::datasets::BatchDataset<TensorDataset, torch::data::Example<>> {
 public:
  TensorDataset() = default;
  /// inputs [N, ...], targets [N, ...]; N must match.
  TensorDataset(torch::Tensor inputs, torch::Tensor targets);

  torch::data::Example<> get_batch(c10::ArrayRef<std::size_t> indices) override;
  std::optional<std::size_t> size() const override { return static_cast<std::size_t>(count()); }

  std::int64_t count() const { return inputs_.defined() ? inputs_.size(0) : 0; }
  const torch::Tensor& inputs() const { return inputs_; }
  const torch::Tensor& targets() const { return targets_; }
  /// Rows [start, start + length).
  TensorDataset slice(std::int64_t start, std::int64_t length) const;

 private:
  torch::Tensor inputs_;
  torch::Tensor targets_;
};

struct LoaderOptions {
  std::int64_t batch_size = 64;
  bool shuffle = false;      ///< order drawn from torch's global generator: seed it for repeatable runs
  std::int64_t workers = 0;  ///< torch::data worker threads (0: batches are made on the caller's thread)
  bool drop_last = false;
  std::int64_t max_batches = 0;  ///< > 0: stop after this many batches
};

/// The order a shuffling for_each_batch visits `n` samples in, drawn from the global generator
/// exactly as its loader draws it (torch::data's RandomSampler, reset when the loader begins), so a
/// caller that shards batches itself (data-parallel training) sees the single process's order.
at::Tensor shuffled_loader_order(std::int64_t n);

/// Runs a torch::data loader over `dataset` and calls `fn` for each batch, in sampler order.
void for_each_batch(const TensorDataset& dataset, const LoaderOptions& options,
                    const std::function<void(torch::data::Example<>& batch)>& fn);

}  // namespace hone::data
