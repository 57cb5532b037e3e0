#pragma once
/// @file Where a process sits in a data-parallel job: the torchrun variables (RANK, WORLD_SIZE,
/// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), read and checked in one place. The same
/// variables describe a job across several machines: every process gets the job's WORLD_SIZE and
/// its own RANK, and MASTER_ADDR:MASTER_PORT is where rank 0 serves the rendezvous store.
///
///   if (auto env = train::distributed::environment_from_variables()) { ... env->rank ... }
#include <functional>
#include <optional>
#include <string>

namespace hone::train::distributed {

struct Environment {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;        ///< the rank on this machine: the GPU index
  int local_world_size = 1;  ///< processes on this machine
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

/// Looks a variable up (std::getenv by default; tests pass a map).
using VariableLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// nullopt when none of the variables is set (a single process). Otherwise every one of RANK,
/// WORLD_SIZE, MASTER_ADDR and MASTER_PORT must be set and consistent (0 <= RANK < WORLD_SIZE,
/// a port in 1..65535, LOCAL_RANK < LOCAL_WORLD_SIZE <= WORLD_SIZE; the LOCAL_ ones default to a
/// single machine): hone::UsageError names the variable and what is wrong.
std::optional<Environment> environment_from_variables(const VariableLookup& lookup = {});

}  // namespace hone::train::distributed
