#pragma once
/// @file Waiting for a device and reading its memory high-water marks: what every timing and
/// memory figure in hone is taken with.
#include <c10/core/Device.h>

#include <cstdint>

namespace hone::runtime {

/// Waits for the device's queued work (no-op on the CPU).
void synchronize(const c10::Device& device);
/// CUDA: resets / reads the caching allocator's peak allocated (or reserved) bytes. CPU: no-op / -1.
void reset_peak_memory(const c10::Device& device);
std::int64_t peak_memory(const c10::Device& device);
std::int64_t peak_reserved_memory(const c10::Device& device);
/// The device's total memory in bytes (CUDA: the card's; CPU: -1).
std::int64_t device_memory_bytes(const c10::Device& device);
/// The process's CPU memory high-water mark (getrusage), in bytes.
std::int64_t peak_rss_bytes();

}  // namespace hone::runtime
