#include "hone/profile/model_profile.h"

#include "hone/nn/layer.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/nn/modules/container/moduledict.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>

#include "hone/core/device.h"
#include "hone/core/error.h"
#include "hone/models/model.h"
#include "hone/profile/kineto_trace.h"
#include "hone/runtime/device_probe.h"
#include "hone/runtime/forward_runner.h"
#include "hone/runtime/settings.h"
#include "hone/runtime/target.h"
#include "hone/runtime/units.h"

namespace hone::profile {
namespace {

constexpr const char* kUnattributed = "(unattributed)";

/// A row of the module breakdown and the storages (parameters, buffers) that identify its ops.
struct Unit {
  std::string name;
  std::string type;
  std::int64_t parameters = 0;
};

struct Units {
  std::vector<Unit> list;  ///< [0] is "(unattributed)"
  std::unordered_map<std::uintptr_t, std::size_t> owner_of_storage;

  /// Adds a unit for `tensors` (skipped when empty); a storage already owned keeps its owner.
  void add(std::string name, std::string type, const std::vector<at::Tensor>& parameters,
           const std::vector<at::Tensor>& buffers) {
    if (parameters.empty() && buffers.empty()) return;
    Unit unit{std::move(name), std::move(type), 0};
    for (const auto& p : parameters) unit.parameters += p.numel();
    const std::size_t index = list.size();
    list.push_back(std::move(unit));
    for (const auto* group : {&parameters, &buffers}) {
      for (const auto& t : *group) {
        if (t.defined() && t.has_storage()) {
          owner_of_storage.emplace(reinterpret_cast<std::uintptr_t>(t.storage().data()), index);
        }
      }
    }
  }
};

bool is_container(const torch::nn::Module& module) {
  return dynamic_cast<const torch::nn::SequentialImpl*>(&module) != nullptr ||
         dynamic_cast<const torch::nn::ModuleListImpl*>(&module) != nullptr ||
         dynamic_cast<const torch::nn::ModuleDictImpl*>(&module) != nullptr ||
         dynamic_cast<const nn::ChainImpl*>(&module) != nullptr;
}

/// The model's top-level children (containers expanded one level) that own tensors, and the
/// model's own parameters as "(model)". Called after prepare_model: storages are the final ones.
Units module_units(const models::Model& model) {
  Units units;
  units.list.push_back({kUnattributed, "", 0});
  units.add("(model)", model.name(), model.parameters(/*recurse=*/false), model.buffers(/*recurse=*/false));
  const auto add_module = [&](const std::string& name, const torch::nn::Module& module) {
    units.add(name, module.name(), module.parameters(), module.buffers());
  };
  for (const auto& child : model.named_children()) {
    if (is_container(*child.value())) {
      for (const auto& grandchild : child.value()->named_children()) {
        add_module(child.key() + "." + grandchild.key(), *grandchild.value());
      }
    } else {
      add_module(child.key(), *child.value());
    }
  }
  return units;
}

/// In-place ops (ATen's trailing underscore) write their first input, except a few that only change
/// its metadata.
bool writes_in_place(std::string_view name) {
  static const std::set<std::string_view> metadata_only{
      "aten::resize_",  "aten::resize_as_", "aten::as_strided_", "aten::set_",       "aten::detach_",
      "aten::squeeze_", "aten::unsqueeze_", "aten::t_",          "aten::transpose_", "aten::requires_grad_"};
  return !name.empty() && name.back() == '_' && metadata_only.count(name) == 0;
}

/// Lookups that read only the rows they return from their first input (an embedding table).
bool gathers_rows(std::string_view name) {
  static const std::set<std::string_view> lookups{"aten::embedding", "aten::embedding_bag", "aten::index_select",
                                                  "aten::gather",    "aten::index",         "aten::take"};
  return lookups.count(name) > 0;
}

/// Bytes an op moves, estimated: what it read plus what it wrote (the outputs it allocated and kept,
/// or for an in-place op its first input). A lookup reads as much of its table as it writes. Other
/// ops that allocate nothing and launch nothing are taken as views and metadata (reshape,
/// transpose, slice...): they move nothing.
std::int64_t bytes_moved(const TracedOp& op) {
  if (writes_in_place(op.name)) return op.input_bytes + op.first_input_bytes + op.retained_bytes;
  if (op.allocated_bytes <= 0 && op.device_activities <= 0) return 0;
  if (gathers_rows(op.name)) return op.input_bytes - op.first_input_bytes + 2 * op.retained_bytes;
  return op.input_bytes + op.retained_bytes;
}

std::vector<ModuleStats> attribute_to_modules(const KinetoTrace& trace, const Units& units, bool cuda) {
  struct Sums {
    std::int64_t ops = 0, cpu_ns = 0, device_ns = 0, flops = 0, bytes = 0, allocated = 0;
  };
  std::vector<Sums> sums(units.list.size());
  std::size_t current = 0;
  int step = -1;
  for (const TracedOp& op : trace.ops) {
    if (op.depth != 0) continue;
    if (op.step != step) {
      step = op.step;
      current = 0;
    }
    for (const std::uintptr_t storage : op.input_storages) {
      const auto it = units.owner_of_storage.find(storage);
      if (it != units.owner_of_storage.end()) {
        current = it->second;
        break;
      }
    }
    Sums& s = sums[current];
    ++s.ops;
    s.cpu_ns += op.cpu_ns;
    s.device_ns += op.device_ns;
    s.flops += op.flops;
    s.bytes += bytes_moved(op);
    s.allocated += op.allocated_bytes;
  }
  const double steps = static_cast<double>(std::max<std::size_t>(trace.steps.size(), 1));
  std::vector<ModuleStats> modules;
  for (std::size_t i = 0; i < units.list.size(); ++i) {
    const Sums& s = sums[i];
    if (i == 0 && s.ops == 0) continue;  // nothing ran before the first parameter read
    ModuleStats m;
    m.name = units.list[i].name;
    m.type = units.list[i].type;
    m.parameters = units.list[i].parameters;
    m.ops = static_cast<double>(s.ops) / steps;
    m.cpu_ms = static_cast<double>(s.cpu_ns) / steps / 1e6;
    m.device_ms = static_cast<double>(s.device_ns) / steps / 1e6;
    m.time_ms = cuda ? m.device_ms : m.cpu_ms;
    m.flops = static_cast<std::int64_t>(static_cast<double>(s.flops) / steps + 0.5);
    m.bytes = static_cast<std::int64_t>(static_cast<double>(s.bytes) / steps + 0.5);
    m.activation_bytes = static_cast<std::int64_t>(static_cast<double>(s.allocated) / steps + 0.5);
    modules.push_back(std::move(m));
  }
  return modules;
}

/// Ops grouped by name and input shapes, per forward pass, sorted by self time.
std::vector<OpStats> aggregate_ops(const KinetoTrace& trace, bool cuda) {
  std::map<std::pair<std::string, std::vector<std::vector<std::int64_t>>>, OpStats> groups;
  for (const TracedOp& op : trace.ops) {
    OpStats& g = groups[{op.name, op.input_shapes}];
    g.calls += 1;
    g.self_cpu_us += static_cast<double>(op.self_cpu_ns) / 1e3;
    g.cpu_total_us += static_cast<double>(op.cpu_ns) / 1e3;
    g.self_device_us += static_cast<double>(op.self_device_ns) / 1e3;
    g.device_total_us += static_cast<double>(op.device_ns) / 1e3;
  }
  const double steps = static_cast<double>(std::max<std::size_t>(trace.steps.size(), 1));
  const auto self = [cuda](const OpStats& s) { return cuda ? s.self_device_us : s.self_cpu_us; };
  std::vector<OpStats> ops;
  double total_self = 0;
  for (auto& [key, g] : groups) {
    g.name = key.first;
    g.input_shapes = key.second;
    for (double* v : {&g.calls, &g.self_cpu_us, &g.cpu_total_us, &g.self_device_us, &g.device_total_us}) *v /= steps;
    total_self += self(g);
    ops.push_back(std::move(g));
  }
  for (auto& g : ops) g.percent = total_self > 0 ? 100.0 * self(g) / total_self : 0.0;
  std::stable_sort(ops.begin(), ops.end(), [&](const OpStats& a, const OpStats& b) {
    return self(a) != self(b) ? self(a) > self(b) : a.self_cpu_us > b.self_cpu_us;
  });
  return ops;
}

Roofline roofline_of(double flops, double bytes, double seconds, const Ceilings* ceilings,
                     const std::string& peak_dtype) {
  Roofline r;
  if (!(seconds > 0)) return r;
  r.tflops = flops / seconds / 1e12;
  r.gbps = bytes / seconds / 1e9;
  if (bytes > 0) r.arithmetic_intensity = flops / bytes;
  if (ceilings == nullptr) return r;
  const double peak = ceilings->peak_tflops(peak_dtype);
  const double bandwidth = ceilings->memory_gbps;
  if (peak > 0) r.percent_of_peak_flops = 100.0 * r.tflops / peak;
  if (bandwidth > 0) r.percent_of_peak_bandwidth = 100.0 * r.gbps / bandwidth;
  if (peak > 0 && bandwidth > 0 && bytes > 0) {
    const double ridge = peak * 1e12 / (bandwidth * 1e9);  // FLOPs per byte where the roofs meet
    r.bound = r.arithmetic_intensity >= ridge ? "compute" : "memory";
  }
  return r;
}

/// The matmul ceiling that applies to the work: the dtype the products run in.
std::string peak_dtype_for(const runtime::RunSettings& settings) {
  if (settings.amp) return "bf16";
  if (settings.dtype == at::kHalf) return "fp16";
  if (settings.dtype == at::kBFloat16) return "bf16";
  return settings.device.is_cuda() && at::globalContext().allowTF32CuBLAS() ? "tf32" : "fp32";
}

void check_options(const ProfileOptions& options) {
  if (options.warmup < 0 || options.steps < 1 || options.batch < 1 || options.top < 0) {
    fail_usage("profile needs warmup >= 0, steps >= 1, batch >= 1 and top >= 0, got {}, {}, {} and {}", options.warmup,
               options.steps, options.batch, options.top);
  }
  if (options.seq_len < 1) fail_usage_option("seq_len", "sequence length must be >= 1, got {}", options.seq_len);
}

}  // namespace

ProfileReport profile_model(const std::string& target, const ProfileOptions& options) {
  check_options(options);
  const runtime::RunSettings settings =
      runtime::make_run_settings(options.device, options.dtype, options.amp, options.channels_last, options.seq_len);
  const bool cuda = settings.device.is_cuda();
  runtime::ModelTarget loaded = runtime::load_target(target, options.seq_len);
  // Measured (when not cached) before the model runs, so that the profile sees a settled machine.
  std::optional<CeilingsLookup> ceilings;
  if (options.roofline) {
    CeilingsOptions ceilings_options = options.ceilings;
    ceilings_options.device = settings.device.str();
    ceilings = load_or_measure_ceilings(ceilings_options);
  }
  models::Model& model = *loaded.model;
  runtime::prepare_model(model, settings);
  const Units units = module_units(model);

  runtime::ForwardRunner runner(model, runtime::make_random_input(loaded.info, options.batch, settings), settings,
                                /*cuda_graph=*/false, options.warmup);
  runtime::synchronize(settings.device);
  runtime::reset_peak_memory(settings.device);
  const KinetoTrace trace = record_kineto_trace(
      options.steps, cuda,
      [&](int /*step*/) {
        runner.run();
        runtime::synchronize(settings.device);
      },
      options.trace);

  ProfileReport report;
  report.target = target;
  report.architecture = model.architecture();
  report.device = settings.device.str();
  report.dtype = dtype_name(settings.dtype);
  report.amp = options.amp;
  report.channels_last = options.channels_last;
  report.batch = options.batch;
  report.input_shape = loaded.info.input_shape;
  report.input_kind = loaded.info.vocab_size > 0 ? "random token ids (timing only)" : "random normal (timing only)";
  report.weights = loaded.weights;
  report.threads = at::get_num_threads();
  report.warmup = options.warmup;
  report.steps = options.steps;
  report.parameters = models::count_parameters(model);
  report.trace = options.trace;
  report.cuda = cuda;
  report.peak_rss_bytes = runtime::peak_rss_bytes();
  report.cuda_max_allocated_bytes = runtime::peak_memory(settings.device);
  report.cuda_max_reserved_bytes = runtime::peak_reserved_memory(settings.device);

  const double steps = static_cast<double>(trace.steps.size());
  std::vector<double> step_ms;
  for (const TracedStep& s : trace.steps) step_ms.push_back(static_cast<double>(s.end_ns - s.start_ns) / 1e6);
  report.step_ms = runtime::summarize(step_ms);

  std::int64_t ops_cpu_ns = 0, flops = 0, bytes = 0;
  for (const TracedOp& op : trace.ops) {
    if (op.depth != 0) continue;
    ops_cpu_ns += op.cpu_ns;
    flops += op.flops;
    bytes += bytes_moved(op);
  }
  report.ops_cpu_ms = static_cast<double>(ops_cpu_ns) / steps / 1e6;
  report.flops = static_cast<std::int64_t>(static_cast<double>(flops) / steps + 0.5);
  report.bytes = static_cast<std::int64_t>(static_cast<double>(bytes) / steps + 0.5);

  const DeviceSummary& device = trace.device;
  const double device_ns =
      static_cast<double>(device.kernel_ns + device.memcpy_host_device_ns + device.memcpy_other_ns + device.memset_ns);
  report.device_ms = device_ns / steps / 1e6;
  report.kernels_per_step = static_cast<double>(device.kernels) / steps;
  report.kernel_ms = static_cast<double>(device.kernel_ns) / steps / 1e6;
  report.launch_calls_per_step = static_cast<double>(device.launch_calls) / steps;
  report.launch_ms = static_cast<double>(device.launch_ns) / steps / 1e6;
  report.memcpy_host_device_ms = static_cast<double>(device.memcpy_host_device_ns) / steps / 1e6;
  report.memcpy_other_ms = static_cast<double>(device.memcpy_other_ns) / steps / 1e6;
  report.memcpys_per_step = static_cast<double>(device.memcpy_count) / steps;

  report.ops = aggregate_ops(trace, cuda);
  report.distinct_ops = static_cast<std::int64_t>(report.ops.size());
  if (options.top > 0 && report.ops.size() > static_cast<std::size_t>(options.top)) report.ops.resize(options.top);

  report.peak_dtype = peak_dtype_for(settings);
  const Ceilings* roof = nullptr;
  if (ceilings) {
    report.has_ceilings = true;
    report.ceilings = ceilings->ceilings;
    report.ceilings_file = ceilings->file.string();
    roof = &report.ceilings;
  }
  report.modules = attribute_to_modules(trace, units, cuda);
  for (ModuleStats& m : report.modules) {
    m.percent = report.step_ms.mean > 0 ? 100.0 * m.time_ms / report.step_ms.mean : 0.0;
    m.roofline = roofline_of(static_cast<double>(m.flops), static_cast<double>(m.bytes), m.time_ms / 1e3, roof,
                             report.peak_dtype);
  }
  report.roofline = roofline_of(static_cast<double>(report.flops), static_cast<double>(report.bytes),
                                report.step_ms.mean / 1e3, roof, report.peak_dtype);
  return report;
}

}  // namespace hone::profile
