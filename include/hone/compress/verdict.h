#pragma once
/// @file The verdict of `hone compress`: one model measured on this machine (size, memory,
/// latency, accuracy on the real test split), and the diagnosis when compression did not pay.
#include <c10/core/Device.h>

#include <cstdint>
#include <string>
#include <vector>

#include "hone/compress/compress.h"
#include "hone/data/datasets.h"
#include "hone/run/run_dir.h"

namespace hone::compress {

struct VerdictSettings {
  c10::Device device{c10::kCPU};
  std::vector<std::int64_t> batches{1, 64};
  int warmup = 5;
  int iterations = 30;
  std::int64_t eval_limit = 0;  ///< > 0: score at most this many test samples
};

/// Latency (random inputs shaped as `inputs` says, labelled as such), parameters, memory, file size
/// (`file_bytes`; 0: the weights are saved to a temporary file to measure it) and, with `data`,
/// accuracy or RMSE on the test split.
Measurement measure_model(models::Model& model, std::int64_t file_bytes, const data::LoadedData* data,
                          const data::DatasetInfo& inputs, const VerdictSettings& settings);

/// Why `after` is not faster (or smaller) than `before`: layers left in float, quantized layers on
/// a CPU without VNNI/AMX, quantize/dequantize boundaries, unstructured zeros in dense tensors,
/// shapes too small to amortize the per-call cost. Empty when every batch got faster and smaller.
std::vector<std::string> diagnose(models::Model& after_model, const std::vector<PassReport>& passes,
                                  const Measurement& before, const Measurement& after, const VerdictSettings& settings);

}  // namespace hone::compress
