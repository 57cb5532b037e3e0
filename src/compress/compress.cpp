#include "hone/compress/compress.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "hone/compress/verdict.h"
#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "hone/core/log.h"
#include "hone/data/datasets.h"
#include "hone/run/run_dir.h"
#include "hone/runtime/device_probe.h"
#include "hone/runtime/forward_runner.h"
#include "hone/runtime/settings.h"
#include "hone/runtime/target.h"
#include "hone/runtime/units.h"
#include "hone/train/evaluate.h"
#include "hone/train/trainer.h"

namespace hone::compress {
namespace fs = std::filesystem;

nlohmann::json Recipe::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [name, options] : passes) {
    nlohmann::json entry = options;
    entry["pass"] = name;
    list.push_back(entry);
  }
  return {{"passes", list}};
}

Recipe parse_recipe(const nlohmann::json& recipe, const std::string& source) {
  if (!recipe.is_object() || !recipe.contains("passes") || !recipe["passes"].is_array()) {
    fail_usage("{}: a recipe is an object {{\"passes\": [{{\"pass\": NAME, ...options}}, ...]}}, got {}", source,
               recipe.dump());
  }
  for (const auto& item : recipe.items()) {
    if (item.key() != "passes") fail_usage("{}: unknown recipe key '{}' (only 'passes')", source, item.key());
  }
  Recipe out;
  const auto& passes = recipe["passes"];
  if (passes.empty()) fail_usage("{}: the recipe has no passes", source);
  for (std::size_t i = 0; i < passes.size(); ++i) {
    const auto& entry = passes[i];
    if (!entry.is_object() || !entry.contains("pass") || !entry["pass"].is_string()) {
      fail_usage("{}: passes[{}] must be an object with a string 'pass', got {}", source, i, entry.dump());
    }
    nlohmann::json options = entry;
    options.erase("pass");
    try {
      const auto& pass = find_pass(entry["pass"].get<std::string>());
      out.passes.emplace_back(pass.name, validate_options(pass, options));
    } catch (const UsageError& error) {
      fail_usage("{}: passes[{}]: {}", source, i, error.what());
    }
  }
  return out;
}

Recipe load_recipe(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) fail("recipe file '{}' does not exist", path.string());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    fail("recipe file '{}' is not valid JSON: {}", path.string(), e.what());
  }
  return parse_recipe(j, path.string());
}

Recipe sort_by_registry(Recipe recipe) {
  const auto& registry = pass_registry();
  const auto rank = [&](const std::string& name) {
    return std::find_if(registry.begin(), registry.end(), [&](const auto& e) { return e.name == name; }) -
           registry.begin();
  };
  std::stable_sort(recipe.passes.begin(), recipe.passes.end(),
                   [&](const auto& a, const auto& b) { return rank(a.first) < rank(b.first); });
  return recipe;
}

namespace {

/// The model to compress and what it was trained on.
struct Source {
  run::RunConfig config;
  bool has_data = false;  ///< a run directory (real weights, a dataset)
  std::int64_t file_bytes = 0;
  data::DatasetInfo inputs;  ///< what a forward takes (for timing)
  models::ModelPtr model;    ///< as loaded (measured as "before"; the passes work on a fresh copy)
};

Source describe_source(const std::string& source) {
  Source out;
  std::error_code ec;
  const auto target = runtime::load_target(source);  // validates the name / directory
  if (fs::is_directory(source, ec)) {
    out.config = run::load_run_config(source);
    out.has_data = true;
    out.file_bytes = target.file_bytes;
  } else {
    out.config.architecture = target.model->architecture();
    out.config.model_config = target.model->config();
    out.config.dataset = target.info.name;
  }
  out.inputs = target.info;
  out.model = target.model;
  return out;
}

models::ModelPtr load_source_model(const std::string& source) { return runtime::load_target(source).model; }

std::vector<at::Tensor> first_batches(const data::TensorDataset& dataset, std::int64_t max_batches,
                                      std::int64_t batch_size) {
  // A fixed, seeded sample of the training split (not its first rows, which may be ordered).
  std::vector<at::Tensor> out;
  const auto count = dataset.count();
  if (count == 0) return out;
  const auto take = std::min<std::int64_t>(count, max_batches * batch_size);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(1234);
  const auto order = at::randperm(count, generator, at::TensorOptions().dtype(at::kLong)).slice(0, 0, take);
  const auto inputs = dataset.inputs().index_select(0, order);
  for (std::int64_t start = 0; start < take; start += batch_size) {
    out.push_back(inputs.slice(0, start, std::min(take, start + batch_size)));
  }
  return out;
}

}  // namespace

