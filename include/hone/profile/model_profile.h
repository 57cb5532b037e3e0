#pragma once
/// @file `hone profile`: where a model's forward pass spends its time. A few forward passes of a
/// zoo model or a trained run (runtime::ModelTarget, random inputs) run under LibTorch's Kineto
/// profiler (profile/kineto_trace.h); the report holds the top ops by self time, a breakdown by
/// module, memory, CUDA kernel and copy activity, and a roofline against this machine's measured
/// ceilings (profile/ceilings.h).
///
/// Modules. A LibTorch module's forward() cannot be hooked from outside, so ops are attributed to
/// modules by what they read: the model's top-level children (containers such as Sequential and
/// ModuleList expanded one level: "features.3", "layers.0") that own parameters or buffers are the
/// units. An op called by the model's code (depth 0) that reads a parameter or buffer of a unit
/// belongs to that unit; one that reads none (activations, residual adds, pooling, attention)
/// belongs to the unit of the op before it; ops before the first parameter read are
/// "(unattributed)". Parameters of the model itself (not of a child) form the unit "(model)".
/// Parameter-free children (ReLU, Dropout) therefore have no row: their work lands in the unit
/// before them. docs/profile.md discusses what this gets right and where it errs.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "hone/profile/ceilings.h"
#include "hone/runtime/statistics.h"

namespace hone::profile {

struct ProfileOptions {
  std::string device = "cpu";
  std::int64_t batch = 1;
  std::string dtype = "fp32";  ///< fp32 | fp16 | bf16: weights and float inputs
  bool amp = false;            ///< fp32 weights, autocast to bf16
  bool channels_last = false;
  std::int64_t seq_len = 128;  ///< tokens per sample for text models
  int warmup = 5;              ///< unprofiled forward passes first
  int steps = 10;              ///< profiled forward passes
  int top = 20;                ///< rows of the op table (0: all)
  std::string trace;           ///< write a Chrome trace here ("" : none)
  bool roofline = true;        ///< read (or measure) the ceilings and compare
  CeilingsOptions ceilings;    ///< where they are cached, and the sizes if they must be measured
};

/// Ops grouped by name and input shapes (PyTorch's key_averages(group_by_input_shape=True)).
/// Times are per forward pass (mean over the steps).
struct OpStats {
  std::string name;
  std::vector<std::vector<std::int64_t>> input_shapes;
  double calls = 0;  ///< per forward pass
  double self_cpu_us = 0;
  double cpu_total_us = 0;  ///< nested ops included
  double self_device_us = 0;
  double device_total_us = 0;
  double percent = 0;  ///< of all ops' self time (device time on CUDA, CPU time otherwise)
};

/// Achieved rates against the ceilings; zero when a figure is unknown.
struct Roofline {
  double tflops = 0;
  double gbps = 0;
  double percent_of_peak_flops = 0;
  double percent_of_peak_bandwidth = 0;
  double arithmetic_intensity = 0;  ///< FLOPs per byte moved
  std::string bound;                ///< "compute", "memory", or "" when unknown
};

/// One unit of the module breakdown, per forward pass (means over the steps).
struct ModuleStats {
  std::string name;  ///< "layers.0", "(model)", "(unattributed)"
  std::string type;  ///< the module's C++ type name ("" for the pseudo-units)
  std::int64_t parameters = 0;
  double ops = 0;        ///< depth-0 op calls attributed to it
  double cpu_ms = 0;     ///< CPU time of those ops
  double device_ms = 0;  ///< device time of their kernels (CUDA)
  double time_ms = 0;    ///< device_ms on CUDA, cpu_ms otherwise
  double percent = 0;    ///< of the step time
  std::int64_t flops = 0;
  std::int64_t bytes = 0;             ///< moved, estimated: inputs read + outputs written by ops that touch data
  std::int64_t activation_bytes = 0;  ///< memory its ops allocated (outputs and temporaries)
  Roofline roofline;
};

struct ProfileReport {
  std::string target, architecture, device, dtype = "fp32";
  bool amp = false, channels_last = false;
  std::int64_t batch = 1;
  std::vector<std::int64_t> input_shape;  ///< one sample
  std::string input_kind;                 ///< random normal / random token ids (timing only)
  std::string weights;
  int threads = 0, warmup = 0, steps = 0;
  std::int64_t parameters = 0;

  runtime::Summary step_ms;  ///< wall time of each profiled forward pass (device synchronized)
  double ops_cpu_ms = 0;     ///< CPU time inside depth-0 ops, per step
  double device_ms = 0;      ///< kernels + copies + fills, per step (CUDA)
  std::int64_t flops = 0;    ///< per forward pass
  std::int64_t bytes = 0;    ///< per forward pass, estimated as for modules
  Roofline roofline;         ///< of the whole forward pass over the mean step time

  std::vector<OpStats> ops;       ///< top ops by self time
  std::int64_t distinct_ops = 0;  ///< groups before the cut to `top`
  std::vector<ModuleStats> modules;

  std::int64_t peak_rss_bytes = 0;
  std::int64_t cuda_max_allocated_bytes = -1;  ///< during the profiled steps; -1 on the CPU
  std::int64_t cuda_max_reserved_bytes = -1;

  bool cuda = false;
  double kernels_per_step = 0;
  double kernel_ms = 0;  ///< per step
  double launch_calls_per_step = 0;
  double launch_ms = 0;              ///< CPU time in cudaLaunchKernel & co. per step: the launch overhead
  double memcpy_host_device_ms = 0;  ///< per step
  double memcpy_other_ms = 0;
  double memcpys_per_step = 0;

  bool has_ceilings = false;
  Ceilings ceilings;
  std::string ceilings_file;
  std::string peak_dtype;  ///< which matmul ceiling applies: fp32, tf32, bf16 or fp16
  std::string trace;       ///< the Chrome trace written, or ""

  nlohmann::json to_json() const;  ///< schema hone-profile/1 (docs/profile.md)
  std::string to_text() const;
};

/// Profiles `target` (a zoo name or a run directory). Throws hone::UsageError on bad options or an
/// unknown zoo name, hone::Error on a broken run directory.
ProfileReport profile_model(const std::string& target, const ProfileOptions& options);

}  // namespace hone::profile
