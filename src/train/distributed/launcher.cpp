#include "hone/train/distributed/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

#include <fmt/format.h>

#include "hone/core/device.h"
#include "hone/core/error.h"

extern char** environ;

namespace hone::train::distributed {
namespace {

std::string describe(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with code {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int signal = WTERMSIG(status);
    return fmt::format("was killed by signal {} ({})", signal, strsignal(signal));
  }
  return "stopped";
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  HONE_CHECK(fd >= 0, "distributed: cannot open a socket to find a free port: {}", std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  HONE_CHECK(ok, "distributed: cannot find a free port on 127.0.0.1: {}", std::strerror(errno));
  return ntohs(address.sin_port);
}

std::vector<std::string> arguments_without(const std::string& flag) {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (std::size_t start = 0; start < all.size();) {
    const std::size_t end = all.find('\0', start);
    args.push_back(all.substr(start, end - start));
    start = end == std::string::npos ? all.size() : end + 1;
  }
  std::vector<std::string> kept;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == flag) {
      ++i;  // and its value
      continue;
    }
    if (args[i].starts_with(flag + "=")) continue;
    kept.push_back(args[i]);
  }
  return kept;
}

int launch_local_workers(const LaunchOptions& options) {
  HONE_CHECK(options.processes >= 1, "distributed: --nproc must be at least 1, got {}", options.processes);
  if (parse_device(options.device).is_cuda() && options.processes > cuda_device_count())
    fail_usage_option("nproc", "{} worker processes on {} need {} GPUs; this machine has {}", options.processes,
                      options.device, options.processes, cuda_device_count());
  const int port = options.master_port > 0 ? options.master_port : free_local_port();
  std::vector<pid_t> pids;
  for (int rank = 0; rank < options.processes; ++rank) {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      const std::string name = entry.substr(0, entry.find('='));
      if (name == "RANK" || name == "WORLD_SIZE" || name == "LOCAL_RANK" || name == "LOCAL_WORLD_SIZE" ||
          name == "MASTER_ADDR" || name == "MASTER_PORT")
        continue;
      env.push_back(entry);
    }
    for (const auto& [name, value] : {std::pair<std::string, std::string>{"RANK", std::to_string(rank)},
                                      {"LOCAL_RANK", std::to_string(rank)},
                                      {"WORLD_SIZE", std::to_string(options.processes)},
                                      {"LOCAL_WORLD_SIZE", std::to_string(options.processes)},
                                      {"MASTER_ADDR", "127.0.0.1"},
                                      {"MASTER_PORT", std::to_string(port)}})
      env.push_back(name + "=" + value);
    std::vector<std::string> argv{"hone"};
    argv.insert(argv.end(), options.arguments.begin(), options.arguments.end());
    std::vector<char*> c_argv, c_env;
    for (auto& a : argv) c_argv.push_back(a.data());
    c_argv.push_back(nullptr);
    for (auto& e : env) c_env.push_back(e.data());
    c_env.push_back(nullptr);
    const pid_t pid = ::fork();
    HONE_CHECK(pid >= 0, "distributed: cannot start rank {}: {}", rank, std::strerror(errno));
    if (pid == 0) {
      ::execve("/proc/self/exe", c_argv.data(), c_env.data());
      std::fprintf(stderr, "hone --nproc: cannot start rank %d: %s\n", rank, std::strerror(errno));
      ::_exit(127);
    }
    pids.push_back(pid);
  }
  std::cerr << fmt::format("hone --nproc {}: started ranks 0..{} (MASTER_PORT {})\n", options.processes,
                           options.processes - 1, port);

  std::vector<bool> running(pids.size(), true);
  int code = 0;
  auto rank_of = [&](pid_t pid) {
    for (std::size_t r = 0; r < pids.size(); ++r)
      if (pids[r] == pid) return static_cast<int>(r);
    return -1;
  };
  auto reap = [&](int flags) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, flags);
    if (pid <= 0) return false;
    const int rank = rank_of(pid);
    if (rank < 0) return true;
    running[static_cast<std::size_t>(rank)] = false;
    if (exit_code_of(status) != 0) {
      std::cerr << fmt::format("hone --nproc: rank {} {}\n", rank, describe(status));
      if (code == 0) code = exit_code_of(status);
    }
    return true;
  };
  auto alive = [&] { return std::count(running.begin(), running.end(), true); };
  while (alive() > 0 && code == 0) reap(0);
  if (alive() > 0) {
    // One failed: the others get the grace period to notice (they name the rank that stopped),
    // then SIGTERM, then SIGKILL (a hung rank may be stopped, which only SIGKILL ends).
    const auto deadline = std::chrono::steady_clock::now() + options.grace;
    while (alive() > 0 && std::chrono::steady_clock::now() < deadline) {
      if (!reap(WNOHANG)) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (int signal : {SIGTERM, SIGKILL}) {
      for (std::size_t r = 0; r < pids.size(); ++r)
        if (running[r]) ::kill(pids[r], signal);
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
      while (alive() > 0 && std::chrono::steady_clock::now() < until) {
        if (!reap(WNOHANG)) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
    std::cerr << fmt::format("hone --nproc: stopped the remaining ranks\n");
  }
  return code;
}

}  // namespace hone::train::distributed
