#include "hone/core/device.h"

#include <torch/cuda.h>
#include <torch/utils.h>

#include "hone/core/error.h"

namespace hone {

bool cuda_available() {
#ifdef HONE_WITH_CUDA
  return torch::cuda::is_available();
#else
  return false;
#endif
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
