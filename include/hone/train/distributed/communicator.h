#pragma once
/// @file One data-parallel process group on c10d, the engine PyTorch's own DDP runs on: a TCPStore
/// rendezvous (rank 0 serves it at MASTER_ADDR:MASTER_PORT), then ProcessGroupGloo for CPU tensors
/// or ProcessGroupNCCL for CUDA tensors. No c10d or gloo header leaks out of this file's .cpp.
///
/// Failure: every collective waits at most `timeout`; a rank whose peer died or hangs stops with a
/// hone::Error that names the peer. Each rank beats a counter in the store every `heartbeat`; on a
/// failed collective the ranks whose counters stopped moving are the ones named, and a rank that
/// failed with an error left its message in the store, which its peers repeat.
///
///   distributed::Communicator group({.env = *env, .device = device});
///   at::Tensor t = at::ones({4});
///   group.all_reduce_sum(t);            // world_size everywhere
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "hone/train/distributed/environment.h"

namespace hone::train::distributed {

struct CommunicatorOptions {
  Environment env;
  c10::Device device = c10::kCPU;  ///< CUDA: NCCL on cuda:local_rank; CPU: Gloo
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  std::chrono::milliseconds heartbeat{500};
};

class Communicator {
 public:
  /// Rendezvous with the other ranks (waits up to `timeout` for them) and builds the process group.
  explicit Communicator(CommunicatorOptions options);
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const;
  int world_size() const;
  std::string backend() const;  ///< "gloo" or "nccl"

  /// An all-reduce in flight; wait() returns when the tensor holds the sum over the ranks.
  class Pending {
   public:
    Pending() = default;
    void wait();
    bool valid() const { return state_ != nullptr; }

   private:
    friend class Communicator;
    struct State;
    std::shared_ptr<State> state_;
  };
  /// Starts a sum all-reduce of a contiguous tensor in place (Gloo: on its own threads, so it
  /// overlaps the rest of backward).
  Pending all_reduce_sum_async(at::Tensor& tensor, const std::string& what);
  void all_reduce_sum(at::Tensor& tensor, const std::string& what);
  void all_reduce_max(at::Tensor& tensor, const std::string& what);
  /// Every tensor replaced by root's, in place.
  void broadcast(std::vector<at::Tensor>& tensors, int root, const std::string& what);
  void barrier(const std::string& what);

  /// Every rank publishes `value` under `key` in the store and gets all ranks' values, in rank order.
  std::vector<std::string> exchange(const std::string& key, const std::string& value);
  /// Records this rank's failure in the store, for its peers' messages (best effort).
  void report_failure(const std::string& message) noexcept;
  /// Marks this rank as having finished cleanly (its heartbeat stops without blame).
  void report_done() noexcept;

 private:
  [[noreturn]] void fail_collective(const std::string& what, const std::string& error);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hone::train::distributed
