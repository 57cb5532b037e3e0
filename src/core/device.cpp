#include "hone/core/device.h"

#include <torch/cuda.h>
#include <torch/utils.h>

#include "hone/core/error.h"

namespace hone {

int cuda_device_count() {
#ifdef HONE_WITH_CUDA
  return cuda_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
#else
  return 0;
#endif
}

bool cuda_available() {
#ifdef HONE_WITH_CUDA
  return torch::cuda::is_available();
#else
  return false;
#endif
}

c10::ScalarType parse_dtype(const std::string& name) {
  if (name == "fp32" || name == "float32" || name == "float") return c10::kFloat;
  if (name == "fp16" || name == "float16" || name == "half") return c10::kHalf;
  if (name == "bf16" || name == "bfloat16") return c10::kBFloat16;
  fail_usage("unknown dtype '{}': expected fp32, fp16 or bf16", name);
}

std::string dtype_name(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kFloat:
      return "fp32";
    case c10::kHalf:
      return "fp16";
    case c10::kBFloat16:
      return "bf16";
    default:
      return c10::toString(dtype);
  }
}

c10::Device parse_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
#ifndef HONE_WITH_CUDA
    fail("device '{}' asked for, but this hone was built without CUDA (HONE_CUDA=OFF)", name);
#else
    if (!torch::cuda::is_available()) fail("device '{}' asked for, but no CUDA GPU is visible", name);
    int index = 0;
    if (name.size() > 5) {
      try {
        std::size_t used = 0;
        index = std::stoi(name.substr(5), &used);
        if (used != name.size() - 5) throw std::invalid_argument("trailing");
      } catch (const std::exception&) {
        fail_usage("bad device '{}': expected cuda:N", name);
      }
      int count = static_cast<int>(torch::cuda::device_count());
      if (index < 0 || index >= count) fail("device '{}' asked for, but only {} CUDA device(s) exist", name, count);
    }
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
#endif
  }
  fail_usage("unknown device '{}': expected cpu, cuda or cuda:N", name);
}

void seed_everything(std::uint64_t seed) {
  torch::manual_seed(seed);
#ifdef HONE_WITH_CUDA
  if (torch::cuda::is_available()) torch::cuda::manual_seed_all(seed);
#endif
}

}  // namespace hone
