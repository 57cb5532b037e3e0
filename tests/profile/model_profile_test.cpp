#include "hone/profile/model_profile.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <set>

#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "hone/profile/flop_counter.h"
#include "hone/profile/kineto_trace.h"
#include "hone/runtime/device_probe.h"
#include "hone/runtime/forward_runner.h"
#include "hone/runtime/settings.h"
#include "hone/runtime/target.h"
#include "hone/runtime/units.h"
#include "hone/train/trainer.h"
#include "support/temp_dir.h"

namespace hone::profile {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;

/// Few, small passes; no ceilings unless a test asks (measuring them is its own test).
ProfileOptions quick_options() {
  ProfileOptions options;
  options.batch = 2;
  options.warmup = 1;
  options.steps = 2;
  options.top = 0;
  options.roofline = false;
  return options;
}

std::set<std::string> op_names(const ProfileReport& r) {
  std::set<std::string> names;
  for (const auto& op : r.ops) names.insert(op.name);
  return names;
}

std::set<std::string> module_names(const ProfileReport& r) {
  std::set<std::string> names;
  for (const auto& m : r.modules) names.insert(m.name);
  return names;
}

/// FLOPs of one forward pass of `target` at `batch`, counted live by FlopCounter.
std::int64_t counted_flops(const std::string& target, std::int64_t batch) {
  runtime::ModelTarget t = runtime::load_target(target);
  const runtime::RunSettings settings;
  runtime::prepare_model(*t.model, settings);
  const auto input = runtime::make_random_input(t.info, batch, settings);
  torch::NoGradGuard no_grad;
  FlopCounter counter;
  t.model->forward(input);
  return counter.total();
}

void expect_module_times_within_the_step(const ProfileReport& r) {
  double module_ms = 0;
  for (const auto& m : r.modules) {
    EXPECT_GE(m.time_ms, 0.0) << m.name;
    module_ms += m.time_ms;
  }
  EXPECT_GT(module_ms, 0.0);
  EXPECT_LE(module_ms, r.step_ms.mean * (1 + 1e-9)) << "modules' times are parts of the step";
  EXPECT_LE(module_ms, r.ops_cpu_ms * (1 + 1e-9) + 1e-9);
}

TEST(ModelProfileTest, CnnShowsConvolutionsAndTheClassifierProduct) {
  const ProfileReport r = profile_model("cnn", quick_options());
  EXPECT_EQ(r.architecture, "cnn");
  EXPECT_EQ(r.step_ms.count, 2);
  const auto names = op_names(r);
  EXPECT_THAT(names, Contains("aten::conv2d"));
  EXPECT_THAT(names, Contains("aten::addmm"));
  EXPECT_THAT(names, Contains("aten::batch_norm"));
  for (const auto& op : r.ops) {
    EXPECT_GE(op.self_cpu_us, 0.0) << op.name;
    EXPECT_LE(op.self_cpu_us, op.cpu_total_us + 1e-9) << op.name;
    EXPECT_EQ(op.self_device_us, 0.0) << "no device on the CPU";
  }
  const auto conv = std::find_if(r.ops.begin(), r.ops.end(), [](const OpStats& op) {
    return op.name == "aten::conv2d" && !op.input_shapes.empty() && op.input_shapes[0].size() == 4;
  });
  ASSERT_NE(conv, r.ops.end());
  EXPECT_EQ(conv->input_shapes[0][0], 2) << "shapes carry the batch";

  const auto modules = module_names(r);
  EXPECT_THAT(modules, Contains("features.0"));
  EXPECT_THAT(modules, Contains("classifier"));
  EXPECT_EQ(modules.count("features.2"), 0u) << "a ReLU owns no parameters: no row";
  expect_module_times_within_the_step(r);

  // The modules' FLOPs add up to the whole pass, which is what FlopCounter counts live.
  std::int64_t module_flops = 0, parameters = 0;
  for (const auto& m : r.modules) {
    module_flops += m.flops;
    parameters += m.parameters;
    EXPECT_GE(m.bytes, 0) << m.name;
  }
  EXPECT_EQ(module_flops, r.flops);
  EXPECT_EQ(r.flops, counted_flops("cnn", 2));
  EXPECT_EQ(parameters, r.parameters) << "every parameter belongs to exactly one row";
  const auto classifier =
      std::find_if(r.modules.begin(), r.modules.end(), [](const ModuleStats& m) { return m.name == "classifier"; });
  ASSERT_NE(classifier, r.modules.end());
  EXPECT_GT(classifier->flops, 0);
  EXPECT_GT(classifier->bytes, classifier->parameters * 4) << "reads its weights at least";
  EXPECT_GT(r.bytes, 0);
  EXPECT_EQ(r.cuda_max_allocated_bytes, -1);
  EXPECT_GT(r.peak_rss_bytes, 0);
}

TEST(ModelProfileTest, TransformerShowsAttentionAndItsLayers) {
  const ProfileReport r = profile_model("transformer", quick_options());
  const auto names = op_names(r);
  EXPECT_THAT(names, Contains("aten::scaled_dot_product_attention"));
  const bool cpu_kernel = names.count("aten::_scaled_dot_product_flash_attention_for_cpu") > 0 ||
                          names.count("aten::_scaled_dot_product_attention_math") > 0;
  EXPECT_TRUE(cpu_kernel) << "the CPU implementation SDPA dispatches to is listed too";
  const auto modules = module_names(r);
  for (const char* name : {"embed", "layers.0", "layers.1", "norm", "head", "(model)"}) {
    EXPECT_THAT(modules, Contains(name));
  }
  expect_module_times_within_the_step(r);
  EXPECT_EQ(r.flops, counted_flops("transformer", 2));
}

TEST(ModelProfileTest, OpTableIsSortedCutAndSharesAddUp) {
  ProfileOptions options = quick_options();
  const ProfileReport all = profile_model("mlp", options);
  double percent = 0;
  for (const auto& op : all.ops) percent += op.percent;
  EXPECT_NEAR(percent, 100.0, 1e-6);
  EXPECT_EQ(static_cast<std::int64_t>(all.ops.size()), all.distinct_ops);
  options.top = 3;
  const ProfileReport top = profile_model("mlp", options);
  ASSERT_EQ(top.ops.size(), 3u);
  EXPECT_GT(top.distinct_ops, 3);
  EXPECT_GE(top.ops[0].self_cpu_us, top.ops[1].self_cpu_us);
  EXPECT_GE(top.ops[1].self_cpu_us, top.ops[2].self_cpu_us);
  // mlp: layers.0 is the first Linear, layers.1 its ReLU (no row), layers.2 its Dropout (no row).
  EXPECT_THAT(module_names(top), Contains("layers.0"));
  EXPECT_EQ(module_names(top).count("layers.1"), 0u);
}

TEST(ModelProfileTest, WritesAChromeTraceAtomically) {
  testing::TempDir dir;
  ProfileOptions options = quick_options();
  options.trace = (dir / "trace.json").string();
  const ProfileReport r = profile_model("mlp", options);
  EXPECT_EQ(r.trace, options.trace);
  const auto trace = nlohmann::json::parse(read_file(dir / "trace.json"));
  ASSERT_TRUE(trace.at("traceEvents").is_array());
  EXPECT_FALSE(trace.at("traceEvents").empty());
  bool has_step = false, has_addmm = false;
  for (const auto& event : trace.at("traceEvents")) {
    const std::string name = event.value("name", "");
    has_step = has_step || name == "ProfilerStep#0";
    has_addmm = has_addmm || name == "aten::addmm";
  }
  EXPECT_TRUE(has_step);
  EXPECT_TRUE(has_addmm);
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    ++files;
    EXPECT_EQ(entry.path().filename(), "trace.json") << "no temp file left behind";
  }
  EXPECT_EQ(files, 1u);
}

