#include "hone/profile/ceilings.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <functional>

#include "hone/core/device.h"
#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "hone/core/log.h"
#include "hone/core/system_info.h"
#include "hone/runtime/device_probe.h"
#include "hone/runtime/forward_runner.h"
#include "hone/runtime/settings.h"
#include "hone/runtime/target.h"
#include "hone/runtime/units.h"

#ifdef HONE_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace hone::profile {
namespace fs = std::filesystem;
namespace {

constexpr const char* kSchema = "hone-ceilings/1";

std::string host_name() {
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0) return "localhost";
  return name.data();
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  std::array<char, 32> text{};
  std::strftime(text.data(), text.size(), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text.data();
}

/// FNV-1a, 64 bits: a stable name for a file, not a security measure.
std::string name_hash(const std::string& name) {
  std::uint64_t hash = 14695981039346656037ULL;
  for (const unsigned char c : name) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return fmt::format("{:016x}", hash);
}

/// What the ceilings are keyed on: the GPU's name, or the CPU's model and the threads torch uses
/// (a CPU's matrix throughput scales with them).
std::string device_name_of(const c10::Device& device) {
#ifdef HONE_WITH_CUDA
  if (device.is_cuda()) {
    const int index = device.has_index() ? device.index() : at::cuda::current_device();
    return at::cuda::getDeviceProperties(index)->name;
  }
#endif
  const SystemInfo info = collect_system_info();
  return fmt::format("{} ({} threads)", info.cpu_model.empty() ? "unknown CPU" : info.cpu_model, at::get_num_threads());
}

/// Best seconds per call of `work` over `repeats` runs. A run repeats the call until it lasts
/// about 20 ms, so short kernels are not timed one launch at a time.
double best_seconds_per_call(const std::function<void()>& work, const c10::Device& device, int repeats) {
  using clock = std::chrono::steady_clock;
  const auto time_calls = [&](int calls) {
    runtime::synchronize(device);
    const auto start = clock::now();
    for (int i = 0; i < calls; ++i) work();
    runtime::synchronize(device);
    return std::chrono::duration<double>(clock::now() - start).count();
  };
  time_calls(1);  // warm-up: allocations, library initialization, kernel selection
  const double once = std::max(time_calls(1), 1e-9);
  const int calls = static_cast<int>(std::clamp(std::ceil(0.02 / once), 1.0, 1000.0));
  double best = once;
  for (int r = 0; r < repeats; ++r) best = std::min(best, time_calls(calls) / calls);
  return best;
}

/// Sets cuBLAS's TF32 permission while alive, restoring it after.
class Tf32Scope {
 public:
  explicit Tf32Scope(bool allow) : was_(at::globalContext().allowTF32CuBLAS()) {
    at::globalContext().setAllowTF32CuBLAS(allow);
  }
  ~Tf32Scope() { at::globalContext().setAllowTF32CuBLAS(was_); }
  Tf32Scope(const Tf32Scope&) = delete;
  Tf32Scope& operator=(const Tf32Scope&) = delete;

 private:
  bool was_;
};

/// TFLOP/s of an n×n×n product in `dtype`, or nullopt when the device cannot multiply it.
std::optional<double> matmul_tflops(const c10::Device& device, c10::ScalarType dtype, std::int64_t n, int repeats) {
  try {
    const auto options = at::TensorOptions().dtype(dtype).device(device);
    // Random operands: products of zeros run faster than real work on some hardware.
    const at::Tensor a = at::randn({n, n}, options);
    const at::Tensor b = at::randn({n, n}, options);
    at::Tensor out = at::empty({n, n}, options);
    const double seconds = best_seconds_per_call([&] { at::mm_out(out, a, b); }, device, repeats);
    return 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n) / seconds / 1e12;
  } catch (const c10::Error& e) {
    log_debug("ceilings: no {} matrix product on {}: {}", dtype, device.str(), e.what_without_backtrace());
    return std::nullopt;
  }
}

double copy_gbps(const c10::Device& device, std::int64_t bytes, int repeats) {
  const std::int64_t elements = std::max<std::int64_t>(bytes / 4, 1);
  const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
  const at::Tensor source = at::randn({elements}, options);
  at::Tensor target = at::empty({elements}, options);
  const double seconds = best_seconds_per_call([&] { target.copy_(source); }, device, repeats);
  return 2.0 * static_cast<double>(elements) * 4.0 / seconds / 1e9;
}

void check_options(const CeilingsOptions& options) {
  if (options.matmul_size < 0 || options.copy_bytes < 0 || options.repeats < 1) {
    fail_usage("ceilings: need matmul_size >= 0, copy_bytes >= 0 and repeats >= 1, got {}, {} and {}",
               options.matmul_size, options.copy_bytes, options.repeats);
  }
}

}  // namespace

double Ceilings::peak_tflops(const std::string& dtype) const {
  const auto it = matmul_tflops.find(dtype);
  return it == matmul_tflops.end() ? 0.0 : it->second;
}

nlohmann::json Ceilings::to_json() const {
  return {{"schema", kSchema},
          {"host", host},
          {"device", device},
          {"device_name", device_name},
          {"torch_version", torch_version},
          {"measured_at", measured_at},
          {"matmul", {{"size", matmul_size}, {"tflops", matmul_tflops}}},
          {"memory", {{"copy_bytes", copy_bytes}, {"gbps", memory_gbps}}}};
}