CompressReport compress_model(const CompressOptions& options) {
  if (options.recipe.passes.empty()) fail_usage_option("recipe", "compress: the recipe has no passes");
  if (options.output.empty()) fail_usage_option("output", "compress: no output directory given");
  std::error_code ec;
  if (fs::exists(options.output, ec) && !(fs::is_directory(options.output, ec) && fs::is_empty(options.output, ec)) &&
      !options.force) {
    fail_option("force", "output '{}' already exists and is not empty; choose another output directory or replace it",
                options.output.string());
  }
  if (fs::exists(options.output, ec) && fs::exists(options.source, ec) &&
      fs::equivalent(options.output, options.source, ec)) {
    fail("output '{}' is the source run itself; write the compressed model somewhere else", options.output.string());
  }
  Source source = describe_source(options.source);
  const c10::Device device(options.device);

  CompressReport report;
  report.source = options.source;
  report.output = options.output.string();
  report.architecture = source.config.architecture;
  report.dataset = source.config.dataset;
  report.device = device.str();

  std::optional<data::LoadedData> data;
  if (source.has_data) {
    data::DataOptions data_options = source.config.data_options;
    data = data::load_dataset(source.config.dataset, data_options);
  }

  VerdictSettings verdict{device, options.batches, options.warmup, options.iterations, options.eval_limit};
  if (options.measure) {
    log_info("measuring the source model");
    report.before = measure_model(*source.model, source.file_bytes, data ? &*data : nullptr, source.inputs, verdict);
  }

  // The passes get an unmeasured copy (measuring moved and ran the loaded one).
  auto model = options.measure ? load_source_model(options.source) : std::move(source.model);
  source.model.reset();
  model->eval();
  ModelEditor editor(*model);
  PassContext context;
  context.device = c10::kCPU;  // passes work on CPU tensors; the verdict moves the result
  context.editor = &editor;
  context.example_input = [inputs = source.inputs](std::int64_t batch) {
    return runtime::make_random_input(inputs, batch, runtime::RunSettings{});
  };
  if (data) {
    const auto* train_split = &data->train.dataset;
    context.calibration_batches = [train_split](std::int64_t max_batches) {
      return first_batches(*train_split, max_batches, 64);
    };
    const auto* val = &data->val;
    const auto task = data->info.task;
    context.validation_score = [val, task](models::Model& m) {
      return train::evaluate(m, *val, task, "val", c10::kCPU).score();
    };
    context.data = &*data;
    context.initial_model = [config = source.config](std::uint64_t seed_offset) {
      auto initial = train::initial_model(config, seed_offset);
      initial->eval();
      return initial;
    };
  }
  context.train_device = device;
  context.load_model = [source_name = options.source](const std::string& name) {
    auto loaded = load_source_model(name == "source" ? source_name : name);
    loaded->eval();
    return loaded;
  };
  for (const auto& [name, pass_options] : options.recipe.passes) {
    log_info("pass {}", name);
    const auto& entry = find_pass(name);
    auto pass = entry.make();
    torch::NoGradGuard no_grad;
    report.passes.push_back(pass->apply(*model, pass_options, context));
    model->eval();
  }

  // Atomically: the run is written into a hidden sibling that replaces `output` in one rename.
  const fs::path output = fs::absolute(options.output);
  write_directory_atomic(output, [&](const fs::path& temp) {
    run::save_run_config(temp, source.config);
    nlohmann::json passes = nlohmann::json::array();
    for (const auto& pass : report.passes) {
      passes.push_back({{"pass", pass.pass},
                        {"options", pass.options},
                        {"changed", pass.changed},
                        {"skipped", pass.skipped},
                        {"details", pass.details}});
    }
    const nlohmann::json manifest = {{"format", "hone-compress"}, {"version", run::kCompressManifestVersion},
                                     {"source", options.source},  {"recipe", options.recipe.to_json()},
                                     {"edits", editor.edits()},   {"passes", passes}};
    write_file_atomic(temp / "compress.json", manifest.dump(2) + "\n");
    run::save_weights(temp / "model.safetensors", *model, {{"hone_compress", "1"}}, run::WeightStorage::kSparse);
  });

  if (options.measure) {
    log_info("measuring the compressed model (reloaded from {})", output.string());
    auto reloaded = run::load_run_model(output);
    const auto file_bytes = static_cast<std::int64_t>(fs::file_size(output / "model.safetensors"));
    report.after = measure_model(*reloaded, file_bytes, data ? &*data : nullptr, source.inputs, verdict);
    report.diagnosis = diagnose(*reloaded, report.passes, *report.before, *report.after, verdict);
  }
  return report;
}

}  // namespace hone::compress
