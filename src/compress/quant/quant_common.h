#pragma once
// What the quantization passes share: the 'skip' option and CPU-only checks.
#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace hone::compress::quant {

/// True when `path` is one of `skip` or lies under one of them ("features.3" skips "features.3.conv1").
inline bool is_skipped(const std::string& path, const nlohmann::json& skip) {
  for (const auto& item : skip) {
    const auto prefix = item.get<std::string>();
    if (path == prefix ||
        (path.size() > prefix.size() && path.compare(0, prefix.size(), prefix) == 0 && path[prefix.size()] == '.')) {
      return true;
    }
  }
  return false;
}

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
