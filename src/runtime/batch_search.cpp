#include "hone/runtime/batch_search.h"

#include <c10/util/Exception.h>
#include <fmt/format.h>

#ifdef HONE_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "hone/core/error.h"
#include "hone/runtime/units.h"

namespace hone::runtime {

void release_cached_memory(const c10::Device& device) {
#ifdef HONE_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#else
  (void)device;
#endif
}

BatchSearch search_largest_batch(const std::function<std::int64_t(std::int64_t)>& peak_of,
                                 const BatchSearchOptions& options) {
  HONE_CHECK(options.budget_bytes > 0, "memory budget must be positive, got {}", options.budget_bytes);
  HONE_CHECK(options.max_batch >= 1, "the largest batch to try must be >= 1, got {}", options.max_batch);
  BatchSearch search;
  search.budget_bytes = options.budget_bytes;
  auto trial = [&](std::int64_t batch) {
    BatchTrial t;
    t.batch = batch;
    try {
      t.peak_bytes = peak_of(batch);
      t.fits = t.peak_bytes <= options.budget_bytes;
    } catch (const c10::OutOfMemoryError&) {
      t.peak_bytes = -1;  // the failed batch's blocks go back to the driver below
    }
    release_cached_memory(options.device);
    search.trials.push_back(t);
    if (t.fits && batch > search.largest_batch) {
      search.largest_batch = batch;
      search.largest_batch_peak_bytes = t.peak_bytes;
    }
    return t.fits;
  };
  std::int64_t good = 0, bad = options.max_batch + 1;
  for (std::int64_t batch = 1; batch <= options.max_batch; batch *= 2) {
    if (!trial(batch)) {
      bad = batch;
      break;
    }
    good = batch;
  }
  // Doubling that passed max_batch leaves bad = max_batch + 1: bisection covers the rest.
  while (good > 0 && bad - good > 1) {
    const std::int64_t mid = good + (bad - good) / 2;
    if (trial(mid)) {
      good = mid;
    } else {
      bad = mid;
    }
  }
  return search;
}

nlohmann::json BatchSearch::to_json() const {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& t : trials) rows.push_back({{"batch", t.batch}, {"peak_bytes", t.peak_bytes}, {"fits", t.fits}});
  return {{"budget_bytes", budget_bytes},
          {"largest_batch", largest_batch},
          {"largest_batch_peak_bytes", largest_batch_peak_bytes},
          {"trials", rows}};
}

std::string BatchSearch::to_text() const {
  std::string out;
  for (const auto& t : trials) {
    out += fmt::format("  batch {:>8}: {}\n", t.batch,
                       t.peak_bytes < 0
                           ? std::string("out of memory")
                           : fmt::format("peak {} {}", bytes_text(t.peak_bytes), t.fits ? "fits" : "over budget"));
  }
  if (largest_batch == 0) return out + fmt::format("not even batch 1 fits in {}\n", bytes_text(budget_bytes));
  return out + fmt::format("largest batch within {}: {} (peak {})\n", bytes_text(budget_bytes), largest_batch,
                           bytes_text(largest_batch_peak_bytes));
}

}  // namespace hone::runtime
