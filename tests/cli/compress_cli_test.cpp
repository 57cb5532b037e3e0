// `hone compress` end to end on real data (sklearn digits, a small trained MLP and CNN): the
// verdict's JSON, the output directory loading back in `hone eval` / `hone bench` with the same
// accuracy, and the errors (bad recipes, existing outputs) with their exit codes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "support/run_command.h"
#include "support/temp_dir.h"

namespace hone {
namespace {

using ::testing::HasSubstr;
using Result = testing::CommandResult;

Result run(const std::string& args) {
  static testing::TempDir scratch("hone-compress-cli");
  return testing::run_command(std::string(HONE_EXECUTABLE) + " " + args, scratch / "stderr.txt");
}

/// One trained digits MLP shared by the tests (training is the slow part).
const std::string& trained_mlp() {
  static testing::TempDir dir("hone-compress-mlp");
  static const std::string run_dir = [&] {
    const auto path = (dir / "mlp").string();
    const Result t = run("train -m mlp -d digits --epochs 3 --seed 1 -q -o " + path);
    EXPECT_EQ(t.code, 0) << t.err;
    return path;
  }();
  return run_dir;
}

TEST(CompressCliTest, DynamicInt8VerdictMatchesEvalOfTheSavedDirectory) {
  testing::TempDir out;
  const auto dir = (out / "mlp-int8").string();
  const Result c =
      run("compress " + trained_mlp() + " --quant int8-dynamic --iterations 3 --warmup 1 --json -o " + dir);
  ASSERT_EQ(c.code, 0) << c.err;
  const auto j = nlohmann::json::parse(c.out);
  EXPECT_EQ(j.at("schema"), "hone-compress/1");
  ASSERT_EQ(j.at("passes").size(), 1u);
  EXPECT_EQ(j.at("passes").at(0).at("pass"), "quant_int8_dynamic");
  EXPECT_EQ(j.at("passes").at(0).at("changed").size(), 3u);  // the MLP's three Linears
  const double before = j.at("before").at("accuracy").get<double>();
  const double after = j.at("after").at("accuracy").get<double>();
  EXPECT_GT(before, 0.8);
  EXPECT_NEAR(after, before, 0.05);  // int8 weights on digits: a few samples may flip, not more
  EXPECT_LT(j.at("after").at("file_bytes").get<double>(), 0.5 * j.at("before").at("file_bytes").get<double>());
  ASSERT_EQ(j.at("ratios").at("latency").size(), 2u);

  // The directory reloads: eval gives the verdict's accuracy, bench runs it.
  const Result e = run("eval " + dir + " --json");
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_NEAR(nlohmann::json::parse(e.out).at("metrics").at("accuracy").get<double>(), after, 1e-12);
  const Result b = run("bench " + dir + " --batch 1 --warmup 1 --iterations 2 --json");
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_GT(nlohmann::json::parse(b.out).at("file_bytes").get<double>(), 0.0);
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(dir) / "compress.json"));
}

TEST(CompressCliTest, TwoFourSparsityShrinksTheFileReloadsAndSaysWhereItRanDense) {
  testing::TempDir out;
  const auto dir = (out / "mlp-24").string();
  const Result c = run("compress " + trained_mlp() +
                       " --prune 2:4 --quant bf16 --batch 1 --iterations 2 --warmup 1 --json -o " + dir);
  ASSERT_EQ(c.code, 0) << c.err;
  const auto j = nlohmann::json::parse(c.out);
  ASSERT_EQ(j.at("passes").size(), 2u);
  EXPECT_EQ(j.at("passes").at(0).at("pass"), "prune_semi_structured");
  EXPECT_EQ(j.at("passes").at(0).at("options").at("dtype"), "bf16") << "--quant bf16 sets the sparse layers' dtype";
  EXPECT_GE(j.at("passes").at(0).at("changed").size(), 1u);
  EXPECT_EQ(j.at("passes").at(1).at("pass"), "quant_float");
  // bf16 values at half density (+ positions): well under half of the fp32 file.
  EXPECT_LT(j.at("after").at("file_bytes").get<double>(), 0.5 * j.at("before").at("file_bytes").get<double>());
  const double after = j.at("after").at("accuracy").get<double>();
  EXPECT_GT(after, 0.1);
  const auto diagnosis = j.at("diagnosis").dump();
  // On the CPU the layers run as dense GEMMs; when that is not faster the verdict says so.
  if (j.at("ratios").at("latency").at(0).at("speedup").get<double>() <= 1 / 0.95) {
    EXPECT_THAT(diagnosis, HasSubstr("2:4 sparse layer(s) ran as dense (cpu"));
  }
  // The new layer kind rebuilds from the saved edits: eval reproduces the verdict's accuracy.
  const Result e = run("eval " + dir + " --json");
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_NEAR(nlohmann::json::parse(e.out).at("metrics").at("accuracy").get<double>(), after, 1e-12);
}

