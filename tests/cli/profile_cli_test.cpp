// Runs the real `hone profile` and `hone info --ceilings`: exit codes (0 ok, 1 runtime error, 2 bad
// usage) and output. Each test points XDG_CACHE_HOME at a temp folder that holds ceilings measured
// with small sizes, so that no test pays for the real measurement.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "hone/core/fs.h"
#include "hone/profile/ceilings.h"
#include "support/run_command.h"
#include "support/temp_dir.h"

namespace hone {
namespace {

using ::testing::HasSubstr;

using Result = testing::CommandResult;

class ProfileCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The file `hone` will look for: same host, same CPU, same default thread count.
    profile::CeilingsOptions options;
    options.cache_dir = cache_.path() / "hone" / "ceilings";
    options.matmul_size = 64;
    options.copy_bytes = 1 << 20;
    options.repeats = 1;
    write_file_atomic(profile::ceilings_cache_path(options), profile::measure_ceilings(options).to_json().dump(2));
  }

  Result run(const std::string& args) {
    return testing::run_command(fmt::format("XDG_CACHE_HOME={} {} {}", cache_.path().string(), HONE_EXECUTABLE, args),
                                cache_ / "stderr.txt");
  }

  testing::TempDir cache_{"hone-profile-cli"};
};

TEST_F(ProfileCliTest, HelpHasExamples) {
  const Result r = run("profile --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("Examples"));
  EXPECT_THAT(r.out, HasSubstr("--trace"));
  EXPECT_THAT(run("info --help").out, HasSubstr("--ceilings"));
}

TEST_F(ProfileCliTest, BadUsageExitsWithTwo) {
  for (const char* args : {"profile", "profile cnn --steps 0", "profile cnn --batch x", "profile cnn --dtype fp64",
                           "profile cnn --no-such-flag", "profile no-such-model --steps 1", "info --refresh",
                           "profile mlp --amp --dtype bf16 --steps 1"}) {
    const Result r = run(args);
    EXPECT_EQ(r.code, 2) << "hone " << args << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("error")) << args;
  }
}

TEST_F(ProfileCliTest, UnknownRunDirectoryExitsWithOneAndOneLine) {
  const std::string missing = (cache_ / "no-run").string();
  const Result r = run("profile " + missing + " --steps 1");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("no-run"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(ProfileCliTest, JsonAndTraceOfAZooModel) {
  const std::string trace = (cache_ / "trace.json").string();
  const Result r = run("profile cnn --batch 2 --warmup 1 --steps 2 --top 5 --json --trace " + trace);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("schema"), "hone-profile/1");
  EXPECT_EQ(j.at("ops").size(), 5u);
  EXPECT_FALSE(j.at("modules").empty());
  EXPECT_EQ(j.at("trace"), trace);
  EXPECT_GT(j.at("roofline").at("percent_of_peak_flops").get<double>(), 0.0);
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("measuring"))) << "the cached ceilings are used";
  const auto chrome = nlohmann::json::parse(read_file(trace));
  EXPECT_FALSE(chrome.at("traceEvents").empty());
}

TEST_F(ProfileCliTest, TextNamesOpsAndModules) {
  const Result r = run("profile mlp --warmup 0 --steps 1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("aten::addmm"));
  EXPECT_THAT(r.out, HasSubstr("layers.0"));
  EXPECT_THAT(r.out, HasSubstr("of fp32 peak"));
}

TEST_F(ProfileCliTest, InfoCeilingsReadsTheCache) {
  const Result r = run("info --ceilings --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("schema"), "hone-ceilings/1");
  EXPECT_EQ(j.at("measured_now"), false);
  EXPECT_EQ(j.at("matmul").at("size"), 64);
  EXPECT_THAT(j.at("file").get<std::string>(), HasSubstr(cache_.path().string()));
}

}  // namespace
}  // namespace hone
