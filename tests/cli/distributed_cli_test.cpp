// Two `hone train` processes on Gloo, as `--nproc 2` (or torchrun, or the variables by hand)
// start them: the result equals one process on the concatenated batch, rank 0 alone writes, a
// killed or hung rank is named by the others, the run resumes on 2 or on 1 process, and bad
// distributed input is refused before any training.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "hone/io/safetensors.h"
#include "hone/train/distributed/launcher.h"
#include "support/run_command.h"
#include "support/temp_dir.h"
#include "support/tolerances.h"

namespace hone {
namespace {

namespace fs = std::filesystem;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using Result = testing::CommandResult;

/// Runs `line` as a bash script (background jobs, exit codes, quoting as written).
Result shell(const std::string& line, const testing::TempDir& dir) {
  {
    std::ofstream script(dir / "command.sh");
    script << line << "\n";
  }
  return testing::run_command("bash " + (dir / "command.sh").string(), dir / "stderr.txt");
}

/// The same training everywhere: an MLP without dropout on the real digits, one thread a process.
std::string train_args(const fs::path& out, const std::string& extra) {
  return std::string(HONE_EXECUTABLE) +
         " train -m mlp -d digits --model-config '{\"hidden\":[48],\"dropout\":0}' --lr 3e-3 --seed 3 "
         "--threads 1 --workers 0 -q -o " +
         out.string() + " " + extra;
}

std::string rank_env(int rank, int world, int port) {
  return "RANK=" + std::to_string(rank) + " WORLD_SIZE=" + std::to_string(world) +
         " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " ";
}

std::map<std::string, at::Tensor> weights(const fs::path& file) {
  std::map<std::string, at::Tensor> out;
  for (auto& [name, tensor] : io::load_safetensors(file).tensors) out[name] = tensor;
  return out;
}

void expect_same_weights(const fs::path& a, const fs::path& b, bool parameters_only = false) {
  const auto wa = weights(a), wb = weights(b);
  ASSERT_EQ(wa.size(), wb.size());
  ASSERT_FALSE(wa.empty());
  for (const auto& [name, t] : wa) {
    if (parameters_only &&
        (name.find("running_") != std::string::npos || name.find("num_batches") != std::string::npos))
      continue;
    ASSERT_TRUE(wb.count(name)) << name;
    EXPECT_TRUE(at::allclose(t, wb.at(name), testing::kFp32Reordered.relative, testing::kFp32Reordered.absolute))
        << name << " max diff " << (t - wb.at(name)).abs().max().item<double>();
  }
}

nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file);
  return nlohmann::json::parse(in);
}

TEST(DistributedCli, TwoProcessesTrainLikeOneOnTheConcatenatedBatchAndOnlyRankZeroWrites) {
  testing::TempDir dir("hone-ddp");
  const Result one = shell(train_args(dir / "one", "--epochs 1 --max-steps 5 --batch-size 64 --json"), dir);
  ASSERT_EQ(one.code, 0) << one.err;
  const Result two = shell(train_args(dir / "two", "--epochs 1 --max-steps 5 --batch-size 32 --nproc 2 --json"), dir);
  ASSERT_EQ(two.code, 0) << two.err;
  expect_same_weights(dir / "one" / "model.safetensors", dir / "two" / "model.safetensors");
  // Rank 0 alone printed the JSON; the validation metrics were reduced over both ranks' shards.
  const auto j1 = nlohmann::json::parse(one.out), j2 = nlohmann::json::parse(two.out);
  const auto& v1 = j1.at("history").at(0).at("val");
  const auto& v2 = j2.at("history").at(0).at("val");
  EXPECT_EQ(v1.at("samples"), v2.at("samples"));
  EXPECT_NEAR(v1.at("accuracy").get<double>(), v2.at("accuracy").get<double>(),
              1.0 / v1.at("samples").get<double>() + 1e-12);
  EXPECT_NEAR(j1.at("history").at(0).at("train_loss").get<double>(),
              j2.at("history").at(0).at("train_loss").get<double>(), 1e-4);
  const auto config = read_json(dir / "two" / "config.json");
  EXPECT_EQ(config.at("train_options").at("world_size"), 2);
  EXPECT_EQ(config.at("train_options").at("global_batch_size"), 64);

  // By hand, as torchrun would: rank 1 told to write elsewhere writes nothing at all.
  const int port = train::distributed::free_local_port();
  const Result manual =
      shell("(" + rank_env(1, 2, port) + train_args(dir / "rank1", "--epochs 1 --max-steps 2") + ") & p=$!; " +
                rank_env(0, 2, port) + train_args(dir / "rank0", "--epochs 1 --max-steps 2") + "; a=$?; wait $p; " +
                "exit $((a + $?))",
            dir);
  ASSERT_EQ(manual.code, 0) << manual.err;
  EXPECT_TRUE(fs::exists(dir / "rank0" / "checkpoint" / "state.json"));
  EXPECT_FALSE(fs::exists(dir / "rank1")) << "only rank 0 writes the run directory";
}

