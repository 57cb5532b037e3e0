// ProfileReport as JSON (schema hone-profile/1, docs/profile.md) and as text.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "hone/profile/model_profile.h"
#include "hone/runtime/device_probe.h"
#include "hone/runtime/forward_runner.h"
#include "hone/runtime/settings.h"
#include "hone/runtime/target.h"
#include "hone/runtime/units.h"

namespace hone::profile {
namespace {

constexpr const char* kSchema = "hone-profile/1";

nlohmann::json roofline_json(const Roofline& r, bool has_ceilings) {
  const auto or_null = [has_ceilings](double v) { return has_ceilings ? nlohmann::json(v) : nlohmann::json(); };
  return {{"tflops", r.tflops},
          {"gbps", r.gbps},
          {"arithmetic_intensity", r.arithmetic_intensity},
          {"percent_of_peak_flops", or_null(r.percent_of_peak_flops)},
          {"percent_of_peak_bandwidth", or_null(r.percent_of_peak_bandwidth)},
          {"bound", r.bound.empty() ? nlohmann::json() : nlohmann::json(r.bound)}};
}

std::string shapes_text(const std::vector<std::vector<std::int64_t>>& shapes) {
  std::string text = "[";
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    if (i > 0) text += ", ";
    text += fmt::format("[{}]", fmt::join(shapes[i], ", "));
  }
  return text + "]";
}

/// 74400000 -> "74.4M"; small values stay plain.
std::string si(double value) {
  const char* units[] = {"", "K", "M", "G", "T", "P"};
  int unit = 0;
  while (value >= 1000.0 && unit < 5) {
    value /= 1000.0;
    ++unit;
  }
  return fmt::format("{:.3g}{}", value, units[unit]);
}

std::string percent_text(double percent, bool known) { return known ? fmt::format("{:.1f}%", percent) : "-"; }

std::string settings_text(const ProfileReport& r) {
  std::string text = r.dtype;
  if (r.amp) text += " +amp(bf16)";
  if (r.channels_last) text += " channels-last";
  return text;
}

}  // namespace

nlohmann::json ProfileReport::to_json() const {
  nlohmann::json ops_json = nlohmann::json::array();
  for (const OpStats& op : ops) {
    ops_json.push_back({{"name", op.name},
                        {"input_shapes", op.input_shapes},
                        {"calls", op.calls},
                        {"self_cpu_us", op.self_cpu_us},
                        {"cpu_total_us", op.cpu_total_us},
                        {"self_device_us", op.self_device_us},
                        {"device_total_us", op.device_total_us},
                        {"percent", op.percent}});
  }
  nlohmann::json modules_json = nlohmann::json::array();
  for (const ModuleStats& m : modules) {
    modules_json.push_back({{"name", m.name},
                            {"type", m.type},
                            {"parameters", m.parameters},
                            {"ops", m.ops},
                            {"cpu_ms", m.cpu_ms},
                            {"device_ms", m.device_ms},
                            {"time_ms", m.time_ms},
                            {"percent", m.percent},
                            {"flops", m.flops},
                            {"bytes", m.bytes},
                            {"activation_bytes", m.activation_bytes},
                            {"roofline", roofline_json(m.roofline, has_ceilings)}});
  }
  nlohmann::json roofline_all = roofline_json(roofline, has_ceilings);
  roofline_all["peak_dtype"] = peak_dtype;
  roofline_all["ceilings"] = has_ceilings ? nlohmann::json{{"file", ceilings_file},
                                                           {"device_name", ceilings.device_name},
                                                           {"measured_at", ceilings.measured_at},
                                                           {"matmul_tflops", ceilings.matmul_tflops},
                                                           {"memory_gbps", ceilings.memory_gbps}}
                                          : nlohmann::json();
  nlohmann::json cuda_json;
  if (cuda) {
    cuda_json = {{"kernels_per_step", kernels_per_step},
                 {"kernel_ms", kernel_ms},
                 {"launch_calls_per_step", launch_calls_per_step},
                 {"launch_ms", launch_ms},
                 {"memcpys_per_step", memcpys_per_step},
                 {"memcpy_host_device_ms", memcpy_host_device_ms},
                 {"memcpy_other_ms", memcpy_other_ms}};
  }
  return {{"schema", kSchema},
          {"target", target},
          {"architecture", architecture},
          {"device", device},
          {"dtype", dtype},
          {"amp", amp},
          {"channels_last", channels_last},
          {"batch", batch},
          {"input", {{"shape", input_shape}, {"kind", input_kind}}},
          {"weights", weights},
          {"threads", threads},
          {"warmup", warmup},
          {"steps", steps},
          {"parameters", parameters},
          {"step_ms", runtime::to_json(step_ms)},
          {"ops_cpu_ms", ops_cpu_ms},
          {"device_ms", cuda ? nlohmann::json(device_ms) : nlohmann::json()},
          {"flops", flops},
          {"bytes", bytes},
          {"roofline", roofline_all},
          {"ops", ops_json},
          {"distinct_ops", distinct_ops},
          {"attribution", "parameter ownership, parameter-free ops to the module before them (docs/profile.md)"},
          {"modules", modules_json},
          {"memory",
           {{"peak_rss_bytes", peak_rss_bytes},
            {"cuda_max_allocated_bytes", cuda_max_allocated_bytes},
            {"cuda_max_reserved_bytes", cuda_max_reserved_bytes}}},
          {"cuda", cuda_json},
          {"trace", trace.empty() ? nlohmann::json() : nlohmann::json(trace)}};
}

