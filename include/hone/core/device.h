#pragma once
/// @file Devices and seeding.
#include <c10/core/Device.h>

#include <cstdint>
#include <string>

namespace hone {

/// Parses "cpu", "cuda", "cuda:N". Throws hone::UsageError for unknown names and hone::Error
/// when CUDA is asked for but this build or machine has none.
c10::Device parse_device(const std::string& name);

/// True when this build links torch_cuda and a CUDA device is visible.
bool cuda_available();

/// Seeds torch's CPU (and CUDA) generators; makes runs repeatable.
void seed_everything(std::uint64_t seed);

}  // namespace hone
