#include "hone/runtime/device_probe.h"

#include <sys/resource.h>
#include <torch/cuda.h>

#ifdef HONE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace hone::runtime {

void synchronize(const c10::Device& device) {
#ifdef HONE_WITH_CUDA
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
#else
  (void)device;
#endif
}

std::int64_t device_memory_bytes(const c10::Device& device) {
#ifdef HONE_WITH_CUDA
  if (device.is_cuda()) {
    const int index = device.has_index() ? device.index() : c10::cuda::current_device();
    return static_cast<std::int64_t>(at::cuda::getDeviceProperties(index)->totalGlobalMem);
  }
#else
  (void)device;
#endif
  return -1;
}

void reset_peak_memory(const c10::Device& device) {
#ifdef HONE_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#else
  (void)device;
#endif
}

std::int64_t peak_memory(const c10::Device& device) {
#ifdef HONE_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return stats.allocated_bytes[static_cast<std::size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
  }
#else
  (void)device;
#endif
  return -1;
}

std::int64_t peak_reserved_memory(const c10::Device& device) {
#ifdef HONE_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return stats.reserved_bytes[static_cast<std::size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
  }
#else
  (void)device;
#endif
  return -1;
}

std::int64_t peak_rss_bytes() {
  struct rusage usage {};
  return ::getrusage(RUSAGE_SELF, &usage) == 0 ? static_cast<std::int64_t>(usage.ru_maxrss) * 1024 : 0;
}

}  // namespace hone::runtime
