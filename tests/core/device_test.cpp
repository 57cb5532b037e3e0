#include "hone/core/device.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/core/error.h"

namespace hone {
namespace {

using ::testing::HasSubstr;

TEST(DeviceTest, ParsesCpu) { EXPECT_EQ(parse_device("cpu"), c10::Device(c10::kCPU)); }

TEST(DeviceTest, UnknownNamesAreUsageErrors) {
  EXPECT_THROW(parse_device("tpu"), UsageError);
  EXPECT_THROW(parse_device(""), UsageError);
}

TEST(DeviceTest, CudaWithoutAGpuSaysSo) {
  if (cuda_available()) GTEST_SKIP() << "this machine has a GPU";
  try {
    parse_device("cuda");
    FAIL() << "expected hone::Error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("CUDA"));
  }
}

TEST(DeviceTest, SeedingRepeatsRandomNumbers) {
  seed_everything(1234);
  const torch::Tensor a = torch::randn({5});
  seed_everything(1234);
  const torch::Tensor b = torch::randn({5});
  seed_everything(1235);
  const torch::Tensor c = torch::randn({5});
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
}

}  // namespace
}  // namespace hone
