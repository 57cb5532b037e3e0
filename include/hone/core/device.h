#pragma once
/// @file Devices and seeding.
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <string>

namespace hone {

/// Parses "cpu", "cuda", "cuda:N". Throws hone::UsageError for unknown names and hone::Error
/// when CUDA is asked for but this build or machine has none.
c10::Device parse_device(const std::string& name);

/// Parses a floating dtype: fp32|float32, fp16|float16|half, bf16|bfloat16. Throws
/// hone::UsageError naming the valid spellings otherwise.
c10::ScalarType parse_dtype(const std::string& name);
/// "fp32", "fp16", "bf16"; c10's name for any other dtype.
std::string dtype_name(c10::ScalarType dtype);

/// True when this build links torch_cuda and a CUDA device is visible.
bool cuda_available();
/// Visible CUDA devices (0 without CUDA).
int cuda_device_count();

/// Seeds torch's CPU (and CUDA) generators; makes runs repeatable.
void seed_everything(std::uint64_t seed);

}  // namespace hone
