#pragma once
/// @file LibTorch's Kineto profiler (torch/csrc/autograd/profiler_kineto.h, built into the wheel's
/// libtorch_cpu) run over a few steps of the calling thread, its event tree turned into plain
/// records: every ATen op call with its input shapes, the storages it read, its CPU time, the
/// device time of the kernels it launched, the memory it allocated and its FLOPs; and a device
/// summary (kernels, copies, launch calls). Optionally it writes the Chrome trace.
///
/// Only src/profile/kineto_trace.cpp includes Kineto's internal headers (the event tree lives in
/// torch/csrc/profiler/collection.h); everything else sees the records below.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace hone::profile {

/// One ATen op call inside a profiled step.
struct TracedOp {
  std::string name;  ///< "aten::addmm"
  /// Per input: a tensor's sizes, [] for anything else (PyTorch's "Input Dims").
  std::vector<std::vector<std::int64_t>> input_shapes;
  /// Base addresses of the storages of its tensor inputs (what it read: activations, weights).
  std::vector<std::uintptr_t> input_storages;
  std::int64_t input_bytes = 0;        ///< Σ numel × element size over its tensor inputs
  std::int64_t first_input_bytes = 0;  ///< ... of the first input (what an in-place op writes)
  int step = 0;
  int depth = 0;                       ///< 0: called by the model's code; 1: called by a depth-0 op; ...
  std::int64_t start_ns = 0;           ///< CPU clock
  std::int64_t cpu_ns = 0;             ///< CPU wall time, nested ops included
  std::int64_t self_cpu_ns = 0;        ///< minus the nested ops' time
  std::int64_t device_ns = 0;          ///< kernels, copies and fills it launched, nested ops' included
  std::int64_t self_device_ns = 0;     ///< ... launched by itself, not by a nested op
  std::int64_t device_activities = 0;  ///< kernels + copies + fills, nested ops' included
  std::int64_t allocated_bytes = 0;    ///< Σ allocations while it ran (nested ops' included)
  std::int64_t retained_bytes = 0;     ///< allocated minus freed while it ran: its outputs, roughly
  /// FLOPs by profile::op_flops (flop_counter.h): its own when it is a counted op, else those of
  /// the outermost counted ops nested in it.
  std::int64_t flops = 0;
};

/// A step's CPU interval (it ends after the device synchronization the caller does inside it).
struct TracedStep {
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
};

/// Device activity over all steps (zero without CUDA).
struct DeviceSummary {
  std::int64_t kernels = 0;
  std::int64_t kernel_ns = 0;
  std::int64_t memcpy_count = 0;
  std::int64_t memcpy_host_device_ns = 0;  ///< host-to-device and device-to-host copies
  std::int64_t memcpy_other_ns = 0;        ///< device-to-device and peer copies
  std::int64_t memset_count = 0;
  std::int64_t memset_ns = 0;
  std::int64_t launch_calls = 0;  ///< cudaLaunchKernel & co. (CPU side)
  std::int64_t launch_ns = 0;     ///< CPU time spent inside those calls
};

struct KinetoTrace {
  std::vector<TracedStep> steps;
  std::vector<TracedOp> ops;  ///< every depth, in call order
  DeviceSummary device;
};

/// Runs `run_step(i)` for i in [0, steps) under the Kineto profiler (CPU ops with input shapes and
/// memory events; CUDA kernels and runtime calls too when `cuda`), each inside a user scope named
/// "ProfilerStep#i", and returns the records. `run_step` should synchronize the device before it
/// returns, so that a step's interval covers its kernels. When `chrome_trace` is not empty the
/// trace is written there (temp file + rename). Throws hone::Error when a profiler is already
/// running on this thread; the profiler is stopped even when `run_step` throws.
KinetoTrace record_kineto_trace(int steps, bool cuda, const std::function<void(int step)>& run_step,
                                const std::filesystem::path& chrome_trace = {});

}  // namespace hone::profile