TEST(ModelProfileTest, JsonFollowsItsSchemaWithARooflineAgainstCachedCeilings) {
  testing::TempDir dir;
  ProfileOptions options = quick_options();
  options.roofline = true;
  options.ceilings.cache_dir = dir.path();
  options.ceilings.matmul_size = 64;
  options.ceilings.copy_bytes = 1 << 20;
  options.ceilings.repeats = 1;
  const ProfileReport r = profile_model("cnn", options);
  ASSERT_TRUE(r.has_ceilings);
  EXPECT_EQ(r.peak_dtype, "fp32");
  EXPECT_GT(r.roofline.tflops, 0.0);
  EXPECT_GT(r.roofline.percent_of_peak_flops, 0.0);
  EXPECT_GT(r.roofline.percent_of_peak_bandwidth, 0.0);
  EXPECT_THAT((std::set<std::string>{"compute", "memory"}), Contains(r.roofline.bound));

  const nlohmann::json j = nlohmann::json::parse(r.to_json().dump());
  EXPECT_EQ(j.at("schema"), "hone-profile/1");
  EXPECT_EQ(j.at("batch"), 2);
  EXPECT_EQ(j.at("input").at("kind"), "random normal (timing only)");
  EXPECT_EQ(j.at("step_ms").at("count"), 2);
  EXPECT_TRUE(j.at("device_ms").is_null()) << "CPU";
  EXPECT_TRUE(j.at("cuda").is_null());
  EXPECT_TRUE(j.at("trace").is_null());
  EXPECT_EQ(j.at("roofline").at("ceilings").at("file"), r.ceilings_file);
  EXPECT_GT(j.at("roofline").at("ceilings").at("matmul_tflops").at("fp32").get<double>(), 0.0);
  ASSERT_FALSE(j.at("ops").empty());
  for (const char* key : {"name", "input_shapes", "calls", "self_cpu_us", "cpu_total_us", "self_device_us",
                          "device_total_us", "percent"}) {
    EXPECT_TRUE(j.at("ops").at(0).contains(key)) << key;
  }
  ASSERT_FALSE(j.at("modules").empty());
  for (const char* key : {"name", "type", "parameters", "ops", "cpu_ms", "device_ms", "time_ms", "percent", "flops",
                          "bytes", "activation_bytes", "roofline"}) {
    EXPECT_TRUE(j.at("modules").at(0).contains(key)) << key;
  }
  EXPECT_TRUE(j.at("modules").at(0).at("roofline").at("percent_of_peak_flops").is_number());
  EXPECT_EQ(j.at("memory").at("cuda_max_allocated_bytes"), -1);
  EXPECT_THAT(r.to_text(), HasSubstr("top ops by self CPU time"));
  EXPECT_THAT(r.to_text(), HasSubstr("classifier"));

  const ProfileReport again = profile_model("mlp", options);
  EXPECT_EQ(again.ceilings.measured_at, r.ceilings.measured_at) << "the cached ceilings are reused";
}

