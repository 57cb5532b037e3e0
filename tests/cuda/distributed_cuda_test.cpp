// NCCL from C++ on the GPUs this machine has: one rank per GPU as threads of this process. With one
// GPU it is a world of one (the NCCL communicator, the bucketed all-reduce during backward and the
// averaged step all run); with two or more, two ranks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <c10/cuda/CUDAFunctions.h>

#include <thread>

#include "hone/core/device.h"
#include "hone/models/registry.h"
#include "hone/train/distributed/communicator.h"
#include "hone/train/distributed/data_parallel.h"
#include "hone/train/distributed/launcher.h"
#include "hone/train/grad_scaler.h"
#include "hone/train/optimizer.h"
#include "hone/train/train_step.h"
#include "support/tolerances.h"

namespace hone::train::distributed {
namespace {

TEST(DistributedCudaTest, NcclStepsEqualTheSingleGpuStep) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU visible";
  const int world = std::min(cuda_device_count(), 2);
  const int port = free_local_port();
  torch::manual_seed(0);
  const at::Tensor x = torch::randn({64, 32});  // random rows: this checks arithmetic, not accuracy
  const at::Tensor y = torch::randint(0, 10, {64});
  const nlohmann::json config{{"in_features", 32}, {"hidden", {64}}, {"out_features", 10}, {"dropout", 0.0}};
  auto make = [&](c10::Device device, std::uint64_t seed) {
    torch::manual_seed(seed);
    auto model = models::make_model("mlp", config);
    model->to(device);
    return model;
  };
  const at::Tensor lr = at::full({}, 1e-2, at::TensorOptions().device(c10::Device(c10::kCUDA, 0)));
  auto loss = [](const at::Tensor& out, const at::Tensor& t) { return torch::nn::functional::cross_entropy(out, t); };

  const c10::Device gpu0(c10::kCUDA, 0);
  auto reference = make(gpu0, 1);
  auto ref_opt = make_optimizer({.kind = "adamw"}, make_param_groups(*reference, {}));
  GradScaler ref_scaler(false, gpu0);
  TrainStep ref_step([m = reference](const at::Tensor& in) { return m->forward(in); }, loss, *ref_opt, ref_scaler,
                     Precision::kFp32, 1.0, gpu0);
  for (int s = 0; s < 3; ++s) ref_step.run({{x.to(gpu0), y.to(gpu0)}}, lr);

  std::vector<std::vector<at::Tensor>> params(static_cast<std::size_t>(world));
  std::vector<std::string> errors(static_cast<std::size_t>(world));
  // Built here, one after the other: threads would race on torch's global generator.
  std::vector<models::ModelPtr> rank_models;
  for (int r = 0; r < world; ++r)
    rank_models.push_back(make(c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(r)), 1 + r));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        const c10::Device device(c10::kCUDA, static_cast<c10::DeviceIndex>(r));
        c10::cuda::set_device(device.index());
        Communicator group({.env = {r, world, r, world, "127.0.0.1", port}, .device = device});
        EXPECT_EQ(group.backend(), "nccl");
        auto model = rank_models[static_cast<std::size_t>(r)];  // rank 0 = the reference; others take its weights
        DataParallel parallel(group, *model, {.bucket_bytes = 8192});
        auto optimizer = make_optimizer({.kind = "adamw"}, make_param_groups(*model, {}));
        GradScaler scaler(false, device);
        TrainStep step([model](const at::Tensor& in) { return model->forward(in); }, loss, *optimizer, scaler,
                       Precision::kFp32, 1.0, device);
        step.set_gradient_sync(&parallel);
        const at::Tensor my_lr = lr.to(device);
        const std::int64_t rows = 64 / world;
        for (int s = 0; s < 3; ++s)
          step.run({{x.narrow(0, r * rows, rows).to(device), y.narrow(0, r * rows, rows).to(device)}}, my_lr);
        EXPECT_GT(parallel.buckets_launched_in_backward(), 0);
        for (const auto& p : model->parameters()) params[static_cast<std::size_t>(r)].push_back(p.detach().cpu());
      } catch (const std::exception& e) {
        errors[static_cast<std::size_t>(r)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < world; ++r) ASSERT_TRUE(errors[static_cast<std::size_t>(r)].empty()) << errors[r];
  const auto expected = reference->parameters();
  for (int r = 0; r < world; ++r)
    for (std::size_t i = 0; i < expected.size(); ++i)
      EXPECT_TRUE(at::allclose(params[static_cast<std::size_t>(r)][i], expected[i].detach().cpu(),
                               testing::kFp32Reordered.relative, testing::kFp32Reordered.absolute))
          << "rank " << r << " parameter " << i;
}

}  // namespace
}  // namespace hone::train::distributed
