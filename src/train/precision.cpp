#include "hone/train/precision.h"

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>

#include "hone/core/error.h"
#include "hone/core/system_info.h"

namespace hone::train {

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "tf32") return Precision::kTf32;
  if (name == "bf16") return Precision::kBf16;
  if (name == "fp16") return Precision::kFp16;
  fail_usage_option("precision", "unknown precision '{}'; valid: fp32, tf32, bf16, fp16", name);
}

std::string precision_name(Precision precision) {
  switch (precision) {
    case Precision::kFp32:
      return "fp32";
    case Precision::kTf32:
      return "tf32";
    case Precision::kBf16:
      return "bf16";
    case Precision::kFp16:
      return "fp16";
  }
  return "?";
}

bool needs_loss_scaling(Precision precision) { return precision == Precision::kFp16; }

void check_precision_supported(Precision precision, const c10::Device& device) {
  if (device.is_cuda()) return;
  if (precision == Precision::kTf32)
    fail_usage_option("precision",
                      "tf32 is a CUDA tensor-core precision; on the CPU train in fp32 (or bf16 where the "
                      "CPU has AVX512-BF16/AMX)");
  if (precision == Precision::kFp16)
    fail_usage_option("precision",
                      "fp16 training needs a CUDA device; on the CPU train in fp32 (or bf16 where the "
                      "CPU has AVX512-BF16/AMX)");
  if (precision == Precision::kBf16 && !cpu_has_native_bf16())
    fail_usage_option("precision",
                      "this CPU has no AVX512-BF16 or AMX, so bf16 would run emulated and slower than "
                      "fp32; train in fp32 here");
}

PrecisionScope::PrecisionScope(Precision precision, const c10::Device& device)
    : device_type_(device.type()), cuda_(device.is_cuda()) {
  if (cuda_) {
    auto& context = at::globalContext();
    was_tf32_cublas_ = context.allowTF32CuBLAS();
    was_tf32_cudnn_ = context.allowTF32CuDNN();
    const bool tf32 = precision == Precision::kTf32;
    context.setAllowTF32CuBLAS(tf32);
    context.setAllowTF32CuDNN(tf32);
  }
  autocast_ = precision == Precision::kBf16 || precision == Precision::kFp16;
  if (!autocast_) return;
  was_enabled_ = at::autocast::is_autocast_enabled(device_type_);
  was_dtype_ = at::autocast::get_autocast_dtype(device_type_);
  at::autocast::set_autocast_dtype(device_type_, precision == Precision::kBf16 ? at::kBFloat16 : at::kHalf);
  at::autocast::set_autocast_enabled(device_type_, true);
  at::autocast::increment_nesting();
}

PrecisionScope::~PrecisionScope() {
  if (autocast_) {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(device_type_, was_enabled_);
    at::autocast::set_autocast_dtype(device_type_, was_dtype_);
  }
  if (cuda_) {
    auto& context = at::globalContext();
    context.setAllowTF32CuBLAS(was_tf32_cublas_);
    context.setAllowTF32CuDNN(was_tf32_cudnn_);
  }
}

}  // namespace hone::train
