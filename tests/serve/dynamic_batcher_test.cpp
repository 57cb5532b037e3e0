// GCC 12 -Wextra flags designated initializers that leave members at their defaults (GCC 13 does not).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include "hone/serve/dynamic_batcher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace hone::serve {
namespace {

using namespace std::chrono_literals;

// A compute function whose first call blocks until release(): the test queues requests behind it
// and then sees exactly how the worker groups them. Records every batch's payloads.
struct GatedCompute {
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::mutex mutex;
  std::vector<std::vector<int>> batches;
  std::atomic<int> calls{0};
  std::promise<void> first_started;

  ComputeResult<int> operator()(std::vector<int>& payloads) {
    if (calls.fetch_add(1) == 0) {
      first_started.set_value();
      opened.wait();
    }
    std::lock_guard<std::mutex> lock(mutex);
    batches.push_back(payloads);
    ComputeResult<int> out;
    for (int payload : payloads) out.results.push_back(payload * 10);
    return out;
  }
  void release() { gate.set_value(); }
};

// Starts a batcher whose worker is stuck in the first batch (payload -1).
struct Blocked {
  explicit Blocked(BatcherOptions options)
      : batcher(std::move(options), [this](std::vector<int>& payloads) { return compute(payloads); }) {
    first = batcher.submit(-1);
    compute.first_started.get_future().wait();
  }
  GatedCompute compute;
  DynamicBatcher<int, int> batcher;
  std::future<BatchOutcome<int>> first;
};

TEST(DynamicBatcher, RunsAloneWhenIdleAndReturnsResultsInOrder) {
  DynamicBatcher<int, int> batcher({}, [](std::vector<int>& payloads) {
    ComputeResult<int> out;
    for (int payload : payloads) out.results.push_back(payload + 1);
    return out;
  });
  BatchOutcome<int> outcome = batcher.run(41);
  ASSERT_TRUE(outcome.ok()) << outcome.error;
  EXPECT_EQ(*outcome.result, 42);
  EXPECT_EQ(outcome.timing.batch_size, 1u);
}

TEST(DynamicBatcher, TakesEverythingQueuedWhileThePreviousBatchRan) {
  Blocked blocked({.max_batch_size = 16});
  std::vector<std::future<BatchOutcome<int>>> futures;
  for (int i = 0; i < 5; ++i) futures.push_back(blocked.batcher.submit(i));
  blocked.compute.release();
  for (int i = 0; i < 5; ++i) {
    BatchOutcome<int> outcome = futures[i].get();
    ASSERT_TRUE(outcome.ok());
    EXPECT_EQ(*outcome.result, i * 10);
    EXPECT_EQ(outcome.timing.batch_size, 5u);
  }
  ASSERT_EQ(blocked.compute.batches.size(), 2u);
  EXPECT_EQ(blocked.compute.batches[1], (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(DynamicBatcher, NeverExceedsMaxBatchSize) {
  Blocked blocked({.max_batch_size = 4});
  std::vector<std::future<BatchOutcome<int>>> futures;
  for (int i = 0; i < 10; ++i) futures.push_back(blocked.batcher.submit(i));
  blocked.compute.release();
  for (auto& future : futures) ASSERT_TRUE(future.get().ok());
  ASSERT_EQ(blocked.compute.batches.size(), 4u);  // the blocker, then 4 + 4 + 2 in arrival order
  EXPECT_EQ(blocked.compute.batches[1], (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(blocked.compute.batches[2], (std::vector<int>{4, 5, 6, 7}));
  EXPECT_EQ(blocked.compute.batches[3], (std::vector<int>{8, 9}));
  EXPECT_EQ(blocked.batcher.stats().batches, 4u);
}

TEST(DynamicBatcher, MaxQueueDelayWaitsForABatchButNotLonger) {
  DynamicBatcher<int, int> batcher({.max_batch_size = 4, .max_queue_delay = 60ms}, [](std::vector<int>& payloads) {
    return ComputeResult<int>{std::vector<int>(payloads.size(), 0), {}};
  });
  // Alone: waits the whole delay for company, then runs.
  const auto start = Clock::now();
  BatchOutcome<int> alone = batcher.run(1);
  ASSERT_TRUE(alone.ok());
  EXPECT_GE(alone.timing.queue_time, 55ms);
  EXPECT_LT(Clock::now() - start, 1s);
  // A full batch does not wait.
  std::vector<std::future<BatchOutcome<int>>> futures;
  for (int i = 0; i < 4; ++i) futures.push_back(batcher.submit(i));
  for (auto& future : futures) {
    BatchOutcome<int> outcome = future.get();
    ASSERT_TRUE(outcome.ok());
    EXPECT_EQ(outcome.timing.batch_size, 4u);
    EXPECT_LT(outcome.timing.queue_time, 50ms);
  }
}

TEST(DynamicBatcher, TokenBudgetKeepsOneBucketPerBatchWithinPaddedTokens) {
  std::mutex mutex;
  std::vector<std::vector<int>> batches;
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::promise<void> started;
  std::atomic<int> calls{0};
  DynamicBatcher<int, int> batcher({.max_batch_size = 8, .max_batch_tokens = 100}, [&](std::vector<int>& payloads) {
    if (calls.fetch_add(1) == 0) {
      started.set_value();
      opened.wait();
    }
    std::lock_guard<std::mutex> lock(mutex);
    batches.push_back(payloads);
    return ComputeResult<int>{payloads, {}};
  });
  auto blocker = batcher.submit(0);
  started.get_future().wait();
  // payload = id; bucket 32 requests have 30 tokens, bucket 64 ones 60.
  struct Item {
    int id;
    std::int64_t bucket;
    std::int64_t tokens;
  };
  const std::vector<Item> items = {{1, 32, 30}, {2, 64, 60}, {3, 32, 30}, {4, 32, 30},
                                   {5, 32, 30}, {6, 64, 60}, {7, 32, 500}};
  std::vector<std::future<BatchOutcome<int>>> futures;
  for (const Item& item : items) {
    futures.push_back(batcher.submit(item.id, {.bucket_key = item.bucket, .tokens = item.tokens}));
  }
  gate.set_value();
  for (auto& future : futures) ASSERT_TRUE(future.get().ok());
  ASSERT_TRUE(blocker.get().ok());
  // Oldest first picks the bucket; 3 x 30 = 90 fits, a 4th would pad to 120; 2 x 60 = 120 does not
  // fit either; a single request over the budget still runs, alone.
  const std::vector<std::vector<int>> expected = {{0}, {1, 3, 4}, {2}, {5}, {6}, {7}};
  EXPECT_EQ(batches, expected);
}

TEST(DynamicBatcher, FullQueueRejectsAtOnce) {
  Blocked blocked({.max_batch_size = 8, .max_queue_size = 2});
  auto a = blocked.batcher.submit(1);
  auto b = blocked.batcher.submit(2);
  auto c = blocked.batcher.submit(3);
  ASSERT_EQ(c.wait_for(0s), std::future_status::ready);  // no waiting for a rejection
  BatchOutcome<int> rejected = c.get();
  EXPECT_EQ(rejected.status, RequestStatus::rejected_queue_full);
  EXPECT_NE(rejected.error.find("queue full"), std::string::npos);
  EXPECT_EQ(http_status_code(rejected.status), 429);
  blocked.compute.release();
  EXPECT_TRUE(a.get().ok());
  EXPECT_TRUE(b.get().ok());
  EXPECT_EQ(blocked.batcher.stats().rejected_queue_full, 1u);
}

TEST(DynamicBatcher, DeadlinePassedBeforeComputeTimesOut) {
  Blocked blocked({});
  auto late = blocked.batcher.submit(1, {.deadline = Clock::now() + 10ms});
  auto fine = blocked.batcher.submit(2, {.deadline = Clock::now() + 10s});
  std::this_thread::sleep_for(30ms);
  blocked.compute.release();
  BatchOutcome<int> timed_out = late.get();
  EXPECT_EQ(timed_out.status, RequestStatus::timed_out);
  EXPECT_EQ(http_status_code(timed_out.status), 504);
  EXPECT_GE(timed_out.timing.queue_time, 10ms);
  EXPECT_TRUE(fine.get().ok());
  ASSERT_EQ(blocked.compute.batches.size(), 2u);
  EXPECT_EQ(blocked.compute.batches[1], (std::vector<int>{2}));  // 1 was never computed
}

TEST(DynamicBatcher, CancelledRequestsAreNotComputed) {
  Blocked blocked({});
  RequestOptions gone;
  auto cancelled = blocked.batcher.submit(1, gone);
  auto kept = blocked.batcher.submit(2);
  gone.cancel.cancel();  // copies share the flag
  blocked.compute.release();
  EXPECT_EQ(cancelled.get().status, RequestStatus::cancelled);
  EXPECT_TRUE(kept.get().ok());
  ASSERT_EQ(blocked.compute.batches.size(), 2u);
  EXPECT_EQ(blocked.compute.batches[1], (std::vector<int>{2}));
  EXPECT_EQ(blocked.batcher.stats().cancelled, 1u);
}

TEST(DynamicBatcher, DrainRefusesNewWorkAndFinishesAccepted) {
  Blocked blocked({.max_batch_size = 2});
  std::vector<std::future<BatchOutcome<int>>> accepted;
  for (int i = 0; i < 5; ++i) accepted.push_back(blocked.batcher.submit(i));
  std::thread drainer([&] { blocked.batcher.drain(); });
  while (blocked.batcher.accepting()) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(blocked.batcher.submit(99).get().status, RequestStatus::unavailable);
  blocked.compute.release();
  drainer.join();
  for (int i = 0; i < 5; ++i) {
    BatchOutcome<int> outcome = accepted[i].get();
    ASSERT_TRUE(outcome.ok()) << to_string(outcome.status);
    EXPECT_EQ(*outcome.result, i * 10);
  }
  EXPECT_TRUE(blocked.first.get().ok());
  EXPECT_EQ(blocked.batcher.submit(7).get().status, RequestStatus::unavailable);
  EXPECT_EQ(blocked.batcher.stats().completed, 6u);
}

TEST(DynamicBatcher, ComputeErrorsFailTheBatchWithTheirMessage) {
  DynamicBatcher<int, int> throwing(
      {}, [](std::vector<int>&) -> ComputeResult<int> { throw std::runtime_error("tensor x: bad shape"); });
  BatchOutcome<int> thrown = throwing.run(1);
  EXPECT_EQ(thrown.status, RequestStatus::failed);
  EXPECT_NE(thrown.error.find("tensor x: bad shape"), std::string::npos);

  DynamicBatcher<int, int> short_result({}, [](std::vector<int>&) { return ComputeResult<int>{}; });
  BatchOutcome<int> mismatch = short_result.run(1);
  EXPECT_EQ(mismatch.status, RequestStatus::failed);
  EXPECT_NE(mismatch.error.find("0 results for a batch of 1"), std::string::npos);

  DynamicBatcher<int, int> reported({}, [](std::vector<int>&) { return ComputeResult<int>::failure("out of memory"); });
  EXPECT_EQ(reported.run(1).error, "out of memory");
}

TEST(DynamicBatcher, MeasuresComputeTimeAndReportsBatches) {
  std::atomic<std::size_t> reported_sizes{0};
  BatcherOptions options;
  options.on_batch = [&](const BatchReport& report) { reported_sizes += report.batch_size; };
  DynamicBatcher<int, int> batcher(std::move(options), [](std::vector<int>& payloads) {
    std::this_thread::sleep_for(20ms);
    return ComputeResult<int>{payloads, {}};
  });
  BatchOutcome<int> outcome = batcher.run(1);
  ASSERT_TRUE(outcome.ok());
  EXPECT_GE(outcome.timing.compute_time, 19ms);
  EXPECT_EQ(reported_sizes.load(), 1u);
}

TEST(DynamicBatcher, RejectsBadOptions) {
  auto compute = [](std::vector<int>& payloads) { return ComputeResult<int>{payloads, {}}; };
  EXPECT_THROW((DynamicBatcher<int, int>({.max_batch_size = 0}, compute)), std::invalid_argument);
  EXPECT_THROW((DynamicBatcher<int, int>({.max_queue_size = 0}, compute)), std::invalid_argument);
  EXPECT_THROW((DynamicBatcher<int, int>({}, nullptr)), std::invalid_argument);
}

}  // namespace
}  // namespace hone::serve
