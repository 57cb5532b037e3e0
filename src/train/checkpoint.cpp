#include "hone/train/checkpoint.h"

#include "hone/compress/compress.h"
#include "hone/compress/editor.h"

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/utils.h>

#include <set>

#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "hone/io/safetensors.h"
#include "hone/models/registry.h"

namespace hone::train {
namespace fs = std::filesystem;

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
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: invalid JSON: {}", path.string(), e.what());
  }
  return run_config_from_json(j, path.string());
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
  const fs::path manifest_path = run_dir / "compress.json";
  const bool compressed = fs::is_regular_file(manifest_path, ec);
  if (compressed) {
    nlohmann::json manifest;
    try {
      manifest = nlohmann::json::parse(read_file(manifest_path));
    } catch (const nlohmann::json::parse_error& e) {
      fail("{} is not valid JSON: {}", manifest_path.string(), e.what());
    }
    HONE_CHECK(manifest.is_object() && manifest.value("format", "") == "hone-compress" &&
                   manifest.value("version", 0) == compress::kCompressFormatVersion && manifest.contains("edits"),
               "{} is not a hone-compress/{} manifest", manifest_path.string(), compress::kCompressFormatVersion);
    compress::replay_edits(*model, manifest["edits"]);
  }
  load_weights(weights, *model);
  if (compressed) compress::repack_layers(*model);
  model->eval();
  return model;
}

nlohmann::json to_json(const EpochRecord& r) {
  return {{"epoch", r.epoch},
          {"steps", r.steps},
          {"train_loss", r.train_loss},
          {"first_step_loss", r.first_step_loss},
          {"learning_rate", r.learning_rate},
          {"seconds", r.seconds},
          {"val", r.val.to_json()}};
}

nlohmann::json to_json(const TrainState& s) {
  nlohmann::json history = nlohmann::json::array();
  for (const auto& r : s.history) history.push_back(to_json(r));
  return {{"epochs_done", s.epochs_done},
          {"global_step", s.global_step},
          {"best_epoch", s.best_epoch},
          {"best_score", s.best_score},
          {"history", history}};
}

namespace {

EvalMetrics metrics_from_json(const nlohmann::json& j) {
  EvalMetrics m;
  m.split = j.at("split").get<std::string>();
  m.samples = j.at("samples").get<std::int64_t>();
  m.loss = j.at("loss").get<double>();
  if (j.contains("accuracy")) m.accuracy = j.at("accuracy").get<double>();
  if (j.contains("rmse")) {
    m.mae = j.at("mae").get<double>();
    m.rmse = j.at("rmse").get<double>();
    m.naive_mae = j.at("naive_mae").get<double>();
    m.naive_rmse = j.at("naive_rmse").get<double>();
  }
  return m;
}

TrainState state_from_json(const nlohmann::json& j) {
  TrainState s;
  s.epochs_done = j.at("epochs_done").get<int>();
  s.global_step = j.at("global_step").get<std::int64_t>();
  s.best_epoch = j.at("best_epoch").get<int>();
  s.best_score = j.at("best_score").get<double>();
  for (const auto& r : j.at("history")) {
    EpochRecord e;
    e.epoch = r.at("epoch").get<int>();
    e.steps = r.at("steps").get<std::int64_t>();
    e.train_loss = r.at("train_loss").get<double>();
    e.first_step_loss = r.at("first_step_loss").get<double>();
    e.learning_rate = r.at("learning_rate").get<double>();
    e.seconds = r.at("seconds").get<double>();
    e.val = metrics_from_json(r.at("val"));
    s.history.push_back(e);
  }
  return s;
}

constexpr const char* kEpochKey = "hone_epoch";

}  // namespace

bool has_checkpoint(const fs::path& run_dir) {
  std::error_code ec;
  return fs::is_regular_file(run_dir / "checkpoint" / "state.json", ec);
}

void save_checkpoint(const fs::path& run_dir, const torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                     const TrainState& state) {
  const fs::path dir = run_dir / "checkpoint";
  const std::string epoch = std::to_string(state.epochs_done);
  save_weights(dir / "weights.safetensors", model, {{kEpochKey, epoch}});
  write_file_atomic(dir / "optimizer.pt", [&](const fs::path& temp) {
    torch::serialize::OutputArchive archive;
    optimizer.save(archive);
    archive.write(kEpochKey, c10::IValue(static_cast<std::int64_t>(state.epochs_done)));
    archive.save_to(temp.string());
  });
  // Written last: a checkpoint exists only once its state.json does.
  write_file_atomic(dir / "state.json", to_json(state).dump(2) + "\n");
}

TrainState load_checkpoint(const fs::path& run_dir, torch::nn::Module& model, torch::optim::Optimizer& optimizer) {
  const fs::path dir = run_dir / "checkpoint";
  if (!has_checkpoint(run_dir))
    fail("no checkpoint to resume in '{}' ({} is missing)", run_dir.string(), (dir / "state.json").string());
  TrainState state;
  try {
    state = state_from_json(nlohmann::json::parse(read_file(dir / "state.json")));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed checkpoint state: {}", (dir / "state.json").string(), e.what());
  }
  const auto metadata = load_weights(dir / "weights.safetensors", model);
  auto it = metadata.find(kEpochKey);
  HONE_CHECK(it != metadata.end() && it->second == std::to_string(state.epochs_done),
             "{}: weights are from epoch {} but state.json says epoch {}", (dir / "weights.safetensors").string(),
             it == metadata.end() ? std::string("?") : it->second, state.epochs_done);
  const fs::path opt_path = dir / "optimizer.pt";
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(opt_path.string());
    optimizer.load(archive);
    c10::IValue epoch;
    HONE_CHECK(archive.try_read(kEpochKey, epoch) && epoch.toInt() == state.epochs_done,
               "{}: optimizer state is not from epoch {}", opt_path.string(), state.epochs_done);
  } catch (const c10::Error& e) {
    fail("{}: cannot load optimizer state: {}", opt_path.string(), e.what_without_backtrace());
  }
  return state;
}

}  // namespace hone::train