TEST(CompressCliTest, RecipeFileRunsItsPassesInItsOrder) {
  testing::TempDir out;
  const auto recipe = out / "recipe.json";
  std::ofstream(recipe) << R"({"passes": [{"pass": "prune_magnitude", "amount": 0.5}, {"pass": "fuse_conv_bn"}]})";
  const auto dir = (out / "mlp-sparse").string();
  const Result c = run("compress " + trained_mlp() + " --recipe " + recipe.string() + " --no-verdict --json -o " + dir);
  ASSERT_EQ(c.code, 0) << c.err;
  const auto j = nlohmann::json::parse(c.out);
  ASSERT_EQ(j.at("passes").size(), 2u);
  EXPECT_EQ(j.at("passes").at(0).at("pass"), "prune_magnitude");
  EXPECT_EQ(j.at("passes").at(1).at("pass"), "fuse_conv_bn");
  EXPECT_TRUE(j.at("before").is_null());
  const Result e = run("eval " + dir);
  EXPECT_EQ(e.code, 0) << e.err;
}

TEST(CompressCliTest, BadRecipesAndFlagsAreUsageErrors) {
  testing::TempDir out;
  const auto bad = out / "bad.json";
  std::ofstream(bad) << R"({"passes": [{"pass": "quant_int8_dynamic", "bits": 4}]})";
  const Result option = run("compress " + trained_mlp() + " --recipe " + bad.string() + " -o " + (out / "x").string());
  EXPECT_EQ(option.code, 2) << option.err;
  EXPECT_THAT(option.err, HasSubstr("unknown option 'bits'"));
  EXPECT_THAT(option.err, HasSubstr("per_channel"));  // lists the valid ones
  const auto unknown = out / "unknown.json";
  std::ofstream(unknown) << R"({"passes": [{"pass": "shrink_by_magic"}]})";
  const Result pass =
      run("compress " + trained_mlp() + " --recipe " + unknown.string() + " -o " + (out / "x").string());
  EXPECT_EQ(pass.code, 2) << pass.err;
  EXPECT_THAT(pass.err, HasSubstr("quant_int8_static"));
  for (const std::string& args : {"compress " + trained_mlp() + " -o " + (out / "x").string(),
                                  "compress " + trained_mlp() + " --quant int4 -o " + (out / "x").string(),
                                  "compress " + trained_mlp() + " --prune half -o " + (out / "x").string(),
                                  "compress " + trained_mlp() + " --observer entropy --quant int8-dynamic -o x",
                                  "compress " + trained_mlp() + " --quant int8-dynamic"}) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(out / "x")) << "nothing is written on bad input";
}

TEST(CompressCliTest, RuntimeErrorsLoseNothing) {
  testing::TempDir out;
  const auto dir = out / "existing";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "keep.txt") << "mine";
  const Result exists = run("compress " + trained_mlp() + " --quant int8-dynamic -o " + dir.string());
  EXPECT_EQ(exists.code, 1) << exists.err;
  EXPECT_THAT(exists.err, HasSubstr("--force"));
  EXPECT_TRUE(std::filesystem::exists(dir / "keep.txt"));
  const Result missing =
      run("compress " + (out / "no-run").string() + " --quant int8-dynamic -o " + (out / "y").string());
  EXPECT_EQ(missing.code, 1) << missing.err;
  EXPECT_THAT(missing.err, HasSubstr("no-run"));
  // Static quantization of a zoo name has no calibration data: a clear error, no output.
  const Result static_zoo = run("compress mlp --quant int8-static --no-verdict -o " + (out / "z").string());
  EXPECT_EQ(static_zoo.code, 1) << static_zoo.err;
  EXPECT_THAT(static_zoo.err, HasSubstr("calibration"));
  EXPECT_FALSE(std::filesystem::exists(out / "z"));
  EXPECT_FALSE(std::filesystem::exists(out / "y"));
}

}  // namespace
}  // namespace hone
