#pragma once
// What the quantization passes share: the 'skip' option and CPU-only checks.
#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace hone::compress::quant {

using compress::is_skipped;

inline bool contains(const nlohmann::json& list, const std::string& value) {
  for (const auto& item : list) {
    if (item.get<std::string>() == value) return true;
  }
  return false;
}

/// False when any parameter or buffer lives off the CPU (LibTorch's int8 kernels are CPU-only).
inline bool on_cpu(const torch::nn::Module& module) {
  for (const auto& tensor : module.parameters()) {
    if (!tensor.device().is_cpu()) return false;
  }
  for (const auto& tensor : module.buffers()) {
    if (!tensor.device().is_cpu()) return false;
  }
  return true;
}

}  // namespace hone::compress::quant
