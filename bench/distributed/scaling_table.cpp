// The data-parallel scaling model's table (src/train/distributed/scaling_model.h) for docs/BENCHMARKS.md:
//   hone_scaling_table --compute-ms 13.7 --gradient-mb 90.9 --intra-gbs 360 --inter-gbs 45 [--latency-us 10]
// Prints one markdown row per GPU count (2..256): all-reduce time, exposed time, step, efficiency.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "hone/train/distributed/scaling_model.h"

int main(int argc, char** argv) {
  hone::train::distributed::ScalingInputs in;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const double value = std::atof(argv[i + 1]);
    if (flag == "--compute-ms")
      in.compute_ms = value;
    else if (flag == "--gradient-mb")
      in.gradient_bytes = value * 1e6;
    else if (flag == "--bucket-mb")
      in.bucket_bytes = value * 1e6;
    else if (flag == "--intra-gbs")
      in.intra_node_gbs = value;
    else if (flag == "--inter-gbs")
      in.inter_node_gbs = value;
    else if (flag == "--latency-us")
      in.latency_us = value;
    else if (flag == "--backward-fraction")
      in.backward_fraction = value;
    else if (flag == "--gpus-per-node")
      in.gpus_per_node = static_cast<int>(value);
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  std::printf("| GPUs | all-reduce ms | exposed ms | step ms | efficiency |\n| --- | --- | --- | --- | --- |\n");
  for (int gpus : {1, 2, 4, 8, 16, 32, 64, 128, 256}) {
    const auto p = hone::train::distributed::predict_scaling(in, gpus);
    std::printf("| %d | %.2f | %.2f | %.2f | %.1f %% |\n", gpus, p.allreduce_ms, p.exposed_ms, p.step_ms,
                100 * p.efficiency);
  }
  return 0;
}
