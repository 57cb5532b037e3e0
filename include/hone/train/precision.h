#pragma once
/// @file Training precision: what the matmuls and convolutions compute in, with fp32 master
/// weights always. An RAII scope turns it on and restores every piece of state it touched.
///
///   fp32  no autocast, TF32 off (bit-for-bit fp32 products)
///   tf32  fp32 tensors, TF32 tensor-core products on CUDA (cuBLAS + cuDNN)
///   bf16  autocast to bf16 (CUDA, or a CPU with AVX512-BF16/AMX); no loss scaling needed
///   fp16  autocast to fp16 on CUDA, with dynamic loss scaling (hone/train/grad_scaler.h)
///
///   train::PrecisionScope scope(train::Precision::kBf16, device);
///   at::Tensor loss = model->forward(x) ...;   // matmuls in bf16, weights stay fp32
///   // on exit: autocast state restored and its cache of low-precision weight copies cleared,
///   // so the next step never reuses a stale copy of a weight the optimizer has updated
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace hone::train {

enum class Precision { kFp32, kTf32, kBf16, kFp16 };

/// "fp32", "tf32", "bf16", "fp16" -> Precision; anything else is a UsageError naming the option.
Precision parse_precision(const std::string& name);
std::string precision_name(Precision precision);
/// Whether this precision needs loss scaling (fp16).
bool needs_loss_scaling(Precision precision);
/// Throws hone::UsageError naming the option "precision" and what would work when `device`
/// cannot train in `precision` (tf32/fp16 on the CPU; bf16 on a CPU without native bf16).
void check_precision_supported(Precision precision, const c10::Device& device);

/// While alive: autocast on for the device in the precision's dtype (bf16/fp16), TF32 on or off
/// for CUDA products (tf32 / fp32), everything restored after; the autocast cache is cleared
/// when the outermost autocast scope closes.
class PrecisionScope {
 public:
  PrecisionScope(Precision precision, const c10::Device& device);
  ~PrecisionScope();
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  bool autocast_ = false;
  c10::DeviceType device_type_ = c10::kCPU;
  bool was_enabled_ = false;
  c10::ScalarType was_dtype_ = c10::kBFloat16;
  bool cuda_ = false;
  bool was_tf32_cublas_ = false;
  bool was_tf32_cudnn_ = false;
};

}  // namespace hone::train
