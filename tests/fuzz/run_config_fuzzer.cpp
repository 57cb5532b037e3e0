// A run's config.json (and its model config), with an optional "edits" list as compress.json
// records them: parsed strictly, the model built from the config, the edits replayed on it.
// Seeds: real runs' config.json merged with their compress.json's edits.
#include <nlohmann/json.hpp>

#include "fuzz_target.h"
#include "hone/models/registry.h"
#include "hone/nn/edits.h"
#include "hone/run/run_dir.h"

namespace {

// Building allocates what the config asks for (a 10^9-wide layer is a valid config that needs
// 4 GB); the harness checks parsing and validation, so it builds only small models.
bool small_enough_to_build(const nlohmann::json& j, int& numbers) {
  if (j.is_number()) {
    ++numbers;
    const double value = j.get<double>();
    return numbers <= 96 && value <= 512 && value >= -512;
  }
  if (j.is_array() || j.is_object()) {
    for (const auto& item : j)
      if (!small_enough_to_build(item, numbers)) return false;
  }
  return true;
}

}  // namespace

HONE_FUZZ_TARGET(run_config) {
  const nlohmann::json document =
      nlohmann::json::parse(hone::fuzz::as_view(data, size), nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) return 0;  // not JSON: read_json_file's job, tested in the run tests
  hone::fuzz::expect_rejection_only([&] {
    const hone::run::RunConfig config = hone::run::run_config_from_json(document, "fuzz/config.json");
    int numbers = 0;
    if (!small_enough_to_build(config.model_config, numbers)) return;
    hone::models::ModelPtr model = hone::models::make_model(config.architecture, config.model_config);
    if (document.contains("edits") && small_enough_to_build(document["edits"], numbers))
      hone::nn::replay_edits(*model, document["edits"]);
  });
  return 0;
}
