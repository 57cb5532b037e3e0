#include "hone/run/run_dir.h"

#include <torch/utils.h>

#include <set>

#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "hone/io/safetensors.h"
#include "hone/models/registry.h"
#include "hone/nn/edits.h"

namespace hone::run {
namespace fs = std::filesystem;

nlohmann::json read_json_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) fail("{} is missing", path.string());
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: invalid JSON: {}", path.string(), e.what());
  }
}

bool is_compressed_run(const fs::path& run_dir) {
  std::error_code ec;
  return fs::is_regular_file(run_dir / kCompressManifestName, ec);
}

nlohmann::json load_compress_manifest(const fs::path& run_dir) {
  const fs::path path = run_dir / kCompressManifestName;
  nlohmann::json manifest = read_json_file(path);
  HONE_CHECK(manifest.is_object() && manifest.value("format", "") == "hone-compress" &&
                 manifest.value("version", 0) == kCompressManifestVersion && manifest.contains("edits"),
             "{} is not a hone-compress/{} manifest", path.string(), kCompressManifestVersion);
  return manifest;
}

nlohmann::json to_json(const RunConfig& config) {
  return {{"format", "hone-run"},
          {"version", kRunFormatVersion},
          {"hone_version", HONE_VERSION},
          {"architecture", config.architecture},
          {"model_config", config.model_config},
          {"dataset", config.dataset},
          {"data_options", {{"window", config.data_options.window}, {"limit", config.data_options.limit}}},
          {"train_options", config.train_options}};
}

RunConfig run_config_from_json(const nlohmann::json& j, const std::string& source) {
  try {
    HONE_CHECK(j.is_object() && j.value("format", "") == "hone-run", "{}: not a hone run config (format != hone-run)",
               source);
    const int version = j.at("version").get<int>();
    HONE_CHECK(version == kRunFormatVersion, "{}: run format version {} is not supported (this hone reads {})", source,
               version, kRunFormatVersion);
    RunConfig config;
    config.architecture = j.at("architecture").get<std::string>();
    config.model_config = j.at("model_config");
    config.dataset = j.at("dataset").get<std::string>();
    const auto& d = j.at("data_options");
    config.data_options.window = d.at("window").get<std::int64_t>();
    config.data_options.limit = d.at("limit").get<std::int64_t>();
    config.train_options = j.value("train_options", nlohmann::json::object());
    return config;
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed run config: {}", source, e.what());
  }
}

void save_run_config(const fs::path& run_dir, const RunConfig& config) {
  write_file_atomic(run_dir / "config.json", to_json(config).dump(2) + "\n");
}

RunConfig load_run_config(const fs::path& run_dir) {
  const fs::path path = run_dir / "config.json";
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) fail("run directory '{}' does not exist", run_dir.string());
  if (!fs::is_regular_file(path, ec)) fail("'{}' is not a hone run: {} is missing", run_dir.string(), path.string());
  return run_config_from_json(read_json_file(path), path.string());
}

void save_weights(const fs::path& path, const torch::nn::Module& module,
                  const std::map<std::string, std::string>& metadata) {
  io::NamedTensors tensors;
  for (const auto& item : module.named_parameters()) tensors.emplace_back(item.key(), item.value().detach());
  for (const auto& item : module.named_buffers()) tensors.emplace_back(item.key(), item.value().detach());
  io::save_safetensors(path, tensors, metadata);
}

std::map<std::string, std::string> load_weights(const fs::path& path, torch::nn::Module& module) {
  const io::SafetensorsContents contents = io::load_safetensors(path);
  std::map<std::string, const at::Tensor*> by_name;
  for (const auto& [name, tensor] : contents.tensors) by_name[name] = &tensor;
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  auto assign = [&](const std::string& name, at::Tensor& target) {
    auto it = by_name.find(name);
    if (it == by_name.end()) fail("{}: tensor '{}' is missing (the model has it)", path.string(), name);
    const at::Tensor& source = *it->second;
    if (source.sizes() != target.sizes()) {
      fail("{}: tensor '{}' has shape {} but the model expects {}", path.string(), name, source.sizes(),
           target.sizes());
    }
    target.copy_(source);
    used.insert(name);
  };
  for (auto& item : module.named_parameters()) assign(item.key(), item.value());
  for (auto& item : module.named_buffers()) assign(item.key(), item.value());
  for (const auto& [name, tensor] : contents.tensors) {
    if (!used.count(name)) fail("{}: tensor '{}' does not belong to this model", path.string(), name);
  }
  return contents.metadata;
}

models::ModelPtr load_run_model(const fs::path& run_dir) {
  const RunConfig config = load_run_config(run_dir);
  models::ModelPtr model = models::make_model(config.architecture, config.model_config);
  const fs::path weights = run_dir / "model.safetensors";
  std::error_code ec;
  if (!fs::is_regular_file(weights, ec)) fail("'{}' has no weights: {} is missing", run_dir.string(), weights.string());
  // A compressed run: replay the structural edits on the base model before loading its weights.
  const bool compressed = is_compressed_run(run_dir);
  if (compressed) nn::replay_edits(*model, load_compress_manifest(run_dir)["edits"]);
  load_weights(weights, *model);
  if (compressed) nn::repack_layers(*model);
  model->eval();
  return model;
}

}  // namespace hone::run
