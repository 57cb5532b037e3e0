// hone profile: where a model's forward pass spends its time (Kineto), by op and by module, with
// memory, CUDA activity and a roofline against this machine's measured ceilings.
#include <iostream>

#include "commands.h"
#include "flags.h"
#include "hone/profile/model_profile.h"

namespace hone::cli {
namespace {

struct ProfileCommand {
  std::string target;
  profile::ProfileOptions options;
  int threads = 0;
  bool json = false;
};

void run_profile(const ProfileCommand& cmd) {
  apply_threads(cmd.threads);
  const profile::ProfileReport report = profile::profile_model(cmd.target, cmd.options);
  std::cout << (cmd.json ? report.to_json().dump(2) + "\n" : report.to_text());
}

}  // namespace

void register_profile(CLI::App& root) {
  auto cmd = std::make_shared<ProfileCommand>();
  CLI::App* app =
      root.add_subcommand("profile", "Profile a model's forward pass: top ops, modules, memory, roofline (Kineto)");
  app->footer(
      "MODEL is a zoo name (random weights) or a run directory from `hone train`; inputs are random (timing\n"
      "only). The roofline compares with this machine's measured ceilings (`hone info --ceilings`), measured\n"
      "on first use and cached. --json schema: hone-profile/1 (docs/profile.md).\n"
      "Examples:\n"
      "  hone profile cnn --batch 64\n"
      "  hone profile minilm --device cuda --dtype bf16 --batch 32 --seq-len 128 --trace minilm.json\n"
      "  hone profile runs/cnn --steps 20 --top 10 --json\n");
  add_flag(*app, flags::kTarget, cmd->target)->required();
  add_flag(*app, flags::kDevice, cmd->options.device);
  add_flag(*app, flags::kBatch, cmd->options.batch)->check(CLI::PositiveNumber);
  add_flag(*app, flags::kDtype, cmd->options.dtype)->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  add_flag(*app, flags::kAmp, cmd->options.amp);
  add_flag(*app, flags::kChannelsLast, cmd->options.channels_last);
  add_flag(*app, flags::kSeqLen, cmd->options.seq_len)->check(CLI::PositiveNumber);
  add_flag(*app, flags::kWarmup, cmd->options.warmup)->check(CLI::NonNegativeNumber);
  add_flag(*app, flags::kSteps, cmd->options.steps)->check(CLI::PositiveNumber);
  add_flag(*app, flags::kTrace, cmd->options.trace);
  add_flag(*app, flags::kTop, cmd->options.top)->check(CLI::NonNegativeNumber);
  add_flag(*app, flags::kThreads, cmd->threads);
  add_flag(*app, flags::kJson, cmd->json);
  app->callback([cmd] { run_profile(*cmd); });
}

}  // namespace hone::cli
