#pragma once
/// @file A compression pass: a named transform of a model's module tree.
///
/// How to add a pass: write src/compress/<family>/<name>.cpp with a class deriving from Pass and a
/// `PassEntry <name>_entry()` that declares its options, then add one line to
/// src/compress/registry.cpp (the order there is the order a recipe's passes are sorted into when
/// they are given as flags). A pass changes layers only through the ModelEditor, which records each
/// change so a saved compressed model can be rebuilt (see editor.h). A layer the pass does not
/// support stays as it is, and the report says why.
#include <c10/core/Device.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hone/compress/editor.h"
#include "hone/models/model.h"

namespace hone::data {
struct LoadedData;
}

namespace hone::compress {

/// One option of a pass, for validation and --help.
struct OptionSpec {
  /// IntegerList: a non-empty JSON array of integers, each in [minimum, maximum] (e.g. a search grid).
  enum class Type { Number, Integer, Boolean, String, StringList, IntegerList };
  std::string name;
  Type type = Type::Number;
  nlohmann::json default_value;              ///< null: required
  std::vector<std::string> choices;          ///< String / StringList: the allowed values (empty = any)
  double minimum = -1e300, maximum = 1e300;  ///< Number / Integer: inclusive range
  std::string help;
};

/// The `skip` option every layer-replacing pass takes: slot paths, or path prefixes ("layers.0"),
/// to leave as they are.
inline OptionSpec skip_option(std::string help) {
  return {"skip", OptionSpec::Type::StringList, nlohmann::json::array(), {}, -1e300, 1e300, std::move(help)};
}

/// True when `path` is one of the `skip` option's entries or lies under one ("features.3" skips
/// "features.3.conv1", not "features.30").
inline bool is_skipped(const std::string& path, const nlohmann::json& skip) {
  for (const auto& item : skip) {
    const auto prefix = item.get<std::string>();
    if (path == prefix || path.rfind(prefix + ".", 0) == 0) return true;
  }
  return false;
}

/// What a pass did, for the report: one line per changed layer, one per layer left alone.
struct PassReport {
  std::string pass;
  nlohmann::json options;                             ///< after defaults were filled in
  std::vector<std::string> changed;                   ///< "features.3.conv1: folded features.3.bn1"
  std::vector<std::string> skipped;                   ///< "lstm: LSTM is not a Conv2d"
  nlohmann::json details = nlohmann::json::object();  ///< pass-specific (e.g. per-layer sparsity)
};

/// Everything a pass may use besides the model.
struct PassContext {
  c10::Device device{c10::kCPU};
  /// Up to `max_batches` batches of real inputs (the run's training split), for calibration and
  /// batch-norm statistics. Empty when the model has no dataset (a zoo name).
  std::function<std::vector<torch::Tensor>(std::int64_t max_batches)> calibration_batches;
  /// A random batch of `batch` inputs of the model's input shape (timing only), for passes that
  /// time layers on their real shapes; set for zoo names too. Null when the shape is unknown.
  std::function<torch::Tensor(std::int64_t batch)> example_input;
  /// The model's score on the validation split (accuracy for classifiers, -RMSE for forecasters:
  /// higher is better), for passes that trade accuracy for size. Null when there is no dataset.
  std::function<double(models::Model&)> validation_score;
  /// Records every structural change.
  ModelEditor* editor = nullptr;
  /// The run's splits with their targets, for passes that train (distill, prune_gradual); null
  /// when the model has no dataset (a zoo name).
  const data::LoadedData* data = nullptr;
  /// Where passes that train run (compress's --device); they hand the model back on the CPU.
  c10::Device train_device{c10::kCPU};
  /// A fresh, unmodified model by name, in eval mode on the CPU: "source" (the model being
  /// compressed, as it was before any pass), a run directory or a zoo name. Teachers come from here.
  std::function<models::ModelPtr(const std::string& name)> load_model;
  /// The source run's initial weights, before it was trained (train::initial_model), in eval mode
  /// on the CPU; `seed_offset` != 0 draws another random initialization. Null for a zoo name.
  std::function<models::ModelPtr(std::uint64_t seed_offset)> initial_model;
};

class Pass {
 public:
  virtual ~Pass() = default;
  /// `options` are already validated against the entry's specs, with defaults filled in.
  virtual PassReport apply(models::Model& model, const nlohmann::json& options, PassContext& context) = 0;
};

struct PassEntry {
  std::string name;     ///< "quant_int8_dynamic"
  std::string summary;  ///< one line for --help
  std::vector<OptionSpec> options;
  std::function<std::unique_ptr<Pass>()> make;
};

/// Every pass, in the registry's order.
const std::vector<PassEntry>& pass_registry();
/// Throws hone::UsageError listing the valid pass names when `name` is unknown.
const PassEntry& find_pass(const std::string& name);
/// Checks `options` against the entry's specs and fills in defaults; an unknown key, a wrong type,
/// a value out of range or not among the choices throws hone::UsageError naming the pass, the
/// option and what is valid.
nlohmann::json validate_options(const PassEntry& entry, const nlohmann::json& options);

}  // namespace hone::compress
