#pragma once
/// @file A run directory: everything needed to rebuild, evaluate, compress, export and serve a model.
///
///   run/config.json              architecture, model config, dataset + options, train options
///   run/model.safetensors        the best weights (by validation score)
///   run/compress.json            (compressed runs) the structural edits to replay before loading
///   run/checkpoint/...           the last finished epoch, for resuming (hone/run/checkpoint.h)
///
/// This module is the one home every command loads a run through (train, eval, bench, profile,
/// compress, export, serve); it sits below all of them. Every file is written atomically
/// (temp + rename): a half-written file is never taken for a good one.
///
///   models::ModelPtr model = run::load_run_model("runs/cnn");   // eval mode, edits replayed
#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>

#include "hone/data/datasets.h"
#include "hone/models/model.h"

namespace hone::run {

inline constexpr int kRunFormatVersion = 1;
/// compress.json's format version ("hone-compress"): written by hone compress, read here.
inline constexpr int kCompressManifestVersion = 1;
inline constexpr const char* kCompressManifestName = "compress.json";

struct RunConfig {
  std::string architecture;
  nlohmann::json model_config;
  std::string dataset;
  data::DataOptions data_options;
  nlohmann::json train_options;  ///< as given, for the record
};

nlohmann::json to_json(const RunConfig& config);
/// Strict: wrong format/version or missing fields throw hone::Error naming the file.
RunConfig run_config_from_json(const nlohmann::json& j, const std::string& source);

void save_run_config(const std::filesystem::path& run_dir, const RunConfig& config);
RunConfig load_run_config(const std::filesystem::path& run_dir);

/// How save_weights stores tensors. kSparse: a floating tensor of at least 256 values that is at
/// least half exact zeros is written as its non-zero values plus a bitmask (`NAME::values`,
/// `NAME::mask`, one bit per element, LSB first; the shape in the metadata key "hone_sparse"), so a
/// pruned model's file really shrinks: 90 % zeros in fp32 take 0.525 of the dense bytes. Every
/// other tensor is written as it is. load_weights restores both forms to dense tensors.
enum class WeightStorage { kDense, kSparse };

/// Parameters and buffers of `module` (as named by named_parameters/named_buffers) -> safetensors.
void save_weights(const std::filesystem::path& path, const torch::nn::Module& module,
                  const std::map<std::string, std::string>& metadata = {},
                  WeightStorage storage = WeightStorage::kDense);
/// Strict load: every parameter and buffer must be present with the same shape; extra or missing
/// names, and shape mismatches, throw hone::Error naming them. Dtypes are converted to the module's.
/// Returns the file's metadata.
std::map<std::string, std::string> load_weights(const std::filesystem::path& path, torch::nn::Module& module);

/// A JSON file, parsed; a missing file or invalid JSON throws hone::Error naming the file.
nlohmann::json read_json_file(const std::filesystem::path& path);

/// True when the run directory holds a compress.json (a compressed run).
bool is_compressed_run(const std::filesystem::path& run_dir);
/// The checked compress.json of a compressed run (format hone-compress, this version, with edits).
nlohmann::json load_compress_manifest(const std::filesystem::path& run_dir);

/// Rebuilds the model saved in a run directory (config.json + model.safetensors, with a compressed
/// run's edits replayed first and its packed layers re-packed after), in eval mode.
models::ModelPtr load_run_model(const std::filesystem::path& run_dir);

}  // namespace hone::run
