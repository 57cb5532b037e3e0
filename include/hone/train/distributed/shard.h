#pragma once
/// @file The data-parallel sampler's arithmetic: every rank draws the same epoch order (seeded by
/// seed and epoch), and step s's global batch — rows [s·B·W, (s+1)·B·W) of that order, B rows per
/// rank, W ranks — is cut into W balanced, contiguous shards. Every sample goes to exactly one rank
/// per epoch, every rank runs the same number of steps, and an epoch's shorter last batch is split
/// as evenly as it goes (a rank may get one row fewer, or none when fewer rows than ranks are left).
///
///   const auto shard = distributed::batch_shard(60000, 128, rank, world, step);
///   at::Tensor rows = order.narrow(0, shard.start, shard.count);
#include <cstdint>

namespace hone::train::distributed {

struct Shard {
  std::int64_t start = 0;         ///< first row in the epoch order
  std::int64_t count = 0;         ///< rows for this rank
  std::int64_t global_count = 0;  ///< rows in the step's global batch, over every rank
  /// The factor on this rank's mean loss that makes the ranks' average gradient the global mean.
  double loss_weight(int world_size) const {
    return global_count > 0 ? static_cast<double>(count) * world_size / static_cast<double>(global_count) : 0.0;
  }
};

/// Steps per epoch: ceil(samples / (per_rank_batch × world_size)).
std::int64_t steps_per_epoch(std::int64_t samples, std::int64_t per_rank_batch, int world_size);

/// Rank `rank`'s rows of step `step` (0-based).
Shard batch_shard(std::int64_t samples, std::int64_t per_rank_batch, int rank, int world_size, std::int64_t step);

/// Rank `rank`'s balanced contiguous part of `samples` rows (for sharded evaluation).
Shard split_rows(std::int64_t samples, int rank, int world_size);

}  // namespace hone::train::distributed
