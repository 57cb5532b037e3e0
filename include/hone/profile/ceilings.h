#pragma once
/// @file What this machine can do at best, measured rather than read off a data sheet: the
/// throughput of large square matrix products per dtype and the bandwidth of a large copy. The
/// profiler's roofline (`hone profile`) states achieved FLOP/s and bytes/s as a share of these.
///
/// Measured once per machine and device and cached as JSON (schema hone-ceilings/1) in
/// <cache>/hone/ceilings/<hostname>-<hash of the device name>.json, where <cache> is
/// $XDG_CACHE_HOME or ~/.cache; `hone info --ceilings --refresh` measures again.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace hone::profile {

struct CeilingsOptions {
  std::string device = "cpu";  ///< cpu, cuda or cuda:N
  bool refresh = false;        ///< measure even when a cached file exists
  /// Side of the square matrices; 0: 2048 on the CPU, 8192 on CUDA. Tests pass small sizes.
  std::int64_t matmul_size = 0;
  /// Bytes of the buffer copied to measure bandwidth; 0: 256 MiB on the CPU, 1 GiB on CUDA.
  std::int64_t copy_bytes = 0;
  int repeats = 5;                  ///< timed runs per measurement; the best one counts
  std::filesystem::path cache_dir;  ///< folder of the cached files; empty: default_ceilings_dir()
};

/// One device's measured ceilings.
struct Ceilings {
  std::string host;         ///< the machine's host name
  std::string device;       ///< "cpu", "cuda:0"
  std::string device_name;  ///< "Intel(R) Xeon(R) ... (16 threads)", "NVIDIA H100 80GB HBM3"
  std::string torch_version;
  std::string measured_at;  ///< UTC, ISO 8601
  std::int64_t matmul_size = 0;
  /// Best TFLOP/s of an n×n×n matrix product (2·n³ FLOPs) by dtype: fp32, tf32 (CUDA only), bf16,
  /// fp16. A dtype the device cannot multiply is absent.
  std::map<std::string, double> matmul_tflops;
  std::int64_t copy_bytes = 0;
  double memory_gbps = 0;  ///< best copy, counting the bytes read and the bytes written (2 × copy_bytes)

  /// The compute ceiling for work in `dtype` ("fp32", "tf32", "bf16", "fp16"); 0 when unknown.
  double peak_tflops(const std::string& dtype) const;

  nlohmann::json to_json() const;  ///< schema hone-ceilings/1
  /// Throws hone::Error naming `what` (e.g. the file) when `j` is not a hone-ceilings/1 object.
  static Ceilings from_json(const nlohmann::json& j, const std::string& what);
  std::string to_text() const;
};

/// Measures now (seconds on a GPU; longer on a busy CPU), never reading or writing the cache.
Ceilings measure_ceilings(const CeilingsOptions& options);

/// $XDG_CACHE_HOME/hone/ceilings, or ~/.cache/hone/ceilings.
std::filesystem::path default_ceilings_dir();

/// The cache file for `options.device` on this host: <dir>/<hostname>-<16 hex digits>.json, the
/// digits a hash of the device's name (so a different GPU, CPU or thread count gets its own file).
std::filesystem::path ceilings_cache_path(const CeilingsOptions& options);

struct CeilingsLookup {
  Ceilings ceilings;
  std::filesystem::path file;
  bool measured = false;  ///< false: read from the cache

  nlohmann::json to_json() const;  ///< the ceilings' JSON plus "file" and "measured_now"
  std::string to_text() const;
};

/// The cached ceilings of this device, or (when none are cached, the file is unreadable, or
/// options.refresh) measured now and written to the cache atomically. Says on stderr when it
/// measures.
CeilingsLookup load_or_measure_ceilings(const CeilingsOptions& options);

}  // namespace hone::profile
