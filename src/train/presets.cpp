#include "hone/train/presets.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "hone/core/error.h"
#include "hone/core/system_info.h"

namespace hone::train {

const std::vector<TrainPreset>& train_presets() {
  static const std::vector<TrainPreset> presets{
      {"fast-gpu",
       "CUDA, bf16 autocast, the whole step as one CUDA graph, channels-last conv weights: the shortest step "
       "time"},
      {"low-memory",
       "activation checkpointing, bf16 where the device has it, batch 32 x accumulate 4: the smallest "
       "peak memory for the default effective batch of 128"},
      {"cpu", "the CPU, bf16 where the CPU has AVX512-BF16/AMX (else fp32), channels-last, 2 loader workers"},
      {"throughput",
       "CUDA, bf16, CUDA graphs, channels-last, batch 512 with the rate scaled by sqrt(4) and a 50-step "
       "warmup: the most samples per second"},
  };
  return presets;
}

std::vector<std::string> apply_preset(TrainOptions& o, const std::string& name,
                                      const std::set<std::string>& explicit_options) {
  std::vector<std::string> made;
  auto set = [&](const char* option, auto& field, auto value) {
    if (explicit_options.count(option)) return;
    field = value;
    made.push_back(fmt::format("{}={}", option, value));
  };
  const bool cuda = o.device.starts_with("cuda");
  if (name == "fast-gpu" || name == "throughput") {
    set("device", o.device, std::string("cuda"));
    set("precision", o.precision, std::string("bf16"));
    set("cuda_graphs", o.cuda_graphs, true);
    set("channels_last", o.channels_last, true);  // conv nets: 1.6-2x per step on the H200; others: no-op
    set("accumulate", o.accumulate, std::int64_t{1});
    if (name == "throughput") {
      set("batch_size", o.batch_size, std::int64_t{512});
      set("learning_rate", o.learning_rate, o.learning_rate * 2);  // sqrt(512/128): the square-root scaling rule
      set("warmup_steps", o.warmup_steps, std::int64_t{50});
    }
  } else if (name == "low-memory") {
    set("checkpoint_activations", o.checkpoint_activations, true);
    set("precision", o.precision, std::string(cuda || cpu_has_native_bf16() ? "bf16" : "fp32"));
    set("batch_size", o.batch_size, std::int64_t{32});
    set("accumulate", o.accumulate, std::int64_t{4});
    set("cuda_graphs", o.cuda_graphs, false);
  } else if (name == "cpu") {
    set("device", o.device, std::string("cpu"));
    set("precision", o.precision, std::string(cpu_has_native_bf16() ? "bf16" : "fp32"));
    set("channels_last", o.channels_last, true);  // oneDNN's convolutions: the CNN's step -6 % (bf16), -19 % (fp32)
    set("workers", o.workers, std::int64_t{2});
    set("cuda_graphs", o.cuda_graphs, false);
  } else {
    std::vector<std::string> names;
    for (const auto& p : train_presets()) names.push_back(p.name);
    fail_usage_option("preset", "unknown preset '{}'; valid: {}", name, fmt::join(names, ", "));
  }
  return made;
}

}  // namespace hone::train
