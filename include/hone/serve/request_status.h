#pragma once
/// @file What became of one served request, shared by the batcher, the HTTP layer and metrics.
///
/// The batcher decides most outcomes (queue full, deadline passed, client gone, draining), the
/// HTTP layer maps each to one status code, so the mapping lives here once:
///
///     BatchOutcome<float> outcome = batcher.run(row);
///     response.status = http_status_code(outcome.status);   // queue full -> 429
#include <chrono>
#include <cstddef>
#include <string_view>

namespace hone::serve {

/// The outcome class of a request. Values are stable names used in metrics labels (to_string).
enum class RequestStatus {
  ok,                   ///< computed; the result is valid
  invalid_input,        ///< the request itself is wrong (400)
  too_large,            ///< over a size limit: too many texts or tokens for the server's bounds (413)
  not_found,            ///< the named model or route does not exist (404)
  rejected_queue_full,  ///< the bounded queue was full at submit; retry later (429 + Retry-After)
  timed_out,            ///< its deadline passed before compute started (504)
  cancelled,            ///< its client went away before compute; never computed (499, nginx's code)
  unavailable,          ///< not ready, or draining for shutdown (503)
  failed,               ///< the compute function reported an error (500)
};

/// Stable snake_case name ("rejected_queue_full"), for logs and metric labels.
std::string_view to_string(RequestStatus status);

/// The HTTP status code the server answers for this outcome (see RequestStatus).
int http_status_code(RequestStatus status);

/// Where one request's time went, measured by the batcher: from submit to the start of its
/// batch's compute (queue_time), and that batch's compute (compute_time). The HTTP layer sends them
/// as `x-queue-time` / `x-inference-time` headers (microseconds).
struct RequestTiming {
  std::chrono::microseconds queue_time{0};
  std::chrono::microseconds compute_time{0};
  std::size_t batch_size = 0;  ///< requests in the batch it was computed in; 0 when never computed
};

}  // namespace hone::serve