TEST(DistributedCli, AKilledRankIsNamedTheCheckpointSurvivesAndTheRunResumesOnTwoOrOneProcesses) {
  testing::TempDir dir("hone-ddp");
  const std::string run = "--epochs 2 --max-steps 4 --batch-size 32";
  const Result whole = shell(train_args(dir / "whole", run + " --nproc 2"), dir);
  ASSERT_EQ(whole.code, 0) << whole.err;
  // Rank 1 dies in epoch 2 (global step 6): both the launcher and rank 0 name it.
  const Result killed = shell("HONE_FAULT_INJECT=kill:1:6 " + train_args(dir / "cut", run + " --nproc 2"), dir);
  EXPECT_NE(killed.code, 0);
  EXPECT_THAT(killed.err, HasSubstr("rank 1 was killed by signal 9"));
  EXPECT_THAT(killed.err, HasSubstr("rank 0 stopped during"));
  EXPECT_THAT(killed.err, HasSubstr("rank 1 stopped responding"));
  EXPECT_EQ(read_json(dir / "cut" / "checkpoint" / "state.json").at("epochs_done"), 1) << "epoch 1's checkpoint, whole";
  fs::copy(dir / "cut", dir / "cut-one", fs::copy_options::recursive);

  const Result resumed = shell(train_args(dir / "cut", run + " --nproc 2 --resume"), dir);
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  expect_same_weights(dir / "whole" / "checkpoint" / "weights.safetensors",
                      dir / "cut" / "checkpoint" / "weights.safetensors");

  // On one process: the global batch halves, and the schedule continues from epoch 1 of 2.
  const Result alone = shell(train_args(dir / "cut-one", run + " --resume --json"), dir);
  ASSERT_EQ(alone.code, 0) << alone.err;
  EXPECT_THAT(alone.err, HasSubstr("resuming with 1 rank(s) where the run trained on 2"));
  const auto j = nlohmann::json::parse(alone.out);
  ASSERT_EQ(j.at("history").size(), 2u);
  EXPECT_LT(j.at("history").at(1).at("train_loss").get<double>(),
            j.at("history").at(0).at("first_step_loss").get<double>());
}

TEST(DistributedCli, ActivationCheckpointingTrainsTheSameOnTwoProcesses) {
  testing::TempDir dir("hone-ddp");
  // The CNN's blocks recompute in backward: their parameters' gradients still land through the
  // hooks (a nested backward), so the all-reduced step is the same.
  const std::string args = std::string(HONE_EXECUTABLE) +
                           " train -m cnn -d fashion-mnist --limit 256 --epochs 1 --max-steps 2 --batch-size 16 "
                           "--threads 1 --workers 0 --seed 5 -q --nproc 2 -o ";
  const Result plain = shell(args + (dir / "plain").string(), dir);
  ASSERT_EQ(plain.code, 0) << plain.err;
  const Result recomputed = shell(args + (dir / "ckpt").string() + " --checkpoint-activations", dir);
  ASSERT_EQ(recomputed.code, 0) << recomputed.err;
  expect_same_weights(dir / "plain" / "checkpoint" / "weights.safetensors",
                      dir / "ckpt" / "checkpoint" / "weights.safetensors", /*parameters_only=*/true);
}

TEST(DistributedCli, AHungRankIsNamedWhenTheTimeoutRunsOut) {
  testing::TempDir dir("hone-ddp");
  const auto start = std::chrono::steady_clock::now();
  const Result hung = shell(
      "HONE_FAULT_INJECT=hang:1:2 " + train_args(dir / "hung", "--epochs 1 --max-steps 4 --nproc 2 --dist-timeout 3"),
      dir);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(hung.code, 0);
  EXPECT_THAT(hung.err, HasSubstr("rank 1 stopped responding"));
  EXPECT_LT(seconds, 60) << "the timeout, not the 300 s default, bounded the wait";
}

TEST(DistributedCli, BadDistributedInputIsRefusedBeforeTraining) {
  testing::TempDir dir("hone-ddp");
  Result r = shell("RANK=0 WORLD_SIZE=2 " + train_args(dir / "a", "--epochs 1"), dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("MASTER_ADDR, MASTER_PORT are not set"));

  r = shell("WORLD_SIZE=2 " + train_args(dir / "b", "--epochs 1 --nproc 2"), dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--nproc inside a distributed job"));

  r = shell(train_args(dir / "c", "--epochs 1 --nproc 2 --device cuda"), dir);
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, AnyOf(HasSubstr("GPUs"), HasSubstr("CUDA")));
  EXPECT_FALSE(fs::exists(dir / "c" / "checkpoint"));

  // A port in use: rank 0 cannot serve the rendezvous there.
  const int busy = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  ASSERT_EQ(::bind(busy, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(::listen(busy, 1), 0);
  ASSERT_EQ(::getsockname(busy, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const int port = ntohs(address.sin_port);
  r = shell(rank_env(0, 2, port) + train_args(dir / "d", "--epochs 1 --dist-timeout 5"), dir);
  ::close(busy);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("MASTER_PORT " + std::to_string(port) + " on 127.0.0.1 is in use"));

  // Ranks that disagree on the config: both say which key, neither trains.
  const int free = train::distributed::free_local_port();
  r = shell("(" + rank_env(1, 2, free) + train_args(dir / "e", "--epochs 1 --batch-size 16 --dist-timeout 30") + " 2>" +
                (dir / "rank1.txt").string() + ") & p=$!; " + rank_env(0, 2, free) +
                train_args(dir / "e", "--epochs 1 --dist-timeout 30") + "; a=$?; wait $p; b=$?; echo $a $b",
            dir);
  std::ifstream rank1(dir / "rank1.txt");
  const std::string rank1_err((std::istreambuf_iterator<char>(rank1)), std::istreambuf_iterator<char>());
  EXPECT_EQ(r.out, "2 2\n") << r.err << "\nrank 1: " << rank1_err;
  EXPECT_THAT(rank1_err, HasSubstr("rank 1's training config differs from rank 0's: batch_size 16 vs 128"));
  EXPECT_THAT(r.err, HasSubstr("rank 1's training config differs from rank 0's: batch_size 16 vs 128"));
  EXPECT_FALSE(fs::exists(dir / "e" / "checkpoint"));
}

}  // namespace
}  // namespace hone
