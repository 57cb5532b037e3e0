#include "hone/core/system_info.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "hone/core/device.h"

#ifdef HONE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <cuda_runtime_api.h>
#endif

namespace hone {
namespace {

void read_cpuinfo(SystemInfo& info) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  std::set<std::string> flags;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "model name" && info.cpu_model.empty()) info.cpu_model = value;
    if (key == "flags" && flags.empty()) {
      std::istringstream words(value);
      for (std::string w; words >> w;) flags.insert(w);
    }
  }
  // The instruction sets that decide which quantized and low-precision kernels are fast.
  static const char* const kInteresting[] = {"sse4_2",      "avx",         "avx2",     "fma",         "f16c",
                                             "avx512f",     "avx512bw",    "avx512vl", "avx512_vnni", "avx_vnni",
                                             "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8",    "amx_bf16"};
  for (const char* isa : kInteresting) {
    if (flags.count(isa)) info.cpu_isa.emplace_back(isa);
  }
}

}  // namespace

bool cpu_has_native_bf16() {
  static const bool has = [] {
    SystemInfo info;
    read_cpuinfo(info);
    for (const auto& isa : info.cpu_isa) {
      if (isa == "avx512_bf16" || isa == "amx_bf16") return true;
    }
    return false;
  }();
  return has;
}

SystemInfo collect_system_info() {
  SystemInfo info;
  info.hone_version = HONE_VERSION;
  info.torch_version = TORCH_VERSION;
  read_cpuinfo(info);
  info.logical_cpus = static_cast<int>(std::thread::hardware_concurrency());
  info.torch_threads = at::get_num_threads();
  for (at::QEngine engine : at::globalContext().supportedQEngines()) {
    info.quantized_engines.push_back(c10::toString(engine));
  }
  info.quantized_engine = c10::toString(at::globalContext().qEngine());
#ifdef HONE_WITH_CUDA
  info.built_with_cuda = true;
  int runtime = 0;
  if (cudaRuntimeGetVersion(&runtime) == cudaSuccess) {
    info.cuda_runtime_version = std::to_string(runtime / 1000) + "." + std::to_string((runtime % 1000) / 10);
  }
  info.cuda_available = cuda_available();
  if (info.cuda_available) {
    int count = static_cast<int>(at::cuda::device_count());
    for (int i = 0; i < count; ++i) {
      const cudaDeviceProp* p = at::cuda::getDeviceProperties(i);
      info.gpus.push_back(GpuInfo{i, p->name, p->major, p->minor,
                                  static_cast<double>(p->totalGlobalMem) / (1024.0 * 1024 * 1024),
                                  p->multiProcessorCount});
    }
  }
#endif
  return info;
}

nlohmann::json to_json(const SystemInfo& info) {
  nlohmann::json gpus = nlohmann::json::array();
  for (const auto& g : info.gpus) {
    gpus.push_back({{"index", g.index},
                    {"name", g.name},
                    {"compute_capability", std::to_string(g.compute_major) + "." + std::to_string(g.compute_minor)},
                    {"memory_gib", g.memory_gib},
                    {"multiprocessors", g.multiprocessors}});
  }
  return {{"hone_version", info.hone_version},
          {"torch_version", info.torch_version},
          {"built_with_cuda", info.built_with_cuda},
          {"cuda_available", info.cuda_available},
          {"cuda_runtime_version", info.cuda_runtime_version},
          {"gpus", gpus},
          {"cpu",
           {{"model", info.cpu_model},
            {"logical_cpus", info.logical_cpus},
            {"torch_threads", info.torch_threads},
            {"isa", info.cpu_isa}}},
          {"quantized_engines", info.quantized_engines},
          {"quantized_engine", info.quantized_engine}};
}

std::string to_text(const SystemInfo& info) {
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
    return out.empty() ? std::string("(none)") : out;
  };
  std::string out;
  out += fmt::format("hone          {}\n", info.hone_version);
  out += fmt::format("torch         {}\n", info.torch_version);
  out += fmt::format("CUDA          built {}, runtime {}, available {}\n", info.built_with_cuda ? "yes" : "no",
                     info.cuda_runtime_version.empty() ? "-" : info.cuda_runtime_version,
                     info.cuda_available ? "yes" : "no");
  for (const auto& g : info.gpus) {
    out += fmt::format("GPU {}         {} (sm_{}{}, {:.1f} GiB, {} SMs)\n", g.index, g.name, g.compute_major,
                       g.compute_minor, g.memory_gib, g.multiprocessors);
  }
  out += fmt::format("CPU           {}\n", info.cpu_model.empty() ? "(unknown)" : info.cpu_model);
  out += fmt::format("CPU ISA       {}\n", join(info.cpu_isa));
  out += fmt::format("threads       {} logical CPUs, torch uses {}\n", info.logical_cpus, info.torch_threads);
  out += fmt::format("quantized     engines {}; default {}\n", join(info.quantized_engines), info.quantized_engine);
  return out;
}

}  // namespace hone
