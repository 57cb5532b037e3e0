// `hone profile` and the ceilings on a GPU: kernels reach the ops that launched them and the modules
// those ops belong to. Skips itself where no GPU is visible.
#include <gtest/gtest.h>

#include <algorithm>

#include "hone/core/device.h"
#include "hone/profile/ceilings.h"
#include "hone/profile/model_profile.h"
#include "support/temp_dir.h"

namespace hone::profile {
namespace {

ProfileOptions cuda_options() {
  ProfileOptions options;
  options.device = "cuda";
  options.batch = 8;
  options.warmup = 2;
  options.steps = 3;
  options.top = 0;
  options.roofline = false;
  return options;
}

TEST(ProfileCudaTest, KernelsAreAttributedToOpsAndModules) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  const ProfileReport r = profile_model("cnn", cuda_options());
  ASSERT_TRUE(r.cuda);
  EXPECT_GT(r.kernels_per_step, 0.0);
  EXPECT_GT(r.kernel_ms, 0.0);
  EXPECT_GT(r.launch_calls_per_step, 0.0);
  EXPECT_GT(r.launch_ms, 0.0);
  EXPECT_GT(r.cuda_max_allocated_bytes, 0);
  EXPECT_GE(r.cuda_max_reserved_bytes, r.cuda_max_allocated_bytes);
  EXPECT_LE(r.device_ms, r.step_ms.mean * (1 + 1e-9)) << "one stream: kernels fit in the synchronized step";

  double self_device_us = 0;
  bool conv_on_device = false;
  for (const OpStats& op : r.ops) {
    EXPECT_LE(op.self_device_us, op.device_total_us + 1e-9) << op.name;
    self_device_us += op.self_device_us;
    conv_on_device = conv_on_device || (op.name == "aten::conv2d" && op.device_total_us > 0);
  }
  EXPECT_TRUE(conv_on_device);
  EXPECT_NEAR(self_device_us, r.device_ms * 1e3, 1e-3 * r.device_ms * 1e3 + 1e-6)
      << "every kernel, copy and fill is linked to the op that launched it";

  double module_device_ms = 0;
  for (const ModuleStats& m : r.modules) {
    module_device_ms += m.device_ms;
    EXPECT_EQ(m.time_ms, m.device_ms) << m.name;
    if (m.flops > 0) {
      EXPECT_GT(m.device_ms, 0.0) << m.name;
    }
  }
  EXPECT_NEAR(module_device_ms, r.device_ms, 1e-3 * r.device_ms + 1e-9);
  EXPECT_LE(module_device_ms, r.step_ms.mean * (1 + 1e-9));
}

TEST(ProfileCudaTest, CeilingsIncludeTf32AndTheRooflineUsesThem) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  testing::TempDir dir;
  CeilingsOptions small;
  small.device = "cuda";
  small.matmul_size = 1024;
  small.copy_bytes = 64 << 20;
  small.repeats = 2;
  small.cache_dir = dir.path();
  const Ceilings c = measure_ceilings(small);
  EXPECT_EQ(c.device, "cuda:0");
  for (const char* dtype : {"fp32", "tf32", "bf16", "fp16"}) EXPECT_GT(c.peak_tflops(dtype), 0.0) << dtype;
  EXPECT_GT(c.memory_gbps, 0.0);

  ProfileOptions options = cuda_options();
  options.dtype = "bf16";
  options.roofline = true;
  options.ceilings = small;
  const ProfileReport r = profile_model("transformer", options);
  ASSERT_TRUE(r.has_ceilings);
  EXPECT_EQ(r.peak_dtype, "bf16");
  EXPECT_GT(r.roofline.percent_of_peak_flops, 0.0);
  EXPECT_GT(r.roofline.percent_of_peak_bandwidth, 0.0);
}

}  // namespace
}  // namespace hone::profile
