// Runs the real `hone` binary and checks exit codes and output: 0 ok, 1 runtime error, 2 bad usage.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "support/temp_dir.h"

namespace hone {
namespace {

using ::testing::HasSubstr;

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

Result run(const std::string& args) {
  static testing::TempDir scratch("hone-cli");
  const auto err_path = scratch / "stderr.txt";
  const std::string command = std::string(HONE_EXECUTABLE) + " " + args + " 2>" + err_path.string();
  Result r;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) r.out.append(buffer, n);
  const int status = ::pclose(pipe);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_path);
  std::stringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  return r;
}

TEST(CliTest, HelpListsCommandsWithExamples) {
  const Result r = run("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("train"));
  EXPECT_THAT(r.out, HasSubstr("Examples"));
  for (const char* cmd : {"info", "train", "eval", "bench"}) {
    const Result sub = run(std::string(cmd) + " --help");
    EXPECT_EQ(sub.code, 0) << cmd;
    EXPECT_THAT(sub.out, HasSubstr("Example")) << cmd;
  }
}

TEST(CliTest, BadUsageExitsWithTwoAndAUsageLine) {
  for (const char* args :
       {"", "frobnicate", "train --no-such-flag", "train --epochs many", "train --model no-such-model --epochs 1",
        "eval", "bench", "bench mlp --batch 0", "bench no-such-model"}) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << "hone " << args << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("error")) << args;
  }
}

TEST(CliTest, RuntimeErrorsExitWithOneAndOneClearLine) {
  testing::TempDir dir;
  const Result missing = run("eval " + (dir / "no-run").string());
  EXPECT_EQ(missing.code, 1);
  EXPECT_THAT(missing.err, HasSubstr("no-run"));
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << missing.err;
  const Result incompatible = run("train -m lstm -d digits --epochs 1 -q -o " + (dir / "x").string());
  EXPECT_EQ(incompatible.code, 1) << incompatible.err;
  EXPECT_THAT(incompatible.err, HasSubstr("lstm"));
}

TEST(CliTest, InfoJsonIsMachineReadable) {
  const Result r = run("info --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_THAT(j.at("torch_version").get<std::string>(), HasSubstr("2.11"));
  EXPECT_TRUE(j.at("cpu").contains("isa"));
  EXPECT_FALSE(j.at("quantized_engines").empty());
  EXPECT_GE(j.at("models").size(), 6u);
}

TEST(CliTest, TrainThenEvalAgreeThroughJson) {
  testing::TempDir dir;
  const std::string run_dir = (dir / "run").string();
  const Result t = run("train -m mlp -d digits --epochs 2 --seed 3 --json -o " + run_dir);
  ASSERT_EQ(t.code, 0) << t.err;
  const auto tj = nlohmann::json::parse(t.out);
  const int best = tj.at("best_epoch").get<int>();
  const double val_acc = tj.at("history").at(best - 1).at("val").at("accuracy").get<double>();
  const Result e = run("eval " + run_dir + " --split val --json");
  ASSERT_EQ(e.code, 0) << e.err;
  const auto ej = nlohmann::json::parse(e.out);
  EXPECT_NEAR(ej.at("metrics").at("accuracy").get<double>(), val_acc, 1e-12);
  EXPECT_GT(val_acc, 0.5);
  const Result again = run("train -m mlp -d digits --epochs 2 -q -o " + run_dir);
  EXPECT_EQ(again.code, 1) << "an existing run is not overwritten";
  EXPECT_THAT(again.err, HasSubstr("--resume"));
}

TEST(CliTest, BenchJsonFollowsItsSchema) {
  const Result r = run("bench mlp --batch 1,2 --warmup 1 --iterations 3 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("schema"), "hone-bench/1");
  ASSERT_EQ(j.at("results").size(), 2u);
  EXPECT_EQ(j.at("results").at(1).at("batch"), 2);
  EXPECT_GT(j.at("results").at(0).at("latency_ms").at("p50").get<double>(), 0.0);
  EXPECT_EQ(j.at("input").at("kind"), "random normal (timing only)");
}

}  // namespace
}  // namespace hone
