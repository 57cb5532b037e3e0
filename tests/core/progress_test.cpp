#include "hone/core/progress.h"

#include <gtest/gtest.h>

namespace hone {
namespace {

TEST(ProgressTest, FormatsDurations) {
  EXPECT_EQ(format_duration(3.24), "3.2s");
  EXPECT_EQ(format_duration(65), "1m 05s");
  EXPECT_EQ(format_duration(7260), "2h 01m");
  EXPECT_EQ(format_duration(-1), "0.0s");
}

TEST(ProgressTest, CountsSteps) {
  ProgressBar bar(10, "work", /*enabled=*/false);
  for (int i = 0; i < 7; ++i) bar.advance();
  bar.advance(2, "loss 0.5");
  EXPECT_EQ(bar.done(), 9);
  bar.finish();
}

TEST(ProgressTest, DrawsToStderrWhenEnabled) {
  ::testing::internal::CaptureStderr();
  {
    ProgressBar bar(4, "epoch 1/1", /*enabled=*/true);
    for (int i = 0; i < 4; ++i) bar.advance(1, "loss 1.0");
    bar.finish("loss 0.9");
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("epoch 1/1"), std::string::npos) << err;
  EXPECT_NE(err.find("100%"), std::string::npos) << err;
  EXPECT_NE(err.find("loss 0.9"), std::string::npos) << err;
}

}  // namespace
}  // namespace hone
