#include "hone/train/distributed/environment.h"

#include <charconv>
#include <cstdlib>
#include <vector>

#include <fmt/ranges.h>

#include "hone/core/error.h"

namespace hone::train::distributed {
namespace {

int parse_int(const std::string& name, const std::string& text) {
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size())
    fail_usage("environment variable {}='{}' is not an integer", name, text);
  return value;
}

}  // namespace

std::optional<Environment> environment_from_variables(const VariableLookup& lookup) {
  const VariableLookup get = lookup ? lookup : [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    return value != nullptr ? std::optional<std::string>(value) : std::nullopt;
  };
  const std::vector<std::string> required{"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"};
  std::vector<std::string> missing;
  bool any = false;
  for (const auto& name : required) {
    if (get(name))
      any = true;
    else
      missing.push_back(name);
  }
  for (const char* name : {"LOCAL_RANK", "LOCAL_WORLD_SIZE"}) any = any || get(name).has_value();
  if (!any) return std::nullopt;
  if (!missing.empty())
    fail_usage("a distributed run needs RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT; {} {} not set",
               fmt::join(missing, ", "), missing.size() == 1 ? "is" : "are");
  Environment env;
  env.rank = parse_int("RANK", *get("RANK"));
  env.world_size = parse_int("WORLD_SIZE", *get("WORLD_SIZE"));
  env.master_addr = *get("MASTER_ADDR");
  env.master_port = parse_int("MASTER_PORT", *get("MASTER_PORT"));
  if (env.world_size < 1) fail_usage("WORLD_SIZE={} must be at least 1", env.world_size);
  if (env.rank < 0 || env.rank >= env.world_size)
    fail_usage("RANK={} must be in 0..{} (WORLD_SIZE={})", env.rank, env.world_size - 1, env.world_size);
  if (env.master_addr.empty()) fail_usage("MASTER_ADDR is empty");
  if (env.master_port < 1 || env.master_port > 65535)
    fail_usage("MASTER_PORT={} is not a TCP port (1..65535)", env.master_port);
  const auto local_rank = get("LOCAL_RANK");
  const auto local_world = get("LOCAL_WORLD_SIZE");
  env.local_world_size = local_world ? parse_int("LOCAL_WORLD_SIZE", *local_world) : env.world_size;
  env.local_rank = local_rank ? parse_int("LOCAL_RANK", *local_rank) : env.rank % env.local_world_size;
  if (env.local_world_size < 1 || env.local_world_size > env.world_size)
    fail_usage("LOCAL_WORLD_SIZE={} must be in 1..WORLD_SIZE={}", env.local_world_size, env.world_size);
  if (env.local_rank < 0 || env.local_rank >= env.local_world_size)
    fail_usage("LOCAL_RANK={} must be in 0..{} (LOCAL_WORLD_SIZE={})", env.local_rank, env.local_world_size - 1,
               env.local_world_size);
  return env;
}

}  // namespace hone::train::distributed
