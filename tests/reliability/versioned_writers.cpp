#include "versioned_writers.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>

#include "hone/compress/compress.h"
#include "hone/core/error.h"
#include "hone/core/fs.h"
#include "hone/export/export.h"
#include "hone/export/onnx_graph.h"
#include "hone/export/onnx_proto.h"
#include "hone/models/registry.h"
#include "hone/run/checkpoint.h"
#include "hone/run/run_dir.h"

namespace hone::testing {
namespace fs = std::filesystem;
namespace {

// Big enough (8 MiB) that a save takes long enough for random kills to land inside its writes.
struct Blob : torch::nn::Module {
  Blob() {
    first = register_parameter("first", torch::empty({1024, 1024}));
    second = register_parameter("second", torch::empty({1024, 1024}));
    steps = register_buffer("steps", torch::zeros({3}, torch::kInt64));
  }
  void fill(int version) {
    torch::NoGradGuard no_grad;
    first.fill_(version);
    second.fill_(version);
    steps.fill_(version);
  }
  /// The one value every tensor holds; throws when they disagree (a mix of two versions).
  int version(const std::string& where) const {
    const double value = first.flatten()[0].item<double>();
    for (const auto& tensor : {first, second, steps.to(torch::kFloat)})
      HONE_CHECK(tensor.eq(value).all().item<bool>(), "{}: tensors hold different versions", where);
    return static_cast<int>(value);
  }
  torch::Tensor first, second, steps;
};

int metadata_version(const std::map<std::string, std::string>& metadata, const std::string& key,
                     const std::string& where) {
  const auto it = metadata.find(key);
  HONE_CHECK(it != metadata.end(), "{}: no '{}' in the metadata", where, key);
  return std::stoi(it->second);
}

void write_weights(const fs::path& dir, int version) {
  Blob blob;
  blob.fill(version);
  run::save_weights(dir / "model.safetensors", blob, {{"version", std::to_string(version)}});
}

int check_weights(const fs::path& dir) {
  Blob blob;
  const auto path = dir / "model.safetensors";
  const int tagged = metadata_version(run::load_weights(path, blob), "version", path.string());
  HONE_CHECK(blob.version(path.string()) == tagged, "{}: weights are not version {}", path.string(), tagged);
  return tagged;
}

void write_checkpoint(const fs::path& dir, int version) {
  Blob blob;
  blob.fill(version);
  const io::NamedTensors optimizer_state = {{"exp_avg.first", torch::full({1024, 1024}, version)},
                                            {"step", torch::full({1}, version, torch::kInt64)}};
  run::save_checkpoint(dir, blob, optimizer_state, {{"epochs_done", version}});
}

int check_checkpoint(const fs::path& dir) {
  Blob blob;
  io::NamedTensors optimizer_state;
  const nlohmann::json state = run::load_checkpoint(dir, blob, optimizer_state);
  const int epochs = state.at("epochs_done").get<int>();
  const int weights = blob.version((dir / "checkpoint").string());
  HONE_CHECK(weights == epochs, "{}: weights of version {}, state.json of {}", dir.string(), weights, epochs);
  for (const auto& [name, tensor] : optimizer_state)
    HONE_CHECK(tensor.eq(epochs).all().item<bool>(), "{}: optimizer tensor '{}' is not version {}", dir.string(), name,
               epochs);
  return epochs;
}

// A digits MLP run whose Linear weights and biases all equal `version` (exact in fp16 below 2048),
// written unless it is there already.
fs::path source_run(const fs::path& dir, int version) {
  const fs::path run_dir = dir / "sources" / ("v" + std::to_string(version));
  if (fs::exists(run_dir / "model.safetensors")) return run_dir;
  run::RunConfig config;
  config.architecture = "mlp";
  config.model_config = {{"in_features", 64}, {"hidden", {32}}, {"out_features", 10}};
  config.dataset = "digits";
  config.train_options = nlohmann::json::object();
  auto model = models::make_model(config.architecture, config.model_config);
  {
    torch::NoGradGuard no_grad;
    for (auto& parameter : model->parameters()) parameter.fill_(version);
  }
  run::save_run_config(run_dir, config);
  run::save_weights(run_dir / "model.safetensors", *model);
  return run_dir;
}

// Writes version `version` from its source, then prepares the next version's source and drops
// older ones, so that writing version K touches only the writer under test (a full disk fails
// there, not in the source).
void from_source(const fs::path& dir, int version, const std::function<void(const fs::path& source)>& write) {
  write(source_run(dir, version));
  source_run(dir, version + 1);
  remove_tree(dir / "sources" / ("v" + std::to_string(version - 1)));
}

int source_version(const std::string& source, const std::string& where) {
  const std::string name = fs::path(source).filename().string();
  HONE_CHECK(name.size() > 1 && name[0] == 'v', "{}: source '{}' is not one of the writer's", where, source);
  return std::stoi(name.substr(1));
}

void write_compressed_run(const fs::path& dir, int version) {
  from_source(dir, version, [&](const fs::path& source) {
    compress::CompressOptions options;
    options.source = source.string();
    options.recipe = compress::parse_recipe({{"passes", {{{"pass", "quant_float"}, {"dtype", "fp16"}}}}}, "writer");
    options.output = dir / "compressed";
    options.force = true;
    options.measure = false;
    compress::compress_model(options);
  });
}

int check_compressed_run(const fs::path& dir) {
  const fs::path run_dir = dir / "compressed";
  const int version =
      source_version(run::load_compress_manifest(run_dir).at("source").get<std::string>(), run_dir.string());
  const auto model = run::load_run_model(run_dir);
  for (const auto& parameter : model->parameters())
    HONE_CHECK(parameter.to(torch::kFloat).eq(version).all().item<bool>(), "{}: weights are not those of source v{}",
               run_dir.string(), version);
  return version;
}

void write_export(const fs::path& dir, int version) {
  from_source(dir, version, [&](const fs::path& source) {
    onnx::ExportOptions options;
    options.target = source.string();
    options.output = dir / "model.onnx";
    options.verify = false;
    const auto report = onnx::export_model(options);
    HONE_CHECK(report.passed, "export of {} did not pass", source.string());
  });
}

int check_export(const fs::path& dir) {
  const fs::path path = dir / "model.onnx";
  const auto model = onnx::parse<onnx::ModelProto>(read_file(path), path.string());
  HONE_CHECK(!model.graph.node.empty() && !model.graph.initializer.empty(), "{}: an empty graph", path.string());
  for (const auto& tensor : model.graph.initializer) onnx::check_tensor(tensor);
  const auto source = std::find_if(model.metadata_props.begin(), model.metadata_props.end(),
                                   [](const auto& entry) { return entry.key == "hone.source"; });
  HONE_CHECK(source != model.metadata_props.end(), "{}: no hone.source in metadata_props", path.string());
  return source_version(source->value, path.string());
}

}  // namespace

const std::vector<VersionedWriter>& versioned_writers() {
  static const std::vector<VersionedWriter> writers = {
      {"weights", "run::save_weights", {"model.safetensors"}, write_weights, check_weights},
      {"checkpoint", "run::save_checkpoint", {"checkpoint"}, write_checkpoint, check_checkpoint},
      {"compressed-run",
       "compress::compress_model",
       {"compressed", "sources"},
       write_compressed_run,
       check_compressed_run},
      {"export", "onnx::export_model", {"model.onnx", "sources"}, write_export, check_export},
  };
  return writers;
}

const VersionedWriter& find_versioned_writer(const std::string& name) {
  for (const auto& writer : versioned_writers())
    if (writer.name == name) return writer;
  fail("no versioned writer '{}' (weights, checkpoint, compressed-run, export)", name);
}

std::vector<std::string> unexpected_entries(const fs::path& dir, const std::vector<std::string>& expected) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".")) continue;
    if (std::find(expected.begin(), expected.end(), name) == expected.end()) found.push_back(name);
  }
  return found;
}

}  // namespace hone::testing
