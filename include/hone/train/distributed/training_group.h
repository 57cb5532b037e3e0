#pragma once
/// @file What the trainer needs from a data-parallel job, in one object: the process group from
/// the torchrun variables, the ranks' configs compared before any training, rank 0 as the only
/// writer, losses and validation metrics reduced over the ranks, and the failure of one rank
/// reported to the others. train() makes one when WORLD_SIZE > 1 (trainer.h).
///
///   auto group = distributed::TrainingGroup::from_environment(options.device, timeout);
///   if (group) group->check_same_config(config_json);   // every rank, before the first step
#include <c10/core/Device.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "hone/data/datasets.h"
#include "hone/models/model.h"
#include "hone/train/distributed/communicator.h"
#include "hone/train/distributed/data_parallel.h"
#include "hone/train/metrics.h"

namespace hone::train::distributed {

class TrainingGroup {
 public:
  /// Null when the environment names no distributed job or a world of 1. `device` is the run's
  /// device option ("cpu", "cuda"); on CUDA each rank takes cuda:LOCAL_RANK, which must exist.
  static std::unique_ptr<TrainingGroup> from_environment(const std::string& device, std::chrono::milliseconds timeout);
  TrainingGroup(const Environment& env, c10::Device device, std::chrono::milliseconds timeout);
  ~TrainingGroup();

  int rank() const { return communicator_->rank(); }
  int world_size() const { return communicator_->world_size(); }
  bool writes() const { return rank() == 0; }  ///< rank 0 alone writes the run directory
  std::string device_string() const { return device_.str(); }
  Communicator& communicator() { return *communicator_; }

  /// Every rank's training config against rank 0's (through the store): hone::UsageError naming
  /// the rank and the first keys that differ, on every rank, before any step.
  void check_same_config(const nlohmann::json& config);
  /// The model's gradient synchronizer (broadcasts rank 0's weights now).
  DataParallel& attach(models::Model& model);
  /// The mean of `value` over the ranks.
  double mean(double value, const std::string& what);
  /// The largest `value` over the ranks.
  double max(double value, const std::string& what);
  /// Validation over the ranks: classification splits are sharded and the sums reduced (the same
  /// metrics as one process, up to summation order); forecasting ones (RMSE needs every
  /// prediction with its price reference) are evaluated whole on every rank.
  EvalMetrics evaluate(models::Model& model, const data::DataSplit& split, data::TaskKind task,
                       const std::string& split_name);
  void barrier(const std::string& what);
  /// A rank's error, for its peers' messages, before it leaves.
  void report_failure(const std::string& message) noexcept { communicator_->report_failure(message); }
  void report_done() noexcept { communicator_->report_done(); }

 private:
  c10::Device device_;
  std::unique_ptr<Communicator> communicator_;
  std::unique_ptr<DataParallel> parallel_;
};

/// Test aid: HONE_FAULT_INJECT="kill:RANK:STEP" (SIGKILL) or "hang:RANK:STEP" (SIGSTOP) makes that
/// rank stop itself when its global step counter reaches STEP, to show what its peers report.
void maybe_inject_fault(int rank, std::int64_t global_step);

}  // namespace hone::train::distributed
