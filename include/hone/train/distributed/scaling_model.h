#pragma once
/// @file Data-parallel scaling on paper: from a step's measured compute time and a measured
/// all-reduce bandwidth, the step time and efficiency on p GPUs, for what hone cannot run here.
///
/// Ring all-reduce of S bytes over p ranks sends 2(p-1)/p · S through each rank's slowest link
/// and takes 2(p-1) latency hops (Patarasuk & Yuan 2009; NCCL's "bus bandwidth" is this S/t
/// correction); the start-up latency is NCCL's trees' (2·log2 p hops) where that is less than the
/// ring's. Gradients go out in buckets as backward produces them (data_parallel.h), so a
/// bucket's all-reduce starts when both its gradients are ready and the previous bucket is sent;
/// only what is left after backward ends is exposed. Across machines the ring's slowest link is the
/// network's, within one machine NVLink's.
///
///   ScalingInputs in{.compute_ms = 41.0, .gradient_bytes = 90e6, .intra_node_gbs = 360, .inter_node_gbs = 45};
///   ScalingPoint p = predict_scaling(in, 64);  // p.efficiency
#include <cstdint>
#include <vector>

namespace hone::train::distributed {

struct ScalingInputs {
  double compute_ms = 0;                 ///< forward + backward + optimizer, one GPU, measured
  double backward_fraction = 2.0 / 3.0;  ///< the part of compute_ms that backward takes (the overlap window)
  double gradient_bytes = 0;             ///< all-reduced per step (fp32 gradients: 4 × parameters)
  double bucket_bytes = 25e6;            ///< data_parallel.h's bucket
  double intra_node_gbs = 0;             ///< bus bandwidth within a machine, GB/s (measured)
  double inter_node_gbs = 0;             ///< bus bandwidth between machines, GB/s (0: same as intra)
  double latency_us = 10;                ///< per ring hop
  int gpus_per_node = 8;
};

struct ScalingPoint {
  int gpus = 1;
  double allreduce_ms = 0;  ///< all buckets, back to back
  double exposed_ms = 0;    ///< communication left after backward
  double step_ms = 0;
  double efficiency = 1;  ///< compute_ms / step_ms: throughput on p ÷ (p × throughput on 1)
};

/// One ring all-reduce of `bytes` over `ranks` at `bus_gbs`, in ms.
double ring_allreduce_ms(double bytes, int ranks, double bus_gbs, double latency_us);

ScalingPoint predict_scaling(const ScalingInputs& inputs, int gpus);

}  // namespace hone::train::distributed