Ceilings Ceilings::from_json(const nlohmann::json& j, const std::string& what) {
  Ceilings c;
  try {
    HONE_CHECK(j.is_object() && j.value("schema", "") == kSchema, "{}: not a {} file", what, kSchema);
    c.host = j.at("host").get<std::string>();
    c.device = j.at("device").get<std::string>();
    c.device_name = j.at("device_name").get<std::string>();
    c.torch_version = j.at("torch_version").get<std::string>();
    c.measured_at = j.at("measured_at").get<std::string>();
    c.matmul_size = j.at("matmul").at("size").get<std::int64_t>();
    c.matmul_tflops = j.at("matmul").at("tflops").get<std::map<std::string, double>>();
    c.copy_bytes = j.at("memory").at("copy_bytes").get<std::int64_t>();
    c.memory_gbps = j.at("memory").at("gbps").get<double>();
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed {} file: {}", what, kSchema, e.what());
  }
  return c;
}

std::string Ceilings::to_text() const {
  std::string text = fmt::format("ceilings of {} ({}), measured {} on {}\n", device, device_name, measured_at, host);
  text += fmt::format("  matmul {}x{}x{}:", matmul_size, matmul_size, matmul_size);
  for (const char* dtype : {"fp32", "tf32", "bf16", "fp16"}) {
    if (matmul_tflops.count(dtype)) text += fmt::format("  {} {:.3g} TFLOP/s", dtype, matmul_tflops.at(dtype));
  }
  text += fmt::format("\n  memory (copy of {}): {:.4g} GB/s (bytes read + written)\n", runtime::bytes_text(copy_bytes),
                      memory_gbps);
  return text;
}

nlohmann::json CeilingsLookup::to_json() const {
  nlohmann::json j = ceilings.to_json();
  j["file"] = file.string();
  j["measured_now"] = measured;
  return j;
}

std::string CeilingsLookup::to_text() const {
  return ceilings.to_text() +
         fmt::format("  {} {}\n", measured ? "measured now; cached in" : "cached in", file.string());
}

Ceilings measure_ceilings(const CeilingsOptions& options) {
  check_options(options);
  const c10::Device device = parse_device(options.device);
  Ceilings c;
  c.host = host_name();
  c.device = device.str();
  c.device_name = device_name_of(device);
  c.torch_version = TORCH_VERSION;
  c.measured_at = utc_now();
  c.matmul_size = options.matmul_size > 0 ? options.matmul_size : (device.is_cuda() ? 8192 : 2048);
  c.copy_bytes = options.copy_bytes > 0 ? options.copy_bytes : (device.is_cuda() ? (1LL << 30) : (256LL << 20));
  const auto record = [&](const char* name, std::optional<double> tflops) {
    if (tflops) c.matmul_tflops[name] = *tflops;
  };
  {
    const Tf32Scope exact(false);
    record("fp32", matmul_tflops(device, at::kFloat, c.matmul_size, options.repeats));
  }
  if (device.is_cuda()) {
    const Tf32Scope tf32(true);
    record("tf32", matmul_tflops(device, at::kFloat, c.matmul_size, options.repeats));
  }
  record("bf16", matmul_tflops(device, at::kBFloat16, c.matmul_size, options.repeats));
  record("fp16", matmul_tflops(device, at::kHalf, c.matmul_size, options.repeats));
  c.memory_gbps = copy_gbps(device, c.copy_bytes, options.repeats);
#ifdef HONE_WITH_CUDA
  // Give the gigabytes back, so that what runs next (a profile) sees only its own memory.
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
  return c;
}

fs::path default_ceilings_dir() {
  const char* cache = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const fs::path base =
      (cache != nullptr && *cache != '\0') ? fs::path(cache) : fs::path(home != nullptr ? home : "/tmp") / ".cache";
  return base / "hone" / "ceilings";
}

fs::path ceilings_cache_path(const CeilingsOptions& options) {
  const c10::Device device = parse_device(options.device);
  const fs::path dir = options.cache_dir.empty() ? default_ceilings_dir() : options.cache_dir;
  return dir / fmt::format("{}-{}.json", host_name(), name_hash(device_name_of(device)));
}

CeilingsLookup load_or_measure_ceilings(const CeilingsOptions& options) {
  check_options(options);
  CeilingsLookup lookup;
  lookup.file = ceilings_cache_path(options);
  std::error_code ec;
  if (!options.refresh && fs::is_regular_file(lookup.file, ec)) {
    try {
      lookup.ceilings = Ceilings::from_json(nlohmann::json::parse(read_file(lookup.file)), lookup.file.string());
      return lookup;
    } catch (const std::exception& e) {
      log_warn("ignoring the cached ceilings: {}", e.what());
    }
  }
  log_info("measuring this machine's {} ceilings (matrix products, memory copy) once; cached in {}", options.device,
           lookup.file.string());
  lookup.ceilings = measure_ceilings(options);
  lookup.measured = true;
  write_file_atomic(lookup.file, lookup.ceilings.to_json().dump(2) + "\n");
  return lookup;
}

}  // namespace hone::profile
