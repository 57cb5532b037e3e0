#include "hone/serve/dynamic_batcher.h"

#include <algorithm>
#include <exception>
#include <stdexcept>

namespace hone::serve::detail {
namespace {

std::chrono::microseconds micros_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::microseconds>(to - from);
}

void check_options(const BatcherOptions& options) {
  if (options.max_batch_size == 0) throw std::invalid_argument("batcher max_batch_size: must be at least 1");
  if (options.max_queue_size == 0) throw std::invalid_argument("batcher max_queue_size: must be at least 1");
  if (options.max_queue_delay.count() < 0) throw std::invalid_argument("batcher max_queue_delay: must not be negative");
  if (options.max_batch_tokens < 0) throw std::invalid_argument("batcher max_batch_tokens: must not be negative");
}

}  // namespace

BatchEngine::BatchEngine(BatcherOptions options, ErasedCompute compute)
    : options_(std::move(options)), compute_(std::move(compute)) {
  check_options(options_);
  if (!compute_) throw std::invalid_argument("batcher compute function: must be set");
  worker_ = std::thread([this] { run_worker(); });
}

BatchEngine::~BatchEngine() { drain(); }

void BatchEngine::submit(std::unique_ptr<PendingRequest> request) {
  request->enqueue_time = Clock::now();
  std::string refusal;
  RequestStatus status = RequestStatus::ok;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!accepting_) {
      status = RequestStatus::unavailable;
      refusal = "server is draining: not accepting new requests";
      ++stats_.rejected_draining;
    } else if (queue_.size() >= options_.max_queue_size) {
      status = RequestStatus::rejected_queue_full;
      refusal = "rejected: queue full (" + std::to_string(queue_.size()) + " requests waiting)";
      ++stats_.rejected_queue_full;
    } else {
      ++stats_.accepted;
      queue_.push_back(std::move(request));
    }
  }
  if (status != RequestStatus::ok) {
    request->finish(status, std::move(refusal), RequestTiming{});
    return;
  }
  work_ready_.notify_one();
}

void BatchEngine::drain() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    accepting_ = false;
    stopping_ = true;
  }
  work_ready_.notify_all();
  std::call_once(join_once_, [this] {
    if (worker_.joinable()) worker_.join();
  });
}

std::size_t BatchEngine::queue_depth() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

bool BatchEngine::accepting() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return accepting_;
}

BatcherStats BatchEngine::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

// Oldest request first: its bucket is the batch's bucket, so no bucket starves. Later requests of
// that bucket join in arrival order until the batch is full or the next one would break the token
// budget (stopping there keeps arrival order within the bucket).
BatchEngine::Selection BatchEngine::select_batch() const {
  Selection selection;
  if (queue_.empty()) return selection;
  const std::int64_t bucket = queue_.front()->options.bucket_key;
  std::int64_t longest = 0;
  for (std::size_t i = 0; i < queue_.size(); ++i) {
    if (selection.indices.size() == options_.max_batch_size) {
      selection.full = true;
      break;
    }
    const RequestOptions& request = queue_[i]->options;
    if (request.bucket_key != bucket) continue;
    const std::int64_t new_longest = std::max(longest, request.tokens);
    const auto new_size = static_cast<std::int64_t>(selection.indices.size() + 1);
    if (options_.max_batch_tokens > 0 && !selection.indices.empty() &&
        new_size * new_longest > options_.max_batch_tokens) {
      selection.full = true;
      break;
    }
    longest = new_longest;
    selection.indices.push_back(i);
    selection.padded_tokens = new_size * new_longest;
  }
  if (selection.indices.size() == options_.max_batch_size) selection.full = true;
  return selection;
}

void BatchEngine::drop_expired_and_cancelled(Clock::time_point now) {
  std::deque<std::unique_ptr<PendingRequest>> kept;
  for (std::unique_ptr<PendingRequest>& request : queue_) {
    RequestTiming timing;
    timing.queue_time = micros_between(request->enqueue_time, now);
    if (request->options.cancel.cancelled()) {
      ++stats_.cancelled;
      request->finish(RequestStatus::cancelled, "cancelled: the client went away before compute", timing);
    } else if (request->options.deadline <= now) {
      ++stats_.timed_out;
      request->finish(RequestStatus::timed_out,
                      "timed out: deadline passed after " + std::to_string(timing.queue_time.count()) +
                          " us in the queue, before compute",
                      timing);
    } else {
      kept.push_back(std::move(request));
    }
  }
  queue_.swap(kept);
}

void BatchEngine::run_worker() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_ready_.wait(lock, [this] { return !queue_.empty() || stopping_; });
    if (queue_.empty()) return;  // stopping, and everything accepted is done

    // With a max queue delay, wait for a full batch, but not past the oldest request's delay nor
    // past the earliest deadline (so a timeout is reported when it happens). Draining never waits.
    while (options_.max_queue_delay.count() > 0 && !stopping_) {
      drop_expired_and_cancelled(Clock::now());
      if (queue_.empty() || select_batch().full) break;
      Clock::time_point until = queue_.front()->enqueue_time + options_.max_queue_delay;
      for (const auto& request : queue_) until = std::min(until, request->options.deadline);
      if (Clock::now() >= until) break;
      work_ready_.wait_until(lock, until);
    }

    drop_expired_and_cancelled(Clock::now());
    if (queue_.empty()) continue;
    const Selection selection = select_batch();
    std::vector<std::unique_ptr<PendingRequest>> batch;
    batch.reserve(selection.indices.size());
    std::deque<std::unique_ptr<PendingRequest>> rest;
    std::size_t next = 0;
    for (std::size_t i = 0; i < queue_.size(); ++i) {
      if (next < selection.indices.size() && selection.indices[next] == i) {
        batch.push_back(std::move(queue_[i]));
        ++next;
      } else {
        rest.push_back(std::move(queue_[i]));
      }
    }
    queue_.swap(rest);

    lock.unlock();
    compute_batch(batch, selection.padded_tokens);
    lock.lock();
  }
}

void BatchEngine::compute_batch(std::vector<std::unique_ptr<PendingRequest>>& batch, std::int64_t padded_tokens) {
  std::vector<PendingRequest*> view;
  view.reserve(batch.size());
  for (auto& request : batch) view.push_back(request.get());

  const Clock::time_point start = Clock::now();
  std::string error;
  try {
    error = compute_(view);
  } catch (const std::exception& e) {
    error = std::string("compute failed: ") + e.what();
  } catch (...) {
    error = "compute failed: unknown exception";
  }
  const Clock::time_point end = Clock::now();

  const bool failed = !error.empty();
  {
    // Counted before the outcomes are delivered, so a caller that has its result sees it counted.
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.batches;
    (failed ? stats_.failed : stats_.completed) += batch.size();
  }
  if (options_.on_batch) {
    BatchReport report;
    report.batch_size = batch.size();
    report.padded_tokens = padded_tokens;
    report.compute_time = micros_between(start, end);
    report.failed = failed;
    try {
      options_.on_batch(report);
    } catch (...) {
      // An observer's failure must not stop the worker; metrics are best effort.
    }
  }
  for (auto& request : batch) {
    RequestTiming timing;
    timing.queue_time = micros_between(request->enqueue_time, start);
    timing.compute_time = micros_between(start, end);
    timing.batch_size = batch.size();
    if (failed) {
      request->finish(RequestStatus::failed, error, timing);
    } else {
      request->finish(RequestStatus::ok, {}, timing);
    }
  }
}

}  // namespace hone::serve::detail
