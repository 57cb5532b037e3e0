// c10d's headers (and through ProcessGroupGloo.hpp Debian's gloo/ headers) are seen by this file
// only; it compiles with USE_C10D_GLOO (and USE_C10D_NCCL in CUDA builds), as the wheel was built.
#include "hone/train/distributed/communicator.h"

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include <fmt/ranges.h>

#include "hone/core/error.h"

namespace hone::train::distributed {
namespace {

std::vector<std::uint8_t> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }
std::string text_of(const std::vector<std::uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }

std::string heartbeat_key(int rank) { return fmt::format("hone/heartbeat/{}", rank); }
std::string failed_key(int rank) { return fmt::format("hone/failed/{}", rank); }
std::string done_key(int rank) { return fmt::format("hone/done/{}", rank); }

/// The rank's own client (`join`: counted among the world's workers, which rank 0's server waits
/// for) or an extra one (the heartbeat's, the diagnosis's), which is not.
c10::intrusive_ptr<c10d::TCPStore> connect_store(const CommunicatorOptions& options, bool server,
                                                 std::chrono::milliseconds timeout, bool join = false) {
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<std::uint16_t>(options.env.master_port);
  store_options.isServer = server;
  store_options.numWorkers = options.env.world_size;
  store_options.waitWorkers = join;
  store_options.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(options.env.master_addr, store_options);
}

}  // namespace

struct Communicator::Pending::State {
  c10::intrusive_ptr<c10d::Work> work;
  std::vector<at::Tensor> tensors;
  Communicator* owner = nullptr;
  std::string what;
  std::chrono::milliseconds timeout{0};
};

struct Communicator::Impl {
  CommunicatorOptions options;
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::Backend> group;
  std::string backend;
  // The heartbeat: a counter per rank in the store, moved every `heartbeat` by its own client.
  std::thread beater;
  std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;

  void start_heartbeat() {
    auto client = connect_store(options, /*server=*/false, options.timeout);
    beater = std::thread([this, client] {
      std::unique_lock lock(mutex);
      while (!stopping) {
        lock.unlock();
        try {
          client->add(heartbeat_key(options.env.rank), 1);
        } catch (...) {
          return;  // the store is gone: the collectives will say so
        }
        lock.lock();
        wake.wait_for(lock, options.heartbeat, [this] { return stopping; });
      }
    });
  }
  void stop_heartbeat() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    wake.notify_all();
    if (beater.joinable()) beater.join();
  }

  /// Which peers stopped: a failure one of them recorded, or heartbeats that no longer move.
  std::string diagnose() {
    const int world = options.env.world_size;
    const auto patience = std::max(options.heartbeat * 4, std::chrono::milliseconds(2000));
    try {
      auto client = connect_store(options, /*server=*/false, patience);
      std::vector<std::string> reasons;
      auto read_beats = [&] {
        std::vector<std::int64_t> beats(static_cast<std::size_t>(world));
        for (int r = 0; r < world; ++r) beats[static_cast<std::size_t>(r)] = client->add(heartbeat_key(r), 0);
        return beats;
      };
      const auto before = read_beats();
      std::this_thread::sleep_for(options.heartbeat * 3);
      const auto after = read_beats();
      for (int r = 0; r < world; ++r) {
        if (r == options.env.rank) continue;
        if (client->check({failed_key(r)})) {
          reasons.push_back(fmt::format("rank {} failed: {}", r, text_of(client->get(failed_key(r)))));
        } else if (client->check({done_key(r)})) {
          reasons.push_back(fmt::format("rank {} had already finished", r));
        } else if (after[static_cast<std::size_t>(r)] == before[static_cast<std::size_t>(r)]) {
          reasons.push_back(fmt::format("rank {} stopped responding (its heartbeat has not moved for {} ms)", r,
                                        (options.heartbeat * 3).count()));
        }
      }
      if (reasons.empty()) return "every peer's heartbeat still moves: a peer is slow or took another path";
      return fmt::format("{}", fmt::join(reasons, "; "));
    } catch (const std::exception&) {
      return fmt::format("rank 0, which serves the rendezvous store at {}:{}, stopped responding",
                         options.env.master_addr, options.env.master_port);
    }
  }
};

