// Kineto's event tree (torch::profiler::impl::Result, an internal but exported API of libtorch)
// read into hone's plain records. Built with the wheel's include/kineto and USE_KINETO, as torch
// itself was (src/CMakeLists.txt).
#include "hone/profile/kineto_trace.h"

#include <ATen/record_function.h>
#include <c10/core/ScalarType.h>
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/csrc/profiler/collection.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <type_traits>
#include <variant>

#include "hone/core/device.h"
#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "hone/profile/flop_counter.h"

namespace hone::profile {
namespace {

namespace kineto = torch::autograd::profiler;
namespace impl = torch::profiler::impl;
using impl::Result;
using TorchOpFields = impl::ExtraFields<impl::EventType::TorchOp>;
using AllocationFields = impl::ExtraFields<impl::EventType::Allocation>;
using KinetoFields = impl::ExtraFields<impl::EventType::Kineto>;

constexpr std::string_view kStepPrefix = "ProfilerStep#";

/// Stops the profiler when a step throws (the result is dropped).
class ProfilerGuard {
 public:
  ProfilerGuard() = default;
  ~ProfilerGuard() {
    if (!active_) return;
    try {
      kineto::disableProfiler();
    } catch (...) {  // already failing; keep the first error
    }
  }
  ProfilerGuard(const ProfilerGuard&) = delete;
  ProfilerGuard& operator=(const ProfilerGuard&) = delete;
  std::unique_ptr<kineto::ProfilerResult> stop() {
    active_ = false;
    return kineto::disableProfiler();
  }

 private:
  bool active_ = true;
};

std::int64_t duration_ns(const Result& node) {
  return std::max<std::int64_t>(node.endTimeNS() - node.start_time_ns_, 0);
}

std::int64_t tensor_bytes(const impl::TensorMetadata& tensor) {
  if (tensor.dtype_ == c10::ScalarType::Undefined) return 0;
  std::int64_t numel = 1;
  for (const std::int64_t size : tensor.sizes_) numel *= size;
  return numel * static_cast<std::int64_t>(c10::elementSize(tensor.dtype_));
}

std::optional<std::vector<std::int64_t>> int_list(const c10::IValue& value) {
  if (value.isIntList()) return value.toIntVector();
  if (!value.isList()) return std::nullopt;
  std::vector<std::int64_t> ints;
  for (const c10::IValue& item : value.toListRef()) {
    if (!item.isInt()) return std::nullopt;
    ints.push_back(item.toInt());
  }
  return ints;
}

/// The op's arguments as the FLOP formulas read them: tensors' sizes from the recorded inputs,
/// int lists (stride, padding...) from the recorded concrete inputs.
std::vector<OpArgument> arguments_of(const TorchOpFields& op) {
  std::vector<OpArgument> args(op.inputs_.size());
  for (std::size_t i = 0; i < op.inputs_.size(); ++i) {
    if (const auto* tensor = std::get_if<impl::TensorMetadata>(&op.inputs_[i])) {
      args[i].sizes = tensor->sizes_;
    } else if (const auto* value = std::get_if<c10::IValue>(&op.inputs_[i])) {
      if (value->isBool()) args[i].flag = value->toBool();
      args[i].ints = int_list(*value);
    }
    if (i < op.concrete_inputs_.size() && !args[i].ints) {
      if (const auto* value = std::get_if<c10::IValue>(&op.concrete_inputs_[i])) args[i].ints = int_list(*value);
    }
  }
  return args;
}

/// What a subtree of the event tree adds to the op that holds it.
struct Totals {
  std::int64_t nested_op_cpu_ns = 0;     ///< CPU time of the ops directly below
  std::int64_t device_ns = 0;            ///< all device activity below
  std::int64_t nested_op_device_ns = 0;  ///< ... of which the ops below launched
  std::int64_t device_activities = 0;
  std::int64_t allocated_bytes = 0;
  std::int64_t retained_bytes = 0;  ///< allocations minus frees
  std::int64_t flops = 0;

