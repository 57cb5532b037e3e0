#pragma once
/// @file What this machine and build can do (`hone info`).
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace hone {

struct GpuInfo {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  double memory_gib = 0;
  int multiprocessors = 0;
};

struct SystemInfo {
  std::string hone_version;
  std::string torch_version;
  bool built_with_cuda = false;
  bool cuda_available = false;
  std::string cuda_runtime_version;  ///< empty when not built with CUDA
  std::vector<GpuInfo> gpus;
  std::string cpu_model;
  int logical_cpus = 0;
  int torch_threads = 0;
  std::vector<std::string> cpu_isa;  ///< e.g. avx2, avx512f, avx512_vnni, amx_tile
  std::vector<std::string> quantized_engines;
  std::string quantized_engine;  ///< the one torch picks by default
};

SystemInfo collect_system_info();
/// Whether this CPU computes in bf16 natively (AVX512-BF16 or AMX-BF16): where bf16 is a
/// first-class CPU precision. Read once from /proc/cpuinfo.
bool cpu_has_native_bf16();
nlohmann::json to_json(const SystemInfo& info);
std::string to_text(const SystemInfo& info);

}  // namespace hone
