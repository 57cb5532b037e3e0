#include "hone/compress/prune_schedule.h"

#include <cmath>

namespace hone::compress {

double PruneSchedule::sparsity_at(std::int64_t step) const {
  if (step <= begin_step) return initial_sparsity;
  if (step >= end_step) return final_sparsity;
  const double progress = static_cast<double>(step - begin_step) / static_cast<double>(end_step - begin_step);
  return final_sparsity + (initial_sparsity - final_sparsity) * std::pow(1.0 - progress, 3);
}

bool PruneSchedule::updates_at(std::int64_t step) const {
  if (step < begin_step || step > end_step) return false;
  return step == end_step || (step - begin_step) % frequency == 0;
}

}  // namespace hone::compress
