// CUDA tests: skip themselves where no GPU is visible (CI), run on the lent GPU (`make gpu-test`).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hone/core/device.h"
#include "hone/models/registry.h"
#include "support/relative_error.h"
#include "support/tolerances.h"

namespace hone {
namespace {

using testing::relative_error;

data::DatasetInfo info_for(const std::string& model) {
  data::DatasetInfo info;
  if (model == "lstm" || model == "attention") {
    info.task = data::TaskKind::kForecasting;
    info.input_shape = {30, 2};
    info.num_outputs = 1;
  } else {
    info.task = data::TaskKind::kClassification;
    info.input_shape = {1, 28, 28};
    info.num_classes = 10;
  }
  info.name = "shape-only";
  return info;
}

class ZooCudaTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ZooCudaTest, ForwardOnCudaMatchesCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  // Full fp32 on the GPU: no TF32 shortcuts in this comparison.
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
  torch::manual_seed(42);
  const auto info = info_for(GetParam());
  models::ModelPtr model = models::make_model(GetParam(), info);
  // Non-zero heads for the forecasters (they start at zero), so the comparison means something.
  {
    torch::NoGradGuard guard;
    for (auto& p : model->parameters()) {
      if (p.abs().sum().item<double>() == 0) p.normal_(0, 0.1);
    }
  }
  model->eval();
  std::vector<std::int64_t> shape = {7};
  shape.insert(shape.end(), info.input_shape.begin(), info.input_shape.end());
  const torch::Tensor x = torch::randn(shape);
  const torch::Tensor cpu = model->forward(x);
  model->to(torch::kCUDA);
  const torch::Tensor gpu = model->forward(x.to(torch::kCUDA)).cpu();
  EXPECT_EQ(gpu.sizes(), cpu.sizes());
  EXPECT_LT(relative_error(gpu, cpu), testing::kFp32Reordered.relative) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Zoo, ZooCudaTest,
                         ::testing::Values("mlp", "cnn", "mobilenet", "transformer", "lstm", "attention"));

TEST(CudaTrainTest, OneTrainingStepRunsOnTheGpu) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  torch::manual_seed(1);
  models::ModelPtr model = models::make_model("cnn", info_for("cnn"));
  model->to(torch::kCUDA);
  torch::optim::SGD opt(model->parameters(), 0.1);
  const torch::Tensor x = torch::randn({16, 1, 28, 28}, torch::kCUDA);
  const torch::Tensor y = torch::randint(0, 10, {16}, torch::TensorOptions().dtype(torch::kLong).device(torch::kCUDA));
  double first = 0, last = 0;
  for (int i = 0; i < 20; ++i) {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    loss.backward();
    opt.step();
    (i == 0 ? first : last) = loss.item<double>();
  }
  EXPECT_LT(last, first) << "20 steps on one batch must lower its loss";
}

}  // namespace
}  // namespace hone
