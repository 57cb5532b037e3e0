// hone info: versions, devices, CPU features, quantized engines, and what the zoo holds; with
// --ceilings, this machine's measured matmul and memory ceilings (profile/ceilings.h).
#include <iostream>

#include "commands.h"
#include "flags.h"
#include "hone/core/error.h"
#include "hone/core/system_info.h"
#include "hone/data/datasets.h"
#include "hone/models/registry.h"
#include "hone/profile/ceilings.h"

namespace hone::cli {
namespace {

struct InfoOptions {
  bool json = false;
  bool ceilings = false;
  profile::CeilingsOptions ceilings_options;
};

void run_info(const InfoOptions& options) {
  if (!options.ceilings && options.ceilings_options.refresh) fail_usage("--refresh goes with --ceilings");
  if (options.ceilings) {
    const profile::CeilingsLookup lookup = profile::load_or_measure_ceilings(options.ceilings_options);
    std::cout << (options.json ? lookup.to_json().dump(2) + "\n" : lookup.to_text());
    return;
  }
  const SystemInfo info = collect_system_info();
  if (options.json) {
    nlohmann::json j = to_json(info);
    for (const auto& m : models::model_registry()) j["models"].push_back({{"name", m.name}, {"summary", m.summary}});
    for (const auto& d : data::dataset_registry()) {
      j["datasets"].push_back({{"name", d.name}, {"task", data::to_string(d.task)}, {"summary", d.summary}});
    }
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << to_text(info);
  std::cout << "models:\n";
  for (const auto& m : models::model_registry()) std::cout << fmt::format("  {:<12} {}\n", m.name, m.summary);
  std::cout << "datasets:\n";
  for (const auto& d : data::dataset_registry()) std::cout << fmt::format("  {:<14} {}\n", d.name, d.summary);
}

}  // namespace

void register_info(CLI::App& root) {
  auto options = std::make_shared<InfoOptions>();
  CLI::App* cmd = root.add_subcommand("info", "Show versions, devices, CPU features and the model zoo");
  cmd->footer(
      "Examples:\n  hone info --json | python3 -m json.tool\n  hone info --ceilings --device cuda\n"
      "--ceilings --json schema: hone-ceilings/1 (docs/profile.md).\n");
  add_flag(*cmd, flags::kJson, options->json);
  add_flag(*cmd, flags::kCeilings, options->ceilings);
  add_flag(*cmd, flags::kDevice, options->ceilings_options.device);
  add_flag(*cmd, flags::kRefresh, options->ceilings_options.refresh);
  cmd->callback([options] { run_info(*options); });
}

}  // namespace hone::cli
