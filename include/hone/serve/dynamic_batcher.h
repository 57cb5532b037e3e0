#pragma once
/// @file A dynamic batcher that knows nothing about models: requests go into one bounded queue, one
/// worker thread takes whatever has queued up while the previous batch ran and hands it to a
/// compute function as one batch.
///
/// Why: a model computes a batch of 16 rows in far less than 16 times the time of one row, but
/// HTTP requests arrive one at a time. The batcher turns concurrent requests into batches without
/// a fixed wait (greedy: under load, batches grow by themselves; when idle, a request runs at
/// once), and it is where overload is handled: the queue is bounded (cpp-httplib's own accept
/// queue is not), a full queue answers at once (429), a request whose deadline passed or whose
/// client went away is dropped before it costs compute.
///
///     DynamicBatcher<std::vector<float>, float> batcher(
///         {.max_batch_size = 16, .max_queue_size = 256},
///         [](std::vector<std::vector<float>>& rows) {
///           ComputeResult<float> out;
///           for (const auto& row : rows) out.results.push_back(std::accumulate(row.begin(), row.end(), 0.f));
///           return out;
///         });
///     BatchOutcome<float> outcome = batcher.run({1, 2, 3}, {.deadline = Clock::now() + 1s});
///     if (outcome.ok()) use(*outcome.result);  // else outcome.status says why (queue full, timed out...)
///     batcher.drain();                         // at shutdown: refuse new work, finish accepted work
///
/// Text models pass a bucket key (e.g. token length rounded up to 32) and a token count per
/// request: a batch then holds one bucket only, and at most max_batch_tokens padded tokens
/// (batch size x its longest request), which is what a dynamically padded encoder computes.
#include "hone/serve/request_status.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace hone::serve {

using Clock = std::chrono::steady_clock;

/// Set by whoever learns that nobody waits for a request any more (its client disconnected, its
/// HTTP handler gave up). Copies share one flag; the batcher checks it before compute.
class CancelFlag {
 public:
  void cancel() { flag_->store(true, std::memory_order_relaxed); }
  bool cancelled() const { return flag_->load(std::memory_order_relaxed); }

 private:
  std::shared_ptr<std::atomic<bool>> flag_ = std::make_shared<std::atomic<bool>>(false);
};

/// What a batch report tells an observer (metrics: the batch-size histogram).
struct BatchReport {
  std::size_t batch_size = 0;
  std::int64_t padded_tokens = 0;  ///< batch size x longest request's tokens (0 without tokens)
  std::chrono::microseconds compute_time{0};
  bool failed = false;
};

/// How the batcher forms batches and bounds its queue.
struct BatcherOptions {
  /// Most requests per batch (>= 1).
  std::size_t max_batch_size = 8;
  /// Most requests waiting (not counting the batch being computed); one more is rejected at once.
  std::size_t max_queue_size = 128;
  /// 0: greedy, a batch starts as soon as the worker is free. > 0: the worker waits for a full
  /// batch at most until the oldest queued request has waited this long (Triton's
  /// max_queue_delay). Trades latency at low load for bigger batches.
  std::chrono::microseconds max_queue_delay{0};
  /// 0: no token budget. > 0: a batch's padded tokens (size x longest request's tokens) stay
  /// within it; a single request over the budget still runs, alone.
  std::int64_t max_batch_tokens = 0;
  /// Called by the worker after each computed batch (not under the batcher's lock).
  std::function<void(const BatchReport&)> on_batch;
};

/// Per-request scheduling inputs.
struct RequestOptions {
  /// Past this point the request is answered timed_out instead of being computed.
  Clock::time_point deadline = Clock::time_point::max();
  /// Requests of different buckets are never batched together (text: padded-length bucket).
  std::int64_t bucket_key = 0;
  /// The request's cost for max_batch_tokens (text: its token count).
  std::int64_t tokens = 0;
  /// Cancel to drop the request if it has not started computing.
  CancelFlag cancel;
};

/// What the compute function returns for a batch: one result per payload, in order, or an error
/// that fails the whole batch (throwing does the same; the message is kept).
template <typename Result>
struct ComputeResult {
  std::vector<Result> results;
  std::string error;  ///< non-empty: every request of the batch fails with this message

  static ComputeResult failure(std::string message) {
    ComputeResult out;
    out.error = std::move(message);
    return out;
  }
};

/// The answer to one request.
template <typename Result>
struct BatchOutcome {
  RequestStatus status = RequestStatus::ok;
  std::string error;             ///< why, when status != ok
  std::optional<Result> result;  ///< set exactly when status == ok
  RequestTiming timing;

  bool ok() const { return status == RequestStatus::ok; }
};

/// Counters since construction.
struct BatcherStats {
  std::uint64_t accepted = 0;
  std::uint64_t rejected_queue_full = 0;
  std::uint64_t rejected_draining = 0;
  std::uint64_t timed_out = 0;
  std::uint64_t cancelled = 0;
  std::uint64_t completed = 0;
  std::uint64_t failed = 0;
  std::uint64_t batches = 0;
};

