#include "flags.h"

#include <ATen/Parallel.h>

namespace hone::cli {

const char* help_for(const Flag& flag, const std::string& command) {
  for (const auto& entry : flag.per_command) {
    if (command == entry.command) return entry.help;
  }
  return flag.help;
}

std::string flag_for_option(const std::string& option) {
  for (const Flag* flag : flags::kAll) {
    if (option != flag->option) continue;
    const std::string names = flag->names;
    const auto comma = names.rfind(',');  // the long spelling comes last: "-e,--epochs"
    return comma == std::string::npos ? names : names.substr(comma + 1);
  }
  return {};
}

void apply_threads(int threads) {
  if (threads > 0) at::set_num_threads(threads);
}

}  // namespace hone::cli