TEST(ModelProfileTest, KinetoTraceRecordsStepsAndNesting) {
  torch::manual_seed(0);
  torch::nn::Linear linear(16, 8);
  const torch::Tensor x = torch::randn({4, 16});
  torch::NoGradGuard no_grad;
  const KinetoTrace trace = record_kineto_trace(3, false, [&](int) { linear->forward(x).relu(); });
  ASSERT_EQ(trace.steps.size(), 3u);
  std::int64_t addmm_flops = 0;
  for (const auto& op : trace.ops) {
    EXPECT_LE(op.self_cpu_ns, op.cpu_ns) << op.name;
    EXPECT_GE(op.start_ns, trace.steps[op.step].start_ns) << op.name;
    if (op.name == "aten::addmm") {
      EXPECT_EQ(op.depth, 0);
      EXPECT_GT(op.allocated_bytes, 0) << "addmm allocates its output";
      EXPECT_EQ(op.input_bytes, 4 * (8 + 4 * 16 + 16 * 8));
      addmm_flops += op.flops;
    }
  }
  EXPECT_EQ(addmm_flops, 3 * 2 * 4 * 16 * 8);
}

TEST(ModelProfileTest, RunDirectoryUsesItsWeightsAndShape) {
  testing::TempDir dir;
  train::TrainOptions o;
  o.model = "mlp";
  o.data = "digits";
  o.epochs = 1;
  o.max_steps_per_epoch = 2;
  o.out_dir = dir / "run";
  o.progress = false;
  train::train(o);
  const ProfileReport r = profile_model((dir / "run").string(), quick_options());
  EXPECT_EQ(r.architecture, "mlp");
  EXPECT_EQ(r.input_shape, (std::vector<std::int64_t>{1, 8, 8}));
  EXPECT_THAT(r.weights, HasSubstr("model.safetensors"));
  EXPECT_THAT(module_names(r), Contains("layers.0"));
  expect_module_times_within_the_step(r);
}

TEST(ModelProfileTest, BadOptionsAndTargetsAreRejected) {
  ProfileOptions options = quick_options();
  EXPECT_THROW(profile_model("no-such-model", options), UsageError);
  try {
    profile_model("/no/such/run", options);
    FAIL() << "expected an error";
  } catch (const UsageError&) {
    FAIL() << "a missing run directory is a runtime error, not bad usage";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("/no/such/run"));
  }
  options.steps = 0;
  EXPECT_THROW(profile_model("mlp", options), UsageError);
  options = quick_options();
  options.amp = true;
  options.dtype = "bf16";
  EXPECT_THROW(profile_model("mlp", options), UsageError);
}

}  // namespace
}  // namespace hone::profile