namespace detail {

/// The type-erased part of a queued request; DynamicBatcher's typed request derives from it.
class PendingRequest {
 public:
  virtual ~PendingRequest() = default;
  /// Delivers the outcome; called exactly once.
  virtual void finish(RequestStatus status, std::string error, const RequestTiming& timing) = 0;

  RequestOptions options;
  Clock::time_point enqueue_time;
};

/// Runs a batch; returns "" on success or the error that fails the batch.
using ErasedCompute = std::function<std::string(const std::vector<PendingRequest*>& batch)>;

/// The queue, the worker thread and every scheduling rule; DynamicBatcher adds only types.
class BatchEngine {
 public:
  /// Throws std::invalid_argument on bad options (max_batch_size 0, max_queue_size 0, negatives).
  BatchEngine(BatcherOptions options, ErasedCompute compute);
  ~BatchEngine();
  BatchEngine(const BatchEngine&) = delete;
  BatchEngine& operator=(const BatchEngine&) = delete;

  /// Queues the request, or finishes it at once (queue full, draining).
  void submit(std::unique_ptr<PendingRequest> request);
  /// Stops accepting, finishes everything accepted, joins the worker. Idempotent, thread-safe.
  void drain();
  std::size_t queue_depth() const;
  bool accepting() const;
  BatcherStats stats() const;

 private:
  struct Selection {
    std::vector<std::size_t> indices;  ///< positions in queue_, ascending
    std::int64_t padded_tokens = 0;
    bool full = false;  ///< no more requests would fit (size or token budget reached)
  };

  void run_worker();
  Selection select_batch() const;
  void drop_expired_and_cancelled(Clock::time_point now);
  void compute_batch(std::vector<std::unique_ptr<PendingRequest>>& batch, std::int64_t padded_tokens);

  BatcherOptions options_;
  ErasedCompute compute_;
  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  std::deque<std::unique_ptr<PendingRequest>> queue_;
  bool accepting_ = true;
  bool stopping_ = false;
  BatcherStats stats_;
  std::once_flag join_once_;
  std::thread worker_;
};

}  // namespace detail

/// A dynamic batcher over typed payloads and results (see the file comment).
template <typename Payload, typename Result>
class DynamicBatcher {
 public:
  /// Gets the batch's payloads (free to move from) and returns one result per payload.
  using ComputeFn = std::function<ComputeResult<Result>(std::vector<Payload>& payloads)>;

  DynamicBatcher(BatcherOptions options, ComputeFn compute)
      : engine_(std::move(options), make_erased(std::move(compute))) {}

  /// Queues a request; the future becomes ready when it is computed, rejected, timed out,
  /// cancelled or refused for draining. Rejections are ready at once.
  std::future<BatchOutcome<Result>> submit(Payload payload, RequestOptions options = {}) {
    auto request = std::make_unique<TypedRequest>();
    request->payload = std::move(payload);
    request->options = std::move(options);
    std::future<BatchOutcome<Result>> future = request->promise.get_future();
    engine_.submit(std::move(request));
    return future;
  }

  /// submit() and wait.
  BatchOutcome<Result> run(Payload payload, RequestOptions options = {}) {
    return submit(std::move(payload), std::move(options)).get();
  }

  /// Graceful shutdown: new submits get `unavailable`, queued requests are still computed (or
  /// time out), then the worker stops. Also run by the destructor.
  void drain() { engine_.drain(); }
  std::size_t queue_depth() const { return engine_.queue_depth(); }
  /// False once drain() has begun (a server's readiness can follow it).
  bool accepting() const { return engine_.accepting(); }
  BatcherStats stats() const { return engine_.stats(); }

 private:
  struct TypedRequest final : detail::PendingRequest {
    Payload payload;
    std::optional<Result> result;
    std::promise<BatchOutcome<Result>> promise;

    void finish(RequestStatus status, std::string error, const RequestTiming& timing) override {
      BatchOutcome<Result> outcome;
      outcome.status = status;
      outcome.error = std::move(error);
      outcome.timing = timing;
      if (status == RequestStatus::ok) outcome.result = std::move(result);
      promise.set_value(std::move(outcome));
    }
  };

  static detail::ErasedCompute make_erased(ComputeFn compute) {
    if (!compute) throw std::invalid_argument("batcher compute function: must be set");
    return [compute = std::move(compute)](const std::vector<detail::PendingRequest*>& batch) -> std::string {
      std::vector<Payload> payloads;
      payloads.reserve(batch.size());
      for (detail::PendingRequest* request : batch) {
        payloads.push_back(std::move(static_cast<TypedRequest*>(request)->payload));
      }
      ComputeResult<Result> out = compute(payloads);
      if (!out.error.empty()) return out.error;
      if (out.results.size() != batch.size()) {
        return "compute function returned " + std::to_string(out.results.size()) + " results for a batch of " +
               std::to_string(batch.size()) + " requests";
      }
      for (std::size_t i = 0; i < batch.size(); ++i) {
        static_cast<TypedRequest*>(batch[i])->result = std::move(out.results[i]);
      }
      return {};
    };
  }

  detail::BatchEngine engine_;
};

}  // namespace hone::serve