Communicator::Communicator(CommunicatorOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& impl = *impl_;
  impl.options = std::move(options);
  const Environment& env = impl.options.env;
  HONE_CHECK(env.world_size >= 1 && env.rank >= 0 && env.rank < env.world_size, "distributed: rank {} of {}", env.rank,
             env.world_size);
  try {
    impl.store = connect_store(impl.options, env.rank == 0, impl.options.timeout, /*join=*/true);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    if (env.rank == 0 && (what.find("in use") != std::string::npos || what.find("EADDRINUSE") != std::string::npos))
      fail_usage(
          "distributed: MASTER_PORT {} on {} is in use; choose a free port (rank 0 serves the rendezvous store "
          "there)",
          env.master_port, env.master_addr);
    fail("distributed: rank {} could not meet the other {} rank(s) at {}:{} within {} s: {}", env.rank,
         env.world_size - 1, env.master_addr, env.master_port, impl.options.timeout.count() / 1000.0, what);
  }
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("hone/group", impl.store);
  if (impl.options.device.is_cuda()) {
#ifdef USE_C10D_NCCL
    c10::cuda::set_device(impl.options.device.index());
    auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
    nccl_options->timeout = impl.options.timeout;
    impl.group = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, env.rank, env.world_size, nccl_options);
    impl.backend = "nccl";
#else
    fail("distributed: this hone was built without CUDA, so it has no NCCL backend for device {}",
         impl.options.device.str());
#endif
  } else {
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(impl.options.timeout);
    // As torch.distributed: GLOO_SOCKET_IFNAME picks the network interface; otherwise the
    // address this host's name resolves to (the loopback when it resolves to none).
    if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME"); interface != nullptr && *interface != '\0')
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
    else
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    impl.group = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, env.rank, env.world_size, gloo_options);
    impl.backend = "gloo";
  }
  impl.start_heartbeat();
}

Communicator::~Communicator() {
  impl_->stop_heartbeat();
  try {
    impl_->group->shutdown();  // NCCL: its communicators released, as destroy_process_group does
  } catch (...) {
  }
}

int Communicator::rank() const { return impl_->options.env.rank; }
int Communicator::world_size() const { return impl_->options.env.world_size; }
std::string Communicator::backend() const { return impl_->backend; }

void Communicator::fail_collective(const std::string& what, const std::string& error) {
  const std::string peers = impl_->diagnose();
  fail("distributed: rank {} stopped during {}: {} (c10d: {})", rank(), what, peers, error);
}

void Communicator::Pending::wait() {
  HONE_CHECK(state_ != nullptr, "distributed: waiting on no all-reduce");
  const std::shared_ptr<State> state = std::move(state_);
  try {
    state->work->wait(state->timeout);
  } catch (const std::exception& e) {
    state->owner->fail_collective(state->what, e.what());
  }
}

Communicator::Pending Communicator::all_reduce_sum_async(at::Tensor& tensor, const std::string& what) {
  HONE_CHECK(tensor.is_contiguous(), "distributed: all-reduce of {} needs a contiguous tensor", what);
  Pending pending;
  pending.state_ = std::make_shared<Pending::State>();
  pending.state_->tensors = {tensor};
  pending.state_->owner = this;
  pending.state_->what = what;
  pending.state_->timeout = impl_->options.timeout;
  try {
    c10d::AllreduceOptions reduce;
    reduce.reduceOp = c10d::ReduceOp::SUM;
    pending.state_->work = impl_->group->allreduce(pending.state_->tensors, reduce);
  } catch (const std::exception& e) {
    fail_collective(what, e.what());
  }
  return pending;
}

void Communicator::all_reduce_sum(at::Tensor& tensor, const std::string& what) {
  all_reduce_sum_async(tensor, what).wait();
}

void Communicator::all_reduce_max(at::Tensor& tensor, const std::string& what) {
  std::vector<at::Tensor> tensors{tensor};
  try {
    c10d::AllreduceOptions reduce;
    reduce.reduceOp = c10d::ReduceOp::MAX;
    impl_->group->allreduce(tensors, reduce)->wait(impl_->options.timeout);
  } catch (const std::exception& e) {
    fail_collective(what, e.what());
  }
}

void Communicator::broadcast(std::vector<at::Tensor>& tensors, int root, const std::string& what) {
  for (at::Tensor& t : tensors) {
    HONE_CHECK(t.is_contiguous(), "distributed: broadcast of {} needs contiguous tensors", what);
    std::vector<at::Tensor> one{t};
    try {
      c10d::BroadcastOptions options;
      options.rootRank = root;
      impl_->group->broadcast(one, options)->wait(impl_->options.timeout);
    } catch (const std::exception& e) {
      fail_collective(what, e.what());
    }
  }
}

void Communicator::barrier(const std::string& what) {
  // A one-element all-reduce: the same call for Gloo and NCCL (whose barrier needs a device id).
  at::Tensor token = at::ones({1}, at::TensorOptions().device(impl_->options.device).dtype(at::kFloat));
  all_reduce_sum(token, what);
}

std::vector<std::string> Communicator::exchange(const std::string& key, const std::string& value) {
  std::vector<std::string> values;
  try {
    impl_->store->set(fmt::format("hone/exchange/{}/{}", key, rank()), bytes_of(value));
    for (int r = 0; r < world_size(); ++r)
      values.push_back(text_of(impl_->store->get(fmt::format("hone/exchange/{}/{}", key, r))));
  } catch (const std::exception& e) {
    fail_collective("the exchange of " + key, e.what());
  }
  return values;
}

void Communicator::report_failure(const std::string& message) noexcept {
  try {
    impl_->store->set(failed_key(rank()), bytes_of(message));
  } catch (...) {
  }
}

void Communicator::report_done() noexcept {
  try {
    impl_->store->set(done_key(rank()), bytes_of("done"));
  } catch (...) {
  }
}

}  // namespace hone::train::distributed
