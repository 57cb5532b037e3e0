#include "hone/serve/request_status.h"

namespace hone::serve {

std::string_view to_string(RequestStatus status) {
  switch (status) {
    case RequestStatus::ok:
      return "ok";
    case RequestStatus::invalid_input:
      return "invalid_input";
    case RequestStatus::too_large:
      return "too_large";
    case RequestStatus::not_found:
      return "not_found";
    case RequestStatus::rejected_queue_full:
      return "rejected_queue_full";
    case RequestStatus::timed_out:
      return "timed_out";
    case RequestStatus::cancelled:
      return "cancelled";
    case RequestStatus::unavailable:
      return "unavailable";
    case RequestStatus::failed:
      return "failed";
  }
  return "unknown";
}

int http_status_code(RequestStatus status) {
  switch (status) {
    case RequestStatus::ok:
      return 200;
    case RequestStatus::invalid_input:
      return 400;
    case RequestStatus::too_large:
      return 413;
    case RequestStatus::not_found:
      return 404;
    case RequestStatus::rejected_queue_full:
      return 429;
    case RequestStatus::timed_out:
      return 504;
    case RequestStatus::cancelled:
      return 499;
    case RequestStatus::unavailable:
      return 503;
    case RequestStatus::failed:
      return 500;
  }
  return 500;
}

}  // namespace hone::serve