  void add_op(const TracedOp& op, std::int64_t retained) {
    nested_op_cpu_ns += op.cpu_ns;
    device_ns += op.device_ns;
    nested_op_device_ns += op.device_ns;
    device_activities += op.device_activities;
    allocated_bytes += op.allocated_bytes;
    retained_bytes += retained;
    flops += op.flops;
  }
  void add_transparent(const Totals& inner) {  // a runtime call or other non-op node: its content is ours
    device_ns += inner.device_ns;
    nested_op_device_ns += inner.nested_op_device_ns;
    nested_op_cpu_ns += inner.nested_op_cpu_ns;
    device_activities += inner.device_activities;
    allocated_bytes += inner.allocated_bytes;
    retained_bytes += inner.retained_bytes;
    flops += inner.flops;
  }
};

class TreeReader {
 public:
  explicit TreeReader(KinetoTrace& trace) : trace_(trace) {}

  void read_step(const Result& step_root, int step) {
    trace_.steps.push_back({step_root.start_time_ns_, step_root.endTimeNS()});
    read_children(step_root, step, 0, false);
  }

  /// A device activity that Kineto could not link to the op that launched it.
  void read_unlinked(const Result& root) {
    Totals ignored;
    read_node(root, 0, 0, false, ignored);
  }

 private:
  Totals read_children(const Result& parent, int step, int depth, bool inside_counted) {
    Totals totals;
    for (const auto& child : parent.children_) {
      if (child) read_node(*child, step, depth, inside_counted, totals);
    }
    return totals;
  }

  void read_node(const Result& node, int step, int depth, bool inside_counted, Totals& totals) {
    if (const auto* op = std::get_if<TorchOpFields>(&node.extra_fields_)) {
      read_op(node, *op, step, depth, inside_counted, totals);
    } else if (const auto* allocation = std::get_if<AllocationFields>(&node.extra_fields_)) {
      totals.allocated_bytes += std::max<std::int64_t>(allocation->alloc_size_, 0);
      totals.retained_bytes += allocation->alloc_size_;
    } else if (const auto* activity = std::get_if<KinetoFields>(&node.extra_fields_)) {
      read_activity(node, *activity, totals);
      totals.add_transparent(read_children(node, step, depth, inside_counted));
    } else {
      totals.add_transparent(read_children(node, step, depth, inside_counted));
    }
  }

  void read_op(const Result& node, const TorchOpFields& fields, int step, int depth, bool inside_counted,
               Totals& totals) {
    TracedOp op;
    op.name = fields.name_;
    op.step = step;
    op.depth = depth;
    op.start_ns = node.start_time_ns_;
    op.cpu_ns = duration_ns(node);
    for (const auto& input : fields.inputs_) {
      std::vector<std::int64_t> shape;
      if (const auto* tensor = std::get_if<impl::TensorMetadata>(&input)) {
        shape = tensor->sizes_;
        op.input_storages.push_back(reinterpret_cast<std::uintptr_t>(tensor->data_.value_of()));
        op.input_bytes += tensor_bytes(*tensor);
        if (op.input_shapes.empty()) op.first_input_bytes = tensor_bytes(*tensor);
      } else if (const auto* list = std::get_if<std::vector<impl::TensorMetadata>>(&input)) {
        for (const auto& tensor : *list) {
          op.input_storages.push_back(reinterpret_cast<std::uintptr_t>(tensor.data_.value_of()));
          op.input_bytes += tensor_bytes(tensor);
        }
      }
      op.input_shapes.push_back(std::move(shape));
    }
    const bool counted = !inside_counted && is_counted_op(op.name);
    std::int64_t own_flops = 0;
    if (counted) {
      try {
        own_flops = op_flops(op.name, arguments_of(fields)).value_or(0);
      } catch (const c10::Error&) {  // an input of an unexpected kind: count nothing
      }
    }
    const std::size_t index = trace_.ops.size();
    trace_.ops.push_back(std::move(op));
    const Totals inner = read_children(node, step, depth + 1, inside_counted || counted);

    TracedOp& done = trace_.ops[index];  // the vector grew while reading the children
    done.self_cpu_ns = std::max<std::int64_t>(done.cpu_ns - inner.nested_op_cpu_ns, 0);
    done.device_ns = inner.device_ns;
    done.self_device_ns = inner.device_ns - inner.nested_op_device_ns;
    done.device_activities = inner.device_activities;
    done.allocated_bytes = inner.allocated_bytes;
    done.retained_bytes = std::max<std::int64_t>(inner.retained_bytes, 0);
    done.flops = counted ? own_flops : inner.flops;
    totals.add_op(done, inner.retained_bytes);
  }

