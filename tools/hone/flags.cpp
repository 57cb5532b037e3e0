#include "flags.h"

#include <ATen/Parallel.h>

namespace hone::cli {

void apply_threads(int threads) {
  if (threads > 0) at::set_num_threads(threads);
}

}  // namespace hone::cli
