#pragma once
/// @file `hone train --nproc N`: N local worker processes of this very program, each with the
/// torchrun variables set (RANK = LOCAL_RANK = 0..N-1, WORLD_SIZE = LOCAL_WORLD_SIZE = N,
/// MASTER_ADDR = 127.0.0.1, MASTER_PORT = a free port unless one is given), as
/// `torchrun --no-python --nproc-per-node N hone train ...` would start them.
///
/// It waits for all of them. When one fails (non-zero exit or a signal) it says which, gives the
/// others `grace` to report what they saw and stop, then terminates the rest; its exit code is
/// the first failure's (128 + signal for a signal), or 0.
///
///   return distributed::launch_local_workers({.processes = 2, .arguments = args_without_nproc});
#include <chrono>
#include <string>
#include <vector>

namespace hone::train::distributed {

struct LaunchOptions {
  int processes = 2;
  std::string device = "cpu";          ///< the workers' device: on CUDA each needs its own GPU
  std::vector<std::string> arguments;  ///< the worker's argv after the program name
  int master_port = 0;                 ///< 0: a free port on 127.0.0.1
  std::chrono::milliseconds grace{std::chrono::seconds(15)};
};

/// Starts the workers (this executable, /proc/self/exe) and waits; returns the exit code.
int launch_local_workers(const LaunchOptions& options);

/// This process's arguments (after the program name) without `--nproc N` / `--nproc=N`.
std::vector<std::string> arguments_without(const std::string& flag);

/// A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read it, close).
int free_local_port();

}  // namespace hone::train::distributed
