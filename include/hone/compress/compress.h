#pragma once
/// @file `hone compress`: load a model, apply a recipe of passes, save the result, and measure
/// the verdict (size, memory, latency, accuracy before and after) on this machine.
///
/// A compressed run directory holds:
///   config.json        the source run's config (architecture, base model config, dataset)
///   compress.json      format hone-compress/1: source, recipe, the structural edits to replay, and
///                      each pass's report
///   model.safetensors  the compressed weights (int8 tensors, factors, pruned shapes...)
/// run::load_run_model() rebuilds it, so `hone eval` and `hone bench` take it like any run.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hone/compress/pass.h"

namespace hone::compress {

/// compress.json's format version is run::kCompressManifestVersion (hone/run/run_dir.h reads it).

/// An ordered list of passes with validated options (defaults filled in).
struct Recipe {
  std::vector<std::pair<std::string, nlohmann::json>> passes;
  nlohmann::json to_json() const;  ///< {"passes": [{"pass": name, ...options}]}
};

/// Parses {"passes": [{"pass": "fuse_conv_bn"}, {"pass": "quant_int8_static", "observer": "entropy"}]}.
/// Unknown passes, unknown options and bad values throw hone::UsageError naming `source`, the
/// entry and what is valid.
Recipe parse_recipe(const nlohmann::json& recipe, const std::string& source);
/// Reads and parses a recipe file; unreadable or malformed JSON throws hone::Error naming the file.
Recipe load_recipe(const std::filesystem::path& path);
/// Orders passes given as flags by the registry's order.
Recipe sort_by_registry(Recipe recipe);

/// One side of the verdict.
struct Measurement {
  std::int64_t parameters = 0;                              ///< trainable parameters
  std::int64_t buffer_elements = 0;                         ///< buffers (int8 weights of quantized layers live here)
  std::int64_t memory_bytes = 0;                            ///< parameters + buffers as held in memory
  std::int64_t file_bytes = 0;                              ///< model.safetensors on disk
  std::vector<std::pair<std::int64_t, double>> latency_ms;  ///< (batch, p50 ms)
  std::int64_t peak_rss_bytes = 0;                          ///< CPU: process high-water mark while timing this side
  std::optional<double> accuracy;                           ///< classification, 0..1, test split
  std::optional<double> rmse;                               ///< forecasting, test split
  std::int64_t samples = 0;                                 ///< test samples scored
  nlohmann::json to_json() const;
};

struct CompressOptions {
  std::string source;  ///< a run directory (or a zoo name: random weights, no accuracy)
  Recipe recipe;
  std::filesystem::path output;
  bool force = false;  ///< replace an existing output directory
  std::string device = "cpu";
  bool measure = true;  ///< the verdict (latency, accuracy); off: passes only
  std::vector<std::int64_t> batches{1, 64};
  int warmup = 5;
  int iterations = 30;
  std::int64_t eval_limit = 0;  ///< > 0: score at most this many test samples (quick runs)
};

struct CompressReport {
  std::string source, output, architecture, dataset, device;
  std::vector<PassReport> passes;
  std::optional<Measurement> before, after;
  std::vector<std::string> diagnosis;  ///< why the result is not faster/smaller, when it is not
  nlohmann::json to_json() const;      ///< schema hone-compress/1
  std::string to_text() const;         ///< the verdict table
};

/// Loads the source, applies the recipe, writes `output` atomically (a temporary directory, then
/// rename), and measures both models. Throws hone::Error on bad input; nothing is half-written.
CompressReport compress_model(const CompressOptions& options);

}  // namespace hone::compress