std::string ProfileReport::to_text() const {
  std::string out = fmt::format("{} ({}) on {}, {}, batch {}, input [{}] {}\n", target, architecture, device,
                                settings_text(*this), batch, fmt::join(input_shape, ","), input_kind);
  out += fmt::format("weights: {}; {} parameters; {} threads; {} profiled forward passes after {} warm-up\n", weights,
                     parameters, threads, steps, warmup);
  out += fmt::format("step: {:.3f} ms mean, {:.3f} p50, {:.3f} min; ops {:.3f} ms CPU", step_ms.mean, step_ms.p50,
                     step_ms.min, ops_cpu_ms);
  if (cuda) out += fmt::format(", device {:.3f} ms", device_ms);
  out += "\n";

  const bool on_device = cuda;
  out += fmt::format("\ntop ops by self {} time (per forward pass; {} of {} op/shape groups)\n",
                     on_device ? "device" : "CPU", ops.size(), distinct_ops);
  std::size_t name_width = 20;
  for (const OpStats& op : ops) name_width = std::max(name_width, op.name.size());
  out += fmt::format("  {:<{}} {:>6} {:>11} {:>11}", "op", name_width, "calls", "self CPU us", "CPU tot us");
  if (on_device) out += fmt::format(" {:>11} {:>11}", "self dev us", "dev tot us");
  out += fmt::format(" {:>6}  {}\n", "%", "input shapes");
  for (const OpStats& op : ops) {
    out += fmt::format("  {:<{}} {:>6g} {:>11.1f} {:>11.1f}", op.name, name_width, op.calls, op.self_cpu_us,
                       op.cpu_total_us);
    if (on_device) out += fmt::format(" {:>11.1f} {:>11.1f}", op.self_device_us, op.device_total_us);
    out += fmt::format(" {:>5.1f}%  {}\n", op.percent, shapes_text(op.input_shapes));
  }

  out += fmt::format("\nmodules (per forward pass; ops go to the module whose parameters they read)\n");
  std::size_t module_width = 14;
  for (const ModuleStats& m : modules) module_width = std::max(module_width, m.name.size());
  out += fmt::format("  {:<{}} {:>10} {:>5} {:>9} {:>6} {:>8} {:>10} {:>10} {:>9} {:>7} {:>9} {:>7}  {}\n", "module",
                     module_width, "params", "ops", "time ms", "%", "FLOPs", "moved", "activ.", "TFLOP/s", "%peak",
                     "GB/s", "%peak", "bound");
  for (const ModuleStats& m : modules) {
    out +=
        fmt::format("  {:<{}} {:>10} {:>5g} {:>9.3f} {:>5.1f}% {:>8} {:>10} {:>10} {:>9.4f} {:>7} {:>9.2f} {:>7}  {}\n",
                    m.name, module_width, m.parameters, m.ops, m.time_ms, m.percent, si(static_cast<double>(m.flops)),
                    runtime::bytes_text(m.bytes), runtime::bytes_text(m.activation_bytes), m.roofline.tflops,
                    percent_text(m.roofline.percent_of_peak_flops, has_ceilings), m.roofline.gbps,
                    percent_text(m.roofline.percent_of_peak_bandwidth, has_ceilings),
                    m.roofline.bound.empty() ? "-" : m.roofline.bound);
  }

  out += fmt::format("\nwhole forward pass: {} FLOPs, {} moved (estimate), {:.4f} TFLOP/s",
                     si(static_cast<double>(flops)), runtime::bytes_text(bytes), roofline.tflops);
  if (has_ceilings) {
    out += fmt::format(" = {:.1f}% of {} peak {:.3g} TFLOP/s; {:.2f} GB/s = {:.1f}% of {:.4g} GB/s; {}-bound\n",
                       roofline.percent_of_peak_flops, peak_dtype, ceilings.peak_tflops(peak_dtype), roofline.gbps,
                       roofline.percent_of_peak_bandwidth, ceilings.memory_gbps,
                       roofline.bound.empty() ? "?" : roofline.bound);
    out += fmt::format("ceilings: {} (measured {})\n", ceilings_file, ceilings.measured_at);
  } else {
    out += fmt::format(", {:.2f} GB/s (no ceilings)\n", roofline.gbps);
  }

  out += fmt::format("memory: peak RSS {}", runtime::bytes_text(peak_rss_bytes));
  if (cuda) {
    out += fmt::format("; CUDA max allocated {}, max reserved {}", runtime::bytes_text(cuda_max_allocated_bytes),
                       runtime::bytes_text(cuda_max_reserved_bytes));
  }
  out += "\n";
  if (cuda) {
    out += fmt::format(
        "CUDA per step: {:g} kernels, {:.3f} ms in kernels; {:g} launch calls, {:.3f} ms CPU in them (launch "
        "overhead); {:g} copies, {:.3f} ms host<->device, {:.3f} ms other\n",
        kernels_per_step, kernel_ms, launch_calls_per_step, launch_ms, memcpys_per_step, memcpy_host_device_ms,
        memcpy_other_ms);
  }
  if (!trace.empty()) out += fmt::format("Chrome trace: {} (chrome://tracing or ui.perfetto.dev)\n", trace);
  return out;
}

}  // namespace hone::profile
