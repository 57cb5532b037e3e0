#include "hone/train/distributed/shard.h"

#include <algorithm>

#include "hone/core/error.h"

namespace hone::train::distributed {

std::int64_t steps_per_epoch(std::int64_t samples, std::int64_t per_rank_batch, int world_size) {
  HONE_CHECK(per_rank_batch >= 1 && world_size >= 1, "sharding: batch {} and world size {} must be >= 1",
             per_rank_batch, world_size);
  const std::int64_t global = per_rank_batch * world_size;
  return (samples + global - 1) / global;
}

Shard split_rows(std::int64_t samples, int rank, int world_size) {
  HONE_CHECK(world_size >= 1 && rank >= 0 && rank < world_size, "sharding: rank {} of {}", rank, world_size);
  const std::int64_t base = samples / world_size;
  const std::int64_t extra = samples % world_size;
  Shard shard;
  shard.start = rank * base + std::min<std::int64_t>(rank, extra);
  shard.count = base + (rank < extra ? 1 : 0);
  shard.global_count = samples;
  return shard;
}

Shard batch_shard(std::int64_t samples, std::int64_t per_rank_batch, int rank, int world_size, std::int64_t step) {
  HONE_CHECK(step >= 0 && step < steps_per_epoch(samples, per_rank_batch, world_size),
             "sharding: step {} is outside the epoch's {} steps", step,
             steps_per_epoch(samples, per_rank_batch, world_size));
  const std::int64_t global_start = step * per_rank_batch * world_size;
  const std::int64_t global_count = std::min(per_rank_batch * world_size, samples - global_start);
  Shard shard = split_rows(global_count, rank, world_size);
  shard.start += global_start;
  return shard;
}

}  // namespace hone::train::distributed
