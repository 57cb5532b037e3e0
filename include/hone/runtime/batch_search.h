#pragma once
/// @file The largest batch whose work fits a device-memory budget: doubling from 1 until a batch
/// fails, then bisection between the last batch that fit and the first that did not (Lightning's
/// binsearch mode). A trial reports its peak memory; running out of memory on the device
/// (c10::OutOfMemoryError) is caught, the allocator's cache emptied, and the batch counted as not
/// fitting. What `hone bench --find-batch` (a forward) and `hone train --find-batch` (a full
/// training step) search with.
///
///   runtime::BatchSearch s = runtime::search_largest_batch(
///       [&](std::int64_t batch) { run_once(batch); return runtime::peak_memory(device); },
///       {.budget_bytes = 8LL << 30, .max_batch = 4096, .device = device});
///   s.largest_batch;   // 0 when not even batch 1 fits
#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace hone::runtime {

struct BatchSearchOptions {
  std::int64_t budget_bytes = 0;  ///< > 0
  std::int64_t max_batch = 1 << 20;
  c10::Device device = c10::kCPU;  ///< whose cache is emptied after each trial
};

struct BatchTrial {
  std::int64_t batch = 0;
  std::int64_t peak_bytes = -1;  ///< -1 when it ran out of memory
  bool fits = false;
};

struct BatchSearch {
  std::int64_t budget_bytes = 0;
  std::int64_t largest_batch = 0;  ///< 0 when not even batch 1 fits
  std::int64_t largest_batch_peak_bytes = 0;
  std::vector<BatchTrial> trials;  ///< in the order run
  nlohmann::json to_json() const;  ///< {budget_bytes, largest_batch, largest_batch_peak_bytes, trials}
  std::string to_text() const;     ///< one line per trial, then the answer
};

/// `peak_of(batch)` runs the work at `batch` with the peak counter reset and returns its peak
/// bytes (or throws c10::OutOfMemoryError). Throws hone::Error for a budget <= 0 or max_batch < 1.
BatchSearch search_largest_batch(const std::function<std::int64_t(std::int64_t batch)>& peak_of,
                                 const BatchSearchOptions& options);

/// Gives the caching allocator's free blocks back to the driver (CUDA; no-op elsewhere).
void release_cached_memory(const c10::Device& device);

}  // namespace hone::runtime
