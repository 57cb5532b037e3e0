#include "hone/profile/ceilings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <optional>
#include <regex>
#include <string>

#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "support/temp_dir.h"

namespace hone::profile {
namespace {

/// Matrix and copy sizes small enough for a test; the real measurement uses large ones.
CeilingsOptions small_options(const std::filesystem::path& cache_dir) {
  CeilingsOptions options;
  options.matmul_size = 64;
  options.copy_bytes = 1 << 20;
  options.repeats = 1;
  options.cache_dir = cache_dir;
  return options;
}

/// Sets an environment variable while alive, restoring it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(CeilingsTest, MeasuresPositiveRatesOnTheCpu) {
  testing::TempDir dir;
  const Ceilings c = measure_ceilings(small_options(dir.path()));
  EXPECT_EQ(c.device, "cpu");
  EXPECT_THAT(c.device_name, ::testing::HasSubstr("threads"));
  EXPECT_EQ(c.matmul_size, 64);
  EXPECT_EQ(c.copy_bytes, 1 << 20);
  EXPECT_GT(c.peak_tflops("fp32"), 0.0);
  EXPECT_EQ(c.matmul_tflops.count("tf32"), 0u) << "TF32 is a CUDA (cuBLAS) mode";
  EXPECT_EQ(c.peak_tflops("tf32"), 0.0);
  EXPECT_GT(c.memory_gbps, 0.0);
  EXPECT_FALSE(c.measured_at.empty());
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "measure_ceilings never writes the cache";
}

TEST(CeilingsTest, JsonRoundTrips) {
  Ceilings c;
  c.host = "box";
  c.device = "cuda:0";
  c.device_name = "NVIDIA H100 80GB HBM3";
  c.torch_version = "2.11.0";
  c.measured_at = "2026-11-21T10:00:00Z";
  c.matmul_size = 8192;
  c.matmul_tflops = {{"fp32", 51.5}, {"tf32", 370.25}, {"bf16", 780.0}, {"fp16", 790.5}};
  c.copy_bytes = 1LL << 30;
  c.memory_gbps = 3012.5;
  const nlohmann::json j = c.to_json();
  EXPECT_EQ(j.at("schema"), "hone-ceilings/1");
  const Ceilings back = Ceilings::from_json(nlohmann::json::parse(j.dump()), "test");
  EXPECT_EQ(back.to_json(), j);
  EXPECT_EQ(back.peak_tflops("tf32"), 370.25);
}

TEST(CeilingsTest, OtherJsonIsRejectedNamingTheFile) {
  EXPECT_THROW(Ceilings::from_json(nlohmann::json::object(), "x.json"), Error);
  nlohmann::json wrong_schema = {{"schema", "hone-ceilings/9"}};
  EXPECT_THROW(Ceilings::from_json(wrong_schema, "x.json"), Error);
  nlohmann::json missing = {{"schema", "hone-ceilings/1"}, {"host", "box"}};
  try {
    Ceilings::from_json(missing, "/cache/x.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("/cache/x.json"));
  }
}

TEST(CeilingsTest, CacheFileIsNamedByHostAndDeviceAndHonorsXdgCacheHome) {
  testing::TempDir dir;
  const ScopedEnv cache("XDG_CACHE_HOME", dir.path().string());
  EXPECT_EQ(default_ceilings_dir(), dir.path() / "hone" / "ceilings");
  CeilingsOptions options;
  const std::filesystem::path path = ceilings_cache_path(options);
  EXPECT_EQ(path.parent_path(), dir.path() / "hone" / "ceilings");
  EXPECT_TRUE(std::regex_match(path.filename().string(), std::regex(".+-[0-9a-f]{16}\\.json"))) << path.filename();
}

TEST(CeilingsTest, MeasuresOnceThenReusesTheCachedFile) {
  testing::TempDir dir;
  const ScopedEnv cache("XDG_CACHE_HOME", dir.path().string());
  CeilingsOptions options = small_options({});  // the default folder, under XDG_CACHE_HOME
  const CeilingsLookup first = load_or_measure_ceilings(options);
  EXPECT_TRUE(first.measured);
  ASSERT_TRUE(std::filesystem::is_regular_file(first.file));
  EXPECT_EQ(first.file.parent_path(), dir.path() / "hone" / "ceilings");

  // Mark the cached file: a second lookup must return the mark, not a new measurement.
  nlohmann::json marked = nlohmann::json::parse(read_file(first.file));
  marked["memory"]["gbps"] = 12345.0;
  write_file_atomic(first.file, marked.dump());
  const CeilingsLookup second = load_or_measure_ceilings(options);
  EXPECT_FALSE(second.measured);
  EXPECT_EQ(second.ceilings.memory_gbps, 12345.0);
  EXPECT_EQ(second.ceilings.measured_at, first.ceilings.measured_at);
  EXPECT_EQ(second.to_json().at("measured_now"), false);

  options.refresh = true;
  const CeilingsLookup third = load_or_measure_ceilings(options);
  EXPECT_TRUE(third.measured);
  EXPECT_NE(third.ceilings.memory_gbps, 12345.0);
  EXPECT_EQ(Ceilings::from_json(nlohmann::json::parse(read_file(first.file)), "cache").memory_gbps,
            third.ceilings.memory_gbps)
      << "a refresh rewrites the cache";
}

TEST(CeilingsTest, UnreadableCacheIsMeasuredAgain) {
  testing::TempDir dir;
  const CeilingsOptions options = small_options(dir.path());
  const std::filesystem::path path = ceilings_cache_path(options);
  write_file_atomic(path, "{ not json");
  const CeilingsLookup lookup = load_or_measure_ceilings(options);
  EXPECT_TRUE(lookup.measured);
  EXPECT_NO_THROW(Ceilings::from_json(nlohmann::json::parse(read_file(path)), "cache"));
}

TEST(CeilingsTest, BadOptionsAreUsageErrors) {
  CeilingsOptions options;
  options.repeats = 0;
  EXPECT_THROW(measure_ceilings(options), UsageError);
  options.repeats = 1;
  options.device = "tpu";
  EXPECT_THROW(measure_ceilings(options), UsageError);
}

}  // namespace
}  // namespace hone::profile
