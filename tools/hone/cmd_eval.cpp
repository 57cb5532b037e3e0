// hone eval: reload a saved run and measure it on its real test (or validation) split.
#include <iostream>

#include "commands.h"
#include "flags.h"
#include "hone/train/evaluate.h"

namespace hone::cli {
namespace {

struct EvalCommand {
  std::string run_dir;
  std::string device = "cpu";
  std::string split = "test";
  std::string data;
  std::int64_t batch_size = 256;
  int threads = 0;
  bool json = false;
};

void run_eval(const EvalCommand& cmd) {
  apply_threads(cmd.threads);
  const train::RunEvaluation result = train::evaluate_run(cmd.run_dir, cmd.device, cmd.split, cmd.batch_size, cmd.data);
  if (cmd.json) {
    nlohmann::json j = result.to_json();
    j["run_dir"] = cmd.run_dir;
    j["device"] = cmd.device;
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << fmt::format("{} on {} ({} parameters, {} buffer values), {}\n", result.architecture, result.dataset,
                           result.parameters, result.buffer_values, cmd.device)
            << result.metrics.to_text() << "\n";
}

}  // namespace

void register_eval(CLI::App& root) {
  auto cmd = std::make_shared<EvalCommand>();
  CLI::App* app = root.add_subcommand("eval", "Evaluate a trained run on its test set");
  app->footer(
      "Reports accuracy (classification) or MAE/RMSE beside the naive last-value forecast (forecasting).\n"
      "Examples:\n  hone eval runs/cnn\n  hone eval runs/lstm --split val --json\n"
      "  hone eval runs/fine-foods-linear --data fine-foods-int8   # the probe on int8-encoder embeddings\n");
  add_flag(*app, flags::kRunDir, cmd->run_dir)->required();
  add_flag(*app, flags::kDevice, cmd->device);
  add_flag(*app, flags::kSplit, cmd->split)->check(CLI::IsMember({"test", "val"}));
  add_flag(*app, flags::kData, cmd->data);
  add_flag(*app, flags::kBatchSize, cmd->batch_size)->check(CLI::PositiveNumber);
  add_flag(*app, flags::kThreads, cmd->threads);
  add_flag(*app, flags::kJson, cmd->json);
  app->callback([cmd] { run_eval(*cmd); });
}

}  // namespace hone::cli
