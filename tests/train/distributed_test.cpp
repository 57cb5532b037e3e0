// Data parallelism on Gloo with two ranks as two threads of this process (each its own
// Communicator, TCPStore client and Gloo context); the two-process runs of `hone train --nproc`
// are in tests/cli/distributed_cli_test.cpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <exception>
#include <functional>
#include <set>
#include <thread>

#include "hone/core/error.h"
#include "hone/data/datasets.h"
#include "hone/models/registry.h"
#include "hone/train/distributed/communicator.h"
#include "hone/train/distributed/data_parallel.h"
#include "hone/train/distributed/environment.h"
#include "hone/train/distributed/launcher.h"
#include "hone/train/distributed/scaling_model.h"
#include "hone/train/distributed/shard.h"
#include "hone/train/grad_scaler.h"
#include "hone/train/optimizer.h"
#include "hone/train/train_step.h"
#include "support/error_message.h"
#include "support/tolerances.h"

namespace hone::train::distributed {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

/// Runs fn(communicator, rank) on `world` threads, one rank each; rethrows the first failure.
void on_ranks(int world, const std::function<void(Communicator&, int)>& fn,
              std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  const int port = free_local_port();
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        CommunicatorOptions options;
        options.env = Environment{r, world, r, world, "127.0.0.1", port};
        options.timeout = timeout;
        options.heartbeat = 100ms;
        Communicator group(options);
        fn(group, r);
      } catch (...) {
        errors[static_cast<std::size_t>(r)] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

TEST(DistributedEnvironment, UnsetMeansOneProcessAndPartialOrWrongValuesAreNamed) {
  auto lookup = [](std::map<std::string, std::string> vars) {
    return [vars](const std::string& name) -> std::optional<std::string> {
      auto it = vars.find(name);
      return it == vars.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
  };
  EXPECT_FALSE(environment_from_variables(lookup({})).has_value());
  const auto env = environment_from_variables(
      lookup({{"RANK", "1"}, {"WORLD_SIZE", "4"}, {"MASTER_ADDR", "10.0.0.2"}, {"MASTER_PORT", "29511"}}));
  ASSERT_TRUE(env.has_value());
  EXPECT_EQ(env->rank, 1);
  EXPECT_EQ(env->world_size, 4);
  EXPECT_EQ(env->local_rank, 1);
  EXPECT_EQ(env->local_world_size, 4);
  EXPECT_EQ(env->master_addr, "10.0.0.2");
  EXPECT_EQ(env->master_port, 29511);
  // Two machines of two: the local rank is the GPU index.
  const auto two_hosts = environment_from_variables(lookup({{"RANK", "3"},
                                                            {"WORLD_SIZE", "4"},
                                                            {"LOCAL_RANK", "1"},
                                                            {"LOCAL_WORLD_SIZE", "2"},
                                                            {"MASTER_ADDR", "h0"},
                                                            {"MASTER_PORT", "29500"}}));
  EXPECT_EQ(two_hosts->local_rank, 1);
  EXPECT_THAT(testing::usage_error_message([&] {
                environment_from_variables(lookup({{"RANK", "0"}, {"WORLD_SIZE", "2"}}));
              }),
              HasSubstr("MASTER_ADDR, MASTER_PORT are not set"));
  const std::map<std::string, std::string> ok{
      {"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};
  auto with = [&](const std::string& name, const std::string& value) {
    auto vars = ok;
    vars[name] = value;
    return testing::usage_error_message([&] { environment_from_variables(lookup(vars)); });
  };
  EXPECT_THAT(with("RANK", "2"), HasSubstr("RANK=2 must be in 0..1"));
  EXPECT_THAT(with("RANK", "one"), HasSubstr("RANK='one' is not an integer"));
  EXPECT_THAT(with("MASTER_PORT", "70000"), HasSubstr("MASTER_PORT=70000 is not a TCP port"));
  EXPECT_THAT(with("WORLD_SIZE", "0"), HasSubstr("WORLD_SIZE=0 must be at least 1"));
  EXPECT_THAT(with("LOCAL_RANK", "5"), HasSubstr("LOCAL_RANK=5"));
}

TEST(DistributedShard, EveryRankRunsTheSameStepsAndEverySampleGoesToExactlyOneRank) {
  for (const auto& [n, batch, world] : std::vector<std::tuple<std::int64_t, std::int64_t, int>>{
           {1797, 32, 2}, {1000, 7, 3}, {10, 4, 3}, {5, 1, 4}, {64, 32, 2}, {3, 8, 5}}) {
    const std::int64_t steps = steps_per_epoch(n, batch, world);
    std::vector<int> owner(static_cast<std::size_t>(n), -1);
    for (std::int64_t s = 0; s < steps; ++s) {
      double weights = 0;
      std::int64_t global = -1;
      for (int r = 0; r < world; ++r) {
        const Shard shard = batch_shard(n, batch, r, world, s);
        EXPECT_LE(shard.count, batch);
        if (global < 0) global = shard.global_count;
        EXPECT_EQ(shard.global_count, global) << "every rank knows the global batch";
        weights += shard.loss_weight(world);
        for (std::int64_t i = shard.start; i < shard.start + shard.count; ++i) {
          ASSERT_GE(i, 0);
          ASSERT_LT(i, n);
          EXPECT_EQ(owner[static_cast<std::size_t>(i)], -1) << "sample " << i << " twice";
          owner[static_cast<std::size_t>(i)] = r;
        }
      }
      // The ranks' mean loss weight is 1: averaging their gradients gives the global mean.
      EXPECT_NEAR(weights / world, 1.0, 1e-12) << n << " " << batch << " " << world << " step " << s;
    }
    for (std::int64_t i = 0; i < n; ++i) EXPECT_GE(owner[static_cast<std::size_t>(i)], 0) << "sample " << i;
  }
  // A shorter last batch is split as evenly as it goes.
  EXPECT_EQ(batch_shard(10, 4, 0, 3, 0).count, 4);
  EXPECT_EQ(batch_shard(10, 4, 0, 2, 1).count, 1);
  EXPECT_EQ(batch_shard(10, 4, 1, 2, 1).count, 1);
  EXPECT_THROW(batch_shard(10, 4, 0, 2, 2), Error);
}

TEST(DistributedCommunicator, SumsMaximaBroadcastsAndExchangesOnGloo) {
  on_ranks(3, [](Communicator& group, int rank) {
    EXPECT_EQ(group.backend(), "gloo");
    at::Tensor t = at::full({5}, static_cast<double>(rank + 1), at::kFloat);
    group.all_reduce_sum(t, "a test sum");
    EXPECT_TRUE(at::equal(t, at::full({5}, 6.0, at::kFloat)));
    at::Tensor m = at::full({1}, static_cast<double>(rank), at::kFloat);
    group.all_reduce_max(m, "a test max");
    EXPECT_EQ(m.item<float>(), 2.0f);
    std::vector<at::Tensor> b{at::full({2, 3}, static_cast<double>(rank), at::kDouble)};
    group.broadcast(b, 1, "a test broadcast");
    EXPECT_TRUE(at::equal(b[0], at::full({2, 3}, 1.0, at::kDouble)));
    EXPECT_EQ(group.exchange("names", "rank" + std::to_string(rank)),
              (std::vector<std::string>{"rank0", "rank1", "rank2"}));
    group.barrier("the end of the test");
  });
}

/// An MLP on 64 digit features without dropout (dropout masks differ between one process and two).
models::ModelPtr digits_mlp(std::uint64_t seed) {
  torch::manual_seed(seed);
  return models::make_model(
      "mlp", nlohmann::json{{"in_features", 64}, {"hidden", {48, 24}}, {"out_features", 10}, {"dropout", 0.0}});
}

struct Trainer {
  models::ModelPtr model;
  std::unique_ptr<Optimizer> optimizer;
  std::unique_ptr<GradScaler> scaler;
  std::unique_ptr<TrainStep> step;
  explicit Trainer(std::uint64_t seed) : model(digits_mlp(seed)) {
    optimizer = make_optimizer({.kind = "adamw"}, make_param_groups(*model, {.weight_decay = 0.01}));
    scaler = std::make_unique<GradScaler>(false, c10::kCPU);
    step = std::make_unique<TrainStep>(
        [m = model](const at::Tensor& x) { return m->forward(x); },
        [](const at::Tensor& out, const at::Tensor& y) { return torch::nn::functional::cross_entropy(out, y); },
        *optimizer, *scaler, Precision::kFp32, /*clip=*/1.0, c10::kCPU);
  }
};

TEST(DistributedDataParallel, TwoRanksStepLikeOneProcessOnTheConcatenatedBatch) {
  const data::LoadedData digits = data::load_dataset("digits", {});
  const at::Tensor x = digits.train.dataset.inputs().narrow(0, 0, 149);
  const at::Tensor y = digits.train.dataset.targets().narrow(0, 0, 149);
  const at::Tensor lr = at::full({}, 3e-3, at::kFloat);
  // Global steps: 64 rows, then 64 rows as two accumulated micro-batches of 32, then 21 rows
  // (shards of 11 and 10, weighted).
  struct Step {
    std::int64_t start, rows, micro;
  };
  const std::vector<Step> steps{{0, 64, 1}, {64, 64, 2}, {128, 21, 1}};

  Trainer reference(1);
  for (const Step& s : steps) {
    std::vector<Batch> micro;
    for (std::int64_t m = 0; m < s.micro; ++m) {
      // The global micro-batch m: rank 0's part of it, then rank 1's.
      std::vector<at::Tensor> xs, ys;
      for (int r = 0; r < 2; ++r) {
        const Shard shard = split_rows(s.rows, r, 2);
        const std::int64_t part = shard.count / s.micro;
        xs.push_back(x.narrow(0, s.start + shard.start + m * part, part));
        ys.push_back(y.narrow(0, s.start + shard.start + m * part, part));
      }
      micro.push_back({at::cat(xs), at::cat(ys)});
    }
    reference.step->run(micro, lr);
  }

  std::vector<std::vector<at::Tensor>> ranks_params(2);
  // Built here, one after the other: the threads would race on torch's global generator.
  std::vector<std::unique_ptr<Trainer>> trainers;
  for (int r = 0; r < 2; ++r) trainers.push_back(std::make_unique<Trainer>(1 + r));  // rank 1 starts elsewhere
  on_ranks(2, [&](Communicator& group, int rank) {
    Trainer& mine = *trainers[static_cast<std::size_t>(rank)];  // the broadcast gives rank 1 rank 0's weights
    DataParallel parallel(group, *mine.model, {.bucket_bytes = 4096});
    EXPECT_GT(parallel.buckets().size(), 2u) << "small buckets, to see several go out during backward";
    mine.step->set_gradient_sync(&parallel);
    for (const Step& s : steps) {
      const Shard shard = split_rows(s.rows, rank, 2);
      const std::int64_t part = shard.count / s.micro;
      std::vector<Batch> micro;
      for (std::int64_t m = 0; m < s.micro; ++m)
        micro.push_back({x.narrow(0, s.start + shard.start + m * part, part),
                         y.narrow(0, s.start + shard.start + m * part, part), shard.loss_weight(2)});
      mine.step->run(micro, lr);
      // Every bucket went out from a hook, once per step: none on the non-final micro-batch (a
      // second launch would have thrown), all while backward ran.
      EXPECT_EQ(parallel.buckets_launched_in_backward(), static_cast<std::int64_t>(parallel.buckets().size()));
    }
    for (const auto& p : mine.model->parameters()) ranks_params[static_cast<std::size_t>(rank)].push_back(p.detach());
  });
  const auto expected = reference.model->parameters();
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(ranks_params[static_cast<std::size_t>(r)].size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_TRUE(at::allclose(ranks_params[static_cast<std::size_t>(r)][i], expected[i].detach(),
                               testing::kFp32Reordered.relative, testing::kFp32Reordered.absolute))
          << "rank " << r << " parameter " << i << " max diff "
          << (ranks_params[static_cast<std::size_t>(r)][i] - expected[i].detach()).abs().max().item<double>();
    }
  }
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_TRUE(at::equal(ranks_params[0][i], ranks_params[1][i])) << "the ranks hold the same weights";
}

TEST(DistributedDataParallel, AnEmptyShardContributesZerosAndTheOverflowFlagIsAgreed) {
  const data::LoadedData digits = data::load_dataset("digits", {});
  const at::Tensor x = digits.train.dataset.inputs().narrow(0, 0, 1);
  const at::Tensor y = digits.train.dataset.targets().narrow(0, 0, 1);
  const at::Tensor lr = at::full({}, 1e-2, at::kFloat);
  Trainer reference(5);
  reference.step->run({{x, y}}, lr);
  std::vector<at::Tensor> first(2);
  std::vector<std::unique_ptr<Trainer>> trainers;
  for (int r = 0; r < 2; ++r) trainers.push_back(std::make_unique<Trainer>(5));  // not in the threads: one generator
  on_ranks(2, [&](Communicator& group, int rank) {
    Trainer& mine = *trainers[static_cast<std::size_t>(rank)];
    DataParallel parallel(group, *mine.model);
    mine.step->set_gradient_sync(&parallel);
    // One row in the global batch: rank 0 holds it (weight 2), rank 1 none.
    const Shard shard = split_rows(1, rank, 2);
    mine.step->run({{x.narrow(0, 0, shard.count), y.narrow(0, 0, shard.count), shard.loss_weight(2)}}, lr);
    first[static_cast<std::size_t>(rank)] = mine.model->parameters().front().detach();
    at::Tensor found_inf = at::full({}, rank == 1 ? 1.0 : 0.0, at::kFloat);
    parallel.agree(found_inf);
    EXPECT_EQ(found_inf.item<float>(), 1.0f) << "rank " << rank << " skips the step rank 1 overflowed in";
  });
  for (int r = 0; r < 2; ++r)
    EXPECT_TRUE(at::allclose(first[static_cast<std::size_t>(r)], reference.model->parameters().front().detach(),
                             testing::kFp32Reordered.relative, testing::kFp32Reordered.absolute))
        << "rank " << r;
}

TEST(DistributedCommunicator, APeerThatFailedIsNamedWithItsError) {
  const std::string message = testing::error_message([] {
    on_ranks(
        2,
        [](Communicator& group, int rank) {
          if (rank == 1) {
            group.report_failure("data file corrupt");
            return;  // leaves: its Gloo pairs close
          }
          at::Tensor t = at::ones({4});
          group.all_reduce_sum(t, "the gradient all-reduce");
        },
        std::chrono::seconds(20));
  });
  EXPECT_THAT(message, HasSubstr("rank 0 stopped during the gradient all-reduce"));
  EXPECT_THAT(message, HasSubstr("rank 1 failed: data file corrupt"));
}

TEST(DistributedCommunicator, ASilentPeerIsNamedWhenTheCollectiveTimesOut) {
  std::atomic<bool> release{false};
  const std::string message = testing::error_message([&] {
    on_ranks(
        2,
        [&](Communicator& group, int rank) {
          if (rank == 0) {
            // Rank 0 hangs without a word (its heartbeat keeps beating: it is alive, just late).
            while (!release) std::this_thread::sleep_for(10ms);
            return;
          }
          at::Tensor t = at::ones({4});
          try {
            group.all_reduce_sum(t, "the gradient all-reduce");
          } catch (...) {
            release = true;
            throw;
          }
        },
        std::chrono::seconds(2));
  });
  EXPECT_THAT(message, HasSubstr("rank 1 stopped during the gradient all-reduce"));
  EXPECT_THAT(message, HasSubstr("still moves")) << "a live but silent peer is called slow, not dead";
}

TEST(DistributedScalingModel, RingCostOverlapAndTheNetworkBeyondOneMachine) {
  // 2(p-1)/p · S / B: two ranks send S/2 twice; 1 GB at 100 GB/s is 10 ms, plus 2(p-1) hops.
  EXPECT_NEAR(ring_allreduce_ms(1e9, 2, 100, 0), 10.0, 1e-9);
  EXPECT_NEAR(ring_allreduce_ms(1e9, 4, 100, 5), 15.0 + 6 * 5e-3, 1e-9);
  EXPECT_EQ(ring_allreduce_ms(1e9, 1, 100, 5), 0.0);
  ScalingInputs in;
  in.compute_ms = 30;
  in.gradient_bytes = 100e6;  // four buckets
  in.intra_node_gbs = 100;    // 0.25 ms a 25 MB bucket on 2 ranks: hidden in backward but the last
  in.inter_node_gbs = 10;
  in.latency_us = 0;
  EXPECT_EQ(predict_scaling(in, 1).efficiency, 1.0);
  const ScalingPoint two = predict_scaling(in, 2);
  EXPECT_NEAR(two.allreduce_ms, 4 * 0.25, 1e-9);
  EXPECT_NEAR(two.exposed_ms, 0.25, 1e-9) << "the last bucket is ready when backward ends";
  EXPECT_NEAR(two.efficiency, 30 / 30.25, 1e-12);
  // Beyond 8 GPUs the ring runs at the network's 10 GB/s: communication outlasts backward.
  const ScalingPoint sixteen = predict_scaling(in, 16);
  EXPECT_NEAR(sixteen.allreduce_ms, 2.0 * 15 / 16 * 100e6 / 10e9 * 1e3, 1e-9);
  EXPECT_LT(sixteen.efficiency, 0.9);
  double previous = 1.0;
  for (int gpus : {2, 4, 8, 16, 32, 64, 128, 256}) {
    const ScalingPoint point = predict_scaling(in, gpus);
    EXPECT_LE(point.efficiency, previous + 1e-12) << gpus;
    EXPECT_NEAR(point.step_ms, in.compute_ms + point.exposed_ms, 1e-12);
    previous = point.efficiency;
  }
  in.gradient_bytes = 0;
  EXPECT_THROW(predict_scaling(in, 2), Error);
}

}  // namespace
}  // namespace hone::train::distributed
