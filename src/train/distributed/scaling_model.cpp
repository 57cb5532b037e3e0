#include "hone/train/distributed/scaling_model.h"

#include <algorithm>
#include <cmath>

#include "hone/core/error.h"

namespace hone::train::distributed {

double ring_allreduce_ms(double bytes, int ranks, double bus_gbs, double latency_us) {
  HONE_CHECK(ranks >= 1 && bus_gbs > 0 && bytes >= 0, "scaling model: {} ranks, {} GB/s", ranks, bus_gbs);
  if (ranks == 1) return 0;
  const double p = ranks;
  return 2 * (p - 1) / p * bytes / (bus_gbs * 1e9) * 1e3 + 2 * (p - 1) * latency_us * 1e-3;
}

ScalingPoint predict_scaling(const ScalingInputs& in, int gpus) {
  HONE_CHECK(in.compute_ms > 0 && in.gradient_bytes > 0 && in.bucket_bytes > 0 && in.intra_node_gbs > 0,
             "scaling model: compute time, gradient bytes, bucket size and bandwidth must be > 0");
  HONE_CHECK(gpus >= 1 && in.gpus_per_node >= 1, "scaling model: {} GPUs", gpus);
  ScalingPoint point;
  point.gpus = gpus;
  const double bus = gpus > in.gpus_per_node && in.inter_node_gbs > 0 ? in.inter_node_gbs : in.intra_node_gbs;
  const auto buckets = static_cast<std::int64_t>(std::ceil(in.gradient_bytes / in.bucket_bytes));
  const double backward_ms = in.compute_ms * in.backward_fraction;
  const double backward_start = in.compute_ms - backward_ms;  // forward first
  // Buckets become ready evenly through backward; the optimizer step waits for the last.
  double sent = 0;
  for (std::int64_t b = 0; b < buckets; ++b) {
    const double bytes = std::min(in.bucket_bytes, in.gradient_bytes - static_cast<double>(b) * in.bucket_bytes);
    const double ready = backward_start + backward_ms * static_cast<double>(b + 1) / static_cast<double>(buckets);
    // NCCL's bandwidth is the ring's, its start-up latency that of its trees past a few ranks
    // (2·log2 p hops instead of the ring's 2(p-1)).
    const double ring_hops = 2.0 * (gpus - 1);
    const double tree_hops = 2.0 * std::ceil(std::log2(static_cast<double>(gpus)));
    const double cost = ring_allreduce_ms(bytes, gpus, bus, 0) + std::min(ring_hops, tree_hops) * in.latency_us * 1e-3;
    point.allreduce_ms += cost;
    sent = std::max(sent, ready) + cost;
  }
  point.exposed_ms = std::max(0.0, sent - in.compute_ms);
  point.step_ms = in.compute_ms + point.exposed_ms;
  point.efficiency = in.compute_ms / point.step_ms;
  return point;
}

}  // namespace hone::train::distributed
