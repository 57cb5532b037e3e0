#include "hone/run/run_dir.h"

#include <cstdint>
#include <limits>

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

namespace {

// A whole number that fits: nlohmann's get<int>() of 1e300 (a double) is undefined behaviour
// (UBSan's float-cast-overflow, found by tests/fuzz/run_config_fuzzer.cpp).
std::int64_t integer_field(const nlohmann::json& object, const char* key, const std::string& source) {
  const nlohmann::json& value = object.at(key);
  HONE_CHECK(value.is_number_integer() &&
                 (!value.is_number_unsigned() ||
                  value.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())),
             "{}: '{}' must be an integer, got {}", source, key, value.dump());
  return value.get<std::int64_t>();
}

}  // namespace

RunConfig run_config_from_json(const nlohmann::json& j, const std::string& source) {
  try {
    HONE_CHECK(j.is_object() && j.value("format", "") == "hone-run", "{}: not a hone run config (format != hone-run)",
               source);
    const std::int64_t version = integer_field(j, "version", source);
    HONE_CHECK(version == kRunFormatVersion, "{}: run format version {} is not supported (this hone reads {})", source,
               version, kRunFormatVersion);
    RunConfig config;
    config.architecture = j.at("architecture").get<std::string>();
    config.model_config = j.at("model_config");
    config.dataset = j.at("dataset").get<std::string>();
    const auto& d = j.at("data_options");
    HONE_CHECK(d.is_object(), "{}: 'data_options' must be an object", source);
    config.data_options.window = integer_field(d, "window", source);
    config.data_options.limit = integer_field(d, "limit", source);
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

namespace {

constexpr const char* kSparseKey = "hone_sparse";

/// bool [n] -> uint8 [ceil(n / 8)], element i in bit (i % 8) of byte i / 8.
at::Tensor pack_bits(const at::Tensor& mask) {
  const std::int64_t n = mask.numel(), bytes = (n + 7) / 8;
  const at::Tensor padded = at::constant_pad_nd(mask.reshape({-1}).to(at::kByte), {0, bytes * 8 - n}, 0);
  const at::Tensor weights = at::tensor({1, 2, 4, 8, 16, 32, 64, 128}, at::TensorOptions().dtype(at::kByte));
  return (padded.view({bytes, 8}) * weights).sum(1).to(at::kByte);
}

at::Tensor unpack_bits(const at::Tensor& bytes, std::int64_t n) {
  const at::Tensor shifts = at::arange(8, at::TensorOptions().dtype(at::kByte));
  return bytes.unsqueeze(1).bitwise_right_shift(shifts).bitwise_and(1).reshape({-1}).narrow(0, 0, n).to(at::kBool);
}

bool store_sparse(const at::Tensor& t) {
  if (!t.is_floating_point() || t.numel() < 256) return false;
  return t.numel() - t.count_nonzero().item<std::int64_t>() >= (t.numel() + 1) / 2;
}

/// The sparse entries of a file back to dense tensors, checked against each other.
void densify(const fs::path& path, io::SafetensorsContents& contents) {
  const auto it = contents.metadata.find(kSparseKey);
  if (it == contents.metadata.end()) return;
  nlohmann::json shapes;
  try {
    shapes = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: metadata '{}' is not valid JSON: {}", path.string(), kSparseKey, e.what());
  }
  HONE_CHECK(shapes.is_object(), "{}: metadata '{}' must be an object of shapes", path.string(), kSparseKey);
  std::map<std::string, at::Tensor> by_name;
  for (auto& [name, tensor] : contents.tensors) by_name[name] = tensor;
  io::NamedTensors dense;
  std::set<std::string> consumed;
  for (const auto& item : shapes.items()) {
    const std::string& name = item.key();
    const auto values = by_name.find(name + "::values");
    const auto mask = by_name.find(name + "::mask");
    HONE_CHECK(values != by_name.end() && mask != by_name.end(),
               "{}: sparse tensor '{}' lacks its '::values' or '::mask' entry", path.string(), name);
    std::vector<std::int64_t> shape;
    try {
      shape = item.value().get<std::vector<std::int64_t>>();
    } catch (const nlohmann::json::exception&) {
      fail("{}: sparse tensor '{}' has no valid shape in '{}'", path.string(), name, kSparseKey);
    }
    std::int64_t n = 1;
    for (const auto d : shape) {
      HONE_CHECK(d >= 0, "{}: sparse tensor '{}' has a negative dimension", path.string(), name);
      n *= d;
    }
    HONE_CHECK(
        mask->second.scalar_type() == at::kByte && mask->second.dim() == 1 && mask->second.numel() == (n + 7) / 8,
        "{}: sparse tensor '{}': the mask must be {} bytes (uint8) for {} elements", path.string(), name, (n + 7) / 8,
        n);
    const at::Tensor bits = unpack_bits(mask->second, n);
    const std::int64_t kept = bits.sum().item<std::int64_t>();
    HONE_CHECK(values->second.dim() == 1 && values->second.numel() == kept,
               "{}: sparse tensor '{}': the mask keeps {} values but {} are stored", path.string(), name, kept,
               values->second.numel());
    at::Tensor out = at::zeros({n}, values->second.options());
    out.masked_scatter_(bits, values->second);
    dense.emplace_back(name, out.view(shape));
    consumed.insert(name + "::values");
    consumed.insert(name + "::mask");
  }
  for (auto& [name, tensor] : contents.tensors)
    if (!consumed.count(name)) dense.emplace_back(name, tensor);
  contents.tensors = std::move(dense);
}

}  // namespace

void save_weights(const fs::path& path, const torch::nn::Module& module,
                  const std::map<std::string, std::string>& metadata, WeightStorage storage) {
  io::NamedTensors tensors;
  nlohmann::json sparse = nlohmann::json::object();
  auto add = [&](const std::string& name, const at::Tensor& value) {
    const at::Tensor t = value.detach();
    if (storage == WeightStorage::kSparse && store_sparse(t)) {
      const at::Tensor flat = t.to(at::kCPU).contiguous().reshape({-1});
      const at::Tensor mask = flat.ne(0);
      tensors.emplace_back(name + "::values", flat.masked_select(mask));
      tensors.emplace_back(name + "::mask", pack_bits(mask));
      sparse[name] = t.sizes().vec();
      return;
    }
    tensors.emplace_back(name, t);
  };
  for (const auto& item : module.named_parameters()) add(item.key(), item.value());
  for (const auto& item : module.named_buffers()) add(item.key(), item.value());
  auto meta = metadata;
  if (!sparse.empty()) meta[kSparseKey] = sparse.dump();
  io::save_safetensors(path, tensors, meta);
}

std::map<std::string, std::string> load_weights(const fs::path& path, torch::nn::Module& module) {
  io::SafetensorsContents contents = io::load_safetensors(path);
  densify(path, contents);
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