  void read_activity(const Result& node, const KinetoFields& activity, Totals& totals) {
    using libkineto::ActivityType;
    const std::int64_t ns = duration_ns(node);
    DeviceSummary& device = trace_.device;
    switch (activity.activity_type_) {
      case ActivityType::CONCURRENT_KERNEL:
        ++device.kernels;
        device.kernel_ns += ns;
        break;
      case ActivityType::GPU_MEMCPY:
        ++device.memcpy_count;
        (activity.name_.find("HtoD") != std::string::npos || activity.name_.find("DtoH") != std::string::npos
             ? device.memcpy_host_device_ns
             : device.memcpy_other_ns) += ns;
        break;
      case ActivityType::GPU_MEMSET:
        ++device.memset_count;
        device.memset_ns += ns;
        break;
      case ActivityType::CUDA_RUNTIME:
      case ActivityType::CUDA_DRIVER:
        if (activity.name_.find("LaunchKernel") != std::string::npos) {
          ++device.launch_calls;
          device.launch_ns += ns;
        }
        return;
      default:
        return;
    }
    totals.device_ns += ns;
    ++totals.device_activities;
  }

  KinetoTrace& trace_;
};

bool is_step(const Result& node) {
  const auto* op = std::get_if<TorchOpFields>(&node.extra_fields_);
  return op != nullptr && std::string_view(op->name_).substr(0, kStepPrefix.size()) == kStepPrefix;
}

}  // namespace

KinetoTrace record_kineto_trace(int steps, bool cuda, const std::function<void(int step)>& run_step,
                                const std::filesystem::path& chrome_trace) {
  HONE_CHECK(steps >= 1, "profiling needs at least one step, got {}", steps);
  HONE_CHECK(!impl::profilerEnabled(),
             "a profiler is already running on this thread; stop it before profiling with hone");
  if (!cuda_available()) {
    // Without a GPU, libkineto logs "gpuGetDeviceCount failed" as an ERROR on every start; quiet
    // it unless the user set a level.
    ::setenv("KINETO_LOG_LEVEL", "5", /*overwrite=*/0);
  }
  const impl::ProfilerConfig config(impl::ProfilerState::KINETO, /*report_input_shapes=*/true,
                                    /*profile_memory=*/true);
  std::set<impl::ActivityType> activities{impl::ActivityType::CPU};
  if (cuda) activities.insert(impl::ActivityType::CUDA);
  kineto::prepareProfiler(config, activities);
  kineto::enableProfiler(config, activities, {at::RecordScope::FUNCTION, at::RecordScope::USER_SCOPE});
  ProfilerGuard profiler;
  for (int step = 0; step < steps; ++step) {
    const std::string name = fmt::format("{}{}", kStepPrefix, step);
    RECORD_USER_SCOPE(name);
    run_step(step);
  }
  const std::unique_ptr<kineto::ProfilerResult> result = profiler.stop();
  HONE_CHECK(result != nullptr, "the Kineto profiler returned no result");

  KinetoTrace trace;
  TreeReader reader(trace);
  std::vector<const Result*> step_roots;
  for (const auto& root : result->event_tree()) {
    if (!root) continue;
    if (is_step(*root)) {
      step_roots.push_back(root.get());
    } else if (std::holds_alternative<KinetoFields>(root->extra_fields_)) {
      reader.read_unlinked(*root);
    }
  }
  std::sort(step_roots.begin(), step_roots.end(),
            [](const Result* a, const Result* b) { return a->start_time_ns_ < b->start_time_ns_; });
  HONE_CHECK(static_cast<int>(step_roots.size()) == steps,
             "the Kineto profiler recorded {} of {} steps; is another profiler or observer interfering?",
             step_roots.size(), steps);
  for (std::size_t i = 0; i < step_roots.size(); ++i) reader.read_step(*step_roots[i], static_cast<int>(i));

  if (!chrome_trace.empty()) {
    write_file_atomic(chrome_trace, [&](const std::filesystem::path& temp) {
      result->save(temp.string());
      std::error_code ec;
      HONE_CHECK(std::filesystem::is_regular_file(temp, ec) && std::filesystem::file_size(temp, ec) > 0,
                 "the Kineto profiler could not write the Chrome trace to {}", chrome_trace.string());
    });
  }
  return trace;
}

}  // namespace hone::profile
